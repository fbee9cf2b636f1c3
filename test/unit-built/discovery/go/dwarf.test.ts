/**
 * DWARF reading across the encodings a Go binary can arrive in: as Go writes it (SHF_COMPRESSED
 * zlib), decompressed, GNU-style .zdebug_* sections (objcopy rewrites all three), and zstd, which
 * Node 20 cannot inflate: then the inspector falls back to the offsets table.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SpanbridgeError } from '../../../../src/errors';
import { dwarfVersions, hasDwarf, structFieldOffsets, type DwarfScanStats } from '../../../../src/discovery/go/dwarf';
import { withElf } from '../../../../src/discovery/go/elf';
import { clearInspectCache, inspectGoBinary } from '../../../../src/discovery/go/inspect';
import { GO_STRUCT_FIELDS } from '../../../../src/discovery/go/offsets';
import { buildFixture, needGo } from '../../../helpers/go-build';

function haveObjcopy(): boolean {
  try {
    execFileSync('objcopy', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// Tests may build Go fixtures (first run: toolchain download and compile); cached afterwards.
jest.setTimeout(600_000);

const describeIf = needGo() && haveObjcopy() ? describe : describe.skip;

describeIf('DWARF section encodings', () => {
  let original: string;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spanbridge-dwarf-'));
  const variant = (name: string, args: string[]): string => {
    const out = path.join(dir, name);
    execFileSync('objcopy', [...args, original, out]);
    return out;
  };

  beforeAll(() => {
    original = buildFixture('httpapp', { toolchain: 'local' });
  }, 600_000);

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('compressed (as built), decompressed and .zdebug_* give the same offsets', () => {
    const expected = structFieldOffsets(original, GO_STRUCT_FIELDS);
    expect(expected.size).toBe(Object.keys(GO_STRUCT_FIELDS).length);
    expect(withElf(original, (elf) => elf.section('.debug_info')?.flags ?? 0) & 0x800).toBe(0x800);
    const plain = variant('plain', ['--decompress-debug-sections']);
    const zgnu = variant('zgnu', ['--compress-debug-sections=zlib-gnu']);
    expect(withElf(zgnu, (elf) => elf.section('.zdebug_info') !== undefined)).toBe(true);
    for (const f of [plain, zgnu]) {
      expect(withElf(f, (elf) => hasDwarf(elf))).toBe(true);
      expect(structFieldOffsets(f, GO_STRUCT_FIELDS)).toEqual(expected);
      expect(withElf(f, (elf) => dwarfVersions(elf))).toEqual(withElf(original, (elf) => dwarfVersions(elf)));
    }
  });

  test("Go's runtime units alone give what a walk of every unit gives", () => {
    const fast: { out?: DwarfScanStats } = {};
    const every: { out?: DwarfScanStats } = {};
    const wanted = { ...GO_STRUCT_FIELDS, 'no/such.Struct': ['x'] };
    expect(structFieldOffsets(original, wanted, fast)).toEqual(structFieldOffsets(original, wanted, every, { everyUnit: true }));
    expect(fast.out!.structSizes).toEqual(every.out!.structSizes);
    expect(fast.out!.unitsScanned).toBeLessThan(every.out!.unitsScanned / 2);
  });

  test('absent structs and fields are absent from the result, not errors', () => {
    const r = structFieldOffsets(original, { 'net/http.Request': ['Method', 'NoSuchField'], 'no/such.Struct': ['x'] });
    expect(r.get('net/http.Request')).toEqual(new Map([['Method', 0]]));
    expect(r.has('no/such.Struct')).toBe(false);
  });

  test('zstd-compressed DWARF: ERR_NOT_SUPPORTED on Node 20, inspection falls back to the table', () => {
    let zstd: string;
    try {
      zstd = variant('zstd', ['--compress-debug-sections=zstd']);
    } catch {
      console.warn('objcopy without zstd support: skipped');
      return;
    }
    let err: unknown;
    try {
      structFieldOffsets(zstd, GO_STRUCT_FIELDS);
    } catch (e) {
      err = e;
    }
    expect((err as SpanbridgeError).code).toBe('ERR_NOT_SUPPORTED');
    clearInspectCache();
    const info = inspectGoBinary(zstd, ['main.main']);
    expect(info.offsetsSource).toBe('table');
    expect(info.offsets).toEqual(inspectGoBinary(original, ['main.main']).offsets);
  });

  test('a binary without DWARF has none', () => {
    const stripped = buildFixture('httpapp', { toolchain: 'local', stripped: true });
    expect(withElf(stripped, (elf) => hasDwarf(elf))).toBe(false);
    expect(structFieldOffsets(stripped, GO_STRUCT_FIELDS).size).toBe(0);
  });
});
