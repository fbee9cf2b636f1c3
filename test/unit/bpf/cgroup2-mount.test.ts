import { CGROUP2_FALLBACK_TARGET, ensureCgroup2, type KernelFs } from '../../../src/bpf/mounts';

const HYBRID =
  'tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n';
const V1_ONLY = 'tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n';

describe('ensureCgroup2', () => {
  it('uses an existing cgroup2 mount (hybrid systems) and mounts nothing', () => {
    const mount = jest.fn();
    expect(ensureCgroup2({ readMounts: () => HYBRID, mount })).toEqual({ status: 'already-mounted', path: '/sys/fs/cgroup/unified' });
    expect(mount).not.toHaveBeenCalled();
  });

  it('mounts cgroup2 at the fallback directory when none is mounted', () => {
    let table = V1_ONLY;
    const dirs: string[] = [];
    const mounted: KernelFs[] = [];
    const out = ensureCgroup2({
      readMounts: () => table,
      mkdir: (d) => dirs.push(d),
      mount: (fs) => {
        mounted.push(fs);
        table += `cgroup2 ${fs.target} cgroup2 rw 0 0\n`;
      },
    });
    expect(out).toEqual({ status: 'mounted', path: CGROUP2_FALLBACK_TARGET });
    expect(dirs).toEqual([CGROUP2_FALLBACK_TARGET]);
    expect(mounted.map((f) => [f.fstype, f.target])).toEqual([['cgroup2', CGROUP2_FALLBACK_TARGET]]);
  });

  it('reports a failed mount instead of throwing', () => {
    const out = ensureCgroup2({
      readMounts: () => V1_ONLY,
      mkdir: () => undefined,
      mount: () => {
        throw new Error('mount: permission denied');
      },
    }, '/tmp/cg');
    expect(out).toEqual({ status: 'failed', reason: 'mount -t cgroup2 /tmp/cg: mount: permission denied' });
  });

  it('a mount that does not show up in the table is a failure', () => {
    const out = ensureCgroup2({ readMounts: () => V1_ONLY, mkdir: () => undefined, mount: () => undefined }, '/tmp/cg');
    expect(out.status).toBe('failed');
  });
});
