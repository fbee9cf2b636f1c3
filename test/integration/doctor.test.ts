/**
 * `spanbridge doctor --json` tells the truth about the kernel it runs on: every fact is checked
 * against the files it comes from, read independently here.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { release } from 'node:os';
import { VENV_BIN } from './helpers/frameworks';
import { AGENT_CLI } from './helpers/processes';

function doctor(...args: string[]): string {
  return execFileSync(process.execPath, [AGENT_CLI, 'doctor', ...args], { encoding: 'utf8', timeout: 60_000 });
}

describe('spanbridge doctor on this kernel', () => {
  const report = JSON.parse(doctor('--json'));

  it('kernel release, lockdown, kprobes, uprobes, BTF, cgroup v2 match the kernel', () => {
    expect(report.kernel.release).toBe(release());
    const lockdownFile = '/sys/kernel/security/lockdown';
    if (existsSync(lockdownFile)) {
      const mode = /\[(\w+)\]/.exec(readFileSync(lockdownFile, 'utf8'))![1];
      expect(report.kernel.lockdown).toBe(mode);
      expect(report.kernel.lockdownSource).toBe('securityfs');
    } else {
      expect(report.kernel.lockdown).toBe('none');
    }
    expect(report.capabilities.kprobes).toBe(existsSync('/sys/bus/event_source/devices/kprobe'));
    expect(report.capabilities.uprobes).toBe(existsSync('/sys/bus/event_source/devices/uprobe'));
    expect(report.capabilities.btf).toBe(existsSync('/sys/kernel/btf/vmlinux'));
    // doctor mounts tracefs where it is missing, so it exists by now
    expect(report.capabilities.syscallTracepoints).toBe(existsSync('/sys/kernel/tracing/events/syscalls'));
    const cgroup2 = readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .find((l) => l.split(' ')[2] === 'cgroup2');
    expect(report.capabilities.cgroup2Mount).toBe(cgroup2 ? cgroup2.split(' ')[1] : null);
    expect(report.privileges.root).toBe(process.getuid?.() === 0);
  });

  it("nginx upstream linking: Debian's nginx (make setup) is found and linkable, its version as it prints it", () => {
    const printed = execFileSync('/usr/sbin/nginx', ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const version = /nginx\/(\S+)/.exec(printed || execFileSync('sh', ['-c', '/usr/sbin/nginx -v 2>&1'], { encoding: 'utf8' }))![1];
    expect(report.nginx).toMatchObject({ version, linkable: report.capabilities.uprobes });
    expect(report.nginx.detail).toMatch(report.capabilities.uprobes ? /uprobe at ngx_chain_writer \(file offset 0x[0-9a-f]+\)/ : /no uprobes/);
    expect(doctor()).toContain(`(nginx ${version}): ${report.capabilities.uprobes ? 'linkable' : 'NOT linkable'}`);
  });

  it("Python asyncio linking: Debian's stripped python3 is not linkable (no symbols), the frameworks' pyenv CPython is", () => {
    // the frameworks' venv first on PATH (make setup): its python3 is pyenv's 3.11.7
    const env = { ...process.env, PATH: `${VENV_BIN}:/usr/bin:/bin` };
    const r = JSON.parse(execFileSync(process.execPath, [AGENT_CLI, 'doctor', '--json'], { encoding: 'utf8', timeout: 60_000, env }));
    const byPath = (p: string): { linkable: boolean; detail: string; version: string } | undefined => r.python.find((x: { path: string }) => x.path === p);
    const debian = byPath(realpathSync('/usr/bin/python3'));
    expect(debian).toMatchObject({ linkable: false });
    expect(debian!.detail).toMatch(/^no symbols: .*_asyncio\.cpython-3\d+-x86_64-linux-gnu\.so is stripped/);
    const pyenv = byPath(realpathSync(`${VENV_BIN}/python3`));
    expect(pyenv).toMatchObject({ version: '3.11', linkable: r.capabilities.uprobes });
    if (r.capabilities.uprobes) expect(pyenv!.detail).toMatch(/uprobes at Context\.run \(.*libpython3\.11\.so\.1\.0\), Task\.__init__ and Future\.set_result/);
  });

  it('bpf_probe_write_user: the verifier agrees with lockdown', () => {
    // Not probed (libbpf's probe counts the lockdown refusal as a yes): decided from lockdown.
    if (report.bpfFeatures.probeWriteUser === null) return; // unknown: nothing to compare
    expect(report.bpfFeatures.probeWriteUser).toBe(report.kernel.lockdown === 'none');
    const inj = report.strategies.find((s: { feature: string }) => s.feature === 'go-memory-injection');
    expect(inj.status).toBe(report.kernel.lockdown === 'none' && report.privileges.capSysAdmin ? 'on' : 'unavailable');
  });

  it('a strategy for every feature, with a reason', () => {
    expect(report.strategies).toHaveLength(7);
    // which runtimes get in-process parents, and that event loops do not (docs/node-async-linking.md)
    const linking = report.strategies.find((s: { feature: string }) => s.feature === 'in-process-linking');
    expect(linking.strategy).toMatch(/Node\.js \(versions whose structure offsets are measured/);
    for (const s of report.strategies) {
      expect(['on', 'fallback', 'off', 'unavailable']).toContain(s.status);
      expect(s.why.length).toBeGreaterThan(0);
    }
    expect(typeof report.ready).toBe('boolean');
  });

  it('the text report says the same', () => {
    const text = doctor();
    expect(text).toContain(`kernel `);
    expect(text).toContain(report.kernel.release);
    expect(text).toMatch(new RegExp(`lockdown\\s+${report.kernel.lockdown}`));
    expect(text).toMatch(/Strategies here/);
  });

  it('help and bad options', () => {
    expect(doctor('--help')).toMatch(/Usage: spanbridge doctor \[--json\]/);
    expect(() => execFileSync(process.execPath, [AGENT_CLI, 'doctor', '--yaml'], { stdio: 'pipe' })).toThrow(/unknown option '--yaml'/);
  });
});
