/**
 * Carries out the attach plan for each process the watcher selects or lets go: registers its
 * resource and routes, attaches the chosen tracer and socket-level injection, tells the run
 * command's table, and on exit detaches and releases the resource after its grace period.
 */
import type { ProcessInfo } from '../discovery/process-info';
import { serviceNameFor, type MatchReason, type Selection } from '../discovery/selectors';
import { errorMessage } from '../errors';
import type { Logger } from '../log';
import { attaches, processesSkipped } from '../metrics/catalogue';
import type { SelfMetrics } from '../metrics/counters';
import type { GoHttpStage } from '../spans/go-http-stage';
import { forkedResource, processResource } from '../spans/resource';
import type { RouteStage } from '../spans/routes/route-stage';
import type { Resource } from '../spans/span';
import type { AttachResult, GoClientPath, GoServerPath, GoTarget } from '../tracers/go-http-tracer';
import type { GoServerOptions } from '../tracers/sys-http-tracer';
import { chooseGoClientPath, chooseGoServerPath, DEFAULT_GO_CLIENT_PATH, DEFAULT_GO_SERVER_PATH } from '../tracers/go-server-path';
import { runtimeOf } from '../tracers/sys-http-stage';
import { planAttach } from './attach-planner';
import type { InspectionCache } from './inspection-cache';
import type { ResourceLifetimes } from './resource-lifetimes';
import { firstLine, type TracerSet } from './tracer-set';

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
  /** Go processes: where their server spans come from (go.server_path); null for other runtimes. */
  readonly serverSpans: 'uprobes' | 'syscall' | null;
  /** Go processes: where their client spans come from (go.client_path); null for other runtimes. */
  readonly clientSpans: 'uprobes' | 'syscall' | null;
}

/** A process's selection for socket-level injection: what the table and the log say of it. */
interface SkInjectSelection {
  readonly note: string;
  readonly injected: boolean;
  readonly takenOver: number;
}

export type AttachmentEvent = AttachedEvent | { readonly kind: 'detached'; readonly pid: number };

export type ForkInfo = { readonly forkedFrom: number; readonly byKernel: boolean };

export interface ProcessAttacherDeps {
  readonly selection: Selection;
  readonly log: Logger;
  readonly metrics: SelfMetrics;
  readonly tracers: TracerSet;
  readonly goStage: GoHttpStage;
  readonly routes: RouteStage;
  readonly resources: ResourceLifetimes;
  readonly inspection: InspectionCache;
  readonly onAttachment?: (event: AttachmentEvent) => void;
  /** Where Go HTTP/1 server spans come from (setting go.server_path; default DEFAULT_GO_SERVER_PATH). */
  readonly goServerPath?: GoServerPath;
  /** Where Go HTTP/1 client spans come from (setting go.client_path; default DEFAULT_GO_CLIENT_PATH). */
  readonly goClientPath?: GoClientPath;
}

export class ProcessAttacher {
  /** Go processes whose server spans come from the syscall tracer (go.server_path syscall). */
  private readonly goSyscallServers = new Map<number, { exe: string; target: GoTarget; goServer: GoServerOptions; clientSyscall: boolean }>();
  /** What was last said of each traced process (re-said when its server-span path moves). */
  private readonly announced = new Map<number, AttachedEvent>();

  constructor(private readonly d: ProcessAttacherDeps) {}

  /** A process now matches the selection. */
  onMatch(proc: ProcessInfo, reason: MatchReason, fork?: ForkInfo): void {
    const { log } = this.d;
    const who = `pid ${proc.pid} (${proc.exePath}, matched by ${reason}${fork ? `, forked from pid ${fork.forkedFrom}` : ''})`;
    const plan = planAttach(proc, this.d.inspection, this.d.tracers.sys !== undefined);
    switch (plan.kind) {
      case 'gone':
        log.info(`skip ${who}: it exited before it could be attached`);
        return;
      case 'go':
        this.attachGo(proc, who, reason, plan.target);
        return;
      case 'syscall':
        if (this.attachSysHttp(proc, who, plan.notGo, reason, fork)) return;
        processesSkipped.add(this.d.metrics, { reason: 'inspect' });
        log.warn(`skip ${who}: ${plan.notGo}`);
        return;
      case 'skip':
        processesSkipped.add(this.d.metrics, { reason: 'inspect' });
        log.warn(`skip ${who}: ${plan.why}`);
    }
  }

  private attachGo(proc: ProcessInfo, who: string, reason: MatchReason, target: GoTarget): void {
    const { log, tracers } = this.d;
    const resource = processResource(proc, {
      runtime: { name: 'go', version: target.goVersion },
      language: 'go',
      serviceNameOverride: serviceNameFor(this.d.selection, reason),
    });
    this.d.resources.set(proc.pid, resource);
    const hasPattern = target.offsets['net/http.Request.Pattern'] !== undefined;
    const routes = this.d.routes.register(resource, reason, hasPattern ? 'Go ServeMux pattern (Request.Pattern)' : undefined);
    try {
      const result = this.attachGoTracers(proc.pid, proc.exeOpenPath, target);
      const sk = tracers.go.injection === 'socket' && tracers.sk ? this.selectForSkInject(proc.pid) : undefined;
      if (sk) result.notes.push(sk.note.replace(/^; /, ''));
      const injection = tracers.go.injection === 'memory' ? 'go_memory' : sk?.injected ? 'sk_msg' : 'none';
      const notes = result.notes.length > 0 ? `; ${result.notes.join('; ')}` : '';
      log.info(`attached ${who}: ${target.goVersion}, service.name=${resource.attributes['service.name']}, ${result.links} uprobes${notes}; routes: ${routes}`);
      this.announce(proc, resource, reason, 'go_http', {
        tracer: `Go uprobes (${target.goVersion})${result.path === 'syscall' ? ' + syscall tracepoints' : ''}`,
        probes: result.links,
        notes: result.notes,
        routes,
        injection,
        connectionsTakenOver: sk?.takenOver ?? 0,
        serverSpans: this.goSyscallServers.has(proc.pid) ? 'syscall' : 'uprobes',
        clientSpans: this.goSyscallServers.get(proc.pid)?.clientSyscall ? 'syscall' : 'uprobes',
      });
      tracers.reportAttached();
    } catch (err) {
      this.d.resources.delete(proc.pid);
      processesSkipped.add(this.d.metrics, { reason: 'attach' });
      log.warn(`skip ${who}: ${errorMessage(err)}`);
    }
  }

  /** A selected process that is not a (traceable) Go binary goes to the syscall tracer. */
  private attachSysHttp(proc: ProcessInfo, who: string, notGo: string, reason: MatchReason, fork?: ForkInfo): boolean {
    const sys = this.d.tracers.sys;
    if (!sys) return false;
    const byKernel = fork?.byKernel ?? false;
    try {
      // A forked worker is its parent's service, also when it rewrote its environment (nginx).
      const parentService = fork && this.d.resources.get(fork.forkedFrom)?.attributes['service.name'];
      const serviceNameOverride = serviceNameFor(this.d.selection, reason) ?? (typeof parentService === 'string' ? parentService : undefined);
      const resource = processResource(proc, { ...runtimeOf(proc), serviceNameOverride });
      this.d.resources.set(proc.pid, resource);
      const routes = this.d.routes.register(resource, reason);
      const traced = sys.attach(proc, byKernel);
      if (traced === null) {
        // The kernel traced it from its fork and released it at exec/exit: decided by that event.
        this.d.resources.delete(proc.pid);
        this.d.log.info(`skip ${who}: it exec'd or exited since its fork`);
        return true;
      }
      const sk = this.selectForSkInject(proc.pid, byKernel);
      const note = traced + sk.note;
      this.d.log.info(`attached ${who}: HTTP/1.x via ${note}, service.name=${resource.attributes['service.name']} (Go tracer: ${firstLine(notGo)}); routes: ${routes}`);
      this.announce(proc, resource, reason, 'sys_http', {
        tracer: 'syscall tracepoints (HTTP/1.x)',
        probes: null,
        notes: [note],
        routes,
        injection: sk.injected ? 'sk_msg' : 'none',
        connectionsTakenOver: sk.takenOver,
        serverSpans: null,
        clientSpans: null,
      });
      return true;
    } catch (err) {
      this.d.resources.delete(proc.pid);
      this.d.log.warn(`syscall tracing of ${who} failed: ${errorMessage(err)}`);
      return false;
    }
  }

  /**
   * sk_msg began to run after these processes were attached (it loaded after the span tracers):
   * each that would have been selected for it at its attach is selected now, and what is said of
   * it (log, table) says so. Go processes only with socket-level injection (never with memory writes).
   */
  selectAttachedForSkInject(): void {
    const { tracers, log } = this.d;
    for (const [pid, event] of [...this.announced]) {
      if (event.injection !== 'none') continue;
      if (tracers.go.attachedPids.includes(pid) && tracers.go.injection !== 'socket') continue;
      const sk = this.selectForSkInject(pid);
      log.info(`pid ${pid}: ${sk.note.replace(/^; /, '')}`);
      if (!sk.injected) continue;
      this.emit({ ...event, injection: 'sk_msg', connectionsTakenOver: sk.takenOver, notes: [...event.notes, sk.note.replace(/^; /, '')] });
    }
  }

  /** Outgoing connections of a process get sk_msg injection (when it runs). */
  private selectForSkInject(pid: number, byKernel = false): SkInjectSelection {
    const sk = this.d.tracers.sk;
    if (!sk) return { note: '', injected: false, takenOver: 0 };
    try {
      // A child selected by the kernel at its fork keeps that entry (never re-added after an exec).
      if (byKernel) {
        return sk.adoptInherited(pid)
          ? { note: '; traceparent injection: sk_msg (new connections, from its fork)', injected: true, takenOver: 0 }
          : { note: "; no traceparent injection (exec'd since its fork)", injected: false, takenOver: 0 };
      }
      sk.attach(pid);
      // Connections opened before now (keep-alive pools) are taken over too.
      const { registered, failed } = sk.registerExisting(pid);
      const existing = registered + failed > 0 ? `, ${registered} existing connection(s) taken over${failed ? `, ${failed} not` : ''}` : '';
      return { note: `; traceparent injection: sk_msg (new connections${existing})`, injected: true, takenOver: registered };
    } catch (err) {
      return { note: `; no traceparent injection (${errorMessage(err)})`, injected: false, takenOver: 0 };
    }
  }

  /**
   * Attaches the Go tracer, and the syscall tracer for the server spans (go.server_path syscall,
   * where this binary allows it: src/tracers/go-server-path.ts) or for black-box parents only.
   */
  private attachGoTracers(pid: number, exe: string, target: GoTarget): AttachResult & { readonly path: GoServerPath } {
    const { go, sys } = this.d.tracers;
    const server = chooseGoServerPath(this.d.goServerPath ?? DEFAULT_GO_SERVER_PATH, target, sys !== undefined);
    if (server.goServer && sys) {
      const client = chooseGoClientPath(this.d.goClientPath ?? DEFAULT_GO_CLIENT_PATH, 'syscall', go.injection, target);
      const result = go.attach(pid, exe, target, 'syscall', client.path);
      try {
        const open = sys.attachGoServer(pid, { ...server.goServer, client: client.path === 'syscall' });
        this.goSyscallServers.set(pid, { exe, target, goServer: server.goServer, clientSyscall: client.path === 'syscall' });
        return { links: result.links, notes: [server.note, client.note, ...result.notes, `same-node black-box parents from syscall tracepoints${open}`], path: 'syscall' };
      } catch (err) {
        // Without the syscall side this process would have no server spans: back to uprobes.
        go.detach(pid);
        const again = go.attach(pid, exe, target, 'uprobes');
        return { links: again.links, notes: [`server spans: uprobes (syscall tracer refused the process: ${errorMessage(err)})`, ...again.notes], path: 'uprobes' };
      }
    }
    const result = go.attach(pid, exe, target, 'uprobes');
    const client = chooseGoClientPath(this.d.goClientPath ?? DEFAULT_GO_CLIENT_PATH, 'uprobes', go.injection, target);
    result.notes.unshift(server.note, client.note);
    if (this.linkGoBlackBox(pid, target)) result.notes.push('same-node black-box parents from syscall tracepoints');
    return { ...result, path: 'uprobes' };
  }

  /**
   * Go servers on the syscall path that accepted connections which are not HTTP/1.x in clear text
   * (TLS, HTTP/2) go back to uprobes: that path has no span for those requests, ServeHTTP does.
   * Called periodically (the agent's tick).
   */
  moveNonHttp1GoServers(): void {
    const { go, sys } = this.d.tracers;
    for (const pid of sys?.tracer.goServersNotHttp1() ?? []) {
      const at = this.goSyscallServers.get(pid);
      this.goSyscallServers.delete(pid);
      if (!at || !go.attachedPids.includes(pid)) continue;
      try {
        go.detach(pid);
        const r = go.attach(pid, at.exe, at.target, 'uprobes');
        this.linkGoBlackBox(pid, at.target);
        this.d.log.warn(`pid ${pid}: accepted connections that are not HTTP/1.x in clear text (TLS or HTTP/2); its server spans come from uprobes from now on (${r.links} uprobes)`);
        const was = this.announced.get(pid);
        if (was) this.emit({ ...was, probes: r.links, serverSpans: 'uprobes', clientSpans: 'uprobes' });
        this.d.tracers.reportAttached();
      } catch (err) {
        this.d.log.warn(`pid ${pid}: moving its server spans to uprobes failed: ${errorMessage(err)}`);
      }
    }
  }

  /**
   * Go processes whose client spans come from the syscall tracer (go.client_path syscall) that
   * opened TLS client connections (HTTPS calls) move their client spans to uprobes: the syscall path
   * has no span for those calls (their writes are TLS records), the uprobes at roundTrip do. Their
   * server spans stay on the syscall path. Called periodically (the agent's tick).
   */
  moveTlsGoClients(): void {
    const { go, sys } = this.d.tracers;
    for (const pid of sys?.tracer.goClientsWithTls() ?? []) {
      const at = this.goSyscallServers.get(pid);
      if (!sys || !at?.clientSyscall || !go.attachedPids.includes(pid)) continue;
      this.goSyscallServers.set(pid, { ...at, clientSyscall: false });
      try {
        go.detach(pid);
        const r = go.attach(pid, at.exe, at.target, 'syscall', 'uprobes');
        sys.attachGoServer(pid, { ...at.goServer, client: false });
        this.d.log.warn(`pid ${pid}: made HTTPS calls (TLS client connections); its client spans come from uprobes from now on (${r.links} uprobes)`);
        const was = this.announced.get(pid);
        if (was) this.emit({ ...was, probes: r.links, clientSpans: 'uprobes', notes: was.notes.map((n) => (n.startsWith('client spans: ') ? 'client spans: uprobes (moved: the process made HTTPS calls)' : n)) });
        this.d.tracers.reportAttached();
      } catch (err) {
        this.d.log.warn(`pid ${pid}: moving its client spans to uprobes failed: ${errorMessage(err)}`);
      }
    }
  }

  /**
   * Go processes on the lean client path: the roundTrip probe goes from a process calling fast and
   * comes back (src/tracers/go-client-adoption.ts); said in the log.
   */
  adoptGoClientConnections(): void {
    for (const c of this.d.tracers.go.tickAdoption()) {
      if (c.error) this.d.log.warn(`pid ${c.pid}: attaching the Go client roundTrip probe failed: ${c.error}`);
      else if (c.adopting) this.d.log.info(`pid ${c.pid}: Go client roundTrip probe attached (one uprobe per call: names connections from before the attach and callers a request is written ahead of)`);
      else this.d.log.info(`pid ${c.pid}: Go client calls faster than the roundTrip probe's limit (go.client_caller_probe_max_rate) and every connection known: probe taken away, no uprobe per call`);
    }
  }

  /** Go servers get black-box parents from the syscall tracer (never spans: no double reporting). */
  private linkGoBlackBox(pid: number, target: GoTarget): boolean {
    const goid = target.offsets['runtime.g.goid'];
    const sys = this.d.tracers.sys;
    if (goid === undefined || !sys) return false;
    try {
      sys.attachGoLink(pid, goid);
      return true;
    } catch (err) {
      this.d.log.warn(`black-box correlation for Go pid ${pid} unavailable: ${errorMessage(err)}`);
      return false;
    }
  }

  /**
   * A traced process forked (the kernel already traces the child). A child gone (exited, exec'd)
   * before the watcher selects it still has records in the ring: they get a resource derived from
   * the parent's, released after the grace period.
   */
  onFork(child: number, parent: number, tsNs: bigint): void {
    const from = this.d.resources.get(parent);
    if (this.d.resources.has(child) || !from) return;
    this.d.resources.set(child, forkedResource(from, child, tsNs));
    this.d.resources.releaseLater(child);
  }

  /** A matched process exited (or no longer matches, or became excluded). */
  onGone(pid: number): void {
    const { tracers } = this.d;
    this.goSyscallServers.delete(pid);
    const wasGo = tracers.go.attachedPids.includes(pid);
    const wasSys = tracers.sys?.tracer.attachedPids.includes(pid) ?? false;
    if (wasSys) tracers.sys?.detach(pid);
    tracers.sk?.detach(pid);
    if (wasGo) tracers.go.detach(pid);
    if (!wasGo && !wasSys) return;
    this.announced.delete(pid);
    this.d.log.info(`detached pid ${pid} (exited)`);
    this.d.onAttachment?.({ kind: 'detached', pid });
    if (wasGo) tracers.reportAttached();
    // Records already in the ring buffers still need the resource for a moment.
    this.d.resources.releaseLater(pid, wasGo ? () => this.d.goStage.release(pid) : undefined);
  }

  /** Whether a tracer traces `pid` now. */
  isTraced(pid: number): boolean {
    return this.d.tracers.isTraced(pid);
  }

  /** Tells `onAttachment` that a selected process is now traced, and how. */
  private announce(
    proc: ProcessInfo,
    resource: Resource,
    reason: MatchReason,
    tracer: 'go_http' | 'sys_http',
    how: Pick<AttachedEvent, 'tracer' | 'probes' | 'notes' | 'routes' | 'injection' | 'connectionsTakenOver' | 'serverSpans' | 'clientSpans'>,
  ): void {
    attaches.add(this.d.metrics, { tracer });
    this.emit({
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
      serverSpans: how.serverSpans,
      clientSpans: how.clientSpans,
    });
  }

  /** Tells `onAttachment` how a process is traced (again, when that changed). */
  private emit(event: AttachedEvent): void {
    this.announced.set(event.pid, event);
    this.d.onAttachment?.(event);
  }
}
