/**
 * The syscall HTTP path as one stage for the agent's wiring: tracer (kernel) -> decoder ->
 * assembler (exchanges -> spans). The agent decides which processes come here (every selected
 * process that is not traced by the Go uprobe tracer) and where spans go.
 */
import type { BpfBackend, RecordHandler } from '../bpf/types';
import { ringHandler, type RingRecord } from '../events/decoder';
import { SYS_HTTP_OBJECT } from '../events/structs.generated';
import type { ProcessInfo } from '../discovery/process-info';
import { openConnections, type OpenConnection } from '../discovery/process-sockets';
import type { SelfMetrics } from '../metrics/counters';
import { SysHttpAssembler } from '../spans/sys-http-assembler';
import type { ResourceOptions } from '../spans/resource';
import type { Resource, Span } from '../spans/span';
import type { UrlRedaction } from '../spans/url-redaction';
import type { Clock } from '../time/clock';
import { isEventLoopRuntime, SysHttpTracer, type GoServerOptions, type SysHttpTracerSettings } from './sys-http-tracer';
import { NginxLinkTracer } from './nginx-link-tracer';
import { NginxLinks } from './nginx-links';
import type { AnyTracer } from './tracer';
import { isNginx, type NginxLinkTarget } from '../discovery/nginx';
import { AsyncioTracer } from './asyncio-tracer';
import { isNode, NodeLinks } from './node-links';
import type { NodeLinkTarget } from '../discovery/node';
import { probeAsyncio, uvloopLoaded, type AsyncioProbe } from '../discovery/python-asyncio';
import { clientSpansUnlinked, openConnectionsRegistered, recordsDecoded, sysHttpConnections } from '../metrics/catalogue';

export interface SysHttpStageDeps {
  readonly backend: BpfBackend;
  readonly objectPath: string;
  readonly clock: Clock;
  readonly metrics: SelfMetrics;
  readonly resourceOf: (pid: number) => Resource | undefined;
  readonly deliver: (span: Span) => void;
  readonly settings?: SysHttpTracerSettings;
  /**
   * A traced process forked a child, which the kernel traces from the fork on
   * (bpf/sys_http/sys_http_lifecycle.h). Called in ring order: before any span of the child.
   */
  readonly onFork?: (child: number, parent: number, tsNs: bigint) => void;
  /** Lists a process's open TCP connections (default: /proc); injectable for tests. */
  readonly openConnections?: (pid: number) => OpenConnection[];
  /** Applied where URL attributes are built (default: DEFAULT_URL_REDACTION). */
  readonly redaction?: UrlRedaction;
  /** bpf/nginx_link.bpf.o: nginx processes get their upstream requests linked (loaded at the first). */
  readonly nginxObjectPath?: string;
  /** Inspects a process's nginx binary (default: /proc/<pid>/exe); injectable for tests. */
  readonly inspectNginx?: (pid: number) => NginxLinkTarget;
  /** The asyncio capability probe of a Python process (default: /proc and its files); injectable for tests. */
  readonly probeAsyncio?: (pid: number) => AsyncioProbe;
  /** Whether uvloop's loop module is mapped in a process (default: /proc/<pid>/maps); injectable for tests. */
  readonly uvloopLoaded?: (pid: number) => boolean;
  /** Uprobes are available, so asyncio tasks can be linked (default true). */
  readonly asyncioUprobes?: boolean;
  /** The Node.js linking probe of a process (default: its binary and /proc/<pid>/maps); injectable for tests. */
  readonly probeNode?: (pid: number) => NodeLinkTarget;
  /** Where a Python process whose asyncio loaded after its attach is reported (the attach line came before). */
  readonly onLateNote?: (pid: number, note: string) => void;
}

/** Runtime of a non-Go process, from its executable name (for resource attributes). */
export function runtimeOf(proc: Pick<ProcessInfo, 'exeName'>): ResourceOptions {
  const n = proc.exeName;
  if (/^python/.test(n)) return { runtime: { name: 'cpython' }, language: 'python' };
  if (isEventLoopRuntime(n)) return { runtime: { name: 'nodejs' }, language: 'nodejs' };
  if (n === 'nginx') return { runtime: { name: 'nginx' }, language: 'cpp' };
  if (n === 'java') return { runtime: { name: 'java' }, language: 'java' };
  return { language: 'unknown' };
}

/** The runtime label of an event-loop executable (`node20` -> `node`). */
function eventLoopName(exeName: string): string {
  return exeName.replace(/(\d+(\.\d+)*)$/, '').replace(/^nodejs$/, 'node');
}

/** Longer than many ring polls (50 ms): records of a detached process are read by then. */
const DETACH_DRAIN_MS = 1000;

export class SysHttpStage {
  readonly tracer: SysHttpTracer;
  readonly asyncio = new AsyncioTracer();
  readonly assembler: SysHttpAssembler;
  /** The syscall tracer's ring-buffer handler: that ring's decoder, bound to this stage. */
  readonly onRecord: RecordHandler;
  /** nginx upstream linking (its object is loaded at the first nginx process). */
  readonly nginx: NginxLinks | undefined;
  /** Node.js linking from node's async ids (no uprobe: bpf/sys_http/sys_http_node_link.h). */
  readonly node: NodeLinks;

  constructor(private readonly d: SysHttpStageDeps) {
    this.decodedData = recordsDecoded.bind(d.metrics, { type: 'sys_http_data' });
    this.decodedRoute = recordsDecoded.bind(d.metrics, { type: 'sys_http_route' });
    this.onRecord = ringHandler(SYS_HTTP_OBJECT.maps.sys_http_events, d.metrics, (rec) => this.onSysRecord(rec));
    this.tracer = new SysHttpTracer(d.backend, d.objectPath, d.settings ?? {});
    this.nginx = d.nginxObjectPath ? new NginxLinks(new NginxLinkTracer(d.backend, d.nginxObjectPath), d.inspectNginx) : undefined;
    this.node = new NodeLinks(() => this.tracer.object, d.probeNode);
    this.assembler = new SysHttpAssembler({
      clock: d.clock,
      metrics: d.metrics,
      resourceOf: d.resourceOf,
      onSpan: (s, pid) => this.onSpan(s, pid),
      redaction: d.redaction,
      hostMayDiffer: (pid) => this.goClientPids.has(pid),
    });
  }

  /**
   * Processes whose client spans without a parent are counted as unlinked, by pid -> runtime label:
   * event loops (thread linking off or their own linking), and Java, whose calls written by other
   * threads than the request's (the JDK HttpClient, executors, virtual threads) have no parent
   * (docs/java-async-linking.md).
   */
  private readonly eventLoops = new Map<number, string>();
  /** Go processes whose client spans this tracer makes (go.client_path: syscall). */
  private readonly goClientPids = new Set<number>();

  private onSpan(span: Span, pid: number): void {
    // A client span of an event loop (or Java) that no incoming or application traceparent
    // parented: its server request, if any, is unknown (docs/node-async-linking.md,
    // docs/java-async-linking.md). Counted, never guessed.
    const runtime = this.eventLoops.get(pid);
    if (runtime !== undefined && span.kind === 'CLIENT' && span.attributes['spanbridge.parent.source'] === undefined) {
      clientSpansUnlinked.add(this.d.metrics, { runtime });
    }
    this.d.deliver(span);
  }

  async start(): Promise<void> {
    await this.tracer.start(this.onRecord);
    this.asyncio.start(this.tracer.object!);
  }

  /** spanbridge_records_total by record type, resolved at each type's first record. */
  private readonly decodedByType = new Map<string, { add(n?: number): void }>();
  /** The two per-request types' counters, bound once (no lookup by type name per record; a series appears at its first record). */
  private readonly decodedData: { add(n?: number): void };
  private readonly decodedRoute: { add(n?: number): void };

  private onSysRecord(rec: RingRecord<typeof SYS_HTTP_OBJECT.maps.sys_http_events>): void {
    if (rec.type === 'sys_http_data' || rec.type === 'sys_http_route') {
      (rec.type === 'sys_http_data' ? this.decodedData : this.decodedRoute).add();
      this.assembler.onRecord(rec);
      return;
    }
    let decoded = this.decodedByType.get(rec.type);
    if (decoded === undefined) {
      decoded = recordsDecoded.bind(this.d.metrics, { type: rec.type });
      this.decodedByType.set(rec.type, decoded);
    }
    decoded.add();
    if (rec.type === 'sys_http_conn_open' || rec.type === 'sys_http_conn_close') {
      this.assembler.onRecord(rec);
      return;
    }
    // Exec/exit come after every record of the process: its connections can go now.
    if (rec.type === 'proc_fork') this.d.onFork?.(rec.pid, rec.ppid, rec.tsNs);
    else this.assembler.dropPid(rec.pid);
  }

  /**
   * Starts tracing a process; returns a note for the attach log line. `byKernel`: a child the
   * kernel traces from its fork; null when it has exec'd or exited since (not traced).
   */
  attach(proc: Pick<ProcessInfo, 'pid' | 'exeName'>, byKernel = false): string | null {
    // nginx serves many requests on one thread: its upstream requests are linked through its own
    // structures (uprobe), or not at all; never by thread.
    const nginx = isNginx(proc.exeName) ? (this.nginx?.attach(proc.pid) ?? { linked: false, note: 'off: no uprobes here; its client spans stay unlinked' }) : undefined;
    const threadLinking = !isEventLoopRuntime(proc.exeName) && nginx === undefined;
    const py = /^python/.test(proc.exeName) ? (this.d.probeAsyncio ?? probeAsyncio)(proc.pid) : ({ kind: 'absent' } as const);
    // An asyncio process's client spans left without a task's request are counted as unlinked.
    if (nginx) this.eventLoops.set(proc.pid, 'nginx');
    else if (!threadLinking) this.eventLoops.set(proc.pid, eventLoopName(proc.exeName));
    else if (py.kind !== 'absent') this.eventLoops.set(proc.pid, 'python');
    else if (proc.exeName === 'java') this.eventLoops.set(proc.pid, 'java');
    else this.eventLoops.delete(proc.pid);
    const { asyncio, note: asyncioNote } = this.linkAsyncio(proc.pid, py);
    const options = { threadLinking, asyncio, nginxLink: nginx?.linked ?? false };
    // asyncio not imported yet (a process selected at its exec): probed again at each tick.
    if (py.kind === 'absent' && /^python/.test(proc.exeName)) this.asyncioPending.set(proc.pid, options);
    else this.asyncioPending.delete(proc.pid);
    if (byKernel) {
      if (!this.tracer.adoptInherited(proc.pid, options)) {
        this.asyncio.detach(proc.pid);
        this.nginx?.detach(proc.pid);
        return null;
      }
      // The kernel copied the parent's mode: set this child's own (asyncio attached or not, nginx
      // uprobe attached or not).
      this.tracer.attach(proc.pid, options);
    } else {
      this.tracer.attach(proc.pid, options);
    }
    // A forked child's open connections are its parent's.
    const open = byKernel ? '' : this.takeOverOpen(proc.pid, () => true);
    // Node: its client calls are linked from node's own async ids where that is exact, never by thread.
    const node = isNode(proc.exeName) ? `, node async linking ${this.node.attach(proc.pid).note}` : '';
    // Java: what thread linking covers there (docs/java-async-linking.md).
    const java = proc.exeName === 'java' ? " (Java: a JDK HttpClient connection's first request through the thread that connected it; never on ForkJoinPool workers, virtual-thread carriers among them)" : '';
    const linking = nginx ? `nginx upstream linking ${nginx.note}` : threadLinking ? `thread linking on${java}` : `thread linking off (event-loop runtime)${node}`;
    return `syscall tracepoints, ${linking}${asyncioNote}${open}`;
  }

  /** Every tracer of this stage with counters of its own (for kernel counters). */
  get tracers(): AnyTracer[] {
    return [this.tracer, ...(this.nginx?.started ? [this.nginx.tracer] : [])];
  }

  /** Attaches asyncio linking when the probe allows it; what to say about it either way. */
  private linkAsyncio(pid: number, py: AsyncioProbe): { asyncio: boolean; note: string } {
    let note = '';
    let asyncio = false;
    if (py.kind === 'linkable' && this.d.asyncioUprobes === false) {
      note = ', asyncio not linked: no uprobes here';
    } else if (py.kind === 'linkable') {
      try {
        note = `, ${this.asyncio.attach(pid, py.target)}`;
        asyncio = true;
      } catch (err) {
        note = `, asyncio not linked: ${err instanceof Error ? err.message : String(err)}`;
      }
    } else if (py.kind === 'unlinkable') {
      note = `, asyncio not linked: ${py.reason}`;
    }
    if (py.kind !== 'absent') this.eventLoops.set(pid, 'python');
    const how = py.kind === 'linkable' ? `CPython ${py.target.version}${py.target.uvloop ? ', uvloop' : ''}` : '';
    this.asyncioStatus.set(pid, py.kind === 'absent' ? null : asyncio ? `linked (${how})` : `not linked: ${note.replace(/^, asyncio not linked: /, '')}`);
    return { asyncio, note };
  }

  /** Python processes traced before they loaded asyncio, with their attach options. */
  private readonly asyncioPending = new Map<number, { threadLinking: boolean; asyncio: boolean; nginxLink: boolean }>();

  /** Probes the pending Python processes again; links those that loaded asyncio since. */
  private probeAsyncioLate(): void {
    for (const [pid, options] of [...this.asyncioPending]) {
      const py = (this.d.probeAsyncio ?? probeAsyncio)(pid);
      if (py.kind === 'absent') continue;
      this.asyncioPending.delete(pid);
      if (!this.tracer.attachedPids.includes(pid)) continue;
      const { asyncio, note } = this.linkAsyncio(pid, py);
      if (asyncio) this.tracer.attach(pid, { ...options, asyncio });
      this.d.onLateNote?.(pid, `${note.replace(/^, /, '')} (asyncio loaded after the attach)`);
    }
    // uvloop imported after asyncio was linked: its callbacks bypass Context.run, so its probes are
    // added (until then its threads step no task the probes see: the thread rules apply there).
    for (const pid of this.asyncio.withoutUvloop) {
      if (this.uvloopProbed.has(pid) || !(this.d.uvloopLoaded ?? uvloopLoaded)(pid)) continue;
      this.uvloopProbed.add(pid); // once: its files do not change
      const py = (this.d.probeAsyncio ?? probeAsyncio)(pid);
      const note = py.kind === 'linkable' ? this.linkAsyncio(pid, py).note : `, uvloop not linked: ${py.kind === 'unlinkable' ? py.reason : 'asyncio not found'}`;
      this.d.onLateNote?.(pid, `${note.replace(/^, /, '')} (uvloop loaded after the attach)`);
    }
  }

  /** Processes whose late uvloop was probed (whatever the outcome). */
  private readonly uvloopProbed = new Set<number>();

  /** Per traced Python process with asyncio loaded: how its tasks are linked, or why not. */
  private readonly asyncioStatus = new Map<number, string | null>();

  /** Asyncio linking of a traced process: null when asyncio is not loaded in it (or not Python). */
  asyncioLinking(pid: number): string | null {
    return this.asyncioStatus.get(pid) ?? null;
  }

  /** A Go process traced by the Go tracer: black-box parents only (never spans from this path). */
  attachGoLink(pid: number, goidOffset: number): void {
    this.tracer.attach(pid, { threadLinking: false, goLinkOnly: true, goidOffset });
    // Only its server connections matter here (Go client calls are the Go tracer's).
    this.takeOverOpen(pid, (c) => c.role === 'server');
  }

  /** A Go process whose server spans come from this tracer (go.server_path: syscall). */
  attachGoServer(pid: number, go: GoServerOptions): string {
    this.eventLoops.delete(pid);
    if (go.client === true) this.goClientPids.add(pid);
    else this.goClientPids.delete(pid);
    this.tracer.attach(pid, { threadLinking: false, goServer: go });
    return this.takeOverOpen(pid, (c) => c.role === 'server' || (go.client === true && c.role === 'client'));
  }

  /**
   * Connections open before the process was selected are taken over by the kernel at their next
   * syscall (after the tracer's entry exists, so none falls between the two). Counted by outcome;
   * returns a note for the attach line.
   */
  private takeOverOpen(pid: number, want: (c: OpenConnection) => boolean): string {
    let conns: OpenConnection[];
    try {
      conns = (this.d.openConnections ?? openConnections)(pid).filter(want);
    } catch {
      return ''; // the process is gone
    }
    if (conns.length === 0) return '';
    const { registered, failed } = this.tracer.adoptOpen(pid, conns);
    if (registered) openConnectionsRegistered.add(this.d.metrics, { outcome: 'registered' }, registered);
    if (failed) openConnectionsRegistered.add(this.d.metrics, { outcome: 'failed' }, failed);
    return `, ${registered} open connection(s) taken over${failed ? ` (${failed} not: map full)` : ''}`;
  }

  /**
   * Stops tracing a process. Its connections are forgotten once the records already in the ring
   * are read: at the kernel's exec/exit record (in ring order), else after DETACH_DRAIN_MS (the
   * exit event that usually causes a detach comes on another, faster ring).
   */
  detach(pid: number): void {
    this.goClientPids.delete(pid);
    this.asyncio.detach(pid);
    this.asyncioStatus.delete(pid);
    this.asyncioPending.delete(pid);
    this.uvloopProbed.delete(pid);
    this.tracer.detach(pid);
    this.nginx?.detach(pid);
    this.node.detach(pid);
    const t = setTimeout(() => {
      if (this.tracer.attachedPids.includes(pid)) return;
      this.assembler.dropPid(pid);
      this.eventLoops.delete(pid);
    }, DETACH_DRAIN_MS);
    t.unref();
  }

  /** Periodic work: ends idle exchanges, updates the connection gauge. */
  tick(): void {
    this.probeAsyncioLate();
    this.assembler.sweep(this.d.clock.nowMonotonic());
    sysHttpConnections.set(this.d.metrics, {}, this.assembler.connectionCount);
  }

  async close(): Promise<void> {
    await this.asyncio.close();
    await Promise.all([this.tracer.close(), this.nginx?.close()]);
  }
}
