/** The agent's package root and version, from package.json (one place). Works from src/ (tests)
 * and from dist/src/ (the built CLI). */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

function findPackage(): { root: string; version: string } {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'package.json');
    // dist/package.json (emitted by tsc for JSON imports) is a copy: skip it for the real root.
    if (existsSync(candidate) && !dir.endsWith('/dist')) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'spanbridge' && pkg.version) return { root: dir, version: pkg.version };
    }
    dir = dirname(dir);
  }
  return { root: process.cwd(), version: '0.0.0' };
}

const pkg = findPackage();
export const AGENT_VERSION: string = pkg.version;
export const PACKAGE_ROOT: string = pkg.root;
