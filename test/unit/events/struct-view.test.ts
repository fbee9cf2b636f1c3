/** The resolved-at-load field readers of src/events/struct-view.ts: exact 64-bit values on both of bigAt's paths. */
import type { StructLayout } from '../../../src/events/btf-layout';
import { bigAt, safeNumberAt, uintAt } from '../../../src/events/struct-view';

const LAYOUT: StructLayout = {
  size: 24,
  fields: {
    a: { offset: 4, size: 8, kind: 'u64' },
    s: { offset: 12, size: 8, kind: 's64' },
    b: { offset: 0, size: 1, kind: 'u8' },
    w: { offset: 20, size: 4, kind: 'u32' },
  },
} as StructLayout;

describe('bigAt', () => {
  const read = bigAt(LAYOUT, 'a');
  it.each([0n, 1n, 0xffff_ffffn, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 0xfeedbeefcafe0001n, 2n ** 64n - 1n, 123_456_789_012_345n])('reads %s exactly', (v) => {
    const buf = Buffer.alloc(LAYOUT.size, 0xaa);
    buf.writeBigUInt64LE(v, 4);
    expect(read(buf)).toBe(v);
  });

  it('reads signed fields as signed', () => {
    const buf = Buffer.alloc(LAYOUT.size);
    buf.writeBigInt64LE(-5n, 12);
    expect(bigAt(LAYOUT, 's')(buf)).toBe(-5n);
  });

  it('fails loudly on a field of another size or name', () => {
    expect(() => bigAt(LAYOUT, 'w')).toThrow(/not 8 bytes/);
    expect(() => bigAt(LAYOUT, 'nope')).toThrow(/no field nope/);
  });
});

describe('uintAt and safeNumberAt', () => {
  it('read at the resolved offsets', () => {
    const buf = Buffer.alloc(LAYOUT.size);
    buf[0] = 7;
    buf.writeUInt32LE(0xdeadbeef, 20);
    buf.writeBigUInt64LE(2n ** 60n, 4);
    expect(uintAt(LAYOUT, 'b')(buf)).toBe(7);
    expect(uintAt(LAYOUT, 'w')(buf)).toBe(0xdeadbeef);
    expect(safeNumberAt(LAYOUT, 'a')(buf)).toBe(Number.MAX_SAFE_INTEGER);
  });
});
