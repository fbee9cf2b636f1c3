/**
 * Selection logic for containers and self-exclusion, without privileges: container ids from
 * real-looking /proc/<pid>/cgroup texts, --container matching and parsing, and the processes the
 * agent never traces (itself, other agents, the Collector on the host or in a podman container),
 * the latter against a fake /proc tree (setProcRoot, the `proc_root` setting).
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { containerIdFromCgroupPath, containerMatches, isContainerIdPrefix, parseContainerId } from '../../../src/discovery/container';
import { conmonContainerId, isAgentCommand, localEndpointPort, SelfExclusion } from '../../../src/discovery/self-exclusion';
import { isEmptySelection, matchProcess } from '../../../src/discovery/selectors';
import { parseRunArgs } from '../../../src/cli/args';
import { contentKey, readProcessInfo, setProcRoot } from '../../../src/discovery/process-info';
import { processResource } from '../../../src/spans/resource';

const ID = 'd36bd66bf6303bc273aa41d51a62c1623a3d7859210c624ec7a6b6e734341e76';
const ID2 = '4f8c1b0e9a7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928170f6e5d4c';

describe('container id from /proc/<pid>/cgroup', () => {
  it.each([
    // podman, cgroupfs manager, cgroup v1 hybrid host (seen on our CI machines)
    ['podman cgroupfs v1', `9:name=systemd:/libpod_parent/libpod-${ID}\n8:pids:/libpod_parent/libpod-${ID}\n7:blkio:/libpod_parent/libpod-${ID}\n0::/\n`, ID],
    ['podman cgroupfs, container running systemd', `0::/libpod_parent/libpod-${ID}/container\n`, ID],
    ['podman systemd v2', `0::/machine.slice/libpod-${ID}.scope\n`, ID],
    ['podman rootless v2', `0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${ID}.scope/container\n`, ID],
    ['docker cgroupfs v1', `12:memory:/docker/${ID}\n11:cpu,cpuacct:/docker/${ID}\n1:name=systemd:/docker/${ID}\n`, ID],
    ['docker systemd v2', `0::/system.slice/docker-${ID}.scope\n`, ID],
    ['containerd k8s cgroupfs', `0::/kubepods/burstable/pod0f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2910/${ID}\n`, ID],
    ['containerd k8s systemd', `0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0f6e5d4c_3b2a_4190_8f7e_6d5c4b3a2910.slice/cri-containerd-${ID}.scope\n`, ID],
    ['cri-o', `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/crio-${ID}.scope\n`, ID],
    ['nerdctl (namespace/id)', `0::/default/${ID}\n`, ID],
    ['docker in docker: the innermost container', `0::/docker/${ID2}/docker/${ID}\n`, ID],
  ])('%s', (_name, text, want) => expect(parseContainerId(text)).toBe(want));

  it.each([
    ['host process, v2', '0::/user.slice/user-0.slice/session-3.scope\n'],
    ['host process, v1 hybrid', '9:name=systemd:/\n8:pids:/\n0::/\n'],
    ['podman monitor (conmon) is not in the container', `0::/libpod_parent/conmon\n`],
    ['podman systemd conmon scope', `0::/machine.slice/libpod-conmon-${ID}.scope\n`],
    ['cri-o conmon', `0::/kubepods.slice/crio-conmon-${ID}.scope\n`],
    ['63 hex digits is no id', `0::/docker/${ID.slice(1)}\n`],
    ['uppercase is no id', `0::/docker/${ID.toUpperCase()}\n`],
    ['empty', ''],
    ['garbage', 'no colons here\n::\n'],
  ])('no container: %s', (_name, text) => expect(parseContainerId(text)).toBeUndefined());

  it('reads one path', () => {
    expect(containerIdFromCgroupPath(`/system.slice/docker-${ID}.scope`)).toBe(ID);
    expect(containerIdFromCgroupPath('/system.slice/sshd.service')).toBeUndefined();
  });
});

describe('--container selection', () => {
  const sel = { pids: [], exeGlobs: [], openPorts: [], containerIds: ['d36bd66b'] };

  it('matches every process of a container by id prefix, and nothing outside containers', () => {
    expect(matchProcess(sel, { pid: 10, exePath: '/app/goserver', containerId: ID }, new Set())).toBe('container d36bd66b');
    expect(matchProcess(sel, { pid: 11, exePath: '/app/goserver', containerId: ID2 }, new Set())).toBeNull();
    expect(matchProcess(sel, { pid: 12, exePath: '/app/goserver' }, new Set())).toBeNull();
    expect(containerMatches(ID, ID)).toBe(true);
    expect(isEmptySelection(sel)).toBe(false);
  });

  it('--exe matches the path as the containerised process sees it', () => {
    const exeSel = { pids: [], exeGlobs: ['/app/*'], openPorts: [] };
    expect(matchProcess(exeSel, { pid: 10, exePath: '/app/goserver', containerId: ID }, new Set())).toBe('exe /app/*');
  });

  it('parses --container (repeatable, case-insensitive hex) and rejects other values', () => {
    const opts = parseRunArgs(['--container', 'D36BD66B', '--container', ID2], {});
    if (opts === 'help') throw new Error('help');
    expect(opts.selection.containerIds).toEqual(['d36bd66b', ID2]);
    expect(() => parseRunArgs(['--container', 'my-container'], {})).toThrow(/--container: 'my-container' is not a container id/);
    expect(() => parseRunArgs(['--container', 'a'.repeat(65)], {})).toThrow(/--container/);
    expect(isContainerIdPrefix('')).toBe(false);
  });

  it('puts container.id on the resource and keeps the host pid', () => {
    const r = processResource({
      pid: 4242, exePath: '/app/goserver', exeOpenPath: '/proc/4242/exe', exeName: 'goserver', exeKey: '1:2',
      cmdline: ['/app/goserver'], env: {}, startTicks: 1, containerId: ID,
    });
    expect(r.attributes['container.id']).toBe(ID);
    expect(r.attributes['process.pid']).toBe(4242);
    expect(r.attributes['process.executable.path']).toBe('/app/goserver');
  });
});

describe('self-exclusion: pure parts', () => {
  const own = new Set(['10.0.0.5']);
  it.each([
    ['http://localhost:4318', 4318],
    ['http://127.0.0.1:14318/v1/traces', 14318],
    ['http://[::1]:4317', 4317],
    ['http://10.0.0.5:4318', 4318],
    ['http://localhost', 80],
    ['https://localhost/v1/traces', 443],
    ['http://collector.example:4318', undefined],
    ['http://10.0.0.6:4318', undefined],
    ['not a url', undefined],
  ])('local endpoint port of %p -> %p', (url, want) => expect(localEndpointPort(url, own)).toBe(want));

  it('recognises an agent: node running the entry script', () => {
    const entry = '/work/main/dist/src/cli/main.js';
    expect(isAgentCommand(['/usr/bin/node', entry, 'run', '--exe', 'x'], '/', entry)).toBe(true);
    expect(isAgentCommand(['node', 'dist/src/cli/main.js', 'run'], '/work/main', entry)).toBe(true);
    expect(isAgentCommand(['node', '--enable-source-maps', '/opt/spanbridge/dist/src/cli/main.js'], '/', entry)).toBe(true);
    expect(isAgentCommand(['node', '/usr/local/bin/spanbridge', 'run'], '/', entry)).toBe(true);
    expect(isAgentCommand(['node', '/srv/app/server.js'], '/', entry)).toBe(false);
    expect(isAgentCommand(['/app/goserver', entry], '/', entry)).toBe(false);
    expect(isAgentCommand(['node'], '/', entry)).toBe(false);
  });

  it('reads the container id a conmon watches', () => {
    expect(conmonContainerId(['/usr/bin/conmon', '--api-version', '1', '-c', ID, '-u', ID])).toBe(ID);
    expect(conmonContainerId(['/usr/bin/conmon', `--cid=${ID}`])).toBe(ID);
    expect(conmonContainerId(['/usr/bin/other', '-c', ID])).toBeUndefined();
    expect(conmonContainerId(['/usr/bin/conmon', '-c', 'short'])).toBeUndefined();
  });
});

describe('self-exclusion on a fake /proc', () => {
  let root: string;
  const HOST_NET = 'net:[4026531840]';
  const CTR_NET = 'net:[4026532999]';

  /** A fake /proc/<pid> with what discovery reads. */
  function fakeProc(pid: number, o: { ppid: number; cmdline: string[]; net: string; cgroup?: string; listen?: number[] }): void {
    const d = path.join(root, String(pid));
    mkdirSync(path.join(d, 'fd'), { recursive: true });
    mkdirSync(path.join(d, 'ns'), { recursive: true });
    mkdirSync(path.join(d, 'net'), { recursive: true });
    writeFileSync(path.join(d, 'stat'), `${pid} (${path.basename(o.cmdline[0])}) S ${o.ppid} 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0\n`);
    writeFileSync(path.join(d, 'cmdline'), `${o.cmdline.join('\0')}\0`);
    writeFileSync(path.join(d, 'environ'), '');
    writeFileSync(path.join(d, 'cgroup'), o.cgroup ?? '0::/\n');
    // exe must lead to a real file (discovery stats it): a stand-in named like the binary.
    const exe = path.join(root, 'bin', String(pid), path.basename(o.cmdline[0]));
    mkdirSync(path.dirname(exe), { recursive: true });
    writeFileSync(exe, '');
    symlinkSync(exe, path.join(d, 'exe'));
    symlinkSync('/', path.join(d, 'cwd'));
    symlinkSync(o.net, path.join(d, 'ns', 'net'));
    const lines = ['  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode'];
    (o.listen ?? []).forEach((port, i) => {
      const inode = String(pid * 100 + i);
      lines.push(`   ${i}: 0100007F:${port.toString(16).toUpperCase().padStart(4, '0')} 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 ${inode} 1 0000000000000000 100 0 0 10 0`);
      symlinkSync(`socket:[${inode}]`, path.join(d, 'fd', String(3 + i)));
    });
    writeFileSync(path.join(d, 'net', 'tcp'), `${lines.join('\n')}\n`);
  }

  beforeAll(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'spanbridge-fakeproc-'));
    setProcRoot(root);
    fakeProc(100, { ppid: 1, cmdline: ['/usr/bin/node', '/opt/sb/dist/src/cli/main.js', 'run'], net: HOST_NET }); // this agent
    fakeProc(101, { ppid: 1, cmdline: ['/usr/bin/node', '/opt/sb/dist/src/cli/main.js', 'run'], net: HOST_NET }); // another agent
    fakeProc(200, { ppid: 1, cmdline: ['/opt/otelcol/otelcol', '--config', 'c.yaml'], net: HOST_NET, listen: [4318, 4317] }); // Collector on the host
    fakeProc(201, { ppid: 1, cmdline: ['/usr/local/bin/goserver'], net: HOST_NET, listen: [8080] }); // a service
    // A Collector in a podman container: conmon publishes port 14318; the collector listens on 4318 in its netns.
    fakeProc(300, { ppid: 1, cmdline: ['/usr/bin/conmon', '--api-version', '1', '-c', ID, '-u', ID], net: HOST_NET, listen: [14318] });
    fakeProc(301, { ppid: 300, cmdline: ['/otelcol'], net: CTR_NET, cgroup: `0::/libpod_parent/libpod-${ID}\n`, listen: [4318] });
    // A service in another container, whose conmon publishes 18080.
    fakeProc(400, { ppid: 1, cmdline: ['/usr/bin/conmon', '-c', ID2], net: HOST_NET, listen: [18080] });
    fakeProc(401, { ppid: 400, cmdline: ['/app/goserver'], net: CTR_NET, cgroup: `0::/libpod_parent/libpod-${ID2}\n`, listen: [8080] });
  });

  afterAll(() => {
    setProcRoot(undefined);
    rmSync(root, { recursive: true, force: true });
  });

  const reasonFor = (ex: SelfExclusion, pid: number): string | null => {
    const proc = readProcessInfo(pid);
    if (!proc) throw new Error(`fake pid ${pid} unreadable`);
    return ex.reason(proc)?.why ?? null;
  };

  it('excludes itself, other agents and the Collector on the host; traces the rest', () => {
    const ex = new SelfExclusion({ selfPid: 100, agentEntry: '/opt/sb/dist/src/cli/main.js', exportEndpoints: ['http://localhost:4318/v1/traces'] });
    expect(reasonFor(ex, 100)).toMatch(/this agent/);
    expect(reasonFor(ex, 101)).toMatch(/a spanbridge agent/);
    expect(reasonFor(ex, 200)).toMatch(/the Collector this agent exports to \(listens on port 4318\)/);
    expect(reasonFor(ex, 201)).toBeNull();
    // The kind labels spanbridge_processes_excluded_total.
    const kindOf = (pid: number): string | undefined => ex.reason(readProcessInfo(pid)!)?.kind;
    expect([kindOf(100), kindOf(101), kindOf(200)]).toEqual(['self', 'agent', 'collector']);
    // In another netns, listening on 4318 inside the container says nothing about the host port.
    expect(reasonFor(ex, 301)).toBeNull();
  });

  it('excludes a containerised Collector through the conmon that publishes its port', () => {
    const ex = new SelfExclusion({ selfPid: 100, exportEndpoints: ['http://127.0.0.1:14318'] });
    expect(readProcessInfo(301)?.containerId).toBe(ID);
    expect(reasonFor(ex, 301)).toMatch(/its container d36bd66bf630 publishes port 14318/);
    expect(ex.reason(readProcessInfo(301)!)?.kind).toBe('collector');
    expect(reasonFor(ex, 401)).toBeNull();
    expect(reasonFor(ex, 200)).toBeNull();
  });

  it('excludes nothing for the Collector when the endpoint is remote', () => {
    const ex = new SelfExclusion({ selfPid: 100, exportEndpoints: ['http://collector.example:4318'] });
    expect(ex.ports).toEqual([]);
    expect(reasonFor(ex, 200)).toBeNull();
    expect(reasonFor(ex, 301)).toBeNull();
  });
});

describe('content key of a containerised executable', () => {
  it('is the same for identical files on different paths and differs when the head or size differs', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'spanbridge-contentkey-'));
    try {
      const big = Buffer.alloc(300 * 1024, 7);
      const a = path.join(dir, 'a');
      const b = path.join(dir, 'b');
      const c = path.join(dir, 'c');
      const d = path.join(dir, 'd');
      writeFileSync(a, big);
      writeFileSync(b, big);
      const changedHead = Buffer.from(big);
      changedHead[100] = 8;
      writeFileSync(c, changedHead);
      writeFileSync(d, big.subarray(0, big.length - 1));
      const key = (f: string): string => contentKey(f, { size: big.length - (f === d ? 1 : 0) });
      expect(key(a)).toBe(key(b));
      expect(key(a)).toMatch(/^content:307200:[0-9a-f]{32}$/);
      expect(key(c)).not.toBe(key(a));
      expect(key(d)).not.toBe(key(a));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
