/**
 * The Agent on the fake BPF backend: what it starts and in which order, what selecting and
 * releasing a process does to the tracers, the Go injection fallback on a typed load error, and
 * the grace period after which a gone process's resource is released.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, defaultRingWakeupBytes, type AgentHost, type AttachmentEvent, type ProcessWatcherLike, type SpanSink } from '../../src/agent';
import { RESOURCE_GRACE_MS } from '../../src/attach/resource-lifetimes';
import type { ProcessInfo } from '../../src/discovery/process-info';
import type { WatcherEvents } from '../../src/discovery/process-watcher';
import { SpanbridgeError } from '../../src/errors';
import { GO_HTTP_OBJECT, SK_INJECT_OBJECT, SYS_HTTP_OBJECT } from '../../src/events/structs.generated';
import type { Logger } from '../../src/log';
import type { Span } from '../../src/spans/span';
import { INJECT_PROGRAM } from '../../src/tracers/go-http-tracer';
import { FakeBpfBackend } from '../fakes/fake-bpf';
import { ALL_BPF_FEATURES, LOCKED_DOWN_HOST } from './helpers/capabilities';
import { goTarget } from '../fixtures/go-target';
import { minimalGoServerRecord } from '../fixtures/records';

const GO_PID = 999_101;
const PY_PID = 999_102;

function proc(pid: number, exe: string): ProcessInfo {
  const exeName = exe.split('/').pop() as string;
  return { pid, exePath: exe, exeOpenPath: `/proc/${pid}/exe`, exeName, exeKey: `1:${pid}`, cmdline: [exe], env: {}, startTicks: 1 };
}


interface Harness {
  agent: Agent;
  backend: FakeBpfBackend;
  events: () => WatcherEvents;
  spans: Span[];
  attachments: AttachmentEvent[];
  lines: string[];
  order: string[];
}

function harness(
  options: {
    backend?: FakeBpfBackend;
    caps?: typeof LOCKED_DOWN_HOST;
    features?: typeof ALL_BPF_FEATURES;
    readyFile?: string;
    injectHeaders?: 'auto' | 'on' | 'off';
    tickMs?: number;
    loadParallelism?: number;
    /** The watcher finds both test processes running when it starts (as /proc would). */
    matchAtStart?: boolean;
  } = {},
): Harness {
  const backend = options.backend ?? new FakeBpfBackend();
  const lines: string[] = [];
  const order: string[] = [];
  const spans: Span[] = [];
  const attachments: AttachmentEvent[] = [];
  let watcherEvents: WatcherEvents | undefined;
  const log: Logger = {
    debug: (m: string) => lines.push(`DEBUG ${m}`),
    info: (m: string) => lines.push(`INFO ${m}`),
    warn: (m: string) => lines.push(`WARN ${m}`),
    error: (m: string) => lines.push(`ERROR ${m}`),
    warnEvery: (_k: string, _ms: number, m: string) => lines.push(`WARN ${m}`),
  };
  const watcher: ProcessWatcherLike = {
    start: () => {
      order.push('watcher.start');
      if (options.matchAtStart) {
        watcherEvents?.onMatch(proc(GO_PID, '/srv/api'), `pid ${GO_PID}`);
        watcherEvents?.onMatch(proc(PY_PID, '/usr/bin/python3'), `pid ${PY_PID}`);
      }
    },
    stop: () => order.push('watcher.stop'),
    onExec: () => undefined,
    onExit: () => undefined,
    onFork: () => undefined,
    matchedPids: [],
  };
  const host: AgentHost = {
    ensureKernelFilesystems: () => [],
    ensureCgroup2: () => ({ status: 'already-mounted', path: '/sys/fs/cgroup' }),
    createWatcher: (_selection, events) => {
      watcherEvents = events;
      return watcher;
    },
    inspect: (path) => {
      if (path === `/proc/${GO_PID}/exe`) return goTarget();
      throw new SpanbridgeError('ERR_INSPECT', 'no Go build info');
    },
    processAlive: () => true,
  };
  const sink: SpanSink = {
    add: (s) => spans.push(s),
    shutdown: async () => {
      // Sinks flush last: every BPF object is closed by then.
      order.push(`sinks.shutdown(open objects: ${backend.openObjects().filter((o) => !o.closed).length})`);
    },
  };
  const agent = new Agent(
    { selection: { pids: [GO_PID, PY_PID], exeGlobs: [], openPorts: [] }, injectHeaders: options.injectHeaders ?? 'auto', bpfObjectDir: '/x', readyFile: options.readyFile },
    {
      backend,
      log,
      sinks: [sink],
      capabilities: options.caps ?? LOCKED_DOWN_HOST,
      bpfFeatures: options.features ?? ALL_BPF_FEATURES,
      host,
      onAttachment: (e) => attachments.push(e),
      tickMs: options.tickMs,
      loadParallelism: options.loadParallelism ?? 2,
    },
  );
  return {
    agent,
    backend,
    spans,
    attachments,
    lines,
    order,
    events: () => {
      if (!watcherEvents) throw new Error('watcher not created');
      return watcherEvents;
    },
  };
}

const objectNames = (b: FakeBpfBackend): string[] => b.openObjects().map((o) => o.path.split('/').pop() as string);

describe('Agent', () => {
  afterEach(() => jest.useRealTimers());

  it('starts tracers before the watcher and writes the ready file last; stops tracers before flushing sinks', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-test-'));
    const h = harness({ readyFile: join(dir, 'ready') });
    await h.agent.start();
    // Every load begins at once, the slowest first (syscall tracer, sk_msg injection, Go, process
    // events); the watcher only once all can attach.
    expect(objectNames(h.backend)).toEqual(['sys_http.bpf.o', 'sk_inject.bpf.o', 'go_http.bpf.o', 'proc_events.bpf.o']);
    expect(h.backend.openObjects().every((o) => o.loaded)).toBe(true);
    expect(h.order).toEqual(['watcher.start']);
    expect(readFileSync(join(dir, 'ready'), 'utf8')).toBe(`${process.pid}\n`);
    expect(h.lines).toContain('INFO attached: go_http tracer loaded (uprobes are attached per process)');
    await h.agent.stop();
    expect(h.order).toEqual(['watcher.start', 'watcher.stop', 'sinks.shutdown(open objects: 0)']);
    // The span tracers close draining their rings.
    expect(h.backend.closeOptionsOf('/x/go_http.bpf.o')).toEqual({ drain: true });
    expect(h.backend.activeLinks()).toEqual([]);
    await h.agent.stop(); // idempotent
    expect(h.order).toHaveLength(3);
  });

  it('hands the C heap back to the kernel at every tick while running, and not after stop', async () => {
    const backend = new FakeBpfBackend();
    let released = 0;
    Object.assign(backend, { releaseFreeMemory: () => released++ });
    const h = harness({ backend, tickMs: 10 });
    await h.agent.start();
    await new Promise((r) => setTimeout(r, 80));
    await h.agent.stop();
    expect(released).toBeGreaterThanOrEqual(2);
    const atStop = released;
    await new Promise((r) => setTimeout(r, 40));
    expect(released).toBe(atStop);
  });

  it('refuses to start without the privileges the plan needs, and starts nothing', async () => {
    const h = harness({ caps: { ...LOCKED_DOWN_HOST, isRoot: false, capSysAdmin: false, capBpf: false, capPerfmon: false } });
    await expect(h.agent.start()).rejects.toMatchObject({ code: 'ERR_PRIVILEGE' });
    expect(h.backend.openObjects()).toEqual([]);
    expect(h.order).toEqual([]);
  });

  it('selects a Go process into the uprobe tracer and releases it when it is gone', async () => {
    const h = harness();
    await h.agent.start();
    h.events().onMatch(proc(GO_PID, '/srv/api'), `pid ${GO_PID}`);
    const uprobes = () => h.backend.activeLinks().filter((l) => l.target.kind === 'uprobe' && l.target.pid === GO_PID);
    expect(uprobes().length).toBeGreaterThanOrEqual(3); // ServeHTTP entry + 2 RETs + textproto RET
    expect(h.attachments).toEqual([expect.objectContaining({ kind: 'attached', pid: GO_PID, tracer: 'Go uprobes (go1.26.8)', service: 'api' })]);
    expect(h.agent.metrics.get('spanbridge_processes_attached')).toBe(1);
    // Black-box parents: the syscall tracer knows the Go process in link-only mode.
    const traced = h.backend.openObjects().find((o) => o.path.endsWith('sys_http.bpf.o'))!.map(SYS_HTTP_OBJECT.maps.traced_tgids);
    const key = Buffer.alloc(4);
    key.writeUInt32LE(GO_PID);
    expect(traced.lookup(key)).not.toBeNull();

    h.events().onGone(GO_PID);
    expect(uprobes()).toEqual([]);
    expect(traced.lookup(key)).toBeNull();
    expect(h.attachments.at(-1)).toEqual({ kind: 'detached', pid: GO_PID });
    expect(h.agent.metrics.get('spanbridge_processes_attached')).toBe(0);
    await h.agent.stop();
  });

  it('span rings wake the agent at an eighth of their size by default (at most 1 MiB)', async () => {
    expect(defaultRingWakeupBytes(2 * 1024 * 1024)).toBe(256 * 1024);
    expect(defaultRingWakeupBytes(256 * 1024)).toBe(32 * 1024);
    expect(defaultRingWakeupBytes(64 * 1024 * 1024)).toBe(1024 * 1024);
    const h = harness();
    await h.agent.start();
    h.events().onMatch(proc(PY_PID, '/usr/bin/python3'), `pid ${PY_PID}`);
    expect(h.backend.rodataOf('/x/sys_http.bpf.o')).toMatchObject({ ring_wakeup_bytes: 256n * 1024n });
    await h.agent.stop();
  });

  it('sends a process that is not Go to the syscall tracer', async () => {
    const h = harness();
    await h.agent.start();
    h.events().onMatch(proc(PY_PID, '/usr/bin/python3'), `pid ${PY_PID}`);
    const traced = h.backend.openObjects().find((o) => o.path.endsWith('sys_http.bpf.o'))!.map(SYS_HTTP_OBJECT.maps.traced_tgids);
    const key = Buffer.alloc(4);
    key.writeUInt32LE(PY_PID);
    expect(traced.lookup(key)).not.toBeNull();
    expect(h.attachments).toEqual([expect.objectContaining({ kind: 'attached', pid: PY_PID, tracer: 'syscall tracepoints (HTTP/1.x)', probes: null })]);
    h.events().onGone(PY_PID);
    expect(traced.lookup(key)).toBeNull();
    expect(h.attachments.at(-1)).toEqual({ kind: 'detached', pid: PY_PID });
    await h.agent.stop();
  });

  it('says on its metrics and in its attachment events how headers are injected and what it attached', async () => {
    const h = harness();
    await h.agent.start();
    // Locked down: no memory writes; sk_msg for Go and every other runtime.
    expect(h.agent.metrics.get('spanbridge_header_injection', { runtime: 'go', method: 'sk_msg' })).toBe(1);
    expect(h.agent.metrics.get('spanbridge_header_injection', { runtime: 'other', method: 'sk_msg' })).toBe(1);
    h.events().onMatch(proc(GO_PID, '/srv/api'), `pid ${GO_PID}`);
    h.events().onMatch(proc(PY_PID, '/usr/bin/python3'), `pid ${PY_PID}`);
    expect(h.attachments).toEqual([
      expect.objectContaining({ pid: GO_PID, injection: 'sk_msg', connectionsTakenOver: 0 }),
      expect.objectContaining({ pid: PY_PID, injection: 'sk_msg', connectionsTakenOver: 0 }),
    ]);
    expect(h.agent.metrics.get('spanbridge_attaches_total', { tracer: 'go_http' })).toBe(1);
    expect(h.agent.metrics.get('spanbridge_attaches_total', { tracer: 'sys_http' })).toBe(1);
    h.events().onExcluded?.(proc(GO_PID + 10, '/otelcol'), `pid ${GO_PID + 10}`, { kind: 'collector', why: 'it is the Collector this agent exports to' });
    expect(h.agent.metrics.get('spanbridge_processes_excluded_total', { reason: 'collector' })).toBe(1);
    expect(h.lines).toContain(`INFO not tracing pid ${GO_PID + 10} (/otelcol, matched by pid ${GO_PID + 10}): it is the Collector this agent exports to`);
    await h.agent.stop();
  });

  it('reloads the Go tracer without memory injection when the kernel refuses that program (typed load error)', async () => {
    const backend = new FakeBpfBackend().failLoad(INJECT_PROGRAM, 'unknown func bpf_probe_write_user#36');
    const h = harness({ backend, caps: { ...LOCKED_DOWN_HOST, lockdown: 'none', probeWriteUser: true } });
    await h.agent.start();
    // The refused object is closed; the one open now leaves the header writer out and hands
    // contexts to sk_msg instead.
    const goObjects = backend.openObjects().filter((o) => o.path.endsWith('go_http.bpf.o'));
    expect(goObjects).toHaveLength(1);
    expect(goObjects[0].loaded).toBe(true);
    expect(goObjects[0].disabled.has(INJECT_PROGRAM)).toBe(true);
    expect(backend.rodataOf('/x/go_http.bpf.o')).toMatchObject({ memory_injection: false, socket_injection: true });
    expect(h.lines.some((l) => l.startsWith('WARN strategy: Go memory injection refused by the kernel at load'))).toBe(true);
    await h.agent.stop();
  });

  it('does not fall back on other load failures: the start fails, and stop closes what the concurrent loads opened', async () => {
    const backend = new FakeBpfBackend().failLoad(GO_HTTP_OBJECT.programs.go_server_handler_serve_http);
    const h = harness({ backend, caps: { ...LOCKED_DOWN_HOST, lockdown: 'none', probeWriteUser: true } });
    await expect(h.agent.start()).rejects.toMatchObject({ code: 'ERR_BPF_LOAD', program: GO_HTTP_OBJECT.programs.go_server_handler_serve_http });
    expect(objectNames(backend).sort()).toEqual(['proc_events.bpf.o', 'sk_inject.bpf.o', 'sys_http.bpf.o']);
    expect(h.order).toEqual([]); // no watcher, no ready file
    await h.agent.stop();
    expect(backend.openObjects()).toEqual([]);
    expect(backend.activeLinks()).toEqual([]);
  });

  it('a failed sk_msg load is reported and blocks nothing: Go and syscall tracers load again without socket injection', async () => {
    const backend = new FakeBpfBackend().failLoad(SK_INJECT_OBJECT.programs.sk_inject_msg, 'program too large');
    const h = harness({ backend });
    await h.agent.start();
    expect(objectNames(backend).sort()).toEqual(['go_http.bpf.o', 'proc_events.bpf.o', 'sys_http.bpf.o']);
    expect(backend.openObjects().every((o) => o.loaded)).toBe(true);
    expect(backend.rodataOf('/x/go_http.bpf.o')).toMatchObject({ socket_injection: false });
    expect(backend.rodataOf('/x/sys_http.bpf.o')).toMatchObject({ sk_inject_pending: false });
    expect(h.lines.some((l) => /^INFO strategy: socket-level sk_msg injection unavailable: load \/x\/sk_inject\.bpf\.o: program sk_inject_msg/.test(l))).toBe(true);
    expect(h.agent.metrics.get('spanbridge_header_injection', { runtime: 'other', method: 'none' })).toBe(1);
    expect(h.lines).toContain('INFO strategy: HTTP/1.x for non-Go processes: syscall tracepoints (20 attached); same-node black-box correlation on');
    expect(h.order).toEqual(['watcher.start']);
    await h.agent.stop();
    expect(backend.openObjects()).toEqual([]);
  });

  it('the Go tracer begins loading before the plan, with the injection the capabilities decide; a plan that says otherwise loads it again', async () => {
    const backend = new FakeBpfBackend();
    // Capabilities allow memory writes; the (hypothetical) probe says the verifier refuses them.
    const h = harness({ backend, caps: { ...LOCKED_DOWN_HOST, lockdown: 'none', probeWriteUser: true }, features: { ...ALL_BPF_FEATURES, probeWriteUser: false } });
    await h.agent.start();
    const goObjects = backend.objects.filter((o) => o.path.endsWith('go_http.bpf.o'));
    expect(goObjects.map((o) => [o.options.rodata?.memory_injection, o.closed])).toEqual([
      [true, true],
      [false, false],
    ]);
    expect(backend.rodataOf('/x/go_http.bpf.o')).toMatchObject({ memory_injection: false, socket_injection: true });
    expect(h.agent.metrics.get('spanbridge_header_injection', { runtime: 'go', method: 'sk_msg' })).toBe(1);
    await h.agent.stop();
    expect(backend.openObjects()).toEqual([]);
  });

  it('a failed syscall-tracer load is reported and Go tracing still starts', async () => {
    const backend = new FakeBpfBackend().failLoad(SYS_HTTP_OBJECT.programs.sys_exit_read, 'R2 min value is negative');
    const h = harness({ backend });
    await h.agent.start();
    expect(objectNames(backend).sort()).toEqual(['go_http.bpf.o', 'proc_events.bpf.o', 'sk_inject.bpf.o']);
    expect(h.lines.some((l) => /^WARN strategy: HTTP\/1\.x for non-Go processes: unavailable \(load \/x\/sys_http\.bpf\.o: program sys_exit_read/.test(l))).toBe(true);
    expect(h.lines).toContain('INFO attached: go_http tracer loaded (uprobes are attached per process)');
    await h.agent.stop();
    expect(backend.openObjects()).toEqual([]);
  });

  it('--inject-headers off: no sk_msg object, and the Go and syscall objects load once, leaving no context for it', async () => {
    const backend = new FakeBpfBackend();
    const h = harness({ backend, injectHeaders: 'off' });
    await h.agent.start();
    expect(backend.objects.map((o) => o.path.split('/').pop())).toEqual(['sys_http.bpf.o', 'go_http.bpf.o', 'proc_events.bpf.o']);
    expect(backend.rodataOf('/x/go_http.bpf.o')).toMatchObject({ socket_injection: false, memory_injection: false });
    expect(backend.rodataOf('/x/sys_http.bpf.o')).toMatchObject({ sk_inject_pending: false });
    expect(h.agent.metrics.get('spanbridge_header_injection', { runtime: 'go', method: 'none' })).toBe(1);
    await h.agent.stop();
    expect(backend.openObjects()).toEqual([]);
  });

  it('without syscall tracepoints: no syscall object, said in the report; Go tracing and sk_msg start', async () => {
    const backend = new FakeBpfBackend();
    const h = harness({ backend, caps: { ...LOCKED_DOWN_HOST, syscallTracepoints: false } });
    await h.agent.start();
    expect(objectNames(backend).sort()).toEqual(['go_http.bpf.o', 'proc_events.bpf.o', 'sk_inject.bpf.o']);
    expect(h.lines).toContain('WARN strategy: HTTP/1.x for non-Go processes: unavailable (no syscall tracepoints)');
    expect(h.order).toEqual(['watcher.start']);
    await h.agent.stop();
  });

  it('a stop during start-up waits for the loads in flight and leaves nothing open', async () => {
    const h = harness();
    const starting = h.agent.start();
    const stopping = h.agent.stop();
    await starting;
    await stopping;
    expect(h.order).toEqual(['sinks.shutdown(open objects: 0)']); // no watcher, no ready file
    expect(h.backend.openObjects()).toEqual([]);
    expect(h.backend.activeLinks()).toEqual([]);
  });

  it('on one CPU, sk_msg loads after the span tracers: processes attach and spans flow first; it then joins them, and the ready file follows', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-test-'));
    const backend = new FakeBpfBackend();
    const release = backend.holdLoad('sk_inject.bpf.o');
    const h = harness({ backend, loadParallelism: 1, readyFile: join(dir, 'ready'), matchAtStart: true });
    const started = h.agent.start();
    while (!h.order.includes('watcher.start')) await new Promise((r) => setImmediate(r));
    // sk_msg's load began only once the syscall and Go objects had loaded.
    expect(objectNames(backend)).toEqual(['sys_http.bpf.o', 'go_http.bpf.o', 'proc_events.bpf.o', 'sk_inject.bpf.o']);
    expect(backend.openObjects().map((o) => o.loaded)).toEqual([true, true, true, false]);
    // Loaded handing client contexts to sk_msg, which is on its way.
    expect(backend.rodataOf('/x/go_http.bpf.o')).toMatchObject({ socket_injection: true });
    expect(backend.rodataOf('/x/sys_http.bpf.o')).toMatchObject({ sk_inject_pending: true });
    expect(h.attachments).toEqual([
      expect.objectContaining({ kind: 'attached', pid: GO_PID, injection: 'none' }),
      expect.objectContaining({ kind: 'attached', pid: PY_PID, injection: 'none' }),
    ]);
    backend.emit(GO_HTTP_OBJECT.maps.go_http_events, minimalGoServerRecord(GO_PID));
    expect(h.spans).toHaveLength(1);
    expect(existsSync(join(dir, 'ready'))).toBe(false);
    expect(h.agent.metrics.get('spanbridge_header_injection', { runtime: 'go', method: 'sk_msg' })).toBe(0); // not said yet

    release();
    await started;
    // Both processes are selected for sk_msg now, and said to be (table, /api/processes).
    expect(h.attachments.slice(2)).toEqual([
      expect.objectContaining({ kind: 'attached', pid: GO_PID, injection: 'sk_msg', notes: expect.arrayContaining(['traceparent injection: sk_msg (new connections)']) }),
      expect.objectContaining({ kind: 'attached', pid: PY_PID, injection: 'sk_msg' }),
    ]);
    const pending = backend.openObjects().find((o) => o.path.endsWith('sk_inject.bpf.o'))!;
    expect(pending.loaded).toBe(true);
    expect(h.agent.metrics.get('spanbridge_header_injection', { runtime: 'go', method: 'sk_msg' })).toBe(1);
    expect(h.agent.metrics.get('spanbridge_header_injection', { runtime: 'other', method: 'sk_msg' })).toBe(1);
    expect(h.lines.some((l) => l.startsWith('INFO strategy: header injection: socket-level sk_msg'))).toBe(true);
    expect(readFileSync(join(dir, 'ready'), 'utf8')).toBe(`${process.pid}\n`);
    await h.agent.stop();
    expect(backend.openObjects()).toEqual([]);
  });

  it('on one CPU, a late sk_msg failure leaves the attached processes without socket injection, said in the report, and still writes the ready file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-test-'));
    const backend = new FakeBpfBackend().failLoad(SK_INJECT_OBJECT.programs.sk_inject_msg, 'program too large');
    const h = harness({ backend, loadParallelism: 1, readyFile: join(dir, 'ready'), matchAtStart: true });
    await h.agent.start();
    expect(h.attachments.map((a) => a.kind === 'attached' && a.injection)).toEqual(['none', 'none']);
    expect(h.lines.some((l) => /^INFO strategy: socket-level sk_msg injection unavailable: load \/x\/sk_inject\.bpf\.o: program sk_inject_msg/.test(l))).toBe(true);
    expect(h.agent.metrics.get('spanbridge_header_injection', { runtime: 'go', method: 'none' })).toBe(1);
    expect(h.agent.metrics.get('spanbridge_header_injection', { runtime: 'other', method: 'none' })).toBe(1);
    expect(existsSync(join(dir, 'ready'))).toBe(true);
    await h.agent.stop();
    expect(backend.openObjects()).toEqual([]);
  });

  it('attaches nothing before the sinks are complete, and fails the start if they cannot be', async () => {
    let complete!: () => void;
    const sinksReady = new Promise<void>((r) => (complete = r));
    const backend = new FakeBpfBackend();
    const order: string[] = [];
    const agent = new Agent(
      { selection: { pids: [], exeGlobs: [], openPorts: [] }, injectHeaders: 'auto', bpfObjectDir: '/x' },
      {
        backend,
        log: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined, warnEvery: () => undefined },
        sinks: [],
        capabilities: LOCKED_DOWN_HOST,
        bpfFeatures: ALL_BPF_FEATURES,
        loadParallelism: 2,
        sinksReady,
        host: {
          ensureKernelFilesystems: () => [],
          ensureCgroup2: () => ({ status: 'already-mounted', path: '/sys/fs/cgroup' }),
          createWatcher: () => ({ start: () => order.push('watcher.start'), stop: () => undefined, onExec: () => undefined, onExit: () => undefined, onFork: () => undefined, matchedPids: [1] }),
        },
      },
    );
    const started = agent.start();
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(backend.openObjects().every((o) => o.loaded)).toBe(true);
    expect(order).toEqual([]);
    complete();
    await started;
    expect(order).toEqual(['watcher.start']);
    await agent.stop();

    const failing = new Agent(
      { selection: { pids: [], exeGlobs: [], openPorts: [] }, injectHeaders: 'auto', bpfObjectDir: '/x' },
      {
        backend: new FakeBpfBackend(),
        log: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined, warnEvery: () => undefined },
        sinks: [],
        capabilities: LOCKED_DOWN_HOST,
        bpfFeatures: ALL_BPF_FEATURES,
        sinksReady: Promise.reject(new Error('bridge failed')),
        host: { ensureKernelFilesystems: () => [], ensureCgroup2: () => ({ status: 'already-mounted', path: '/sys/fs/cgroup' }), createWatcher: () => { throw new Error('no watcher expected'); } },
      },
    );
    await expect(failing.start()).rejects.toThrow('bridge failed');
    await failing.stop();
  });

  it('keeps a gone process resource for the grace period, so records still in the ring become spans', async () => {
    jest.useFakeTimers();
    const h = harness();
    await h.agent.start();
    h.events().onMatch(proc(GO_PID, '/srv/api'), `pid ${GO_PID}`);
    h.events().onGone(GO_PID);
    h.backend.emit(GO_HTTP_OBJECT.maps.go_http_events, minimalGoServerRecord(GO_PID));
    expect(h.spans).toHaveLength(1);
    expect(h.spans[0].resource.attributes['service.name']).toBe('api');

    jest.advanceTimersByTime(RESOURCE_GRACE_MS + 1);
    h.backend.emit(GO_HTTP_OBJECT.maps.go_http_events, minimalGoServerRecord(GO_PID));
    expect(h.spans).toHaveLength(1);
    expect(h.agent.metrics.get('spanbridge_spans_dropped_total', { reason: 'unknown_process' })).toBe(1);
    await h.agent.stop();
  });

  it('does not release a resource when the process is traced again within the grace period', async () => {
    jest.useFakeTimers();
    const h = harness();
    await h.agent.start();
    h.events().onMatch(proc(GO_PID, '/srv/api'), `pid ${GO_PID}`);
    h.events().onGone(GO_PID);
    h.events().onMatch(proc(GO_PID, '/srv/api'), `pid ${GO_PID}`);
    jest.advanceTimersByTime(RESOURCE_GRACE_MS + 1);
    h.backend.emit(GO_HTTP_OBJECT.maps.go_http_events, minimalGoServerRecord(GO_PID));
    expect(h.spans).toHaveLength(1);
    await h.agent.stop();
  });
});
