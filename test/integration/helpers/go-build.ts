/**
 * Builds a Go program from test/apps/<name> with a given Go toolchain (the machine's, or another
 * fetched through the module proxy with GOTOOLCHAIN), cached under the OS temp dir by source hash
 * and toolchain so repeated test runs are fast.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const APPS_DIR = path.resolve(__dirname, '../../apps');

/** The machine's Go ('local') or e.g. 'go1.22.12'. */
export type GoToolchain = 'local' | `go${number}.${number}.${number}`;

export function goVersionOf(toolchain: GoToolchain): string {
  return execFileSync('go', ['env', 'GOVERSION'], {
    encoding: 'utf8',
    env: { ...process.env, GOTOOLCHAIN: toolchain },
  }).trim();
}

/** How a test app is linked: 'static' (CGO_ENABLED=0, the default), 'cgo' (the C toolchain and libc), 'pie' (cgo, -buildmode=pie). */
export type GoLink = 'static' | 'cgo' | 'pie';

export function buildGoApp(app: string, toolchain: GoToolchain = 'local', ldflags = '', link: GoLink = 'static'): string {
  const src = path.join(APPS_DIR, app);
  const h = createHash('sha256');
  for (const f of readdirSync(src).sort()) h.update(f).update(readFileSync(path.join(src, f)));
  h.update(toolchain).update(ldflags).update(link === 'static' ? '' : link);
  const dir = path.join(os.tmpdir(), 'spanbridge-go-builds', `${app}-${toolchain}-${h.digest('hex').slice(0, 12)}`);
  const bin = path.join(dir, app);
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    const tmp = `${bin}.tmp${process.pid}`;
    execFileSync('go', ['build', '-o', tmp, ...(link === 'pie' ? ['-buildmode=pie'] : []), ...(ldflags ? [`-ldflags=${ldflags}`] : []), '.'], {
      cwd: src,
      env: { ...process.env, GOTOOLCHAIN: toolchain, CGO_ENABLED: link === 'static' ? '0' : '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    renameSync(tmp, bin);
  }
  return bin;
}

/** A copy of a binary under a new (unique) name, e.g. to test --exe selection. */
export function copyBinary(bin: string, name: string): string {
  const dir = path.join(os.tmpdir(), 'spanbridge-go-builds', 'copies');
  mkdirSync(dir, { recursive: true });
  const out = path.join(dir, name);
  copyFileSync(bin, out);
  return out;
}
