/**
 * The TypeScript view of every BPF record is generated from the compiled objects' BTF. This test
 * regenerates it from build/bpf (built by `make bpf`, which `make test` runs) and fails when the
 * committed file is stale, so a C struct change can never silently desynchronise the decoder.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { generate } from '../../../scripts/gen-structs';
import { GO_HTTP_SERVER_EVENT, GO_OFFSETS, PROC_LIFECYCLE_EVENT, RECORD_TYPE } from '../../../src/events/structs.generated';

const root = path.resolve(__dirname, '../../..');
const objDir = path.join(root, 'build', 'bpf');

describe('generated struct layouts', () => {
  it('match the BTF of the freshly built BPF objects', () => {
    if (!existsSync(path.join(objDir, 'go_http.bpf.o'))) throw new Error('build/bpf is empty: run `make bpf` first');
    const committed = readFileSync(path.join(root, 'src', 'events', 'structs.generated.ts'), 'utf8');
    expect(generate(objDir)).toBe(committed);
  });

  it('every record starts with a u8 type and is 8-byte aligned', () => {
    for (const l of [GO_HTTP_SERVER_EVENT, PROC_LIFECYCLE_EVENT]) {
      expect(l.fields.type).toEqual({ offset: 0, size: 1, kind: 'u8' });
      expect(l.size % 8).toBe(0);
    }
    expect(RECORD_TYPE.RECORD_GO_HTTP_SERVER).toBe(3);
    expect(GO_OFFSETS.size).toBe(Object.keys(GO_OFFSETS.fields).length * 4);
  });
});
