/**
 * The layout of bpf/ (docs/architecture.md, README's repository layout), checked on the sources'
 * text: one folder a tracer, named as its object (bpf/<name>/<name>.bpf.c, which the Makefile's
 * build rule relies on), and bpf/common/ for the headers more than one tracer includes. A header's
 * home follows who includes it, directly or through another header, the way the compiler
 * resolves a quoted include here: next to the including file, then bpf/common/ (-Ibpf/common).
 * No C file over 700 lines.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../../..');
const BPF = join(ROOT, 'bpf');
const COMMON = join(BPF, 'common');
const MAX_C_LINES = 700;

const rel = (f: string): string => relative(ROOT, f);
const folders = readdirSync(BPF, { withFileTypes: true });
const tracers = folders.filter((e) => e.isDirectory() && e.name !== 'common').map((e) => e.name);
const cFiles = folders
  .filter((e) => e.isDirectory())
  .flatMap((d) => readdirSync(join(BPF, d.name)).map((n) => join(BPF, d.name, n)))
  .filter((f) => f.endsWith('.c') || f.endsWith('.h'));

/** Quoted includes no repository file answers: the build's own vmlinux.h (-isystem build/bpf). */
const unresolved: string[] = [];

/** The quoted includes of a file, resolved as clang resolves them with -Ibpf/common. */
function includesOf(file: string): string[] {
  const names = [...readFileSync(file, 'utf8').matchAll(/^\s*#\s*include\s+"([^"]+)"/gm)].map((m) => m[1]);
  const out: string[] = [];
  for (const n of names) {
    const found = [join(dirname(file), n), join(COMMON, n)].find((p) => existsSync(p));
    if (found !== undefined) out.push(found);
    else if (n !== 'vmlinux.h') unresolved.push(`${rel(file)}: "${n}"`);
  }
  return out;
}

/** Every repository header a tracer's object is compiled from. */
function headersOf(tracer: string): Set<string> {
  const seen = new Set<string>();
  const todo = [join(BPF, tracer, `${tracer}.bpf.c`)];
  while (todo.length > 0) {
    for (const h of includesOf(todo.pop() as string)) {
      if (seen.has(h)) continue;
      seen.add(h);
      todo.push(h);
    }
  }
  return seen;
}

describe('bpf/ layout', () => {
  const users = new Map<string, string[]>();
  for (const t of tracers) for (const h of headersOf(t)) users.set(h, [...(users.get(h) ?? []), t]);

  it('every quoted include resolves next to its file or in bpf/common/', () => {
    expect(users.size).toBeGreaterThan(20);
    expect(unresolved).toEqual([]);
  });

  it('holds folders only: common/ and one per tracer, each with its <name>.bpf.c and no other', () => {
    expect(folders.filter((e) => !e.isDirectory()).map((e) => e.name)).toEqual([]);
    expect(tracers.length).toBeGreaterThanOrEqual(5);
    for (const t of tracers) {
      const objects = readdirSync(join(BPF, t)).filter((n) => n.endsWith('.bpf.c'));
      expect([t, objects]).toEqual([t, [`${t}.bpf.c`]]);
    }
    expect(readdirSync(COMMON).filter((n) => !n.endsWith('.h'))).toEqual([]);
  });

  it("a tracer's folder holds only headers that tracer alone is built from", () => {
    const offenders: string[] = [];
    for (const t of tracers) {
      for (const n of readdirSync(join(BPF, t)).filter((x) => x.endsWith('.h'))) {
        const by = users.get(join(BPF, t, n)) ?? [];
        if (by.join() !== t) offenders.push(`${t}/${n} is included by [${by.join(', ')}]`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('bpf/common/ holds only headers more than one tracer is built from', () => {
    const offenders = readdirSync(COMMON)
      .map((n) => join(COMMON, n))
      .filter((h) => (users.get(h) ?? []).length < 2)
      .map((h) => `${rel(h)} is included by [${(users.get(h) ?? []).join(', ')}]`);
    expect(offenders).toEqual([]);
  });

  it(`no C file over ${MAX_C_LINES} lines`, () => {
    const over = cFiles
      .map((f) => [rel(f), readFileSync(f, 'utf8').split('\n').length - 1] as const)
      .filter(([, n]) => n > MAX_C_LINES);
    expect(over).toEqual([]);
    expect(cFiles.length).toBeGreaterThan(20);
  });
});
