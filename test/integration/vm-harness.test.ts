/**
 * The VM harness (test/vm/run) BOOTS QEMU GUESTS running Debian's own 6.1 and 6.12 kernels
 * (lockdown none) with the host's root shared read-only. Four boots in all (about 10-15 s each
 * under TCG). Proves what the Go injection tests rely on: in the guest bpf_probe_write_user loads
 * and rewrites user memory, node runs, results come back through --share, the command's output and
 * exit status come back; on the locked-down host the same object is refused by the verifier.
 * A broken harness FAILS these tests; nothing here skips.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const VM = path.join(ROOT, 'test/vm');

interface Ran {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(cmd: string, args: string[], timeoutMs: number): Ran {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}\nstderr: ${r.stderr ?? ''}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function explain(r: Ran): string {
  return `exit ${r.status}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

function hostLockdown(): string {
  const file = '/sys/kernel/security/lockdown';
  if (!existsSync(file)) spawnSync('mount', ['-t', 'securityfs', 'securityfs', '/sys/kernel/security']);
  return readFileSync(file, 'utf8').trim();
}

// Inside a test VM (a suite run by test/vm/run) this would nest QEMU in QEMU: not run there.
const describeOnHost = process.env.SPANBRIDGE_VM === '1' ? describe.skip : describe;

describeOnHost('VM harness test/vm/run (boots QEMU guests: Debian kernels 6.1 and 6.12)', () => {
  let work: string;
  let obj: string;
  let loader: string;

  beforeAll(() => {
    if (process.getuid?.() !== 0) throw new Error('the VM harness tests need root (QEMU, BPF on the host)');
    work = mkdtempSync(path.join(os.tmpdir(), 'spanbridge-vm-harness-'));
    // Both kernels prepared (downloaded once, then cached) before any test's clock starts.
    const prep = run('bash', [path.join(VM, 'prepare-kernel.sh'), '--kernel', 'all'], 600_000);
    if (prep.status !== 0) throw new Error(`prepare-kernel.sh failed: ${explain(prep)}`);
    const built = run('bash', [path.join(VM, 'build-pwu-fixture.sh'), path.join(work, 'bin')], 120_000);
    if (built.status !== 0) throw new Error(`building the probe_write_user fixture failed: ${explain(built)}`);
    [obj, loader] = built.stdout.trim().split('\n');
  }, 720_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('host: the locked-down kernel refuses helper bpf_probe_write_user#36 for the same object', () => {
    const lockdown = hostLockdown();
    const r = run(loader, [obj], 60_000);
    expect(r.stdout).toContain('before: original-user-buffer-contents');
    if (lockdown.includes('[none]')) {
      // A host without lockdown: then it must work here too.
      expect({ status: r.status, out: r.stdout }).toEqual({ status: 0, out: expect.stringContaining('buffer: REWRITTEN-BY-BPF') });
    } else {
      expect(r.status).toBe(3);
      expect(r.stderr).toContain('bpf_probe_write_user#36');
      expect(r.stdout).not.toContain('REWRITTEN');
    }
  });

  test.each([
    ['6.1', /^6\.1\.0-\d+-amd64$/],
    ['6.12', /^6\.12\.\d+\+deb12-amd64$/],
  ])(
    'boots a %s VM: lockdown none, node, --share, output streams, exit status, bpf_probe_write_user rewrites user memory',
    (kernel, release) => {
      const share = mkdtempSync(path.join(work, `share-${kernel}-`));
      const script = path.join(work, `guest-${kernel}.sh`);
      writeFileSync(
        script,
        [
          'echo "lockdown=$(cat /sys/kernel/security/lockdown)"',
          'echo "kernel=$(uname -r)"',
          'echo "cwd=$(pwd)"',
          'echo "node=$(node -e \'console.log(process.version)\')"',
          'echo "vm=$SPANBRIDGE_VM $SPANBRIDGE_VM_KERNEL"',
          'echo to-stderr >&2',
          'echo "written in the guest $(uname -r)" > "$SPANBRIDGE_VM_SHARE/from-guest.txt"',
          '"$1" "$2"',
          'echo "pwu_exit=$?"',
          'exit 7',
          '',
        ].join('\n'),
      );
      const started = Date.now();
      const r = run(path.join(VM, 'run'), ['--kernel', kernel, '--share', share, '--timeout', '240', '--', 'bash', script, loader, obj], 300_000);
      const seconds = (Date.now() - started) / 1000;
      const lines = r.stdout.split('\n');
      const value = (key: string): string | undefined => lines.find((l) => l.startsWith(`${key}=`))?.slice(key.length + 1);
      try {
        expect(r.status).toBe(7);
        expect(value('lockdown')).toContain('[none]');
        expect(value('kernel')).toMatch(release);
        expect(value('cwd')).toBe(ROOT);
        expect(value('node')).toBe(process.version);
        expect(value('vm')).toBe(`1 ${kernel}`);
        expect(lines).toContain('before: original-user-buffer-contents');
        expect(lines).toContain('loaded: rewrite_buffer');
        expect(lines).toContain('buffer: REWRITTEN-BY-BPF');
        expect(value('pwu_exit')).toBe('0');
        // Only the command's output: no kernel messages on either stream.
        expect(r.stderr.trim()).toBe('to-stderr');
        expect(r.stdout).not.toMatch(/^\[\s*\d+\.\d+\]/m);
        expect(readFileSync(path.join(share, 'from-guest.txt'), 'utf8')).toMatch(new RegExp(`^written in the guest ${release.source.slice(1, -1)}\\n$`));
      } catch (e) {
        throw new Error(`${(e as Error).message}\n\ntest/vm/run --kernel ${kernel} (${seconds.toFixed(1)} s): ${explain(r)}`);
      }
    },
    360_000,
  );

  test('boots a VM that dies without a status (exit 125), and one killed by --timeout (exit 124)', () => {
    const dead = run(path.join(VM, 'run'), ['--kernel', '6.12', '--', 'sh', '-c', 'echo o > /proc/sysrq-trigger; sleep 60'], 180_000);
    expect({ status: dead.status, said: dead.stderr.includes('without reporting') }).toEqual({ status: 125, said: true });
    const slow = run(path.join(VM, 'run'), ['--kernel', '6.12', '--timeout', '3', '--', 'sleep', '600'], 60_000);
    expect({ status: slow.status, said: slow.stderr.includes('timed out after 3s') }).toEqual({ status: 124, said: true });
  }, 300_000);
});
