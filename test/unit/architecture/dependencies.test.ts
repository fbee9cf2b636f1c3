/**
 * The dependency rules of docs/architecture.md, checked on the sources: receiver/ imports nothing
 * of src/ and reads no environment; the agent imports receiver/ only in the one wiring file
 * (src/wiring.ts) or through the leaf contract receiver/model.ts, which imports nothing; koffi
 * only in src/bpf/; no TypeScript source over 600 lines.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../../..');

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Module specifiers of `import ... from`, `export ... from` and `require(...)`, resolved to repo paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:from\s+|require\(\s*|import\(\s*)'([^']+)'/g)].map((m) => m[1]);
  return specs.map((s) => (s.startsWith('.') ? relative(ROOT, resolve(file, '..', s)) : s));
}

const rel = (f: string): string => relative(ROOT, f);

describe('dependency direction', () => {
  it('receiver/ imports nothing of src/ and never reads process.env', () => {
    const offenders: string[] = [];
    for (const f of tsFiles(join(ROOT, 'receiver'))) {
      for (const i of importsOf(f)) if (i.startsWith('src/') || i === 'src') offenders.push(`${rel(f)} -> ${i}`);
      if (/process\.env/.test(readFileSync(f, 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, ''))) offenders.push(`${rel(f)} reads process.env`);
    }
    expect(offenders).toEqual([]);
  });

  it('src/ imports receiver/ only in the wiring file, else only the leaf contract receiver/model', () => {
    const offenders: string[] = [];
    for (const f of tsFiles(join(ROOT, 'src'))) {
      for (const i of importsOf(f)) {
        if (!i.startsWith('receiver')) continue;
        if (i === 'receiver/model') continue;
        if (rel(f) === 'src/wiring.ts') continue;
        offenders.push(`${rel(f)} -> ${i}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('receiver/model.ts is a leaf', () => {
    expect(importsOf(join(ROOT, 'receiver/model.ts'))).toEqual([]);
  });

  it('koffi only in src/bpf/', () => {
    const offenders = [...tsFiles(join(ROOT, 'src')), ...tsFiles(join(ROOT, 'receiver'))]
      .filter((f) => importsOf(f).includes('koffi'))
      .map(rel)
      .filter((f) => !f.startsWith('src/bpf/'));
    expect(offenders).toEqual([]);
  });

  it('no TypeScript source file over 600 lines', () => {
    const long = [...tsFiles(join(ROOT, 'src')), ...tsFiles(join(ROOT, 'receiver'))]
      .filter((f) => !f.endsWith('.generated.ts'))
      .map((f) => [rel(f), readFileSync(f, 'utf8').split('\n').length] as const)
      .filter(([, n]) => n > 600);
    expect(long).toEqual([]);
  });
});
