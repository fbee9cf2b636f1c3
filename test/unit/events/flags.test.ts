/**
 * The flag and mode bits C and TypeScript share are C enums, generated into structs.generated.ts from the
 * objects' BTF (test/unit-built/events/structs.test.ts checks the generated file against freshly
 * built objects). This test needs no build: it reads the headers' text and catches a bit
 * hand-copied into TypeScript, a flag left as a #define, or a generated value that differs from
 * the header.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as generated from '../../../src/events/structs.generated';

const ROOT = path.resolve(__dirname, '../../..');
const FLAG = /\b(?:CLIENT_F2?|SPAN_F|SYS_F2?|SYS_MODE)_[A-Z0-9_]+\b/g;

function files(dir: string, ext: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return files(p, ext);
    return e.name.endsWith(ext) ? [p] : [];
  });
}

/** Enumerators in the headers: `NAME = 1 << n,` or `NAME = n,` inside an enum. */
function headerFlags(): Map<string, number> {
  const out = new Map<string, number>();
  for (const f of files(path.join(ROOT, 'bpf'), '.h')) {
    for (const m of readFileSync(f, 'utf8').matchAll(/^\s+([A-Z][A-Z0-9_]*) = (?:1 << (\d+)|(\d+)),/gm)) out.set(m[1], m[2] !== undefined ? 1 << Number(m[2]) : Number(m[3]));
  }
  return out;
}

/** Every enumerator of every generated enum. */
function generatedEnumerators(): Map<string, number> {
  const out = new Map<string, number>();
  for (const v of Object.values(generated)) {
    if (typeof v !== 'object' || v === null || 'fields' in v || 'file' in v) continue;
    for (const [k, n] of Object.entries(v)) if (typeof n === 'number') out.set(k, n);
  }
  return out;
}

describe('flag bits shared by C and TypeScript', () => {
  const inHeaders = headerFlags();
  const inGenerated = generatedEnumerators();
  const usedInTs = new Set(
    files(path.join(ROOT, 'src'), '.ts')
      .filter((f) => !f.endsWith('structs.generated.ts'))
      .flatMap((f) => readFileSync(f, 'utf8').match(FLAG) ?? []),
  );

  it('every flag TypeScript names is a C enumerator, generated with the header value', () => {
    expect(usedInTs.size).toBeGreaterThan(20);
    for (const name of usedInTs) {
      expect([name, inGenerated.get(name)]).toEqual([name, inHeaders.get(name)]);
      expect([name, inGenerated.has(name)]).toEqual([name, true]);
    }
  });

  it('no shared flag is left as a #define, and none is written as a number in TypeScript', () => {
    for (const f of files(path.join(ROOT, 'bpf'), '.h')) {
      const defines = [...readFileSync(f, 'utf8').matchAll(/^#define ([A-Z0-9_]+) /gm)].map((m) => m[1]);
      expect([f, defines.filter((d) => usedInTs.has(d))]).toEqual([f, []]);
    }
    for (const f of files(path.join(ROOT, 'src'), '.ts').filter((x) => !x.endsWith('structs.generated.ts'))) {
      expect([f, readFileSync(f, 'utf8').match(/export const (?:[A-Z0-9_]+_F2?|SYS_MODE)_[A-Z0-9_]+ = /g)]).toEqual([f, null]);
    }
  });
});
