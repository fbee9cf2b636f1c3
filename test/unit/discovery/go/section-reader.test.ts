import { withElf } from '../../../../src/discovery/go/elf';

/** Any large ELF file works; the Node binary running the tests is one. */
const BINARY = process.execPath;

describe('SectionReader (windowed section reads)', () => {
  it('reads the same bytes as the whole section, across window boundaries and in any order', () => {
    withElf(BINARY, (elf) => {
      const sec = elf.sections.filter((s) => s.size > 1 << 20).sort((a, b) => b.size - a.size)[0];
      expect(sec).toBeDefined();
      const whole = elf.sectionData(sec);
      const reader = elf.sectionReader(sec);
      expect(reader.length).toBe(whole.length);
      const W = 256 * 1024;
      const offsets = [0, W - 2, W - 4, W, 3 * W - 7, whole.length - 8, 12345, 5 * W + 1, W - 1];
      for (let i = 0; i < 200; i++) offsets.push(Math.floor(((i * 2654435761) % 4294967296) / 4294967296 * (whole.length - 64)));
      for (const at of offsets) {
        expect(reader.u32(at)).toBe(whole.readUInt32LE(at));
        expect(reader.i32(at)).toBe(whole.readInt32LE(at));
        expect(reader.u64(at)).toBe(Number(whole.readBigUInt64LE(at)));
        expect(reader.bytes(at, 8).equals(whole.subarray(at, at + 8))).toBe(true);
        expect(reader.equals(whole.subarray(at, at + 5), at)).toBe(true);
      }
      expect(() => reader.bytes(whole.length - 2, 4)).toThrow(RangeError);
      expect(reader.equals(Buffer.from('xyz'), whole.length - 1)).toBe(false);
    });
  });
});
