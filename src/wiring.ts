/**
 * The one wiring file: assembles the pipeline of `spanbridge run` from resolved options.
 *
 *   BPF backend (src/bpf/libbpf) -> Agent (src/agent.ts: tracers -> stages -> routes)
 *     -> sinks: stdout JSON (src/sinks/stdout-sink.ts)
 *               trace view: tree printer + web page (src/sinks/trace-view-sink.ts, src/web/)
 *               Collector bridge (receiver/: RED metrics, OTLP, Prometheus)
 *
 * It is the only importer of receiver/ (besides the leaf contract receiver/model.ts) and of the
 * libbpf binding; the command line
 * (src/cli/main.ts) parses arguments, calls `startRun` and handles signals.
 */
import { join } from 'node:path';
import { Agent } from './agent';
import type { SpanSink } from './sinks/sink';
import { createLibbpfBackend } from './bpf/libbpf';
import { AttachmentTable } from './cli/attach-table';
import type { RunOptions } from './cli/args';
import { resolveDelivery } from './config/delivery';
import { resolveOtlpConfig, type OtlpExporterOptions } from './config/otlp';
import { setProcRoot } from './discovery/process-info';
import type { Logger } from './log';
import { SelfMetrics } from './metrics/counters';
import { stdoutSink } from './sinks/stdout-sink';
import { traceViewSink } from './sinks/trace-view-sink';
import { TraceBuffer } from './spans/trace-tree-buffer';
import { formatTraceTree } from './spans/trace-tree';
import { DEFAULT_QUERY_KEYS } from './spans/url-redaction';
import { startWebServer } from './web/server';
import { PACKAGE_ROOT } from './version';

export interface RunningPipeline {
  readonly agent: Agent;
  readonly metrics: SelfMetrics;
  /** Detaches everything and flushes every sink; resolves with the delivery totals. */
  stop(): Promise<{ exported: number; dropped: number }>;
}

/** The traces and metrics endpoints the bridge will use (same resolution: options > env > defaults). */
function exportEndpointsOf(o: OtlpExporterOptions): string[] {
  return [resolveOtlpConfig('traces', o, process.env).endpoint, resolveOtlpConfig('metrics', o, process.env).endpoint];
}

/** Says at start what leaves the host as REDACTED (and warns when the built-in keys were replaced). */
function logRedaction(opts: RunOptions, log: Logger): void {
  const redaction = opts.urlRedaction;
  if (opts.redactionReplacesDefaults && redaction.query === 'keys') {
    const exported = DEFAULT_QUERY_KEYS.filter((k) => !redaction.queryKeys.has(k.toLowerCase()));
    if (exported.length > 0) {
      log.warn(`redaction.query_keys replaces the built-in list: values of ${exported.join(', ')} are exported (add 'default' to keep them redacted)`);
    }
  }
  log.info(
    redaction.query === 'all'
      ? 'redaction: every query value is exported as REDACTED; URL credentials as REDACTED:REDACTED@'
      : `redaction: values of query keys ${[...redaction.queryKeys].join(', ')} are exported as REDACTED; URL credentials as REDACTED:REDACTED@`,
  );
}

/** The receiver module (OTLP, Prometheus, its HTTP client), loaded while the BPF objects load. */
type Receiver = typeof import('../receiver');

/** The trace view (tree printer and/or web page), when asked for. */
async function traceView(opts: RunOptions, log: Logger, metrics: SelfMetrics, attachments: AttachmentTable, receiver: Receiver): Promise<SpanSink | undefined> {
  if (opts.printSpans !== 'tree' && opts.webPort === undefined) return undefined;
  const color = process.stdout.isTTY === true;
  const buffer = new TraceBuffer({
    quietMs: opts.traceQuietMs,
    maxTraces: opts.traceMaxTraces,
    metrics,
    onFinished:
      opts.printSpans === 'tree'
        ? (t) => {
            const note = [t.late ? 'late spans' : '', t.evicted ? 'finished early: too many open traces' : '', t.droppedSpans ? `${t.droppedSpans} spans left out` : '']
              .filter(Boolean)
              .join('; ');
            process.stdout.write(`${formatTraceTree(t.spans, { color, note: note || undefined })}\n\n`);
          }
        : undefined,
  });
  const web = opts.webPort === undefined ? undefined : await startWebServer(buffer, opts.webPort, opts.webHost, () => attachments.processes());
  if (web) log.info(`web: recent traces at ${web.url}`);
  if (web && !receiver.isLoopbackHost(opts.webHost)) {
    log.warn(`web: listening on ${opts.webHost}, not only on loopback: anyone who can reach this address sees the traced requests' URLs and attributes`);
  }
  return traceViewSink(buffer, web);
}

/**
 * Builds every sink, the backend and the agent, and starts them: the agent first, so that its BPF
 * objects load on worker threads (most of the start-up: the kernel's verifier) while the rest of
 * the modules load and the sinks start. No span reaches a sink before every sink is in the list
 * (`sinksReady`: the agent attaches nothing before). On a failed start everything started is stopped again
 * before the error is thrown.
 */
export async function startRun(opts: RunOptions, log: Logger): Promise<RunningPipeline> {
  setProcRoot(opts.procRoot);
  if (opts.config.file) log.info(`config: ${opts.config.file}`);
  for (const w of opts.config.warnings) log.warn(w);
  logRedaction(opts, log);
  const metrics = new SelfMetrics();
  // What is traced, as it attaches: logged as a table, served at the web page's /api/processes.
  const attachments = new AttachmentTable((lines) => lines.forEach((l) => log.info(l)));
  const sinks: SpanSink[] = [];
  // The agent attaches (and spans flow) once its span tracers loaded, perhaps before its start
  // resolves (sk_msg loading after them): only once every sink below is in the list.
  let sinksComplete!: () => void;
  let sinksFailed!: (err: unknown) => void;
  const sinksReady = new Promise<void>((resolve, reject) => {
    sinksComplete = resolve;
    sinksFailed = reject;
  });
  sinksReady.catch(() => undefined); // the agent's start takes it
  const agent = new Agent(
    {
      selection: opts.selection,
      injectHeaders: opts.injectHeaders,
      bpfObjectDir: opts.bpfDir ?? join(PACKAGE_ROOT, 'build', 'bpf'),
      readyFile: opts.readyFile,
      ringWakeupBytes: opts.ringWakeupBytes,
      ringSizeBytes: opts.ringSizeBytes,
      sysHttp: opts.sysHttp,
      goServerPath: opts.goServerPath,
      goClientPath: opts.goClientPath,
      goClientCallerProbeMaxRate: opts.goClientCallerProbeMaxRate,
      routes: opts.routes,
      urlRedaction: opts.urlRedaction,
      // A Collector listening on a local export endpoint is never traced (self-exclusion).
      exportEndpoints: opts.export === 'otlp' ? exportEndpointsOf(opts.otlp) : [],
    },
    {
      backend: createLibbpfBackend({ pollIntervalMs: opts.ringPollIntervalMs, ringWait: opts.ringWait, libbpfDebug: opts.libbpfDebug }),
      log,
      sinks,
      metrics,
      onAttachment: (e) => attachments.on(e),
      sinksReady,
    },
  );
  const started = agent.start();
  started.catch(() => undefined); // awaited below, after the sinks
  let receiver: Receiver;
  try {
    receiver = await import('../receiver');
    if (opts.printSpans === 'json') sinks.push(stdoutSink());
    const view = await traceView(opts, log, metrics, attachments, receiver);
    if (view) sinks.push(view);
    // The Collector bridge: OTLP traces + metrics (unless --export none) and the Prometheus endpoint.
    // Settings resolved here, environment included (src/config/delivery.ts): receiver/ reads none.
    const delivery = resolveDelivery({ otlpExport: opts.export === 'otlp', otlp: opts.otlp, bridge: opts.bridge, env: process.env }, (m) => log.warn(m));
    const bridge = receiver.createCollectorBridge({ metrics, log, ...delivery });
    await bridge.start();
    sinks.push(bridge);
    sinksComplete();
    await started;
  } catch (err) {
    sinksFailed(err);
    // Waits for the loads in flight, closes what loaded, flushes the sinks that started.
    await agent.stop().catch(() => undefined);
    throw err;
  }
  const { SPANS_EXPORTED, SPANS_DROPPED } = receiver;
  return {
    agent,
    metrics,
    async stop() {
      await agent.stop();
      return { exported: metrics.total(SPANS_EXPORTED), dropped: metrics.total(SPANS_DROPPED) };
    },
  };
}
