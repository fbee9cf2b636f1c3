/**
 * nginx upstream linking with the fake BPF backend: the object is loaded at the first nginx process
 * with the layout's offsets in .rodata, one uprobe per process at ngx_chain_writer, the syscall
 * tracer's mode says "nginx link" (never thread linking), a refused binary leaves the process
 * traced but unlinked (and its unlinked client spans counted as runtime nginx), counters by reason.
 */
import { SelfMetrics } from '../../../src/metrics/counters';
import { clientSpansUnlinked } from '../../../src/metrics/catalogue';
import { FixedClock } from '../../../src/time/clock';
import { NGINX_LAYOUTS, type NginxLinkTarget } from '../../../src/discovery/nginx';
import { SysHttpStage } from '../../../src/tracers/sys-http-stage';
import { NGINX_LINK_OBJECT, NGINX_LINK_REASON } from '../../../src/events/structs.generated';
import { FakeBpfBackend } from '../../fakes/fake-bpf';

const SYS = '/x/sys_http.bpf.o';
const NGX = '/x/nginx_link.bpf.o';
const key = (p: number): Buffer => Buffer.from(new Uint32Array([p]).buffer);
const linkable: NginxLinkTarget = { ok: true, version: '1.22.1', binaryPath: '/usr/sbin/nginx', offset: 0x2a700, layout: NGINX_LAYOUTS[0].layout };

async function stageWith(backend: FakeBpfBackend, inspect: (pid: number) => NginxLinkTarget, metrics = new SelfMetrics()): Promise<SysHttpStage> {
  const stage = new SysHttpStage({
    backend,
    objectPath: SYS,
    nginxObjectPath: NGX,
    inspectNginx: inspect,
    clock: new FixedClock(10n),
    metrics,
    resourceOf: () => ({ attributes: { 'service.name': 'nginx' } }),
    deliver: () => undefined,
  });
  await stage.start();
  return stage;
}

describe('nginx upstream linking', () => {
  it('loads the object at the first nginx process only, attaches one uprobe per process and sets the nginx mode', async () => {
    const backend = new FakeBpfBackend();
    const stage = await stageWith(backend, () => linkable);
    stage.attach({ pid: 5, exeName: 'python3' });
    expect(backend.objects.map((o) => o.path)).toEqual([SYS]);
    expect(stage.attach({ pid: 7, exeName: 'nginx' })).toMatch(/nginx upstream linking on \(uprobe ngx_chain_writer\+0 \(nginx 1\.22\.1\)\)/);
    expect(stage.attach({ pid: 8, exeName: 'nginx' })).toMatch(/nginx upstream linking on/);
    expect(backend.objects.map((o) => o.path)).toEqual([SYS, NGX]);
    expect(backend.rodataOf(NGX)).toMatchObject({ writer_connection_off: 16, connection_data_off: 0, connection_fd_off: 24, request_signature_off: 0, request_connection_off: 8 });
    const uprobes = backend.activeLinks().filter((l) => l.program === NGINX_LINK_OBJECT.programs.nginx_chain_writer);
    expect(uprobes.map((l) => l.target)).toEqual([
      { kind: 'uprobe', binaryPath: '/proc/7/exe', offset: 0x2a700, pid: 7 },
      { kind: 'uprobe', binaryPath: '/proc/8/exe', offset: 0x2a700, pid: 8 },
    ]);
    const modes = backend.objects[0].map('traced_tgids');
    expect(modes.lookup(key(7))?.readUInt32LE(0)).toBe(1 | 32); // SYS_MODE_TRACE | SYS_MODE_NGINX_LINK, no thread linking
    expect(modes.lookup(key(5))?.readUInt32LE(0)).toBe(1 | 2);
    stage.detach(7);
    expect(backend.activeLinks().filter((l) => l.program === NGINX_LINK_OBJECT.programs.nginx_chain_writer).map((l) => l.target)).toEqual([
      { kind: 'uprobe', binaryPath: '/proc/8/exe', offset: 0x2a700, pid: 8 },
    ]);
    expect(stage.tracers.map((t) => t.name)).toEqual(['sys_http', 'nginx_link']);
  });

  it('leaves a refused nginx traced without any linking (never by thread) and counts its unlinked client spans', async () => {
    const backend = new FakeBpfBackend();
    const metrics = new SelfMetrics();
    const stage = await stageWith(backend, () => ({ ok: false, version: '1.22.1', reason: 'nginx 1.22.1: symbol ngx_chain_writer missing from .dynsym' }), metrics);
    expect(stage.attach({ pid: 7, exeName: 'nginx' })).toMatch(/nginx upstream linking off: nginx 1\.22\.1: symbol ngx_chain_writer missing/);
    expect(backend.objects.map((o) => o.path)).toEqual([SYS]);
    expect(backend.objects[0].map('traced_tgids').lookup(key(7))?.readUInt32LE(0)).toBe(1);
    expect(stage.tracers.map((t) => t.name)).toEqual(['sys_http']);
    expect(clientSpansUnlinked.total(metrics)).toBe(0);
  });

  it('never links nginx by thread, also without uprobes (no nginx object)', async () => {
    const backend = new FakeBpfBackend();
    const metrics = new SelfMetrics();
    const stage = new SysHttpStage({ backend, objectPath: SYS, clock: new FixedClock(10n), metrics, resourceOf: () => undefined, deliver: () => undefined });
    await stage.start();
    expect(stage.attach({ pid: 7, exeName: 'nginx' })).toMatch(/nginx upstream linking off: no uprobes here/);
    expect(backend.objects[0].map('traced_tgids').lookup(key(7))?.readUInt32LE(0)).toBe(1);
  });

  it('says why when the uprobe cannot be attached', async () => {
    const backend = new FakeBpfBackend().failAttach(NGINX_LINK_OBJECT.programs.nginx_chain_writer, 1);
    const stage = await stageWith(backend, () => linkable);
    expect(stage.attach({ pid: 7, exeName: 'nginx' })).toMatch(/nginx upstream linking off: uprobe not attached: .*Operation not permitted/);
    expect(backend.objects[0].map('traced_tgids').lookup(key(7))?.readUInt32LE(0)).toBe(1);
  });

  it('reports its uprobe counters by reason', async () => {
    const names = { programs: Object.keys(NGINX_LINK_OBJECT.programs), rodata: Object.keys(NGINX_LINK_OBJECT.rodata) };
    const backend = new FakeBpfBackend({ possibleCpus: 2, objects: { [NGX]: { ...names, maps: { nginx_link_counts: { keySize: 4, valueSize: 8, kind: 'per-cpu' } } } } });
    const stage = await stageWith(backend, () => linkable);
    stage.attach({ pid: 7, exeName: 'nginx' });
    const nginx = stage.tracers[1];
    const counts = backend.objects[1].map('nginx_link_counts');
    const k = Buffer.alloc(4);
    k.writeUInt32LE(NGINX_LINK_REASON.NGINX_SKIP_NOT_REQUEST);
    const v = Buffer.alloc(8);
    v.writeBigUInt64LE(3n);
    counts.update(k, v); // the same value on each of the 2 CPUs
    expect(nginx.kernelCounters()).toMatchObject({ nginx_skip_not_request: 6, nginx_link_hit: 0 });
  });
});
