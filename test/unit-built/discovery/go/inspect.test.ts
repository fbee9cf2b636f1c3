/**
 * The inspector against real Go binaries: the fixture HTTP app built with the machine's Go and
 * with an older toolchain, normal and stripped. Independent oracles: Go's own debug/dwarf and
 * debug/gosym (test/fixtures/go/oracle) and binutils objdump.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readBuildInfo } from '../../../../src/discovery/go/buildinfo';
import { dwarfVersions } from '../../../../src/discovery/go/dwarf';
import { ElfFile, withElf } from '../../../../src/discovery/go/elf';
import { compareGoVersions } from '../../../../src/discovery/go/goversion';
import { binaryCacheKey, clearInspectCache, GoBinaryInfo, inspectGoBinary } from '../../../../src/discovery/go/inspect';
import { GO_STRUCT_FIELDS, offsetsFromTable } from '../../../../src/discovery/go/offsets';
import { readPclnTable } from '../../../../src/discovery/go/pclntab';
import { clearRetCache } from '../../../../src/discovery/go/rets';
import { thrownSpanbridgeError } from '../../../helpers/errors';
import { buildFixture, needGo, localGoVersion, OLD_TOOLCHAIN, runOracle, type GoToolchain } from '../../../helpers/go-build';

const FUNCS = [
  'net/http.serverHandler.ServeHTTP',
  'net/http.(*Transport).roundTrip',
  'net/textproto.(*Reader).readContinuedLineSlice',
  'net/http.Header.writeSubset',
  'main.main',
];
const BUILD_TIMEOUT = 600_000;
// Tests may build Go fixtures (first run: toolchain download and compile); cached afterwards.
jest.setTimeout(600_000);

/** RET addresses objdump finds in [vaddr, vaddr + size). */
function objdumpRets(binary: string, vaddr: number, size: number): number[] {
  const out = execFileSync(
    'objdump',
    ['-d', '--no-show-raw-insn', `--start-address=0x${vaddr.toString(16)}`, `--stop-address=0x${(vaddr + size).toString(16)}`, binary],
    { encoding: 'utf8', maxBuffer: 64 << 20 },
  );
  const rets: number[] = [];
  for (const line of out.split('\n')) {
    const m = /^\s*([0-9a-f]+):\s+(?:(?:repz|bnd|notrack)\s+)?ret[qlw]?(?:\s|$)/.exec(line);
    if (m) rets.push(parseInt(m[1], 16));
  }
  return rets;
}

/** A copy of `binary` with the Go version in its build info replaced by `to` (same length). */
function withPatchedVersion(binary: string, from: string, to: string): string {
  expect(to.length).toBe(from.length);
  const data = fs.readFileSync(binary);
  const sec = withElf(binary, (elf) => elf.section('.go.buildinfo'));
  const start = sec?.offset ?? 0;
  const at = data.indexOf(Buffer.from(from), start);
  expect(at).toBeGreaterThan(start);
  Buffer.from(to).copy(data, at);
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'spanbridge-go-test-')), 'patched');
  fs.writeFileSync(out, data, { mode: 0o755 });
  return out;
}

const describeGo = needGo() ? describe : describe.skip;

describeGo.each([{ toolchain: 'local' as GoToolchain }, { toolchain: OLD_TOOLCHAIN }])('Go binary built with $toolchain', ({ toolchain }) => {
  let version: string;
  let full: string;
  let stripped: string;
  let infoFull: GoBinaryInfo;
  let infoStripped: GoBinaryInfo;

  beforeAll(() => {
    version = toolchain === 'local' ? localGoVersion() : toolchain;
    full = buildFixture('httpapp', { toolchain });
    stripped = buildFixture('httpapp', { toolchain, stripped: true });
    clearInspectCache();
    infoFull = inspectGoBinary(full, FUNCS);
    infoStripped = inspectGoBinary(stripped, FUNCS);
  }, BUILD_TIMEOUT);

  test('build info: Go version, main module, dependency with its replacement', () => {
    for (const info of [infoFull, infoStripped]) {
      expect(info.goVersion).toBe(version);
      expect(info.modules.path).toBe('example.com/spanbridge/httpapp');
      expect(info.modules.main).toEqual({ path: 'example.com/spanbridge/httpapp', version: '(devel)' });
      expect(info.modules.deps).toEqual([
        { path: 'example.com/spanbridge/greeting', version: 'v0.1.0', replace: { path: './greeting', version: '(devel)' } },
      ]);
      expect(info.modules.settings).toContainEqual({ key: 'GOARCH', value: 'amd64' });
    }
    expect(infoStripped.modules.settings).toContainEqual({ key: '-ldflags', value: '-s -w' });
  });

  test('stripped vs not: symtab and DWARF presence, sources used', () => {
    expect(infoFull).toMatchObject({ stripped: false, hasDwarf: true, functionSource: 'symtab', offsetsSource: 'dwarf' });
    expect(infoStripped).toMatchObject({ stripped: true, hasDwarf: false, functionSource: 'pclntab', offsetsSource: 'table' });
  });

  test('functions found via .symtab and via .gopclntab (stripped build) at the same entry offsets', () => {
    expect(infoFull.missingFunctions).toEqual([]);
    expect(infoStripped.missingFunctions).toEqual([]);
    for (const f of FUNCS) {
      expect(infoStripped.functions[f].entryOffset).toBe(infoFull.functions[f].entryOffset);
      expect(infoStripped.functions[f].vaddr).toBe(infoFull.functions[f].vaddr);
      // .gopclntab sizes run to the next function (INT3 padding included).
      expect(infoStripped.functions[f].size).toBeGreaterThanOrEqual(infoFull.functions[f].size);
      expect(infoStripped.functions[f].size - infoFull.functions[f].size).toBeLessThan(64);
    }
  });

  test('.gopclntab agrees with .symtab in the same binary and with Go debug/gosym', () => {
    const fromPcln = withElf(full, (elf) => readPclnTable(elf).lookup(FUNCS));
    const oracle = runOracle(stripped, FUNCS.map((f) => `func:${f}`));
    for (const f of FUNCS) {
      expect(fromPcln.get(f)?.vaddr).toBe(infoFull.functions[f].vaddr);
      expect(fromPcln.get(f)?.fileOffset).toBe(infoFull.functions[f].entryOffset);
      expect(oracle.funcs[f]).toEqual({ entry: infoStripped.functions[f].vaddr, end: infoStripped.functions[f].vaddr + infoStripped.functions[f].size });
    }
  });

  test('a function that is not in the binary is listed as missing, not thrown', () => {
    const info = inspectGoBinary(stripped, ['net/http.(*nope).missing', FUNCS[0]]);
    expect(info.missingFunctions).toEqual(['net/http.(*nope).missing']);
    expect(Object.keys(info.functions)).toEqual([FUNCS[0]]);
  });

  test('RET offsets point at RET opcodes and match objdump', () => {
    for (const info of [infoFull, infoStripped]) {
      const bin = info === infoFull ? full : stripped;
      const bytes = fs.readFileSync(bin);
      for (const f of FUNCS) {
        const fn = info.functions[f];
        expect(fn.retOffsets.length).toBeGreaterThan(0);
        for (const off of fn.retOffsets) {
          expect(off).toBeGreaterThanOrEqual(fn.entryOffset);
          expect(off).toBeLessThan(fn.entryOffset + fn.size);
          expect([0xc3, 0xc2]).toContain(bytes[off]);
        }
        const expected = objdumpRets(bin, fn.vaddr, fn.size);
        expect(fn.retOffsets.map((o) => o - fn.entryOffset + fn.vaddr)).toEqual(expected);
      }
    }
  });

  test('DWARF offsets equal Go debug/dwarf and the offsets table for this version', () => {
    const oracle = runOracle(full, Object.keys(GO_STRUCT_FIELDS).map((s) => `struct:${s}`));
    for (const [s, fields] of Object.entries(GO_STRUCT_FIELDS)) {
      for (const f of fields) expect([`${s}.${f}`, infoFull.offsets[`${s}.${f}`]]).toEqual([`${s}.${f}`, oracle.structs[s]?.[f]]);
    }
    const table = offsetsFromTable(version);
    expect(table.offsets).toEqual(infoFull.offsets);
    expect(infoStripped.offsets).toEqual(infoFull.offsets);
    expect(infoStripped.missingOffsets).toEqual(infoFull.missingOffsets);
  });

  test('Request.Pattern exists from Go 1.23 on; parentGoid is present', () => {
    const hasPattern = compareGoVersions(version, 'go1.23') >= 0;
    for (const info of [infoFull, infoStripped]) {
      expect('net/http.Request.Pattern' in info.offsets).toBe(hasPattern);
      expect(info.missingOffsets.includes('net/http.Request.Pattern')).toBe(!hasPattern);
      expect(info.offsets['runtime.g.parentGoid']).toEqual(expect.any(Number));
    }
  });

  test('DWARF version (Go >= 1.25 emits DWARF 5)', () => {
    const versions = withElf(full, (elf) => dwarfVersions(elf));
    expect(versions).toEqual([compareGoVersions(version, 'go1.25') >= 0 ? 5 : 4]);
  });
});

describeGo('more Go binaries', () => {
  test(
    'stripped PIE: .gopclntab entries (text base via moduledata/relocations) equal .symtab of the PIE build',
    () => {
      const pie = buildFixture('httpapp', { toolchain: 'local', pie: true });
      const pieStripped = buildFixture('httpapp', { toolchain: 'local', pie: true, stripped: true });
      const a = inspectGoBinary(pie, FUNCS);
      const b = inspectGoBinary(pieStripped, FUNCS);
      expect(withElf(pie, (elf) => elf.type)).toBe(3); // ET_DYN
      expect(b.functionSource).toBe('pclntab');
      for (const f of FUNCS) {
        expect(b.functions[f].entryOffset).toBe(a.functions[f].entryOffset);
        expect(b.functions[f].retOffsets).toEqual(a.functions[f].retOffsets);
      }
    },
    BUILD_TIMEOUT,
  );

  test(
    'externally linked (cgo, C linker: .text starts before runtime.text): stripped entries and RETs equal the .symtab build',
    () => {
      const ext = buildFixture('httpapp', { toolchain: 'local', external: true });
      const extStripped = buildFixture('httpapp', { toolchain: 'local', external: true, stripped: true });
      const textAddr = withElf(ext, (elf) => elf.section('.text')?.addr);
      const runtimeText = withElf(ext, (elf) => elf.findFunction('runtime.text')?.vaddr);
      expect(runtimeText).toBeDefined();
      expect(runtimeText).not.toBe(textAddr);
      expect(withElf(extStripped, (elf) => readPclnTable(elf).textStart)).toBe(runtimeText);
      const a = inspectGoBinary(ext, FUNCS);
      const b = inspectGoBinary(extStripped, FUNCS);
      for (const f of FUNCS) {
        expect(b.functions[f].entryOffset).toBe(a.functions[f].entryOffset);
        expect(b.functions[f].retOffsets).toEqual(a.functions[f].retOffsets);
      }
    },
    BUILD_TIMEOUT,
  );

  test('Go older than 1.17 is not supported (register ABI)', () => {
    const full = buildFixture('httpapp', { toolchain: 'local' });
    const v = localGoVersion();
    const old = withPatchedVersion(full, v, `go1.16.${'9'.repeat(v.length - 'go1.16.'.length)}`);
    const err = thrownSpanbridgeError(() => inspectGoBinary(old, FUNCS));
    expect(err.code).toBe('ERR_NOT_SUPPORTED');
    expect(err.message).toContain('go1.16.');
    expect(err.message).toContain('requires Go >= 1.17 (register ABI)');
  });

  test('stripped binary of a Go version not in the table: ERR_NOT_SUPPORTED naming the version', () => {
    const stripped = buildFixture('httpapp', { toolchain: 'local', stripped: true });
    const v = localGoVersion();
    const future = `go9.99.${'9'.repeat(v.length - 'go9.99.'.length)}`;
    const err = thrownSpanbridgeError(() => inspectGoBinary(withPatchedVersion(stripped, v, future), FUNCS));
    expect(err.code).toBe('ERR_NOT_SUPPORTED');
    expect(err.message).toContain(future);
  });

  test('results are cached per (dev, inode, size, mtime)', () => {
    const full = buildFixture('httpapp', { toolchain: 'local' });
    const copy = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'spanbridge-go-test-')), 'app');
    fs.copyFileSync(full, copy);
    clearInspectCache();
    clearRetCache();
    const t0 = process.hrtime.bigint();
    const first = inspectGoBinary(copy, FUNCS);
    const t1 = process.hrtime.bigint();
    const second = inspectGoBinary(copy, FUNCS);
    const t2 = process.hrtime.bigint();
    expect(second).toEqual(first);
    expect(Number(t2 - t1)).toBeLessThan(Number(t1 - t0));
    const key = binaryCacheKey(copy);
    expect(key).toMatch(/^\d+:\d+:\d+:\d+$/);
    fs.utimesSync(copy, new Date(), new Date(Date.now() + 5000));
    expect(binaryCacheKey(copy)).not.toBe(key);
    // Cold inspection time of a ~10 MB Go binary (symtab, DWARF, RET decoding of FUNCS).
    process.stdout.write(`inspectGoBinary(${(fs.statSync(copy).size / 1e6).toFixed(1)} MB): cold ${(Number(t1 - t0) / 1e6).toFixed(1)} ms, cached ${(Number(t2 - t1) / 1e6).toFixed(2)} ms\n`);
  });
});

describe('not Go binaries', () => {
  test('a non-Go ELF gives ERR_INSPECT "not a Go binary"', () => {
    const err = thrownSpanbridgeError(() => inspectGoBinary('/bin/ls', FUNCS));
    expect(err.code).toBe('ERR_INSPECT');
    expect(err.message).toContain('not a Go binary (no .go.buildinfo)');
    expect(withElf('/bin/ls', (elf) => readBuildInfo(elf))).toBeUndefined();
  });

  test('a non-ELF file gives ERR_INSPECT', () => {
    const p = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'spanbridge-go-test-')), 'text');
    fs.writeFileSync(p, '#!/bin/sh\necho hello\n');
    const err = thrownSpanbridgeError(() => inspectGoBinary(p, FUNCS));
    expect(err.code).toBe('ERR_INSPECT');
    expect(err.message).toContain('not an ELF file');
  });

  test('a missing file or a 32-bit ELF gives ERR_INSPECT', () => {
    expect(thrownSpanbridgeError(() => inspectGoBinary('/nonexistent/app', FUNCS)).code).toBe('ERR_INSPECT');
    const p = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'spanbridge-go-test-')), 'elf32');
    const hdr = Buffer.alloc(64);
    hdr.write('\x7fELF', 0, 'latin1');
    hdr[4] = 1; // ELFCLASS32
    hdr[5] = 1;
    fs.writeFileSync(p, hdr);
    const err = thrownSpanbridgeError(() => ElfFile.open(p));
    expect(err.code).toBe('ERR_INSPECT');
    expect(err.message).toContain('not a 64-bit ELF');
  });
});
