/**
 * The agent: orders start and stop of the pipeline drawn in docs/architecture.md, and nothing
 * else. What it orders lives in named units: the tracers and the injection strategy
 * (attach/tracer-set.ts), which tracer a process goes to (attach/attach-planner.ts) and carrying
 * that out (attach/process-attacher.ts), Go inspection once per binary
 * (attach/inspection-cache.ts), resource lifetimes and their grace period
 * (attach/resource-lifetimes.ts). The sinks and the BPF backend are built by the one wiring file
 * (src/wiring.ts) and handed in.
 *
 *   start: mounts -> capabilities -> [syscall tracer, sk_msg, Go tracer, process events: loading
 *          on worker threads (on one CPU, sk_msg after the attach below); meanwhile
 *          libbpf feature probes, Go inspection of the selected processes] -> strategy plan
 *          -> results reported -> sinks complete -> watcher (attach what runs now: spans flow)
 *          -> [sk_msg, if still loading (on one CPU it begins only now): the processes attached
 *          meanwhile selected for it]
 *          -> ready file -> periodic work
 *   stop:  periodic work -> watcher -> kernel counters -> tracers (drained) -> Go stage -> sinks
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { BpfBackend } from './bpf/types';
import { probeBpfFeaturesAsync, UNKNOWN_FEATURES, type BpfFeatures } from './capabilities/bpf-features';
import { describeCapabilities, probeCapabilities, type Capabilities } from './capabilities/probe';
import { describeStrategies, planStrategies } from './capabilities/strategy';
import { ensureCgroup2, ensureKernelFilesystems, missingRequiredFilesystems, type Cgroup2Outcome, type MountOutcome } from './bpf/mounts';
import type { ProcessInfo } from './discovery/process-info';
import { ProcessWatcher, type WatcherEvents, type WatcherOptions } from './discovery/process-watcher';
import { SelfExclusion } from './discovery/self-exclusion';
import type { Selection } from './discovery/selectors';
import { SpanbridgeError, errorMessage } from './errors';
import { ringHandler, type RingRecord } from './events/decoder';
import { PROC_EVENTS_OBJECT } from './events/structs.generated';
import type { Logger } from './log';
import { kernelDrops, processesExcluded } from './metrics/catalogue';
import { SelfMetrics } from './metrics/counters';
import { GoHttpStage } from './spans/go-http-stage';
import { RouteStage } from './spans/routes/route-stage';
import { DEFAULT_ROUTES, type RoutesSettings } from './spans/routes/route-policy';
import type { SpanSink } from './sinks/sink';
import type { Span } from './spans/span';
import type { UrlRedaction } from './spans/url-redaction';
import { SystemClock, type Clock } from './time/clock';
import { ProcEventsTracer } from './tracers/proc-events-tracer';
import type { SysHttpTracerSettings } from './tracers/sys-http-tracer';
import type { GoClientPath, GoServerPath } from './tracers/go-http-tracer';
import { ADOPTION_TICK_MS } from './tracers/go-client-adoption';
import { InspectionCache, type GoInspector } from './attach/inspection-cache';
import { prefetchInspections } from './attach/prefetch';
import { ProcessAttacher, type AttachmentEvent } from './attach/process-attacher';
import { ResourceLifetimes } from './attach/resource-lifetimes';
import { TracerSet, type InjectHeaders } from './attach/tracer-set';

export type { InjectHeaders } from './attach/tracer-set';
export type { AttachedEvent, AttachmentEvent } from './attach/process-attacher';

export interface AgentConfig {
  readonly selection: Selection;
  readonly injectHeaders: InjectHeaders;
  /** Directory holding the compiled BPF objects (build/bpf). */
  readonly bpfObjectDir: string;
  /** Created once the processes matched at start are attached. */
  readonly readyFile?: string;
  /** Pids never traced (the agent itself is always excluded). */
  readonly excludePids?: readonly number[];
  /**
   * Where spans and metrics are exported (OTLP URLs): a Collector listening on a local one is
   * never traced (src/discovery/self-exclusion.ts).
   */
  readonly exportEndpoints?: readonly string[];
  /** The agent's entry script; other processes running it are agents, never traced (default: argv[1]). */
  readonly agentEntry?: string;
  /**
   * The span tracers' ring buffers wake the agent only once this many bytes wait (bpf/common/ring_wakeup.h;
   * default defaultRingWakeupBytes(ring size); 0: every record). Records below it are read by the
   * backend's periodic consume. Process exec/exit events always wake the agent at once.
   */
  readonly ringWakeupBytes?: number;
  /**
   * Bytes of each span ring buffer (Go and syscall tracers; default DEFAULT_RING_SIZE_BYTES). The
   * agent maps a ring's pages twice, so each counts twice in its resident memory once written.
   */
  readonly ringSizeBytes?: number;
  /** Declared route patterns, unmatched mode, route limit (src/spans/routes; default: heuristic, 1,000). */
  readonly routes?: RoutesSettings;
  /** Query keys and URL credentials redacted where spans are built (default: DEFAULT_URL_REDACTION). */
  readonly urlRedaction?: UrlRedaction;
  /** Kernel-side limits of the syscall tracer (settings `sys_http.*`); unset ones keep its defaults. */
  readonly sysHttp?: Pick<SysHttpTracerSettings, 'maxConnections' | 'correlationWindowMs' | 'threadContextMaxAgeMs'>;
  /** Where Go HTTP/1 server spans come from (setting go.server_path; default DEFAULT_GO_SERVER_PATH). */
  readonly goServerPath?: GoServerPath;
  /** Where Go HTTP/1 client spans come from (setting go.client_path; default DEFAULT_GO_CLIENT_PATH). */
  readonly goClientPath?: GoClientPath;
  /** Calls a second up to which a Go process keeps the client roundTrip probe (go.client_caller_probe_max_rate; default AHEAD_MAX_RATE). */
  readonly goClientCallerProbeMaxRate?: number;
}

/**
 * Default wakeup threshold: an eighth of the ring (256 KiB of the default 2 MiB, ~190 Go server
 * records), at most 1 MiB. Below it a record waits at most the backend's poll period (50 ms)
 * instead of costing the traced process a wakeup (bpf/common/ring_wakeup.h); above it 7/8 of the
 * ring is left for what comes while the agent wakes. 64 KiB woke the agent ~4 times as often
 * under load, each wake-up a consume turn of its own on the load generator's CPU in the bench:
 * agent CPU per span -0.3 to -0.5 us at ~22k Go req/s (bench/results/2026-12-07-span-cpu-export.md).
 */
export function defaultRingWakeupBytes(ringSizeBytes: number): number {
  return Math.min(1024 * 1024, Math.floor(ringSizeBytes / 8));
}
/**
 * 2 MiB per span ring: ~100 ms of records at 14k Go spans/s (~1.4 KB each) while the agent is
 * busy, 8x the wakeup threshold. The compiled-in sizes (4 and 8 MiB) cost 24 MB of agent RSS.
 */
export const DEFAULT_RING_SIZE_BYTES = 2 * 1024 * 1024;

export type { SpanSink } from './sinks/sink';

/** What the agent needs of the host beyond the BPF backend; real by default, replaced in unit tests. */
export interface AgentHost {
  ensureKernelFilesystems(): MountOutcome[];
  ensureCgroup2(): Cgroup2Outcome;
  /** The process watcher (default: src/discovery/process-watcher.ts over /proc). */
  createWatcher(selection: Selection, events: WatcherEvents, options: WatcherOptions): ProcessWatcherLike;
  /** Go binary inspection (default: src/discovery/go/inspect.ts). */
  readonly inspect?: GoInspector;
  /** Whether a process still runs (default: its /proc/<pid>/exe link exists). */
  readonly processAlive?: (pid: number) => boolean;
}

export type ProcessWatcherLike = Pick<ProcessWatcher, 'start' | 'stop' | 'onExec' | 'onExit' | 'onFork' | 'matchedPids'>;

export const REAL_HOST: AgentHost = {
  ensureKernelFilesystems: () => ensureKernelFilesystems(),
  ensureCgroup2: () => ensureCgroup2(),
  createWatcher: (selection, events, options) => new ProcessWatcher(selection, events, options),
};

export interface AgentDeps {
  readonly backend: BpfBackend;
  readonly log: Logger;
  readonly sinks: readonly SpanSink[];
  readonly metrics?: SelfMetrics;
  readonly clock?: Clock;
  readonly capabilities?: Capabilities;
  /** Program types and helpers the kernel accepts (default: libbpf feature probes). */
  readonly bpfFeatures?: BpfFeatures;
  /** Told about every process attached or detached (the run command's table of what is traced). */
  readonly onAttachment?: (event: AttachmentEvent) => void;
  /** Mounts, process watcher, inspection (default REAL_HOST). */
  readonly host?: AgentHost;
  /** Period of the kernel-counter and stage sweeps (default 5 s). */
  readonly tickMs?: number;
  /**
   * Settles once every sink is in `sinks`: no process is attached (no span delivered) before. A
   * rejection fails the start. Default: the sinks are complete from the start.
   */
  readonly sinksReady?: Promise<unknown>;
  /** CPUs the agent runs on (default: os.availableParallelism()); one orders the loads (tracer-set.ts). */
  readonly loadParallelism?: number;
}

export class Agent {
  readonly metrics: SelfMetrics;
  private readonly host: AgentHost;
  private readonly tracers: TracerSet;
  private readonly procTracer: ProcEventsTracer;
  /** Go uprobe records -> spans. */
  private readonly goStage: GoHttpStage;
  /** http.route and span names of every tracer's server spans, bounded per service. */
  private readonly routes: RouteStage;
  private readonly resources: ResourceLifetimes;
  private readonly attacher: ProcessAttacher;
  /** Go binaries inspected once each; filled ahead of the attach while the objects load. */
  private readonly inspection: InspectionCache;
  private watcher: ProcessWatcherLike | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private adoptionTimer: NodeJS.Timeout | undefined;
  private starting: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly config: AgentConfig,
    private readonly deps: AgentDeps,
  ) {
    this.metrics = deps.metrics ?? new SelfMetrics();
    this.host = deps.host ?? REAL_HOST;
    const clock = deps.clock ?? new SystemClock();
    const { log } = deps;
    this.routes = new RouteStage(config.routes ?? DEFAULT_ROUTES, this.metrics, log);
    this.resources = new ResourceLifetimes({ isTraced: (pid) => this.tracers.isTraced(pid) });
    const resourceOf = (pid: number) => this.resources.get(pid);
    const deliver = (span: Span): void => this.deliver(span);
    this.goStage = new GoHttpStage({ clock, metrics: this.metrics, resourceOf, deliver, redaction: config.urlRedaction });
    this.tracers = new TracerSet({
      backend: deps.backend,
      log,
      metrics: this.metrics,
      clock,
      bpfObjectDir: config.bpfObjectDir,
      injectHeaders: config.injectHeaders,
      ringWakeupBytes: config.ringWakeupBytes ?? defaultRingWakeupBytes(config.ringSizeBytes ?? DEFAULT_RING_SIZE_BYTES),
      ringSizeBytes: config.ringSizeBytes ?? DEFAULT_RING_SIZE_BYTES,
      urlRedaction: config.urlRedaction,
      sysHttp: config.sysHttp,
      goClientCallerProbeMaxRate: config.goClientCallerProbeMaxRate,
      ensureCgroup2: () => this.host.ensureCgroup2(),
      goStage: this.goStage,
      resourceOf,
      deliver,
      onFork: (child, parent, tsNs) => this.onFork(child, parent, tsNs),
      loadParallelism: deps.loadParallelism,
    });
    this.inspection = new InspectionCache({ metrics: this.metrics, log, inspect: this.host.inspect, processAlive: this.host.processAlive });
    this.attacher = new ProcessAttacher({
      selection: config.selection,
      log,
      metrics: this.metrics,
      tracers: this.tracers,
      goStage: this.goStage,
      routes: this.routes,
      resources: this.resources,
      inspection: this.inspection,
      onAttachment: deps.onAttachment,
      goServerPath: config.goServerPath,
      goClientPath: config.goClientPath,
    });
    this.procTracer = new ProcEventsTracer(deps.backend, join(config.bpfObjectDir, 'proc_events.bpf.o'));
  }

  /**
   * Probes, loads, attaches to what runs now, and starts following new processes; the ready file
   * is written once that is done. The BPF objects load on worker threads, concurrently, while
   * libbpf's feature probes run (src/tracers/open-object.ts). Spans flow only once this
   * resolves: the sinks may be completed until then. On a rejection, stop() closes what started;
   * a stop() meanwhile waits for the loads in flight, and the start then attaches nothing.
   */
  start(): Promise<void> {
    this.starting ??= this.startOnce();
    return this.starting;
  }

  private async startOnce(): Promise<void> {
    const { log } = this.deps;
    const mounts = this.host.ensureKernelFilesystems();
    for (const o of mounts) {
      if (o.status === 'mounted') log.info(`mounted ${o.fs.fstype} at ${o.fs.target}`);
    }
    if (this.config.injectHeaders !== 'off') {
      // Socket-level injection attaches sock_ops to the cgroup v2 root: mount it before probing so
      // that the plan below sees it (failures are reported by the plan and at sk_msg start).
      const cg = this.host.ensureCgroup2();
      if (cg.status === 'mounted') log.info(`mounted cgroup2 at ${cg.path}`);
    }
    const caps = this.deps.capabilities ?? probeCapabilities();
    for (const line of describeCapabilities(caps)) log.info(`capabilities: ${line}`);
    const options = { injectHeaders: this.config.injectHeaders, goServerPath: this.config.goServerPath, goClientPath: this.config.goClientPath };
    // What is missing to run at all, and how Go headers are injected, depend on the capabilities:
    // the feature probes' answer can only confirm them (strategy.ts), so they are decided before it.
    const early = planStrategies(caps, UNKNOWN_FEATURES('not probed yet'), options);
    const missing = [...early.missing];
    for (const o of missingRequiredFilesystems(mounts)) if (o.status === 'failed') missing.push(o.reason);
    if (missing.length > 0) {
      throw new SpanbridgeError('ERR_PRIVILEGE', `cannot start: missing ${missing.join('; ')}`);
    }
    // Every object loads on a worker thread meanwhile, slowest first.
    this.tracers.begin(caps, early.goInjection);
    const procStarted = this.procTracer.start(ringHandler(PROC_EVENTS_OBJECT.maps.proc_events, this.metrics, (rec) => this.onProcRecord(rec))).then(
      () => undefined,
      (err: unknown) => err ?? new Error('unknown'),
    );
    const features = this.deps.bpfFeatures ?? probeBpfFeaturesAsync();
    // The main thread is free until the loads end: the Go binaries of the processes selected now
    // are inspected meanwhile (the first inspection of one took 0.1-1.5 s here).
    const t0 = performance.now();
    const n = prefetchInspections(this.config.selection, this.inspection, new Set([process.pid, ...(this.config.excludePids ?? [])]));
    log.debug(`inspected ${n} selected processes ahead of their attach in ${Math.round(performance.now() - t0)} ms`);
    // The same plan `spanbridge doctor` prints (src/capabilities/strategy.ts).
    const plan = planStrategies(caps, await features, options);
    for (const line of describeStrategies(plan)) log.info(`strategy: ${line}`);
    try {
      await this.tracers.start(plan, caps);
    } catch (err) {
      await procStarted; // stop() closes it, once its load returned
      throw err;
    }
    const procErr = await procStarted;
    if (procErr === undefined) log.info('attached: tracepoints sched/sched_process_exec, sched/sched_process_exit');
    else log.warn(`process events unavailable (${errorMessage(procErr)}); following new processes by /proc rescans only`);
    await this.deps.sinksReady;
    if (this.stopped) return; // stop() closes what loaded
    // Spans flow from here on: what runs now is attached.
    this.startWatcher();
    // On one CPU sk_msg's load waited for this (tracer-set.ts): it verifies while spans flow.
    this.tracers.releaseSocketInjection();
    if (this.tracers.socketInjectionLoading) {
      log.debug(`spans flowing ${Math.round(performance.now() - t0)} ms after the loads began; sk_msg still loading`);
      // sk_msg loaded after the span tracers (one CPU): the processes attached meanwhile get it now.
      await this.tracers.joinSocketInjection(() => this.attacher.selectAttachedForSkInject());
      if (this.stopped) return;
    }
    // Ready: every tracer runs and every process that matched at start is attached.
    if (this.config.readyFile) writeFileSync(this.config.readyFile, `${process.pid}\n`, { mode: 0o600 });
    // A scrape or an OTLP export sees the kernel counters as they are now.
    this.metrics.onSnapshot(() => {
      if (!this.stopped) this.tracers.readKernelCounters();
    });
    this.tickTimer = setInterval(() => {
      this.tracers.collectKernelCounters();
      this.attacher.moveNonHttp1GoServers();
      this.attacher.moveTlsGoClients();
      this.goStage.tick();
      // ~0.5 ms each on the development VM: the malloc arenas' free pages go back to the kernel.
      this.deps.backend.releaseFreeMemory?.();
    }, this.deps.tickMs ?? 5000);
    this.tickTimer.unref();
    // The Go client roundTrip probe goes from processes calling fast and comes back
    // (src/tracers/go-client-adoption.ts); two map reads per process on the lean client path.
    this.adoptionTimer = setInterval(() => this.attacher.adoptGoClientConnections(), ADOPTION_TICK_MS);
    this.adoptionTimer.unref();
  }

  private startWatcher(): void {
    const { log } = this.deps;
    const exclusion = new SelfExclusion({
      selfPid: process.pid,
      agentEntry: this.config.agentEntry ?? (process.argv[1] ? resolve(process.argv[1]) : undefined),
      exportEndpoints: this.config.exportEndpoints,
      extraPids: this.config.excludePids,
    });
    this.watcher = this.host.createWatcher(
      this.config.selection,
      {
        onMatch: (proc, reason, how) => this.attacher.onMatch(proc, reason, how),
        onGone: (pid) => this.attacher.onGone(pid),
        onExcluded: (proc: ProcessInfo, reason, exclusion) => {
          if (this.attacher.isTraced(proc.pid)) this.attacher.onGone(proc.pid);
          processesExcluded.add(this.metrics, { reason: exclusion.kind });
          log.info(`not tracing pid ${proc.pid} (${proc.exePath}, matched by ${reason}): ${exclusion.why}`);
        },
      },
      {
        excludePids: new Set([process.pid, ...(this.config.excludePids ?? [])]),
        exclude: (proc) => exclusion.reason(proc),
        // Without exec events, a rescan is the only way to see new processes.
        rescanMs: 2000,
      },
    );
    this.watcher.start();
    if (this.watcher.matchedPids.length === 0) {
      log.warn('no running process matches the selection yet; waiting for matching processes to start');
    }
  }

  /**
   * Every finished span goes to every sink. Sampling (the W3C flag decided in the kernel) is the
   * sinks' business: RED metrics count unsampled requests too; trace outputs drop them.
   */
  private deliver(span: Span): void {
    // Routes once, here, for every tracer: every sink sees the same name and http.route.
    span = this.routes.apply(span);
    for (const sink of this.deps.sinks) sink.add(span);
  }

  private onProcRecord(rec: RingRecord<typeof PROC_EVENTS_OBJECT.maps.proc_events>): void {
    if (this.stopped) return;
    if (rec.type === 'proc_exec') this.watcher?.onExec(rec.pid, rec.tsNs);
    else if (rec.type === 'proc_exit') this.watcher?.onExit(rec.pid, rec.tsNs);
  }

  /** A traced process forked (the kernel already traces the child): the watcher selects it. */
  private onFork(child: number, parent: number, tsNs: bigint): void {
    if (this.stopped) return;
    this.watcher?.onFork(child, parent, tsNs);
    this.attacher.onFork(child, parent, tsNs);
  }

  /** Cumulative kernel-side counters by reason (drops, skips, injections). */
  kernelCounters(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const p of this.metrics.snapshot()) {
      if (p.name === kernelDrops.name) out[p.labels.reason] = p.value;
    }
    return out;
  }

  /** Detaches everything (links destroyed in reverse order), then flushes the sinks. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // Loads still running on worker threads end first; then everything they opened is closed.
    await this.starting?.catch(() => undefined);
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.adoptionTimer) clearInterval(this.adoptionTimer);
    this.watcher?.stop();
    this.tracers.collectKernelCounters();
    const kernel = Object.entries(this.kernelCounters()).filter(([, n]) => n > 0);
    if (kernel.length > 0) this.deps.log.info(`kernel counters: ${kernel.map(([k, n]) => `${k}=${n}`).join(' ')}`);
    // Independent objects: detach them concurrently (each detach waits for kernel RCU grace periods).
    await Promise.all([this.procTracer.close(), this.tracers.close()]);
    this.resources.dispose();
    this.goStage.flush();
    await Promise.all(this.deps.sinks.map((s) => s.shutdown()));
  }
}
