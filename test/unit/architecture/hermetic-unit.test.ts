/**
 * The unit project runs on a machine with Node alone: no clang, no Go, no built BPF objects, no
 * installed services. A test that needs any of them belongs in test/unit-built/ (make test runs
 * both). This keeps that from eroding: no unit test spawns a program or reaches for a build.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const UNIT = path.resolve(__dirname, '..');

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? files(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

describe('the unit project is hermetic', () => {
  it('no unit test spawns a program, builds Go, or reads build/ or an installed binary', () => {
    const offending: string[] = [];
    for (const f of files(UNIT).filter((x) => x !== __filename)) {
      const text = readFileSync(f, 'utf8');
      for (const [what, re] of [
        ['spawns a program', /from 'node:child_process'|require\('child_process'\)/],
        ['builds Go', /helpers\/go-build'/],
        ['reads built objects', /(?:join|resolve)\([^)]*'build'/],
        ['needs an installed binary', /expect\(existsSync\('\/usr\//],
      ] as const) {
        if (re.test(text)) offending.push(`${path.relative(UNIT, f)}: ${what}`);
      }
    }
    expect(offending).toEqual([]);
  });
});
