import { describeCapabilities, findMount, missingEssentials, parseCapEff, parseLockdown, probeCapabilities, type ProbeFs } from '../../../src/capabilities/probe';

function fakeFs(files: Record<string, string | Error>): ProbeFs {
  return {
    exists: (p) => p in files,
    read: (p) => {
      const v = files[p];
      if (v === undefined) throw new Error(`ENOENT ${p}`);
      if (v instanceof Error) throw v;
      return v;
    },
  };
}

const ROOT_STATUS = 'Name:\tnode\nCapEff:\t000001ffffffffff\n';
const MOUNTS = 'sysfs /sys sysfs rw 0 0\ntracefs /sys/kernel/tracing tracefs rw 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n';

describe('capability probe', () => {
  it('parses lockdown and capabilities', () => {
    expect(parseLockdown('none [integrity] confidentiality')).toBe('integrity');
    expect(parseLockdown('[none] integrity confidentiality')).toBe('none');
    expect(parseLockdown('garbage')).toBeNull();
    expect(parseCapEff(ROOT_STATUS) & (1n << 39n)).not.toBe(0n);
    expect(findMount(MOUNTS, 'cgroup2')).toBe('/sys/fs/cgroup/unified');
  });

  it('locked-down kernel without kprobes (like our hosts): probe_write_user forbidden', () => {
    const c = probeCapabilities(
      fakeFs({
        '/proc/self/status': ROOT_STATUS,
        '/proc/self/mounts': MOUNTS,
        '/sys/kernel/security/lockdown': 'none [integrity] confidentiality\n',
        '/sys/kernel/btf/vmlinux': '',
        '/sys/bus/event_source/devices/uprobe': '',
        '/sys/kernel/tracing/events/syscalls': '',
      }),
    );
    expect(c).toMatchObject({ lockdown: 'integrity', lockdownSource: 'securityfs', kprobes: false, uprobes: true, btf: true, probeWriteUser: false, syscallTracepoints: true });
    expect(missingEssentials(c)).toEqual([]);
    expect(describeCapabilities(c).join('\n')).toMatch(/bpf_probe_write_user: forbidden/);
  });

  it('no lockdown file means none; unreadable means integrity (as peers do)', () => {
    const base = { '/proc/self/status': ROOT_STATUS, '/proc/self/mounts': MOUNTS };
    expect(probeCapabilities(fakeFs(base))).toMatchObject({ lockdown: 'none', probeWriteUser: true });
    expect(probeCapabilities(fakeFs({ ...base, '/sys/kernel/security/lockdown': new Error('EACCES') }))).toMatchObject({
      lockdown: 'integrity',
      lockdownSource: 'assumed-integrity (unreadable)',
      probeWriteUser: false,
    });
  });

  it('names what is missing: privileges and BTF', () => {
    const c = probeCapabilities(fakeFs({ '/proc/self/status': 'CapEff:\t0000000000000000\n', '/proc/self/mounts': '' }));
    expect(missingEssentials(c)).toEqual([
      'privileges: CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN); run as root',
      'kernel BTF (/sys/kernel/btf/vmlinux; CONFIG_DEBUG_INFO_BTF=y) for CO-RE',
    ]);
  });
});
