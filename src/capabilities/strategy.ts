/**
 * Capabilities decide strategies, once, at start (ARCHITECTURE invariant 5). This is the ONE
 * place that maps what the kernel allows (probe.ts facts, libbpf's load probes in bpf-features.ts) to what each
 * feature will use here and why. `run` logs the plan at start-up and follows it; `doctor` prints
 * the same plan. A pure function: unit-tested on fabricated kernels.
 */
import type { BpfFeatures } from './bpf-features';
import { DEFAULT_GO_CLIENT_PATH, DEFAULT_GO_SERVER_PATH } from '../tracers/go-server-path';
import { missingEssentials, type Capabilities } from './probe';

export type FeatureId =
  | 'go-spans'
  | 'any-language-http'
  | 'go-memory-injection'
  | 'sk-msg-injection'
  | 'process-following'
  | 'black-box-correlation'
  | 'in-process-linking';

/** on: used; fallback: a lesser way is used; off: disabled by configuration; unavailable: not here. */
export type StrategyStatus = 'on' | 'fallback' | 'off' | 'unavailable';

export interface Strategy {
  readonly feature: FeatureId;
  readonly title: string;
  readonly status: StrategyStatus;
  /** What is used (or would be), in a few words. */
  readonly strategy: string;
  /** Why: the facts that decided it. */
  readonly why: string;
}

export interface StrategyPlan {
  readonly strategies: readonly Strategy[];
  /** How the Go tracer injects traceparent. */
  readonly goInjection: 'memory' | 'none';
  /** What is missing for the agent to run at all (empty: it can run). */
  readonly missing: readonly string[];
}

export interface StrategyOptions {
  readonly injectHeaders: 'auto' | 'on' | 'off';
  /** Setting go.client_path (default DEFAULT_GO_CLIENT_PATH); only with go.server_path syscall. */
  readonly goClientPath?: 'uprobes' | 'syscall';
  /** Setting go.server_path (default DEFAULT_GO_SERVER_PATH). */
  readonly goServerPath?: 'syscall' | 'uprobes';
}

/**
 * Socket-level injection (sock_ops + sk_msg, src/tracers/sk-inject-tracer.ts) is wired in
 * src/agent.ts: used where Go memory writes are forbidden, for Go and syscall-traced processes.
 */
export const SK_MSG_INJECTION_WIRED = true;

const yesNo = (b: boolean | null): string => (b === null ? 'unknown' : b ? 'yes' : 'no');

export function planStrategies(caps: Capabilities, features: BpfFeatures, options: StrategyOptions): StrategyPlan {
  const strategies: Strategy[] = [];
  const missing = [...missingEssentials(caps)];
  if (!caps.uprobes) missing.push('uprobes (CONFIG_UPROBE_EVENTS) for Go tracing');

  const goSyscall = (options.goServerPath ?? DEFAULT_GO_SERVER_PATH) === 'syscall' && caps.syscallTracepoints && features.bpfLoop !== false;
  const goClientSyscall = goSyscall && (options.goClientPath ?? DEFAULT_GO_CLIENT_PATH) === 'syscall';
  strategies.push(
    caps.uprobes
      ? {
          feature: 'go-spans',
          title: 'Go net/http server and client spans',
          status: 'on',
          strategy: goSyscall
            ? "server spans from syscall tracepoints, the goroutine read from the thread's TLS (go.server_path syscall; one uprobe per connection at (*net/http.conn).serve for the route; uprobes at ServeHTTP instead for a binary of unknown TLS layout or a server that accepts TLS/HTTP/2); " +
              (goClientSyscall
                ? 'client spans: syscall tracepoints with no uprobe per request (go.client_path syscall; one per connection at (*net/http.persistConn).writeLoop entry), parented at the request write by the server span of the goroutine waiting for its response, or of that goroutine\'s parent; uprobes instead where headers are written into memory, and from a process\'s first HTTPS call on'
                : 'client spans: uprobes at function entry + every RET (no uretprobes), parented through goroutine ancestry')
            : 'uprobes at function entry + every RET (no uretprobes); incoming traceparent read in the kernel; client spans parented through goroutine ancestry',
          why: goSyscall
            ? 'uprobe PMU present (/sys/bus/event_source/devices/uprobe); syscall tracepoints present'
            : `uprobe PMU present (/sys/bus/event_source/devices/uprobe)${(options.goServerPath ?? DEFAULT_GO_SERVER_PATH) === 'syscall' ? '; server spans from uprobes: the syscall tracer cannot run here' : ''}`,
        }
      : {
          feature: 'go-spans',
          title: 'Go net/http server and client spans',
          status: 'unavailable',
          strategy: 'none',
          why: 'no uprobe PMU (CONFIG_UPROBE_EVENTS=n)',
        },
  );

  const sysHttp = caps.syscallTracepoints && features.bpfLoop !== false;
  strategies.push({
    feature: 'any-language-http',
    title: 'HTTP/1.x spans for any language (non-Go processes)',
    status: sysHttp ? 'on' : 'unavailable',
    strategy: sysHttp ? 'syscall tracepoints (accept/connect/read/write/close families); kprobes not needed' : 'none (non-Go processes are skipped with a warning)',
    why: !caps.syscallTracepoints
      ? 'no syscall tracepoints under tracefs (events/syscalls; CONFIG_FTRACE_SYSCALLS)'
      : features.bpfLoop === false
        ? 'the verifier refuses bpf_loop in tracepoint programs (kernel < 5.17)'
        : `syscall tracepoints present; bpf_loop: ${yesNo(features.bpfLoop)}`,
  });

  const pwuAllowed = caps.probeWriteUser && features.probeWriteUser !== false;
  const pwuWhy =
    `lockdown=${caps.lockdown}, CAP_SYS_ADMIN=${yesNo(caps.capSysAdmin)}, ` +
    `bpf_probe_write_user accepted by the verifier: ${yesNo(features.probeWriteUser)}`;
  let goInjection: 'memory' | 'none' = 'none';
  if (options.injectHeaders === 'off') {
    strategies.push({
      feature: 'go-memory-injection',
      title: 'traceparent injection into Go requests (memory write)',
      status: 'off',
      strategy: 'none',
      why: 'inject_headers=off: the agent never changes application traffic',
    });
  } else if (pwuAllowed && caps.uprobes) {
    goInjection = 'memory';
    strategies.push({
      feature: 'go-memory-injection',
      title: 'traceparent injection into Go requests (memory write)',
      status: 'on',
      strategy: "bpf_probe_write_user into the outgoing request's bufio.Writer",
      why: pwuWhy,
    });
  } else {
    strategies.push({
      feature: 'go-memory-injection',
      title: 'traceparent injection into Go requests (memory write)',
      status: 'unavailable',
      strategy: "none; an application's own traceparent is still honoured",
      why: `bpf_probe_write_user forbidden (${pwuWhy})`,
    });
  }

  const skKernel =
    caps.cgroup2Mount !== null && features.skMsgProgType !== false && features.sockOpsProgType !== false && features.msgPushData !== false;
  const skWhy =
    `sk_msg: ${yesNo(features.skMsgProgType)}, sock_ops: ${yesNo(features.sockOpsProgType)}, ` +
    `bpf_msg_push_data: ${yesNo(features.msgPushData)}, cgroup v2: ${caps.cgroup2Mount ?? 'not mounted'}`;
  strategies.push({
    feature: 'sk-msg-injection',
    title: 'traceparent injection at the socket (any language, works under lockdown)',
    status: options.injectHeaders === 'off' ? 'off' : SK_MSG_INJECTION_WIRED && skKernel ? 'on' : 'unavailable',
    strategy: skKernel ? 'sock_ops + sk_msg programs on the cgroup v2 root, bpf_msg_push_data' : 'none',
    why:
      options.injectHeaders === 'off'
        ? 'inject_headers=off'
        : !skKernel
          ? `kernel lacks it (${skWhy})`
          : SK_MSG_INJECTION_WIRED
            ? skWhy
            : `kernel supports it (${skWhy}) but this build does not wire it yet`,
  });

  strategies.push(
    caps.tracefsMounted
      ? {
          feature: 'process-following',
          title: 'following processes started later',
          status: 'on',
          strategy:
            'tracepoints sched/sched_process_exec + sched/sched_process_exit; /proc rescans for ports opened later' +
            (sysHttp ? '; children of traced processes traced from their fork (raw tracepoint sched_process_fork: pre-fork workers)' : ''),
          why: 'tracefs mounted',
        }
      : {
          feature: 'process-following',
          title: 'following processes started later',
          status: 'fallback',
          strategy: '/proc rescans every 2 s',
          why: 'tracefs not mounted (exec/exit tracepoints cannot attach)',
        },
  );

  strategies.push({
    feature: 'black-box-correlation',
    title: 'same-node parent/child without header changes',
    status: sysHttp ? 'on' : 'unavailable',
    strategy: sysHttp
      ? "client context keyed by TCP tuple at the client's write, looked up at the server's read; Go servers read it at ServeHTTP entry"
      : 'none (each process is its own trace unless headers propagate)',
    why: sysHttp ? 'uses the syscall tracepoints above' : 'needs the syscall tracer (any-language HTTP)',
  });

  strategies.push(inProcessLinking(caps.uprobes, sysHttp));

  return { strategies, goInjection, missing };
}

/**
 * Which runtimes get a client span parented by the server request that made it, and how. Event-loop
 * Node.js is linked where node's own async ids tell exactly (bpf/sys_http/sys_http_node_link.h: calls made in
 * the handler's callback or one resource below it, no uprobe); calls after an `await` and undici's
 * are not: Node keeps no async context across `await` unless the process enables async hooks
 * itself (docs/node-async-linking.md).
 */
function inProcessLinking(goSpans: boolean, sysHttp: boolean): Strategy {
  const ways = [
    ...(goSpans ? ['Go: goroutine ancestry (uprobes)'] : []),
    ...(sysHttp ? ["thread-per-request runtimes (Python threads, Java thread pools, C/C++, Ruby/PHP workers): the thread's single active server request"] : []),
    ...(goSpans && sysHttp
      ? [
          "Python asyncio (CPython 3.10-3.13 whose _asyncio module and interpreter keep their .symtab, checked per process at attach): the server request of the writing task (uprobes at Context.run, Task.__init__, Future.set_result; on uvloop also PyContext_Exit, task_wakeup, TaskStepMethWrapper_call, uv_read_start; stripped builds such as Debian's python3: not linked, no symbols)",
        ]
      : []),
    ...(sysHttp
      ? [
          'Node.js (versions whose structure offsets are measured: 20.20.2; binary with symbols, checked per process at attach): the server request whose callback made the call, from node\'s async ids read at the syscalls already traced (no uprobe; the handler\'s callback and resources created in it; not after an await resumed elsewhere, not undici/fetch in microtasks)',
        ]
      : []),
    ...(goSpans && sysHttp
      ? ['nginx reverse proxy (1.x with ngx_chain_writer in .dynsym, checked per binary at attach): the downstream request each upstream request serves (uprobe at ngx_chain_writer, ~1 hit per upstream request)']
      : []),
  ];
  return {
    feature: 'in-process-linking',
    title: 'client span as the child of the server request that made it (in-process)',
    status: ways.length === 0 ? 'unavailable' : 'fallback',
    strategy:
      (ways.length ? ways.join('; ') + '; ' : '') +
      'not linked: Deno, Bun (event loops; their client spans start their own trace), Node.js calls after an await or through undici' +
      "; Java calls written by another thread than the request's (JDK HttpClient workers: only a new connection's first request is linked, through the thread that connected it; executors, CompletableFuture) or on a ForkJoinPool worker (virtual-thread carriers: a virtual thread moves between them), docs/java-async-linking.md" +
      (goSpans ? '' : '; nginx (needs uprobes); Python asyncio (needs uprobes)'),
    why:
      'Node keeps no async context across await without async hooks (executionAsyncId is 0 after an await resumed by another callback and at undici writes), so a link there would be a guess (docs/node-async-linking.md)',
  };
}

/** One line per feature, for the start-up log and `doctor`. */
export function describeStrategies(plan: StrategyPlan): string[] {
  return plan.strategies.map((s) => `${s.title}: ${s.status.toUpperCase()} — ${s.strategy} (${s.why})`);
}
