/**
 * The span tracers of one run and the header-injection strategy they share, chosen at start:
 * Go processes get memory writes where the kernel allows bpf_probe_write_user, else sk_msg;
 * every other process gets sk_msg on any kernel that has it; a Go process in memory mode is never
 * registered with sk_msg (one header, one path). When loading the header-writing program still
 * fails, the Go tracer is reloaded without it: decided on the typed load error's failing program
 * (isMemoryInjectionRefused), never on message text.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Cgroup2Outcome } from '../bpf/mounts';
import type { BpfBackend } from '../bpf/types';
import type { Capabilities } from '../capabilities/probe';
import type { StrategyPlan } from '../capabilities/strategy';
import { errorMessage } from '../errors';
import type { Logger } from '../log';
import { headerInjection, kernelDrops, probesAttached, processesAttached } from '../metrics/catalogue';
import type { SelfMetrics } from '../metrics/counters';
import type { GoHttpStage } from '../spans/go-http-stage';
import type { Resource, Span } from '../spans/span';
import type { UrlRedaction } from '../spans/url-redaction';
import type { Clock } from '../time/clock';
import { GoHttpTracer, isMemoryInjectionRefused, type GoInjection } from '../tracers/go-http-tracer';
import { SkInjectTracer } from '../tracers/sk-inject-tracer';
import { SysHttpStage } from '../tracers/sys-http-stage';
import type { SysHttpTracerSettings } from '../tracers/sys-http-tracer';
import type { AnyTracer } from '../tracers/tracer';

export type InjectHeaders = 'auto' | 'on' | 'off';

export function firstLine(s: string): string {
  return s.split('\n', 1)[0];
}

export interface TracerSetDeps {
  readonly backend: BpfBackend;
  readonly log: Logger;
  readonly metrics: SelfMetrics;
  readonly clock: Clock;
  /** Directory holding the compiled BPF objects (build/bpf). */
  readonly bpfObjectDir: string;
  readonly injectHeaders: InjectHeaders;
  readonly ringWakeupBytes: number;
  readonly ringSizeBytes: number;
  readonly urlRedaction?: UrlRedaction;
  readonly sysHttp?: Pick<SysHttpTracerSettings, 'maxConnections' | 'correlationWindowMs' | 'threadContextMaxAgeMs'>;
  /** Calls a second up to which a Go process keeps the client roundTrip probe (src/tracers/go-client-adoption.ts). */
  readonly goClientCallerProbeMaxRate?: number;
  /** Mounts cgroup v2 when needed (src/bpf/mounts.ts ensureCgroup2). */
  readonly ensureCgroup2: () => Cgroup2Outcome;
  /** The Go stage the Go tracer's records go to. */
  readonly goStage: GoHttpStage;
  readonly resourceOf: (pid: number) => Resource | undefined;
  readonly deliver: (span: Span) => void;
  /** A traced process forked (the kernel traces the child from its fork). */
  readonly onFork: (child: number, parent: number, tsNs: bigint) => void;
  /**
   * CPUs the agent may run on (default: os.availableParallelism(), which follows its affinity).
   * With one, sk_msg's object loads after the span tracers' (see begin()).
   */
  readonly loadParallelism?: number;
}

export class TracerSet {
  go: GoHttpTracer;
  /** Socket-level traceparent injection (sock_ops + sk_msg), where it can run. */
  sk: SkInjectTracer | undefined;
  /** Any-language HTTP/1.x from syscall tracepoints: every selected process that is not Go. */
  sys: SysHttpStage | undefined;

  constructor(private readonly d: TracerSetDeps) {
    this.go = this.newGoTracer('none');
  }

  /** The loads begun by begin(), before the feature probes' answer completes the strategy plan. */
  private pending:
    | {
        readonly skWhy: string | null;
        readonly sk: Promise<SkInjectTracer | undefined>;
        readonly skTracer: SkInjectTracer | undefined;
        /** sk_msg's load begins after the span tracers' (one CPU). */
        readonly skAfter: boolean;
        readonly sys: SysHttpStage | undefined;
        readonly sysStart: Promise<void> | undefined;
        readonly go: GoHttpTracer;
        readonly goStart: Promise<void>;
        /** Everything begun, settled (close() waits for it). */
        readonly settled: Promise<unknown>;
      }
    | undefined;
  /** sk_msg's load has ended (either way): start() then decides with its outcome at once. */
  private skSettled = false;
  /** Lets sk_msg's load begin, when it waits for the span tracers' processes (one CPU). */
  private skGate: (() => void) | undefined;
  /** Set by close(): a load not begun yet is not begun any more. */
  private closing = false;
  /**
   * When sk_msg was still loading as the span tracers started: its outcome, taken over by
   * joinSocketInjection (the Go injection the plan chose goes with it).
   */
  private lateSk: { readonly sk: Promise<SkInjectTracer | undefined>; readonly goInjection: 'memory' | 'none' } | undefined;

  /**
   * Begins loading every span tracer on worker threads, slowest first (the kernel's verifier is
   * most of the agent's start-up): the syscall tracer where syscall tracepoints exist, sk_msg
   * injection, and the Go tracer with `goInjection`, which the capabilities decide (the feature
   * probes' answer can only confirm it; start() loads it again if the plan says otherwise). What the Go
   * and syscall objects do with sk_msg is fixed at load (.rodata): they load as if it will run,
   * and start() loads one again without it in the rare case it does not.
   */
  begin(caps: Capabilities, goInjection: 'memory' | 'none'): void {
    if (this.pending) return;
    const { log, injectHeaders } = this.d;
    let skWhy: string | null = null;
    let sk: SkInjectTracer | undefined;
    let cgroupPath = '';
    if (injectHeaders !== 'off') {
      const cg = this.d.ensureCgroup2();
      if (cg.status === 'failed') skWhy = cg.reason;
      else {
        if (cg.status === 'mounted') log.info(`mounted cgroup2 at ${cg.path}`);
        sk = new SkInjectTracer(this.d.backend, join(this.d.bpfObjectDir, 'sk_inject.bpf.o'));
        cgroupPath = cg.path;
      }
    }
    const sys = caps.syscallTracepoints ? this.newSysStage(caps, sk !== undefined) : undefined;
    // sys_http.bpf.o verifies longest (~0.5 s here), then sk_inject.bpf.o (~0.16 s), then go_http.bpf.o.
    const sysStart = this.timed('sys_http.bpf.o', sys?.start());
    // The spans need the syscall and Go objects only; sk_msg adds headers once it runs. On one
    // CPU (the agent pinned, as in the bench) every load in flight shares it, so sk_msg's would
    // delay the first span by its whole verification: it begins once those two have loaded.
    const oneCpu = (this.d.loadParallelism ?? availableParallelism()) <= 1;
    const skLoad = (): Promise<SkInjectTracer | undefined> =>
      sk && !this.closing ? this.timed('sk_inject.bpf.o', sk.start(cgroupPath)).then(() => sk) : Promise.resolve(undefined);
    const skNow = oneCpu && sk ? undefined : skLoad();
    const go = this.newGoTracer(goInjection === 'none' && sk ? 'socket' : goInjection);
    const goStart = this.timed('go_http.bpf.o', go.start(this.onGoRecord));
    // Nor while the processes running now are attached (the main thread's work between the loads
    // and the first span): it begins once the agent says they are (releaseSocketInjection) or
    // close() began (a failed start: then it loads nothing).
    const skGate = new Promise<void>((resolve) => (this.skGate = resolve));
    const skStart = (skNow ?? Promise.allSettled([sysStart, goStart, skGate]).then(skLoad)).finally(() => {
      this.skSettled = true;
    });
    skStart.catch(() => undefined); // taken by start() or joinSocketInjection()
    this.pending = { skWhy, sk: skStart, skTracer: sk, skAfter: skNow === undefined, sys, sysStart, go, goStart, settled: Promise.allSettled([sysStart, skStart, goStart]) };
  }

  private readonly onGoRecord = (bytes: Buffer, offset: number, length: number): void => this.d.goStage.onRecord(bytes, offset, length);

  /** Says at debug level how long a tracer's start (load, attach) took: where start-up goes. */
  private timed<T>(what: string, p: Promise<T>): Promise<T>;
  private timed<T>(what: string, p: Promise<T> | undefined): Promise<T> | undefined;
  private timed<T>(what: string, p: Promise<T> | undefined): Promise<T> | undefined {
    const t0 = performance.now();
    p?.then(
      () => this.d.log.debug(`started ${what} in ${Math.round(performance.now() - t0)} ms`),
      () => undefined,
    );
    return p;
  }

  /**
   * Starts the span tracers with the plan's injection strategy: what begin() began (begun here if
   * it was not). Throws if the Go tracer cannot load; every tracer started is then closed by
   * close(). The start-up report says what each tracer does, in the same order as when they
   * loaded one after another. When sk_msg is still loading as the syscall and Go objects are
   * ready, spans start without it: joinSocketInjection() takes it over once it has loaded.
   */
  async start(plan: StrategyPlan, caps: Capabilities): Promise<void> {
    const { log, injectHeaders } = this.d;
    if (plan.goInjection === 'none' && injectHeaders === 'on') {
      const why = plan.strategies.find((s) => s.feature === 'go-memory-injection')?.why ?? 'unavailable';
      log.warn(`--inject-headers on, but Go memory injection is unavailable here: ${why}`);
    }
    this.begin(caps, plan.goInjection);
    const pending = this.pending!;
    const go = pending.go;
    const [sysR, goR] = await Promise.allSettled([pending.sysStart, pending.goStart]);
    // The Go and syscall objects were loaded handing client contexts to sk_msg: they keep that
    // while it loads (nothing consumes a hand-off before it runs: no header, no wrong claim).
    const skLate = pending.skAfter && !this.skSettled;
    if (!skLate) {
      let skWhy = pending.skWhy;
      const [skR] = await Promise.allSettled([pending.sk]);
      if (skR.status === 'fulfilled' && skR.value) this.sk = skR.value;
      else if (skR.status === 'rejected') skWhy = firstLine(errorMessage(skR.reason));
      if (skWhy !== null) log[injectHeaders === 'on' ? 'warn' : 'info'](`strategy: socket-level sk_msg injection unavailable: ${skWhy}`);
    }
    let sysErr: unknown;
    let sysStage = pending.sys;
    if (sysR.status === 'rejected') {
      sysErr = sysR.reason;
      sysStage = undefined;
    }
    this.go = go;
    let goErr: unknown = goR.status === 'rejected' ? goR.reason : undefined;
    // What the Go tracer must do, now that the plan and sk_msg's fate (or its load in flight) are known.
    const socket = this.sk !== undefined || skLate;
    let goInjection: GoInjection = plan.goInjection === 'memory' ? 'memory' : socket ? 'socket' : 'none';
    if (goErr !== undefined && go.injection === 'memory' && isMemoryInjectionRefused(goErr)) {
      log.warn(`strategy: Go memory injection refused by the kernel at load (${firstLine(errorMessage(goErr))}); reloading without it`);
      goErr = undefined;
      goInjection = socket ? 'socket' : 'none';
    }
    const goAgain = goErr === undefined && goInjection !== go.injection;
    const sysAgain = sysStage !== undefined && pending.skTracer !== undefined && !socket;
    const again = await Promise.allSettled([
      sysAgain ? sysStage!.close().then(() => (sysStage = this.newSysStage(caps, false)).start()) : undefined,
      goAgain ? go.close().then(() => (this.go = this.newGoTracer(goInjection)).start(this.onGoRecord)) : undefined,
    ]);
    if (again[0].status === 'rejected') {
      sysErr = again[0].reason;
      sysStage = undefined;
    }
    if (sysStage) this.sys = sysStage;
    if (goErr !== undefined) throw goErr;
    if (again[1].status === 'rejected') throw again[1].reason;

    if (skLate) this.lateSk = { sk: pending.sk, goInjection: goInjection === 'memory' ? 'memory' : 'none' };
    else this.reportInjection(goInjection);
    log.info('attached: go_http tracer loaded (uprobes are attached per process)');

    if (!caps.syscallTracepoints) log.warn('strategy: HTTP/1.x for non-Go processes: unavailable (no syscall tracepoints)');
    else if (this.sys) log.info(`strategy: HTTP/1.x for non-Go processes: syscall tracepoints (${this.sys.tracer.tracepointCount} attached); same-node black-box correlation on`);
    else log.warn(`strategy: HTTP/1.x for non-Go processes: unavailable (${firstLine(errorMessage(sysErr))})`);
  }

  /**
   * On one CPU, sk_msg's load waits for the span tracers' loads and then for this call: the agent
   * makes it once the processes running now are attached, so that its verification does not take
   * half the CPU from the attach and the first span (~0.1-0.2 s here). Idempotent.
   */
  releaseSocketInjection(): void {
    this.skGate?.();
  }

  /** Whether sk_msg is still loading after start() (joinSocketInjection() then takes it over). */
  get socketInjectionLoading(): boolean {
    return this.lateSk !== undefined;
  }

  /**
   * sk_msg's load, when start() left it in flight: awaited here. Once it runs, `onJoined` selects
   * the processes attached meanwhile (in the same turn: every attach after it selects its own);
   * if it failed, no process gets socket-level injection. The start-up report's injection line
   * and gauge follow, as start() says them otherwise.
   */
  async joinSocketInjection(onJoined: () => void): Promise<void> {
    const late = this.lateSk;
    if (!late) return;
    const { log, injectHeaders } = this.d;
    const [r] = await Promise.allSettled([late.sk]);
    this.lateSk = undefined;
    if (this.closing) return;
    if (r.status === 'fulfilled' && r.value) {
      this.sk = r.value;
      onJoined();
    } else {
      const why = r.status === 'rejected' ? firstLine(errorMessage(r.reason)) : 'not loaded';
      log[injectHeaders === 'on' ? 'warn' : 'info'](`strategy: socket-level sk_msg injection unavailable: ${why}`);
    }
    this.reportInjection(late.goInjection === 'memory' ? 'memory' : this.sk ? 'socket' : 'none');
  }

  /** The start-up report's header-injection line and the injection gauges. */
  private reportInjection(goInjection: GoInjection): void {
    const where = `sock_ops on cgroup v2 ${this.sk?.cgroupPath}; traceparent inserted after the request line of outgoing HTTP/1.x requests`;
    if (goInjection === 'memory') {
      this.d.log.info(
        "strategy: header injection: Go memory writes (bpf_probe_write_user into the request's bufio.Writer) for Go processes" +
          (this.sk ? `; socket-level sk_msg for other languages (${where})` : '; none for other languages'),
      );
    } else if (goInjection === 'socket') {
      this.d.log.info(`strategy: header injection: socket-level sk_msg (${where}, Go and other languages)`);
    }
    headerInjection.set(this.d.metrics, { runtime: 'go', method: goInjection === 'memory' ? 'go_memory' : goInjection === 'socket' ? 'sk_msg' : 'none' }, 1);
    headerInjection.set(this.d.metrics, { runtime: 'other', method: this.sk ? 'sk_msg' : 'none' }, 1);
  }

  /** The syscall HTTP stage (not started); `socketInjection`: client contexts are left for sk_msg. */
  private newSysStage(caps: Capabilities, socketInjection: boolean): SysHttpStage {
    return new SysHttpStage({
      backend: this.d.backend,
      objectPath: join(this.d.bpfObjectDir, 'sys_http.bpf.o'),
      clock: this.d.clock,
      metrics: this.d.metrics,
      resourceOf: this.d.resourceOf,
      deliver: this.d.deliver,
      // Children of traced processes are traced by the kernel from their fork; this selects them.
      onFork: this.d.onFork,
      redaction: this.d.urlRedaction,
      // nginx's upstream requests are linked by a uprobe at ngx_chain_writer (src/tracers/nginx-links.ts).
      ...(caps.uprobes ? { nginxObjectPath: join(this.d.bpfObjectDir, 'nginx_link.bpf.o') } : {}),
      // Python asyncio tasks are linked by uprobes in libpython and _asyncio (src/tracers/asyncio-tracer.ts).
      asyncioUprobes: caps.uprobes,
      onLateNote: (pid, note) => this.d.log.info(`pid ${pid}: ${note}`),
      // Client contexts decided at write enter go to the sk_msg injector when it runs.
      settings: { ...this.d.sysHttp, socketInjection, ringWakeupBytes: this.d.ringWakeupBytes, ringSizeBytes: this.d.ringSizeBytes },
    });
  }

  private newGoTracer(injection: GoInjection): GoHttpTracer {
    return new GoHttpTracer(this.d.backend, join(this.d.bpfObjectDir, 'go_http.bpf.o'), {
      injection,
      ringWakeupBytes: this.d.ringWakeupBytes,
      ringSizeBytes: this.d.ringSizeBytes,
      callerProbeMaxRate: this.d.goClientCallerProbeMaxRate,
    });
  }

  /** True while the Go or the syscall tracer traces `pid`. */
  isTraced(pid: number): boolean {
    return this.go.attachedPids.includes(pid) || (this.sys?.tracer.attachedPids.includes(pid) ?? false);
  }

  /** Every started span-side tracer, for counters and stop. */
  get all(): AnyTracer[] {
    return [this.go, ...(this.sk ? [this.sk] : []), ...(this.sys ? this.sys.tracers : [])];
  }

  /** The attached-process and probe gauges. */
  reportAttached(): void {
    processesAttached.set(this.d.metrics, {}, this.go.attachedPids.length);
    probesAttached.set(this.d.metrics, { tracer: 'go_http' }, this.go.linkCount);
  }

  /** Periodic work of the syscall stage, and every tracer's kernel counters into the self-metrics. */
  collectKernelCounters(): void {
    try {
      this.sys?.tick();
    } catch (err) {
      this.d.log.warnEvery('sweep', 60_000, `syscall stage sweep failed: ${errorMessage(err)}`);
    }
    this.readKernelCounters();
  }

  /** Every tracer's kernel counters into `spanbridge_kernel_drops` (also at each metrics snapshot). */
  readKernelCounters(): void {
    try {
      for (const t of this.all) {
        for (const [reason, n] of Object.entries(t.kernelCounters())) kernelDrops.set(this.d.metrics, { reason }, n);
      }
    } catch (err) {
      this.d.log.warnEvery('drops', 60_000, `reading kernel drop counters failed: ${errorMessage(err)}`);
    }
  }

  /** Independent objects: detached concurrently (each detach waits for kernel RCU grace periods). */
  async close(): Promise<void> {
    this.closing = true;
    this.releaseSocketInjection(); // not begun any more (closing), and no longer awaited
    // Loads begun and not yet taken over by start() (stopped during start-up) end first.
    await this.pending?.settled;
    const all = new Set([this.go, this.sk, this.sys, this.pending?.skTracer, this.pending?.sys, this.pending?.go]);
    await Promise.all([...all].map((t) => t?.close()));
  }
}
