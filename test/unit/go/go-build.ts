/**
 * Builds the Go fixture programs under test/fixtures/go for the inspector tests, with the machine's
 * Go or another toolchain (GOTOOLCHAIN=go1.X.Y; the module proxy serves it, cached after the
 * first download).
 *
 * Built binaries are cached under os.tmpdir()/spanbridge-go-fixtures, keyed by a hash of the
 * fixture sources, the toolchain and the build flags, so repeated test runs take milliseconds.
 * Builds go to a temp name and are renamed into place, so parallel jest workers do not race.
 */
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const FIXTURES = path.resolve(__dirname, '../../fixtures/go');
const CACHE = path.join(os.tmpdir(), 'spanbridge-go-fixtures');

/** A toolchain other than the machine's that the tests also cover (DWARF 4, no Request.Pattern). */
export const OLD_TOOLCHAIN = 'go1.22.12';

export interface BuildOptions {
  /** 'local' (the machine's Go) or a version like 'go1.22.12'. */
  readonly toolchain: string;
  /** -ldflags="-s -w": no .symtab, no DWARF. */
  readonly stripped?: boolean;
  /** -buildmode=pie. */
  readonly pie?: boolean;
  /** -ldflags=-linkmode=external (cgo, the C linker: .text no longer starts at runtime.text). */
  readonly external?: boolean;
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

/** The machine's Go version, e.g. "go1.26.8". */
export function localGoVersion(): string {
  return execFileSync('go', ['env', 'GOVERSION'], { env: { ...process.env, GOTOOLCHAIN: 'local' }, encoding: 'utf8' }).trim();
}

function hashDir(dir: string, h: crypto.Hash): void {
  for (const name of fs.readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (fs.statSync(p).isDirectory()) hashDir(p, h);
    else h.update(path.relative(FIXTURES, p)).update('\0').update(fs.readFileSync(p)).update('\0');
  }
}

/** Builds fixture `name` (a directory under test/fixtures/go) and returns the binary's path. */
export function buildFixture(name: string, opts: BuildOptions): string {
  const src = path.join(FIXTURES, name);
  const h = crypto.createHash('sha256');
  hashDir(src, h);
  const toolchain = opts.toolchain === 'local' ? localGoVersion() : opts.toolchain;
  h.update(JSON.stringify({ toolchain, stripped: !!opts.stripped, pie: !!opts.pie, external: !!opts.external }));
  const variant = `${opts.stripped ? '-stripped' : ''}${opts.pie ? '-pie' : ''}${opts.external ? '-external' : ''}`;
  const out = path.join(CACHE, `${name}-${toolchain}${variant}-${h.digest('hex').slice(0, 16)}`);
  if (fs.existsSync(out)) return out;
  fs.mkdirSync(CACHE, { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  const args = ['build', '-o', tmp];
  const ldflags = [...(opts.stripped ? ['-s', '-w'] : []), ...(opts.external ? ['-linkmode=external'] : [])];
  if (ldflags.length > 0) args.push(`-ldflags=${ldflags.join(' ')}`);
  if (opts.pie) args.push('-buildmode=pie');
  args.push('.');
  execFileSync('go', args, {
    cwd: src,
    env: { ...process.env, GOTOOLCHAIN: opts.toolchain, GOFLAGS: '-mod=mod', ...(opts.external ? { CGO_ENABLED: '1' } : {}) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  fs.renameSync(tmp, out);
  return out;
}

/** Runs the oracle fixture (Go's debug/dwarf and debug/gosym) on `binary`. */
export function runOracle(binary: string, args: string[]): { structs: Record<string, Record<string, number>>; funcs: Record<string, { entry: number; end: number }> } {
  const oracle = buildFixture('oracle', { toolchain: 'local' });
  return JSON.parse(execFileSync(oracle, [binary, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 }));
}
