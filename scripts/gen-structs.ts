/**
 * Generates src/events/structs.generated.ts from the BTF of the built BPF objects.
 * Usage (via `make gen-structs`, from the repository root): node <compiled>/gen-structs.js [build/bpf]
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GENERATED, renderGenerated, type BtfDump } from '../src/events/btf-layout';

export function dumpBtf(objectPath: string): BtfDump {
  const json = execFileSync('bpftool', ['btf', 'dump', 'file', objectPath, '-j'], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(json) as BtfDump;
}

export function generate(objectDir: string): string {
  const dumps: Record<string, BtfDump> = {};
  for (const g of GENERATED) dumps[g.object] = dumpBtf(join(objectDir, g.object));
  return renderGenerated(dumps);
}

if (require.main === module) {
  const root = process.cwd();
  const dir = process.argv[2] ?? join(root, 'build', 'bpf');
  writeFileSync(join(root, 'src', 'events', 'structs.generated.ts'), generate(dir));
}
