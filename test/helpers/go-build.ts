/**
 * Builds Go programs for the tests, with the machine's Go or another toolchain (GOTOOLCHAIN=
 * go1.X.Y; the module proxy serves it, cached after the first download): the traced services
 * under test/apps (buildGoApp) and the inspector's fixtures under test/fixtures/go (buildFixture).
 *
 * Built binaries are cached under os.tmpdir()/spanbridge-go-builds, keyed by a hash of the
 * sources, the toolchain and the build flags, so repeated test runs take milliseconds. Builds go
 * to a temp name and are renamed into place, so parallel jest workers do not race. The binary
 * keeps the program's name (tests select it by --exe).
 */
import { execFileSync } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const APPS_DIR = path.resolve(__dirname, '../apps');
export const FIXTURES = path.resolve(__dirname, '../fixtures/go');
const CACHE = path.join(os.tmpdir(), 'spanbridge-go-builds');

/** The machine's Go ('local') or e.g. 'go1.22.12'. */
export type GoToolchain = 'local' | `go${number}.${number}.${number}`;

/** A toolchain other than the machine's that the tests also cover (DWARF 4, no Request.Pattern). */
export const OLD_TOOLCHAIN: GoToolchain = 'go1.22.12';

export interface BuildOptions {
  readonly toolchain: GoToolchain;
  /** -ldflags="-s -w": no .symtab, no DWARF. */
  readonly stripped?: boolean;
  /** -buildmode=pie. */
  readonly pie?: boolean;
  /** -ldflags=-linkmode=external (cgo, the C linker: .text no longer starts at runtime.text). */
  readonly external?: boolean;
  /** Further -ldflags, e.g. '-X main.version=1'. */
  readonly ldflags?: string;
}

/** True when a `go` command is available. */
export function haveGo(): boolean {
  try {
    execFileSync('go', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * For tests on Go builds (the unit-built project): true when `go` is there. Without it the test
 * file fails with the reason (a skip never counts as coverage), unless SPANBRIDGE_ALLOW_SKIP=1,
 * and then the caller skips.
 */
export function needGo(): boolean {
  if (haveGo()) return true;
  if (process.env.SPANBRIDGE_ALLOW_SKIP === '1') return false;
  throw new Error('go is missing: run `make setup` (or set SPANBRIDGE_ALLOW_SKIP=1 to skip the tests on Go builds)');
}

/** The Go version a toolchain reports, e.g. "go1.26.8". */
export function goVersionOf(toolchain: GoToolchain): string {
  return execFileSync('go', ['env', 'GOVERSION'], { encoding: 'utf8', env: { ...process.env, GOTOOLCHAIN: toolchain } }).trim();
}

/** The machine's Go version, e.g. "go1.26.8". */
export function localGoVersion(): string {
  return goVersionOf('local');
}

function hashDir(root: string, dir: string, h: Hash): void {
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) hashDir(root, p, h);
    else h.update(path.relative(root, p)).update('\0').update(readFileSync(p)).update('\0');
  }
}

let localVersion: string | undefined;

/**
 * Builds the Go main package in `src` and returns the cached binary's path (named after `src`).
 * `env` is added to the build's environment (it is part of the cache key).
 */
export function goBuild(src: string, opts: BuildOptions, env: Record<string, string> = {}): string {
  const name = path.basename(src);
  const h = createHash('sha256');
  hashDir(src, src, h);
  // 'local' is keyed by the version it is now, so a Go upgrade rebuilds.
  const toolchain = opts.toolchain === 'local' ? (localVersion ??= localGoVersion()) : opts.toolchain;
  h.update(JSON.stringify({ env, toolchain, stripped: !!opts.stripped, pie: !!opts.pie, external: !!opts.external, ldflags: opts.ldflags ?? '' }));
  const variant = `${opts.stripped ? '-stripped' : ''}${opts.pie ? '-pie' : ''}${opts.external ? '-external' : ''}`;
  const dir = path.join(CACHE, `${name}-${toolchain}${variant}-${h.digest('hex').slice(0, 16)}`);
  const bin = path.join(dir, name);
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const tmp = `${bin}.tmp-${process.pid}`;
  const ldflags = [...(opts.stripped ? ['-s', '-w'] : []), ...(opts.external ? ['-linkmode=external'] : []), ...(opts.ldflags ? [opts.ldflags] : [])];
  const args = ['build', '-o', tmp, ...(ldflags.length > 0 ? [`-ldflags=${ldflags.join(' ')}`] : []), ...(opts.pie ? ['-buildmode=pie'] : []), '.'];
  execFileSync('go', args, {
    cwd: src,
    env: { ...process.env, GOTOOLCHAIN: opts.toolchain, ...(opts.external ? { CGO_ENABLED: '1' } : {}), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  renameSync(tmp, bin);
  return bin;
}

/** How a test app is linked: 'static' (CGO_ENABLED=0, the default), 'cgo' (the C toolchain and libc), 'pie' (cgo, -buildmode=pie). */
export type GoLink = 'static' | 'cgo' | 'pie';

/** Builds test/apps/<app> (a traced service) and returns the binary's path. */
export function buildGoApp(app: string, toolchain: GoToolchain = 'local', ldflags = '', link: GoLink = 'static'): string {
  // Static by default: such binaries also run in scratch container images.
  return goBuild(path.join(APPS_DIR, app), { toolchain, ldflags, pie: link === 'pie' }, { CGO_ENABLED: link === 'static' ? '0' : '1' });
}

/** Builds test/fixtures/go/<name> (an inspector fixture) and returns the binary's path. */
export function buildFixture(name: string, opts: BuildOptions): string {
  // The fixtures' modules replace their dependencies by local directories (go.mod may need updating).
  return goBuild(path.join(FIXTURES, name), opts, { GOFLAGS: '-mod=mod' });
}

/** A copy of a binary under a new (unique) name, e.g. to test --exe selection. */
export function copyBinary(bin: string, name: string): string {
  const dir = path.join(CACHE, 'copies');
  mkdirSync(dir, { recursive: true });
  const out = path.join(dir, name);
  copyFileSync(bin, out);
  return out;
}

/** Runs the oracle fixture (Go's debug/dwarf and debug/gosym) on `binary`. */
export function runOracle(binary: string, args: string[]): { structs: Record<string, Record<string, number>>; funcs: Record<string, { entry: number; end: number }> } {
  const oracle = buildFixture('oracle', { toolchain: 'local' });
  return JSON.parse(execFileSync(oracle, [binary, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 }));
}
