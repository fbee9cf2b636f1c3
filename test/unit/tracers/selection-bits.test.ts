/**
 * The agent's half of the selection gate (bpf/sys_http_select.h): a bit per tgid at word tgid / 64,
 * whole words written, the kernel's half untouched, and no bit left behind by a failed write.
 */
import { SpanbridgeError } from '../../../src/errors';
import { SELECT_WORDS, SelectionBits } from '../../../src/tracers/selection-bits';
import type { BpfMap } from '../../../src/bpf/types';

function fakeMap(fail = false): BpfMap & { writes: Array<[number, bigint]> } {
  const writes: Array<[number, bigint]> = [];
  return {
    name: 'traced_bits',
    keySize: 4,
    valueSize: 8,
    writes,
    update(key: Buffer, value: Buffer) {
      if (fail) throw new SpanbridgeError('ERR_BPF_MAP', 'update map traced_bits: E2BIG');
      writes.push([key.readUInt32LE(0), value.readBigUInt64LE(0)]);
    },
    lookup: () => null,
    delete: () => false,
    lookupPerCpu: () => null,
    insertSocketOf: () => 0n,
  };
}

describe('SelectionBits', () => {
  it('has a word for every host tgid below PID_MAX_LIMIT (4,194,304)', () => {
    expect(SELECT_WORDS * 64).toBe(4_194_304);
    expect(SelectionBits.position(0)).toEqual({ word: 0, bit: 1n });
    expect(SelectionBits.position(63)).toEqual({ word: 0, bit: 1n << 63n });
    expect(SelectionBits.position(64)).toEqual({ word: 1, bit: 1n });
    expect(SelectionBits.position(4_194_303)).toEqual({ word: SELECT_WORDS - 1, bit: 1n << 63n });
    // beyond it the word wraps, like the kernel's (a false positive there, never a miss)
    expect(SelectionBits.position(4_194_304).word).toBe(0);
    expect(() => SelectionBits.position(-1)).toThrow(RangeError);
  });

  it('writes the whole word with every bit it has set, once per change', () => {
    const m = fakeMap();
    const b = new SelectionBits(m);
    b.set(65);
    b.set(66);
    b.set(66); // already set: no write
    b.clear(65);
    b.clear(65); // already clear: no write
    b.clear(66);
    expect(m.writes).toEqual([
      [1, 0b10n],
      [1, 0b110n],
      [1, 0b100n],
      [1, 0n],
    ]);
    expect(b.has(66)).toBe(false);
  });

  it('keeps no bit the map did not take', () => {
    const b = new SelectionBits(fakeMap(true));
    expect(() => b.set(7)).toThrow(SpanbridgeError);
    expect(b.has(7)).toBe(false);
  });
});
