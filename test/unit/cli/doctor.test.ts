import type { MountOutcome } from '../../../src/bpf/mounts';
import { existsSync } from 'node:fs';
import { buildDoctorReport, formatDoctorReport, nginxReport } from '../../../src/cli/doctor';
import { ALL_BPF_FEATURES, LOCKED_DOWN_HOST } from '../helpers/capabilities';

// Under lockdown the verifier refuses bpf_probe_write_user.
const FEATURES = { ...ALL_BPF_FEATURES, probeWriteUser: false };
const MOUNTS: MountOutcome[] = [
  { fs: { fstype: 'bpf', target: '/sys/fs/bpf', required: true }, status: 'already-mounted' },
  { fs: { fstype: 'securityfs', target: '/sys/kernel/security', required: false }, status: 'failed', reason: 'EPERM' },
];

describe('doctor report', () => {
  it('JSON shape: kernel, privileges, capabilities, bpf features, strategies, ready', () => {
    const r = buildDoctorReport(LOCKED_DOWN_HOST, FEATURES, MOUNTS);
    expect(r.kernel).toEqual({ release: '6.18.0-test', lockdown: 'integrity', lockdownSource: 'securityfs' });
    expect(r.privileges).toEqual({ root: true, capSysAdmin: true, capBpf: true, capPerfmon: true });
    expect(r.capabilities.kprobes).toBe(false);
    expect(r.strategies.map((s) => s.feature)).toEqual([
      'go-spans',
      'any-language-http',
      'go-memory-injection',
      'sk-msg-injection',
      'process-following',
      'black-box-correlation',
      'in-process-linking',
    ]);
    // an optional filesystem failing does not make the agent unready
    expect(r.ready).toBe(true);
    expect(r.mounts[1]).toEqual({ fstype: 'securityfs', target: '/sys/kernel/security', status: 'failed', reason: 'EPERM' });
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  });

  it('not ready without privileges or a required filesystem', () => {
    const r = buildDoctorReport({ ...LOCKED_DOWN_HOST, capBpf: false, capPerfmon: false, capSysAdmin: false, isRoot: false }, FEATURES, [
      { fs: { fstype: 'tracefs', target: '/sys/kernel/tracing', required: true }, status: 'failed', reason: 'mount tracefs: EPERM' },
    ]);
    expect(r.ready).toBe(false);
    expect(r.missing.join('; ')).toMatch(/CAP_BPF.*mount tracefs: EPERM/);
  });

  it('text report lists facts and each strategy with its reason', () => {
    const text = formatDoctorReport(buildDoctorReport(LOCKED_DOWN_HOST, FEATURES, MOUNTS));
    expect(text).toMatch(/lockdown\s+integrity \(securityfs\)/);
    expect(text).toMatch(/kprobes\s+no \(not needed\)/);
    expect(text).toMatch(/UNAVAILABLE\s+traceparent injection into Go requests/);
    expect(text).toMatch(/why: {2}bpf_probe_write_user forbidden/);
    expect(text).toMatch(/Ready: `spanbridge run` can start here\./);
  });

  it('nginx upstream linking: the binary found, linkable or why not; none found', () => {
    const nginx = { path: '/usr/sbin/nginx', version: '1.22.1', linkable: false, detail: 'nginx 1.22.1: symbol ngx_chain_writer missing from .dynsym' };
    const r = buildDoctorReport(LOCKED_DOWN_HOST, FEATURES, MOUNTS, undefined, undefined, nginx);
    expect(r.nginx).toEqual(nginx);
    expect(formatDoctorReport(r)).toContain('nginx upstream linking: /usr/sbin/nginx (nginx 1.22.1): NOT linkable — nginx 1.22.1: symbol ngx_chain_writer missing from .dynsym');
    expect(formatDoctorReport(buildDoctorReport(LOCKED_DOWN_HOST, FEATURES, MOUNTS))).toContain('nginx upstream linking: no nginx binary found');
    expect(nginxReport(true, '/nonexistent-dir')).toEqual(existsSync('/usr/sbin/nginx') ? expect.objectContaining({ path: '/usr/sbin/nginx' }) : null);
    const here = nginxReport(false, '');
    if (here) expect(here.linkable).toBe(false);
  });

  it('says for each CPython found whether asyncio can be linked, and why not', () => {
    const python = [
      { path: '/usr/bin/python3.11', version: '3.11', linkable: false, detail: 'no symbols: /usr/lib/python3.11/lib-dynload/_asyncio.cpython-311-x86_64-linux-gnu.so is stripped (.symtab removed)' },
      { path: '/opt/py/bin/python3.13', version: '3.13', linkable: true, detail: 'uprobes at Context.run (/opt/py/lib/libpython3.13.so.1.0), Task.__init__ and Future.set_result (/opt/py/lib/python3.13/lib-dynload/_asyncio.cpython-313-x86_64-linux-gnu.so)' },
    ];
    const r = buildDoctorReport(LOCKED_DOWN_HOST, FEATURES, MOUNTS, undefined, undefined, null, python);
    expect(r.python).toEqual(python);
    const text = formatDoctorReport(r);
    expect(text).toContain('/usr/bin/python3.11 (CPython 3.11): NOT linkable — no symbols: /usr/lib/python3.11/lib-dynload/_asyncio.cpython-311-x86_64-linux-gnu.so is stripped');
    expect(text).toContain('/opt/py/bin/python3.13 (CPython 3.13): linkable — uprobes at Context.run');
    expect(formatDoctorReport(buildDoctorReport(LOCKED_DOWN_HOST, FEATURES, MOUNTS))).toContain('Python asyncio linking (CPython interpreters found here): none found');
  });

  it('in-process linking names nginx when uprobes and the syscall tracer are there', () => {
    const r = buildDoctorReport(LOCKED_DOWN_HOST, FEATURES, MOUNTS);
    expect(r.strategies.find((s) => s.feature === 'in-process-linking')?.strategy).toMatch(/nginx reverse proxy .*uprobe at ngx_chain_writer/);
    const noUprobes = buildDoctorReport({ ...LOCKED_DOWN_HOST, uprobes: false }, FEATURES, MOUNTS);
    expect(noUprobes.strategies.find((s) => s.feature === 'in-process-linking')?.strategy).toMatch(/not linked: .*nginx \(needs uprobes\)/);
  });

  it('in-process linking names Python asyncio, and why it is not linked without uprobes', () => {
    const r = buildDoctorReport(LOCKED_DOWN_HOST, FEATURES, MOUNTS);
    expect(r.strategies.find((s) => s.feature === 'in-process-linking')?.strategy).toMatch(/Python asyncio \(CPython 3\.10-3\.13.*\.symtab.*stripped builds .*not linked, no symbols/);
    const noUprobes = buildDoctorReport({ ...LOCKED_DOWN_HOST, uprobes: false }, FEATURES, MOUNTS);
    expect(noUprobes.strategies.find((s) => s.feature === 'in-process-linking')?.strategy).toMatch(/not linked: .*Python asyncio \(needs uprobes\)/);
  });
});
