/**
 * Generates src/discovery/go/offsets-table.json: struct field offsets per Go release, read from
 * the DWARF of a reference program built with each toolchain. The agent uses the table for
 * stripped binaries (no DWARF), see src/discovery/go/offsets.ts for the lookup rule.
 *
 * Run from the repository root (needs `go` >= 1.21 on PATH and the Go module proxy, which
 * serves toolchains: `GOTOOLCHAIN=go1.X.Y go build` downloads each one once, ~70 MB):
 *
 *   npx tsc -p scripts/go-offsets/tsconfig.json && node dist/gen-go-offsets/scripts/gen-go-offsets.js [options] [go1.X.Y ...]
 *
 * (compiles just this script and what it imports; `npx tsc -p tsconfig.json` followed by
 * `node dist/scripts/gen-go-offsets.js` works too). A full run downloads two toolchains per
 * minor (more where bisecting) and takes ~10 minutes the first time, seconds when cached.
 *
 * Options:
 *   --minors 1.21-1.26   minors to cover (default 1.21 up to the newest the proxy lists)
 *   --all                build every patch release (default: first and last patch of each
 *                        minor; when they differ, bisect to find where the offsets change)
 *   --out FILE           default src/discovery/go/offsets-table.json
 *   --check              do not write; exit 1 if the generated table differs from FILE
 * Explicit versions (go1.22.12 ...) replace the version discovery.
 *
 * Versions come from `go list -m -versions golang.org/toolchain` (linux-amd64 builds only).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readBuildInfo } from '../src/discovery/go/buildinfo';
import { dwarfVersions, structFieldOffsets } from '../src/discovery/go/dwarf';
import { ElfFile } from '../src/discovery/go/elf';
import { compareGoVersions, GoVersion, goMinor, parseGoVersion } from '../src/discovery/go/goversion';
import { GO_FIELD_SINCE, GO_OFFSET_KEYS, GO_STRUCT_FIELDS, OffsetsTable, OffsetsTableEntry } from '../src/discovery/go/offsets';
import { REFERENCE_GO_MOD, REFERENCE_MAIN_GO } from './go-offsets/reference-program';

type Offsets = Record<string, number>;

interface Options {
  minFrom: string;
  minTo?: string;
  all: boolean;
  out: string;
  check: boolean;
  versions: string[];
}

function parseArgs(argv: string[]): Options {
  const o: Options = { minFrom: '1.21', all: false, out: 'src/discovery/go/offsets-table.json', check: false, versions: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--all') o.all = true;
    else if (a === '--check') o.check = true;
    else if (a === '--out') o.out = argv[++i];
    else if (a === '--minors') {
      const [from, to] = argv[++i].split('-');
      o.minFrom = from;
      o.minTo = to;
    } else if (a.startsWith('go1.')) o.versions.push(a);
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

/** A temp module with the reference program; builds reuse it (and the Go build cache). */
function makeWorkdir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spanbridge-go-offsets-'));
  fs.writeFileSync(path.join(dir, 'go.mod'), REFERENCE_GO_MOD);
  fs.writeFileSync(path.join(dir, 'main.go'), REFERENCE_MAIN_GO);
  return dir;
}

function goEnv(toolchain: string): NodeJS.ProcessEnv {
  return { ...process.env, GOTOOLCHAIN: toolchain, CGO_ENABLED: '0', GOFLAGS: '-mod=mod' };
}

/** Released linux-amd64 toolchains known to the module proxy, ascending. */
function listToolchains(workdir: string): GoVersion[] {
  const outp = execFileSync('go', ['list', '-m', '-versions', 'golang.org/toolchain'], { cwd: workdir, env: goEnv('local'), encoding: 'utf8' });
  const out: GoVersion[] = [];
  for (const tok of outp.trim().split(/\s+/).slice(1)) {
    const m = /^v0\.0\.1-(go[^.]+\.[^.]+(?:\.\d+)?)\.linux-amd64$/.exec(tok);
    const v = m ? parseGoVersion(m[1]) : undefined;
    if (v && !v.devel && v.prerelease === undefined) out.push(v);
  }
  return out.sort(compareGoVersions);
}

const built = new Map<string, { offsets: Offsets; dwarf: number[] }>();

/** Builds the reference program with `version` and reads the offsets from its DWARF. */
function offsetsFor(workdir: string, version: string): Offsets {
  const cached = built.get(version);
  if (cached) return cached.offsets;
  const bin = path.join(workdir, `ref-${version}`);
  const t0 = Date.now();
  execFileSync('go', ['build', '-trimpath', '-o', bin, '.'], { cwd: workdir, env: goEnv(version), stdio: ['ignore', 'inherit', 'inherit'] });
  const elf = ElfFile.open(bin);
  try {
    const got = readBuildInfo(elf)?.goVersion;
    if (got !== version) throw new Error(`built with ${got}, wanted ${version}`);
    const found = structFieldOffsets(elf, GO_STRUCT_FIELDS);
    const offsets: Offsets = {};
    for (const k of GO_OFFSET_KEYS) {
      const dot = k.lastIndexOf('.');
      const v = found.get(k.slice(0, dot))?.get(k.slice(dot + 1));
      if (v !== undefined) offsets[k] = v;
      else if (!(k in GO_FIELD_SINCE && compareGoVersions(version, GO_FIELD_SINCE[k]) < 0)) {
        throw new Error(`${version}: ${k} not found in the reference build's DWARF`);
      }
    }
    const dwarf = dwarfVersions(elf);
    built.set(version, { offsets, dwarf });
    log(`  ${version}: ${Object.keys(offsets).length} offsets, DWARF ${dwarf.join('/')} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    return offsets;
  } finally {
    elf.close();
    fs.rmSync(bin, { force: true });
  }
}

function sameOffsets(a: Offsets, b: Offsets): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

/**
 * Ranges of identical offsets over `patches` (ascending releases of one minor). Builds the ends;
 * where they differ, bisects. Only built versions are range ends.
 */
function rangesFor(workdir: string, patches: string[], all: boolean): OffsetsTableEntry[] {
  const offs = new Map<number, Offsets>();
  const get = (i: number): Offsets => {
    let o = offs.get(i);
    if (!o) offs.set(i, (o = offsetsFor(workdir, patches[i])));
    return o;
  };
  if (all) patches.forEach((_, i) => get(i));
  else {
    get(0);
    get(patches.length - 1);
  }
  // Boundaries: indexes i where offsets(i) != offsets(i + 1).
  const cuts: number[] = [];
  const split = (lo: number, hi: number): void => {
    if (hi <= lo) return;
    if (!all && sameOffsets(get(lo), get(hi))) return;
    if (hi === lo + 1) {
      if (!sameOffsets(get(lo), get(hi))) cuts.push(lo);
      return;
    }
    const mid = (lo + hi) >> 1;
    split(lo, mid);
    split(mid, hi);
  };
  split(0, patches.length - 1);
  cuts.sort((a, b) => a - b);
  const entries: OffsetsTableEntry[] = [];
  let start = 0;
  for (const end of [...cuts, patches.length - 1]) {
    const builtIdx = [...offs.keys()].filter((i) => i >= start && i <= end).sort((a, b) => a - b);
    entries.push({ from: patches[start], to: patches[end], built: builtIdx.map((i) => patches[i]), offsets: get(builtIdx[0]) });
    start = end + 1;
  }
  return entries;
}

/** JSON with one line per entry's offsets: reviewable diffs, compact file. */
function render(table: OffsetsTable): string {
  const lines: string[] = ['{', '  "schema": 1,', '  "minors": {'];
  const minors = Object.keys(table.minors);
  minors.forEach((m, mi) => {
    lines.push(`    ${JSON.stringify(m)}: [`);
    const entries = table.minors[m];
    entries.forEach((e, ei) => {
      lines.push('      {');
      lines.push(`        "from": ${JSON.stringify(e.from)},`);
      lines.push(`        "to": ${JSON.stringify(e.to)},`);
      lines.push(`        "built": ${JSON.stringify(e.built)},`);
      lines.push(`        "offsets": ${JSON.stringify(e.offsets).replace(/,"/g, ', "').replace(/":/g, '": ')}`);
      lines.push(`      }${ei < entries.length - 1 ? ',' : ''}`);
    });
    lines.push(`    ]${mi < minors.length - 1 ? ',' : ''}`);
  });
  lines.push('  }', '}', '');
  return lines.join('\n');
}

function main(): void {
  const opt = parseArgs(process.argv.slice(2));
  const workdir = makeWorkdir();
  try {
    let byMinor = new Map<string, string[]>();
    if (opt.versions.length > 0) {
      for (const v of opt.versions.sort(compareGoVersions)) {
        const pv = parseGoVersion(v);
        if (!pv) throw new Error(`not a Go version: ${v}`);
        byMinor.set(goMinor(pv), [...(byMinor.get(goMinor(pv)) ?? []), v]);
      }
    } else {
      for (const v of listToolchains(workdir)) {
        if (compareGoVersions(v, `go${opt.minFrom}`) < 0) continue;
        if (opt.minTo && compareGoVersions(v, `go${opt.minTo}.999`) > 0) continue;
        byMinor.set(goMinor(v), [...(byMinor.get(goMinor(v)) ?? []), v.raw]);
      }
    }
    byMinor = new Map([...byMinor].sort(([a], [b]) => compareGoVersions(`go${a}`, `go${b}`)));
    const minors: Record<string, OffsetsTableEntry[]> = {};
    for (const [minor, patches] of byMinor) {
      log(`go${minor}: ${patches.length} releases available (${patches[0]} .. ${patches[patches.length - 1]})`);
      minors[minor] = rangesFor(workdir, patches, opt.all);
    }
    const text = render({ schema: 1, minors });
    if (opt.check) {
      const old = fs.existsSync(opt.out) ? fs.readFileSync(opt.out, 'utf8') : '';
      if (old !== text) {
        log(`${opt.out} is out of date`);
        process.exitCode = 1;
      } else log(`${opt.out} is up to date`);
    } else {
      fs.writeFileSync(opt.out, text);
      log(`wrote ${opt.out}`);
    }
  } finally {
    fs.rmSync(workdir, { recursive: true, force: true });
  }
}

if (require.main === module) main();
