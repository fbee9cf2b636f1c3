#!/usr/bin/env node
/**
 * `spanbridge` command line: `run` (trace), `doctor` (what this kernel allows), `--version`.
 * Logs go to stderr; stdout carries only what was asked for (--print-spans, doctor output).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, type SpanSink } from '../agent';
import { createLibbpfBackend } from '../bpf/libbpf';
import { SpanbridgeError, errorCode, errorMessage } from '../errors';
import { createLogger } from '../log';
import { SelfMetrics } from '../metrics/counters';
import { spanToJsonLine } from '../spans/print-json';
import { TraceBuffer } from '../spans/trace-tree-buffer';
import { formatTraceTree } from '../spans/trace-tree';
import { startWebServer, type WebServer } from '../web/server';
import { isSampled } from '../spans/span';
import { setProcRoot } from '../discovery/process-info';
import { PACKAGE_ROOT, AGENT_VERSION } from '../version';
import { DEFAULT_QUERY_KEYS } from '../spans/url-redaction';
import { createCollectorBridge, isLoopbackHost, resolveOtlpConfig, SPANS_DROPPED, SPANS_EXPORTED, type OtlpExporterOptions } from '../../receiver';
import { describeConfig, parseRunArgs, RUN_USAGE } from './args';
import { AttachmentTable } from './attach-table';
import { TREE_USAGE, treesFromJsonLines } from './tree-command';
import { formatDoctorReport, runDoctor } from './doctor';
import { loadConfig, toRoutesSettings } from '../config/load';

const USAGE = `Usage: spanbridge <command> [options]

Turns eBPF observations of unmodified services into OpenTelemetry traces for a Collector.

Commands:
  run       trace selected processes and export spans (spanbridge run --help)
  doctor    what this kernel and these privileges allow, and the strategy each feature
            will use here [--json] (spanbridge doctor --help)
  tree      print spans recorded with --print-spans json as trees [FILE]
  help CMD  help for a command

Options:
  --version   print the version
  -h, --help  this help

Quick look: spanbridge run --exe my-service --print-spans tree --export none
Configuration (YAML file, environment, flags): docs/configuration.md
`;

function stdoutSink(): SpanSink {
  return {
    add(span) {
      // A trace output: spans of unsampled traces are not recorded (metrics still count them).
      if (isSampled(span)) process.stdout.write(`${spanToJsonLine(span)}\n`);
    },
    async shutdown() {
      await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
    },
  };
}

/**
 * The live trace view: sampled spans grouped into traces; a trace quiet for a moment is finished,
 * printed as a tree (--print-spans tree) and kept for the web page (--web-port).
 */
function traceViewSink(buffer: TraceBuffer, web: WebServer | undefined): SpanSink {
  buffer.start();
  return {
    add(span) {
      if (isSampled(span)) buffer.add(span);
    },
    async shutdown() {
      buffer.stop();
      buffer.flush();
      await web?.close();
      await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
    },
  };
}

/** The traces and metrics endpoints the bridge will use (same resolution: options > env > defaults). */
function exportEndpointsOf(o: OtlpExporterOptions): string[] {
  return [resolveOtlpConfig('traces', o, process.env).endpoint, resolveOtlpConfig('metrics', o, process.env).endpoint];
}

async function run(argv: string[]): Promise<number> {
  const opts = parseRunArgs(argv);
  if (opts === 'help') {
    process.stdout.write(RUN_USAGE);
    return 0;
  }
  if (opts.printConfig) {
    process.stdout.write(describeConfig(opts));
    return 0;
  }
  const log = createLogger(opts.logLevel);
  setProcRoot(opts.procRoot);
  // Every file the agent creates (ready file, bpffs pins, mount points) is root-only.
  process.umask(0o077);
  if (opts.config.file) log.info(`config: ${opts.config.file}`);
  for (const w of opts.config.warnings) log.warn(w);
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
  const metrics = new SelfMetrics();
  // What is traced, as it attaches: logged as a table, served at the web page's /api/processes.
  const attachments = new AttachmentTable((lines) => lines.forEach((l) => log.info(l)));
  const sinks: SpanSink[] = [];
  if (opts.printSpans === 'json') sinks.push(stdoutSink());
  if (opts.printSpans === 'tree' || opts.webPort !== undefined) {
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
    if (web && !isLoopbackHost(opts.webHost)) {
      log.warn(`web: listening on ${opts.webHost}, not only on loopback: anyone who can reach this address sees the traced requests' URLs and attributes`);
    }
    sinks.push(traceViewSink(buffer, web));
  }
  // The Collector bridge: OTLP traces + metrics (unless --export none) and the Prometheus endpoint.
  const bridge = createCollectorBridge({
    metrics,
    log,
    otlpExport: opts.export === 'otlp',
    otlp: opts.otlp,
    bridge: opts.bridge,
    env: process.env,
  });
  await bridge.start();
  sinks.push(bridge);
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
      routes: opts.routes,
      urlRedaction: opts.urlRedaction,
      // A Collector listening on a local export endpoint is never traced (self-exclusion).
      exportEndpoints: opts.export === 'otlp' ? exportEndpointsOf(opts.otlp) : [],
    },
    { backend: createLibbpfBackend({ pollIntervalMs: opts.ringPollIntervalMs, ringWait: opts.ringWait, libbpfDebug: opts.libbpfDebug }), log, sinks, metrics, onAttachment: (e) => attachments.on(e) },
  );
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    // A closed pipe on stdout (e.g. `| head`) must not crash the agent.
    if (err.code !== 'EPIPE') log.warn(`stdout: ${err.message}`);
  });
  try {
    agent.start();
  } catch (err) {
    await agent.stop().catch(() => undefined);
    throw err;
  }
  log.info(`spanbridge ${AGENT_VERSION} running (pid ${process.pid}); Ctrl-C to stop`);
  return await new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.warn(`${signal} again: exiting without waiting`);
        process.exit(1);
      }
      stopping = true;
      log.info(`${signal}: detaching and flushing`);
      // Detaching waits for kernel RCU grace periods per probe: measured 5-6 s for ~70 probes here
      // (a SIGKILLed agent takes as long to be reaped). Give an orderly stop ample time.
      const deadline = setTimeout(() => {
        log.warn('shutdown took longer than 30 s; exiting');
        resolve(1);
      }, 30_000);
      // Not unref'd: the deadline also keeps the event loop alive while stop() waits on work that
      // does not (koffi calls on worker threads), or Node would exit 0 mid-stop, unflushed.
      agent
        .stop()
        .then(() => {
          clearTimeout(deadline);
          const dropped = metrics.total(SPANS_DROPPED);
          const exported = metrics.total(SPANS_EXPORTED);
          log.info(`stopped: ${exported} spans exported, ${dropped} dropped`);
          resolve(0);
        })
        .catch((err) => {
          clearTimeout(deadline);
          log.error(`stop: ${errorMessage(err)}`);
          resolve(1);
        });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

export const DOCTOR_USAGE = `Usage: spanbridge doctor [--json] [--config FILE]

Prints what this kernel and these privileges allow (kernel, lockdown, BTF, uprobes, kprobes,
syscall tracepoints, sk_msg/sock_ops, cgroup v2, bpf_probe_write_user, privileges) and which
strategy each feature will use here and why: the same plan \`spanbridge run\` logs at start-up.
Program types and helpers are decided by loading tiny programs (bpftool feature probe).
Mounts bpffs, tracefs and securityfs if they are not mounted, as \`run\` would.
Also says how traced processes' server spans get their route (http.route): Go's ServeMux
pattern, declared patterns (routes.patterns, per selection), or the unmatched mode, as
configured by FILE (default $SPANBRIDGE_CONFIG) and the environment.

Options:
  --json         the report as JSON
  --config FILE  the configuration \`run\` would use (for the routes section)
  -h, --help     this help
`;

function doctor(argv: string[]): number {
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(DOCTOR_USAGE);
    return 0;
  }
  const args = [...argv];
  const at = args.indexOf('--config');
  let file: string | undefined;
  if (at >= 0) {
    file = args[at + 1];
    if (file === undefined || file.startsWith('-')) throw new SpanbridgeError('ERR_CONFIG', `doctor: --config needs a FILE\n\n${DOCTOR_USAGE}`);
    args.splice(at, 2);
  }
  const unknown = args.filter((a) => a !== '--json');
  if (unknown.length > 0) throw new SpanbridgeError('ERR_CONFIG', `doctor: unknown option '${unknown[0]}'\n\n${DOCTOR_USAGE}`);
  const config = loadConfig({ flags: file !== undefined ? { config: file } : {}, env: process.env });
  const report = runDoctor(undefined, toRoutesSettings(config));
  process.stdout.write(argv.includes('--json') ? `${JSON.stringify(report, null, 2)}\n` : formatDoctorReport(report));
  return 0;
}

function tree(argv: string[]): number {
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(TREE_USAGE);
    return 0;
  }
  if (argv.length > 1 || argv[0]?.startsWith('-')) throw new SpanbridgeError('ERR_CONFIG', `tree: expected at most one FILE\n\n${TREE_USAGE}`);
  let input: string;
  try {
    input = readFileSync(argv[0] ?? 0, 'utf8');
  } catch (err) {
    throw new SpanbridgeError('ERR_CONFIG', `tree: cannot read ${argv[0] ?? 'stdin'}: ${errorMessage(err)}`);
  }
  const r = treesFromJsonLines(input, process.stdout.isTTY === true);
  process.stdout.write(r.text);
  if (r.skipped > 0) process.stderr.write(`spanbridge tree: skipped ${r.skipped} lines that are not spans\n`);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run':
      return run(rest);
    case 'doctor':
      return doctor(rest);
    case 'tree':
      return tree(rest);
    case 'help':
      if (rest[0] === 'run') return run(['--help']);
      if (rest[0] === 'doctor') return doctor(['--help']);
      if (rest[0] === 'tree') return tree(['--help']);
      process.stdout.write(USAGE);
      return rest.length === 0 ? 0 : 2;
    case '--version':
      process.stdout.write(`${AGENT_VERSION}\n`);
      return 0;
    case undefined:
    case '-h':
    case '--help':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`spanbridge: unknown command '${command}'\n\n${USAGE}`);
      return 2;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      const code = errorCode(err) ?? 'ERR_UNEXPECTED';
      process.stderr.write(`spanbridge: ${errorMessage(err)} [${code}]\n`);
      process.exit(code === 'ERR_CONFIG' ? 2 : 1);
    },
  );
}
