import { ensureKernelFilesystems, missingRequiredFilesystems, parseMounts, type KernelFs } from '../../../src/bpf/mounts';

const BASE = 'sysfs /sys sysfs rw 0 0\nproc /proc proc rw 0 0\n';

describe('ensureKernelFilesystems', () => {
  it('mounts only what is missing and reports each outcome', () => {
    let table = BASE + 'bpf /sys/fs/bpf bpf rw 0 0\n';
    const mounted: string[] = [];
    const out = ensureKernelFilesystems({
      readMounts: () => table,
      mount: (fs: KernelFs) => {
        if (fs.fstype === 'securityfs') throw new Error('mount: permission denied');
        mounted.push(fs.fstype);
        table += `${fs.fstype} ${fs.target} ${fs.fstype} rw 0 0\n`;
      },
    });
    expect(mounted).toEqual(['tracefs']);
    expect(out.map((o) => [o.fs.fstype, o.status])).toEqual([
      ['bpf', 'already-mounted'],
      ['tracefs', 'mounted'],
      ['securityfs', 'failed'],
    ]);
    const failed = out[2];
    expect(failed && failed.status === 'failed' ? failed.reason : '').toBe(
      'mount -t securityfs /sys/kernel/security: mount: permission denied',
    );
    expect(missingRequiredFilesystems(out)).toEqual([]); // securityfs is optional
  });

  it('reports a required filesystem that stays missing', () => {
    const out = ensureKernelFilesystems({ readMounts: () => BASE, mount: () => undefined });
    expect(missingRequiredFilesystems(out).map((o) => o.fs.fstype)).toEqual(['bpf', 'tracefs']);
  });

  it('a bpffs the agent mounts itself is root-only (mode=0700); tracefs gets no options', () => {
    const asked: KernelFs[] = [];
    ensureKernelFilesystems({ readMounts: () => BASE, mount: (fs) => void asked.push(fs) });
    expect(asked.find((f) => f.fstype === 'bpf')?.options).toBe('mode=0700');
    expect(asked.find((f) => f.fstype === 'tracefs')?.options).toBeUndefined();
  });

  it('decodes octal escapes in mount points', () => {
    expect(parseMounts('none /mnt/a\\040b tmpfs rw 0 0\n')).toEqual([{ target: '/mnt/a b', fstype: 'tmpfs' }]);
  });
});
