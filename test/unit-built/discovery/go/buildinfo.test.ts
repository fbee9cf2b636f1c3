import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readBuildInfo } from '../../../../src/discovery/go/buildinfo';
import { withElf } from '../../../../src/discovery/go/elf';
import { buildFixture, needGo } from '../../../helpers/go-build';

// Builds a Go fixture (first run: toolchain download and compile); cached afterwards.
jest.setTimeout(600_000);

/**
 * The pre-1.18 layout (flags & 2 == 0: pointers to Go string headers) cannot be built here (the
 * module proxy serves toolchains from 1.21 on), so a real binary's blob is rewritten into it:
 * the string headers go into .noptrdata and point at the original inline string bytes.
 */
describe('build info, pointer format (Go <= 1.17)', () => {
  const testGo = needGo() ? test : test.skip;
  testGo(
    'reads the same version and modules as the inline format',
    () => {
      const bin = buildFixture('httpapp', { toolchain: 'local' });
      const expected = withElf(bin, (elf) => readBuildInfo(elf));
      const data = fs.readFileSync(bin);
      const { bi, nd } = withElf(bin, (elf) => ({ bi: elf.section('.go.buildinfo'), nd: elf.section('.noptrdata') }));
      if (!bi || !nd || !expected) throw new Error('fixture without .go.buildinfo/.noptrdata');
      // Inline: at +32 uvarint(len) version, uvarint(len) modinfo (with 16-byte sentinels).
      let p = bi.offset + 32;
      const uv = (): number => {
        let v = 0;
        for (let shift = 0; ; shift += 7) {
          const b = data[p++];
          v += (b & 0x7f) * 2 ** shift;
          if (b < 0x80) return v;
        }
      };
      const vlen = uv();
      const vaddrOf = (fileOff: number): number => fileOff - bi.offset + bi.addr;
      const verAt = vaddrOf(p);
      p += vlen;
      const mlen = uv();
      const modAt = vaddrOf(p);
      data[bi.offset + 15] = 0; // flags: little-endian, pointer format
      data.writeBigUInt64LE(BigInt(nd.addr), bi.offset + 16);
      data.writeBigUInt64LE(BigInt(nd.addr + 16), bi.offset + 24);
      data.writeBigUInt64LE(BigInt(verAt), nd.offset);
      data.writeBigUInt64LE(BigInt(vlen), nd.offset + 8);
      data.writeBigUInt64LE(BigInt(modAt), nd.offset + 16);
      data.writeBigUInt64LE(BigInt(mlen), nd.offset + 24);
      const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'spanbridge-bi-')), 'old-format');
      fs.writeFileSync(out, data);
      expect(withElf(out, (elf) => readBuildInfo(elf))).toEqual(expected);
    },
    600_000,
  );
});
