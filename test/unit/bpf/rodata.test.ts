import { encodeRodataValue, parseBtfTypeHeader, parseVarSecinfos, writeRodata } from '../../../src/bpf/rodata';

const vars = [
  { name: 'flag', offset: 0, size: 1 },
  { name: 'magic', offset: 4, size: 4 },
  { name: 'wide', offset: 8, size: 8 },
  { name: 'comm', offset: 16, size: 16 },
];

describe('rodata', () => {
  it('writes numbers, bigints, booleans little-endian at the variable size, and Buffers zero-padded', () => {
    const image = Buffer.alloc(32, 0xff);
    writeRodata('x.o', image, vars, { flag: true, magic: 0xdeadbeef, wide: -2n, comm: Buffer.from('go') });
    expect(image[0]).toBe(1);
    expect(image.readUInt32LE(4)).toBe(0xdeadbeef);
    expect(image.readBigInt64LE(8)).toBe(-2n);
    expect(image.subarray(16, 32).toString('latin1')).toBe('go' + '\0'.repeat(14));
    expect(image[1]).toBe(0xff); // bytes outside variables untouched
  });

  it('accepts negative numbers as two\'s complement', () => {
    expect([...encodeRodataValue('x.o', { name: 'v', offset: 0, size: 2 }, -1)]).toEqual([0xff, 0xff]);
  });

  it('rejects unknown names, values that do not fit, and writes nothing then', () => {
    const image = Buffer.alloc(32);
    expect(() => writeRodata('x.o', image, vars, { magic: 1, nope: 1 })).toThrow(
      'set rodata nope in x.o: no such variable (known: flag, magic, wide, comm)',
    );
    expect(() => writeRodata('x.o', image, vars, { magic: 1, flag: 256 })).toThrow('256 does not fit a 1-byte variable');
    expect(() => writeRodata('x.o', image, vars, { magic: 1.5 })).toThrow('not a safe integer');
    expect(() => writeRodata('x.o', image, vars, { comm: Buffer.alloc(17) })).toThrow('17 bytes does not fit 16-byte variable');
    expect(() => writeRodata('x.o', image, vars, { comm: 1 })).toThrow('only 1, 2, 4 or 8-byte integers');
    expect(image.equals(Buffer.alloc(32))).toBe(true);
    try {
      writeRodata('x.o', image, vars, { nope: 1 });
    } catch (err) {
      expect((err as { code?: string }).code).toBe('ERR_BPF_OPEN');
    }
  });

  it('parses BTF DATASEC headers and secinfos', () => {
    const b = Buffer.alloc(12 + 24);
    b.writeUInt32LE(7, 0);
    b.writeUInt32LE((15 << 24) | 2, 4);
    b.writeUInt32LE(12, 8);
    b.writeUInt32LE(3, 12);
    b.writeUInt32LE(0, 16);
    b.writeUInt32LE(4, 20);
    b.writeUInt32LE(5, 24);
    b.writeUInt32LE(8, 28);
    b.writeUInt32LE(8, 32);
    expect(parseBtfTypeHeader(b)).toEqual({ nameOff: 7, kind: 15, vlen: 2, sizeOrType: 12 });
    expect(parseVarSecinfos(b, 2)).toEqual([
      { type: 3, offset: 0, size: 4 },
      { type: 5, offset: 8, size: 8 },
    ]);
  });
});
