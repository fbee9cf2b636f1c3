/**
 * The agent: connects the tracers to their stages and orders start and stop, as drawn in
 * docs/architecture.md. The sinks it delivers to (stdout, the trace view, receiver/) and the BPF
 * backend are built by the command line's wiring (src/cli/main.ts) and handed in.
 *
 *   kernel probes -> ring buffers -> decode (src/events) -> stages (Go: src/spans/go-http-stage,
 *     syscall: src/tracers/sys-http-stage) -> routes -> sinks
 *   process events + /proc scan (src/discovery) -> inspect Go binaries -> attach/detach tracers
 *
 * Still here rather than in named stages: inspection caching, resource lifetimes, the choice of
 * tracer per process and the header-injection strategy at start.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { BpfBackend } from './bpf/types';
import { probeBpfFeatures, type BpfFeatures } from './capabilities/bpf-features';
import { describeCapabilities, probeCapabilities, type Capabilities } from './capabilities/probe';
import { describeStrategies, planStrategies, type StrategyPlan } from './capabilities/strategy';
import { ensureCgroup2, ensureKernelFilesystems, missingRequiredFilesystems } from './bpf/mounts';
import { inspectGoBinary } from './discovery/go/inspect';
import { procRoot, type ProcessInfo } from './discovery/process-info';
import { ProcessWatcher } from './discovery/process-watcher';
import { SelfExclusion } from './discovery/self-exclusion';
import { serviceNameFor, type MatchReason, type Selection } from './discovery/selectors';
import { SpanbridgeError, errorMessage } from './errors';
import { decodeRecord } from './events/decoder';
import type { Logger } from './log';
import { SelfMetrics } from './metrics/counters';
import { GoHttpStage } from './spans/go-http-stage';
import { forkedResource, processResource } from './spans/resource';
import { RouteStage } from './spans/routes/route-stage';
import { DEFAULT_ROUTES, type RoutesSettings } from './spans/routes/route-policy';
import type { Resource, Span } from './spans/span';
import { SystemClock, type Clock } from './time/clock';
import type { UrlRedaction } from './spans/url-redaction';
import { GO_FUNCS, GoHttpTracer, isMemoryInjectionRefused, type GoInjection, type GoTarget } from './tracers/go-http-tracer';
import { ProcEventsTracer } from './tracers/proc-events-tracer';
import { SkInjectTracer } from './tracers/sk-inject-tracer';
import type { AnyTracer } from './tracers/tracer';
import { runtimeOf, SysHttpStage } from './tracers/sys-http-stage';
import type { SysHttpTracerSettings } from './tracers/sys-http-tracer';
import { attaches, binariesInspected, headerInjection, kernelDrops, probesAttached, processesAttached, processesExcluded, processesSkipped } from './metrics/catalogue';

export type InjectHeaders = 'auto' | 'on' | 'off';

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
   * The span tracers' ring buffers wake the agent only once this many bytes wait (bpf/ring_wakeup.h;
   * default DEFAULT_RING_WAKEUP_BYTES; 0: every record). Records below it are read by the
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
}

/**
 * Default wakeup threshold: ~48 Go server records. Below it a record waits at most the backend's
 * poll period (50 ms) instead of costing the traced process a wakeup (~14 us here).
 */
export const DEFAULT_RING_WAKEUP_BYTES = 64 * 1024;
/**
 * 2 MiB per span ring: ~100 ms of records at 14k Go spans/s (~1.4 KB each) while the agent is
 * busy, 32x the wakeup threshold. The compiled-in sizes (4 and 8 MiB) cost 24 MB of agent RSS.
 */
export const DEFAULT_RING_SIZE_BYTES = 2 * 1024 * 1024;

export interface SpanSink {
  add(span: Span): void;
  shutdown(): Promise<void>;
}

export interface AgentDeps {
  readonly backend: BpfBackend;
  readonly log: Logger;
  readonly sinks: readonly SpanSink[];
  readonly metrics?: SelfMetrics;
  readonly clock?: Clock;
  readonly capabilities?: Capabilities;
  /** Program types and helpers the kernel accepts (default: bpftool feature probe). */
  readonly bpfFeatures?: BpfFeatures;
  /** Told about every process attached or detached (the run command's table of what is traced). */
  readonly onAttachment?: (event: AttachmentEvent) => void;
}

export interface AttachedEvent {
  readonly kind: 'attached';
  readonly pid: number;
  readonly service: string;
  readonly exe: string;
  readonly reason: string;
  readonly tracer: string;
  /** uprobe links for this process; null when its probes are shared (syscall tracepoints). */
  readonly probes: number | null;
  readonly notes: readonly string[];
  /** How the process's server spans get http.route, in order of precedence. */
  readonly routes: string;
  /** How traceparent gets into its outgoing requests: Go memory writes, sk_msg, or not at all. */
  readonly injection: 'go_memory' | 'sk_msg' | 'none';
  /** Connections already open when it was selected that sk_msg injection took over. */
  readonly connectionsTakenOver: number;
}

/** A process's selection for socket-level injection: what the table and the log say of it. */
interface SkInjectSelection {
  readonly note: string;
  readonly injected: boolean;
  readonly takenOver: number;
}

export type AttachmentEvent = AttachedEvent | { readonly kind: 'detached'; readonly pid: number };

const RESOURCE_GRACE_MS = 30_000;

/** The process exited while the agent inspected its executable (not a fact about the binary). */
class ProcessGoneError extends SpanbridgeError {
  constructor(pid: number, cause: SpanbridgeError) {
    super('ERR_INSPECT', `pid ${pid} exited during inspection (${cause.message})`, { cause });
  }
}

function firstLine(s: string): string {
  return s.split('\n', 1)[0];
}

export class Agent {
  readonly metrics: SelfMetrics;
  private readonly clock: Clock;
  private goTracer: GoHttpTracer;
  /** Socket-level traceparent injection (sock_ops + sk_msg), where Go memory writes are forbidden. */
  private skInject: SkInjectTracer | undefined;
  private readonly procTracer: ProcEventsTracer;
  /** Any-language HTTP/1.x from syscall tracepoints: every selected process that is not Go. */
  private sysHttp: SysHttpStage | undefined;
  private watcher: ProcessWatcher | undefined;
  /** http.route and span names of every tracer's server spans, bounded per service. */
  private readonly routes: RouteStage;
  private readonly resources = new Map<number, Resource>();
  /** Inspection results per executable (dev:inode), so one binary is inspected once. */
  private readonly targets = new Map<string, GoTarget | SpanbridgeError>();
  private dropTimer: NodeJS.Timeout | undefined;
  /** Go uprobe records -> spans. */
  private readonly goStage: GoHttpStage;
  private stopped = false;

  constructor(
    private readonly config: AgentConfig,
    private readonly deps: AgentDeps,
  ) {
    this.metrics = deps.metrics ?? new SelfMetrics();
    this.clock = deps.clock ?? new SystemClock();
    this.routes = new RouteStage(config.routes ?? DEFAULT_ROUTES, this.metrics, deps.log);
    this.goTracer = this.newGoTracer('none');
    this.goStage = new GoHttpStage({
      clock: this.clock,
      metrics: this.metrics,
      resourceOf: (pid) => this.resources.get(pid),
      deliver: (span) => this.deliver(span),
      redaction: config.urlRedaction,
    });
    this.procTracer = new ProcEventsTracer(deps.backend, join(config.bpfObjectDir, 'proc_events.bpf.o'));
  }

  /** Probes, loads, attaches to what runs now, and starts following new processes. */
  start(): void {
    const { log } = this.deps;
    const mounts = ensureKernelFilesystems();
    for (const o of mounts) {
      if (o.status === 'mounted') log.info(`mounted ${o.fs.fstype} at ${o.fs.target}`);
    }
    if (this.config.injectHeaders !== 'off') {
      // Socket-level injection attaches sock_ops to the cgroup v2 root: mount it before probing so
      // that the plan below sees it (failures are reported by the plan and at sk_msg start).
      const cg = ensureCgroup2();
      if (cg.status === 'mounted') log.info(`mounted cgroup2 at ${cg.path}`);
    }
    const caps = this.deps.capabilities ?? probeCapabilities();
    for (const line of describeCapabilities(caps)) log.info(`capabilities: ${line}`);
    // The same plan `spanbridge doctor` prints (src/capabilities/strategy.ts).
    const plan = planStrategies(caps, this.deps.bpfFeatures ?? probeBpfFeatures(), { injectHeaders: this.config.injectHeaders });
    for (const line of describeStrategies(plan)) log.info(`strategy: ${line}`);
    const missing = [...plan.missing];
    for (const o of missingRequiredFilesystems(mounts)) if (o.status === 'failed') missing.push(o.reason);
    if (missing.length > 0) {
      throw new SpanbridgeError('ERR_PRIVILEGE', `cannot start: missing ${missing.join('; ')}`);
    }
    this.startGoTracer(plan);
    this.startSysHttp(caps);
    try {
      this.procTracer.start((rec) => this.onProcRecord(rec));
      log.info('attached: tracepoints sched/sched_process_exec, sched/sched_process_exit');
    } catch (err) {
      log.warn(`process events unavailable (${errorMessage(err)}); following new processes by /proc rescans only`);
    }

    const exclusion = new SelfExclusion({
      selfPid: process.pid,
      agentEntry: this.config.agentEntry ?? (process.argv[1] ? resolve(process.argv[1]) : undefined),
      exportEndpoints: this.config.exportEndpoints,
      extraPids: this.config.excludePids,
    });
    this.watcher = new ProcessWatcher(
      this.config.selection,
      {
        onMatch: (proc, reason, how) => this.onMatch(proc, reason, how),
        onGone: (pid) => this.onGone(pid),
        onExcluded: (proc, reason, exclusion) => {
          if (this.goTracer.attachedPids.includes(proc.pid) || this.sysHttp?.tracer.attachedPids.includes(proc.pid)) {
            this.onGone(proc.pid);
          }
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
    if (this.config.readyFile) writeFileSync(this.config.readyFile, `${process.pid}\n`, { mode: 0o600 });

    // A scrape or an OTLP export sees the kernel counters as they are now.
    this.metrics.onSnapshot(() => {
      if (this.stopped) return;
      try {
        this.readKernelCounters();
      } catch (err) {
        this.deps.log.warnEvery('drops', 60_000, `reading kernel drop counters failed: ${errorMessage(err)}`);
      }
    });
    this.dropTimer = setInterval(() => {
      this.collectKernelDrops();
      this.goStage.tick();
    }, 5000);
    this.dropTimer.unref();
  }

  /**
   * Header injection, per process: Go processes get memory writes where the kernel allows
   * bpf_probe_write_user (if loading the writing program still fails, an unknown-helper verifier
   * error, reload without it), else sk_msg; every other process gets sk_msg, on any kernel that
   * has it. A Go process in memory mode is never registered with sk_msg: one header, one path.
   */
  private startGoTracer(plan: StrategyPlan): void {
    const { log } = this.deps;
    let injection: GoInjection = plan.goInjection;
    if (injection === 'none' && this.config.injectHeaders === 'on') {
      const why = plan.strategies.find((s) => s.feature === 'go-memory-injection')?.why ?? 'unavailable';
      log.warn(`--inject-headers on, but Go memory injection is unavailable here: ${why}`);
    }
    if (this.config.injectHeaders !== 'off') {
      const why = this.startSkInject();
      if (why === null && injection === 'none') injection = 'socket';
      if (why !== null) {
        log[this.config.injectHeaders === 'on' ? 'warn' : 'info'](`strategy: socket-level sk_msg injection unavailable: ${why}`);
      }
    }
    const onRecord = (rec: Buffer): void => this.goStage.onRecord(rec);
    this.goTracer = this.newGoTracer(injection);
    try {
      this.goTracer.start(onRecord);
    } catch (err) {
      if (injection !== 'memory' || !isMemoryInjectionRefused(err)) throw err;
      log.warn(`strategy: Go memory injection refused by the kernel at load (${firstLine(errorMessage(err))}); reloading without it`);
      injection = this.skInject ? 'socket' : 'none';
      this.goTracer = this.newGoTracer(injection);
      this.goTracer.start(onRecord);
    }
    const where = `sock_ops on cgroup v2 ${this.skInject?.cgroupPath}; traceparent inserted after the request line of outgoing HTTP/1.x requests`;
    if (injection === 'memory') {
      log.info(
        "strategy: header injection: Go memory writes (bpf_probe_write_user into the request's bufio.Writer) for Go processes" +
          (this.skInject ? `; socket-level sk_msg for other languages (${where})` : '; none for other languages'),
      );
    } else if (injection === 'socket') {
      log.info(`strategy: header injection: socket-level sk_msg (${where}, Go and other languages)`);
    }
    headerInjection.set(this.metrics, { runtime: 'go', method: injection === 'memory' ? 'go_memory' : injection === 'socket' ? 'sk_msg' : 'none' }, 1);
    headerInjection.set(this.metrics, { runtime: 'other', method: this.skInject ? 'sk_msg' : 'none' }, 1);
    log.info('attached: go_http tracer loaded (uprobes are attached per process)');
  }

  /** Starts socket-level injection; returns null when it runs, else why it cannot. */
  private startSkInject(): string | null {
    if (this.skInject) return null;
    const cg = ensureCgroup2();
    if (cg.status === 'failed') return cg.reason;
    if (cg.status === 'mounted') this.deps.log.info(`mounted cgroup2 at ${cg.path}`);
    const sk = new SkInjectTracer(this.deps.backend, join(this.config.bpfObjectDir, 'sk_inject.bpf.o'));
    try {
      sk.start(cg.path);
    } catch (err) {
      return firstLine(errorMessage(err));
    }
    this.skInject = sk;
    return null;
  }

  private get ringWakeupBytes(): number {
    return this.config.ringWakeupBytes ?? DEFAULT_RING_WAKEUP_BYTES;
  }

  private get ringSizeBytes(): number {
    return this.config.ringSizeBytes ?? DEFAULT_RING_SIZE_BYTES;
  }

  private newGoTracer(injection: GoInjection): GoHttpTracer {
    return new GoHttpTracer(this.deps.backend, join(this.config.bpfObjectDir, 'go_http.bpf.o'), {
      injection,
      ringWakeupBytes: this.ringWakeupBytes,
      ringSizeBytes: this.ringSizeBytes,
    });
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

  private onProcRecord(buf: Buffer): void {
    const rec = decodeRecord(buf, this.metrics);
    if (!rec || this.stopped) return;
    if (rec.type === 'proc_exec') this.watcher?.onExec(rec.pid, rec.tsNs);
    else if (rec.type === 'proc_exit') this.watcher?.onExit(rec.pid, rec.tsNs);
  }

  private inspect(proc: ProcessInfo): GoTarget {
    let t = this.targets.get(proc.exeKey);
    if (!t) {
      try {
        const started = Date.now();
        const info = inspectGoBinary(proc.exeOpenPath, Object.values(GO_FUNCS));
        t = { goVersion: info.goVersion, functions: info.functions, offsets: info.offsets };
        binariesInspected.add(this.metrics, {});
        this.deps.log.debug(`inspected ${proc.exePath} (${proc.exeKey}) for pid ${proc.pid} in ${Date.now() - started} ms: ${info.goVersion}`);
      } catch (err) {
        const e = err instanceof SpanbridgeError ? err : new SpanbridgeError('ERR_INSPECT', errorMessage(err), { cause: err });
        // A process that exited mid-inspection says nothing about its binary: never cache that
        // (it would send every later process of the binary to the wrong tracer). Its exe link is
        // the test: an exited but not yet reaped process (zombie) keeps /proc/<pid> but loses it.
        if (!existsSync(`${procRoot()}/${proc.pid}/exe`)) throw new ProcessGoneError(proc.pid, e);
        t = e;
      }
      this.targets.set(proc.exeKey, t);
    }
    if (t instanceof SpanbridgeError) throw t;
    return t;
  }

  private onMatch(proc: ProcessInfo, reason: MatchReason, fork?: { forkedFrom: number; byKernel: boolean }): void {
    const { log } = this.deps;
    const who = `pid ${proc.pid} (${proc.exePath}, matched by ${reason}${fork ? `, forked from pid ${fork.forkedFrom}` : ''})`;
    let target: GoTarget;
    try {
      target = this.inspect(proc);
    } catch (err) {
      if (err instanceof ProcessGoneError) {
        log.info(`skip ${who}: it exited before it could be attached`);
        return;
      }
      if (this.attachSysHttp(proc, who, errorMessage(err), reason, fork)) return;
      processesSkipped.add(this.metrics, { reason: 'inspect' });
      log.warn(`skip ${who}: ${errorMessage(err)}`);
      return;
    }
    const resource = processResource(proc, {
      runtime: { name: 'go', version: target.goVersion },
      language: 'go',
      serviceNameOverride: serviceNameFor(this.config.selection, reason),
    });
    this.resources.set(proc.pid, resource);
    const hasPattern = target.offsets['net/http.Request.Pattern'] !== undefined;
    const routes = this.routes.register(resource, reason, hasPattern ? 'Go ServeMux pattern (Request.Pattern)' : undefined);
    try {
      const result = this.goTracer.attach(proc.pid, proc.exeOpenPath, target);
      if (this.linkGoBlackBox(proc.pid, target)) result.notes.push('same-node black-box parents from syscall tracepoints');
      let sk: SkInjectSelection | undefined;
      if (this.goTracer.injection === 'socket' && this.skInject) {
        sk = this.selectForSkInject(proc.pid);
        result.notes.push(sk.note.replace(/^; /, ''));
      }
      const injection = this.goTracer.injection === 'memory' ? 'go_memory' : sk?.injected ? 'sk_msg' : 'none';
      const notes = result.notes.length > 0 ? `; ${result.notes.join('; ')}` : '';
      log.info(`attached ${who}: ${target.goVersion}, service.name=${resource.attributes['service.name']}, ${result.links} uprobes${notes}; routes: ${routes}`);
      this.announceAttached(proc, resource, reason, {
        tracer: `Go uprobes (${target.goVersion})`,
        probes: result.links,
        notes: result.notes,
        routes,
        injection,
        connectionsTakenOver: sk?.takenOver ?? 0,
      }, 'go_http');
      this.reportAttached();
    } catch (err) {
      this.resources.delete(proc.pid);
      processesSkipped.add(this.metrics, { reason: 'attach' });
      log.warn(`skip ${who}: ${errorMessage(err)}`);
    }
  }

  /**
   * A traced process forked (the kernel already traces the child): the watcher selects it. A
   * child gone (exited, exec'd) before that still has records in the ring: they get a resource
   * derived from the parent's, released after the grace period.
   */
  private onFork(child: number, parent: number, tsNs: bigint): void {
    if (this.stopped) return;
    this.watcher?.onFork(child, parent, tsNs);
    const from = this.resources.get(parent);
    if (this.resources.has(child) || !from) return;
    this.resources.set(child, forkedResource(from, child, tsNs));
    const t = setTimeout(() => {
      if (!this.sysHttp?.tracer.attachedPids.includes(child)) this.resources.delete(child);
    }, RESOURCE_GRACE_MS);
    t.unref();
  }

  /** Tells `onAttachment` that a selected process is now traced, and how. */
  private announceAttached(
    proc: ProcessInfo,
    resource: Resource,
    reason: MatchReason,
    how: Pick<AttachedEvent, 'tracer' | 'probes' | 'notes' | 'routes' | 'injection' | 'connectionsTakenOver'>,
    tracer: 'go_http' | 'sys_http',
  ): void {
    attaches.add(this.metrics, { tracer });
    this.deps.onAttachment?.({
      kind: 'attached',
      pid: proc.pid,
      service: String(resource.attributes['service.name']),
      exe: proc.exePath,
      reason,
      tracer: how.tracer,
      probes: how.probes,
      notes: how.notes,
      routes: how.routes,
      injection: how.injection,
      connectionsTakenOver: how.connectionsTakenOver,
    });
  }

  private onGone(pid: number): void {
    this.detachSysHttp(pid);
    this.skInject?.detach(pid);
    if (!this.goTracer.attachedPids.includes(pid)) return;
    this.goTracer.detach(pid);
    this.deps.log.info(`detached pid ${pid} (exited)`);
    this.deps.onAttachment?.({ kind: 'detached', pid });
    this.reportAttached();
    // Records already in the ring buffer still need the resource for a moment.
    const t = setTimeout(() => {
      if (this.goTracer.attachedPids.includes(pid)) return;
      this.goStage.release(pid);
      this.resources.delete(pid);
    }, RESOURCE_GRACE_MS);
    t.unref();
  }

  /** Loads the syscall HTTP tracer when syscall tracepoints exist; Go tracing works without it. */
  private startSysHttp(caps: Capabilities): void {
    const { log } = this.deps;
    if (!caps.syscallTracepoints) {
      log.warn('strategy: HTTP/1.x for non-Go processes: unavailable (no syscall tracepoints)');
      return;
    }
    const stage = new SysHttpStage({
      backend: this.deps.backend,
      objectPath: join(this.config.bpfObjectDir, 'sys_http.bpf.o'),
      clock: this.clock,
      metrics: this.metrics,
      resourceOf: (pid) => this.resources.get(pid),
      deliver: (span) => this.deliver(span),
      // Children of traced processes are traced by the kernel from their fork; this selects them.
      onFork: (child, parent, tsNs) => this.onFork(child, parent, tsNs),
      redaction: this.config.urlRedaction,
      // Client contexts decided at write enter go to the sk_msg injector when it runs.
      settings: { ...this.config.sysHttp, socketInjection: this.skInject !== undefined, ringWakeupBytes: this.ringWakeupBytes, ringSizeBytes: this.ringSizeBytes },
    });
    try {
      stage.start();
      this.sysHttp = stage;
      log.info(`strategy: HTTP/1.x for non-Go processes: syscall tracepoints (${stage.tracer.tracepointCount} attached); same-node black-box correlation on`);
    } catch (err) {
      log.warn(`strategy: HTTP/1.x for non-Go processes: unavailable (${firstLine(errorMessage(err))})`);
    }
  }

  /** A selected process that is not a (traceable) Go binary goes to the syscall tracer. */
  private attachSysHttp(proc: ProcessInfo, who: string, notGo: string, reason: MatchReason, fork?: { forkedFrom: number; byKernel: boolean }): boolean {
    if (!this.sysHttp) return false;
    const byKernel = fork?.byKernel ?? false;
    try {
      // A forked worker is its parent's service, also when it rewrote its environment (nginx).
      const parentService = fork && this.resources.get(fork.forkedFrom)?.attributes['service.name'];
      const serviceNameOverride = serviceNameFor(this.config.selection, reason) ?? (typeof parentService === 'string' ? parentService : undefined);
      const resource = processResource(proc, { ...runtimeOf(proc), serviceNameOverride });
      this.resources.set(proc.pid, resource);
      const routes = this.routes.register(resource, reason);
      const traced = this.sysHttp.attach(proc, byKernel);
      if (traced === null) {
        // The kernel traced it from its fork and released it at exec/exit: decided by that event.
        this.resources.delete(proc.pid);
        this.deps.log.info(`skip ${who}: it exec'd or exited since its fork`);
        return true;
      }
      const sk = this.selectForSkInject(proc.pid, byKernel);
      const note = traced + sk.note;
      this.deps.log.info(`attached ${who}: HTTP/1.x via ${note}, service.name=${resource.attributes['service.name']} (Go tracer: ${firstLine(notGo)}); routes: ${routes}`);
      this.announceAttached(proc, resource, reason, {
        tracer: 'syscall tracepoints (HTTP/1.x)',
        probes: null,
        notes: [note],
        routes,
        injection: sk.injected ? 'sk_msg' : 'none',
        connectionsTakenOver: sk.takenOver,
      }, 'sys_http');
      return true;
    } catch (err) {
      this.resources.delete(proc.pid);
      this.deps.log.warn(`syscall tracing of ${who} failed: ${errorMessage(err)}`);
      return false;
    }
  }

  /** Outgoing connections of a process traced by the syscall tracer get sk_msg injection. */
  private selectForSkInject(pid: number, byKernel = false): SkInjectSelection {
    if (!this.skInject) return { note: '', injected: false, takenOver: 0 };
    try {
      // A child selected by the kernel at its fork keeps that entry (never re-added after an exec).
      if (byKernel) {
        return this.skInject.adoptInherited(pid)
          ? { note: '; traceparent injection: sk_msg (new connections, from its fork)', injected: true, takenOver: 0 }
          : { note: "; no traceparent injection (exec'd since its fork)", injected: false, takenOver: 0 };
      }
      this.skInject.attach(pid);
      // Connections opened before now (keep-alive pools) are taken over too.
      const { registered, failed } = this.skInject.registerExisting(pid);
      const existing = registered + failed > 0 ? `, ${registered} existing connection(s) taken over${failed ? `, ${failed} not` : ''}` : '';
      return { note: `; traceparent injection: sk_msg (new connections${existing})`, injected: true, takenOver: registered };
    } catch (err) {
      return { note: `; no traceparent injection (${errorMessage(err)})`, injected: false, takenOver: 0 };
    }
  }

  /** Go servers get black-box parents from the syscall tracer (never spans: no double reporting). */
  private linkGoBlackBox(pid: number, target: GoTarget): boolean {
    const goid = target.offsets['runtime.g.goid'];
    if (goid === undefined) return false;
    try {
      this.sysHttp?.attachGoLink(pid, goid);
      return this.sysHttp !== undefined;
    } catch (err) {
      this.deps.log.warn(`black-box correlation for Go pid ${pid} unavailable: ${errorMessage(err)}`);
      return false;
    }
  }

  private detachSysHttp(pid: number): void {
    if (!this.sysHttp?.tracer.attachedPids.includes(pid)) return;
    this.sysHttp.detach(pid);
    if (!this.goTracer.attachedPids.includes(pid)) {
      this.deps.log.info(`detached pid ${pid} (exited)`);
      this.deps.onAttachment?.({ kind: 'detached', pid });
    }
    const t = setTimeout(() => {
      if (!this.sysHttp?.tracer.attachedPids.includes(pid) && !this.goTracer.attachedPids.includes(pid)) this.resources.delete(pid);
    }, RESOURCE_GRACE_MS);
    t.unref();
  }

  private reportAttached(): void {
    processesAttached.set(this.metrics, {}, this.goTracer.attachedPids.length);
    probesAttached.set(this.metrics, { tracer: 'go_http' }, this.goTracer.linkCount);
  }

  /** Cumulative kernel-side counters by reason (drops, skips, injections). */
  kernelCounters(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const p of this.metrics.snapshot()) {
      if (p.name === kernelDrops.name) out[p.labels.reason] = p.value;
    }
    return out;
  }

  private collectKernelDrops(): void {
    try {
      this.sysHttp?.tick();
      this.readKernelCounters();
    } catch (err) {
      this.deps.log.warnEvery('drops', 60_000, `reading kernel drop counters failed: ${errorMessage(err)}`);
    }
  }

  /** Copies every tracer's kernel counters into `spanbridge_kernel_drops`. */
  private readKernelCounters(): void {
    const tracers: AnyTracer[] = [this.goTracer, ...(this.skInject ? [this.skInject] : []), ...(this.sysHttp ? [this.sysHttp.tracer] : [])];
    for (const t of tracers) {
      for (const [reason, n] of Object.entries(t.kernelCounters())) kernelDrops.set(this.metrics, { reason }, n);
    }
  }

  /** Detaches everything (links destroyed in reverse order), then flushes the sinks. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.dropTimer) clearInterval(this.dropTimer);
    this.watcher?.stop();
    this.collectKernelDrops();
    const kernel = Object.entries(this.kernelCounters()).filter(([, n]) => n > 0);
    if (kernel.length > 0) this.deps.log.info(`kernel counters: ${kernel.map(([k, n]) => `${k}=${n}`).join(' ')}`);
    // Independent objects: detach them concurrently (each detach waits for kernel RCU grace periods).
    await Promise.all([this.procTracer.close(), this.goTracer.close(), this.skInject?.close(), this.sysHttp?.close()]);
    this.goStage.flush();
    await Promise.all(this.deps.sinks.map((s) => s.shutdown()));
  }
}
