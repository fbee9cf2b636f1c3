/**
 * Command-line parsing for `spanbridge run`. Flags are merged with the config file and the
 * environment by src/config/load.ts (defaults < YAML < environment < flags) and validated once,
 * with messages that name the bad option and the allowed values.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SpanbridgeError } from '../errors';
import type { LogLevel } from '../log';
import type { InjectHeaders } from '../agent';
import { isEmptySelection, type Selection } from '../discovery/selectors';
import { loadConfig, toRoutesSettings, toSelection, type LoadedConfig } from '../config/load';
import type { RoutePattern } from '../spans/routes/pattern';
import type { RoutesSettings } from '../spans/routes/route-policy';
import { SETTINGS } from '../config/settings';
import type { OtlpExporterOptions } from '../config/otlp';
import type { BridgeSettings } from '../../receiver/model';
import { DEFAULT_KEYS_TOKEN, urlRedaction, type UrlRedaction } from '../spans/url-redaction';
import { DEFAULT_GO_CLIENT_PATH, DEFAULT_GO_SERVER_PATH } from '../tracers/go-server-path';

/** Explicit OTLP settings (flag or YAML); unset ones are resolved from the environment by src/config/otlp.ts. */
export type OtlpSettings = OtlpExporterOptions;

/** Explicit Prometheus, queue, retry, metrics and resource settings; src/config/delivery.ts validates them and adds the environment. */
export type DeliverySettings = BridgeSettings;

export interface RunOptions {
  readonly selection: Selection;
  readonly printSpans: 'none' | 'json' | 'tree';
  readonly readyFile?: string;
  readonly injectHeaders: InjectHeaders;
  readonly export: 'otlp' | 'none';
  /** Explicit OTLP settings (flag or YAML); unset ones are resolved from the environment by src/config/otlp.ts. */
  readonly otlp: OtlpSettings;
  readonly bridge: DeliverySettings;
  readonly logLevel: LogLevel;
  readonly bpfDir?: string;
  /** The web page's port; undefined: off. */
  readonly webPort?: number;
  /** The web page's address (default 127.0.0.1; anything else is warned about). */
  readonly webHost: string;
  /** Query keys and URL credentials redacted where spans are built. */
  readonly urlRedaction: UrlRedaction;
  /** `redaction.query_keys` leaves out the built-in keys (warned about at start). */
  readonly redactionReplacesDefaults: boolean;
  /** A trace is finished when no span arrived for it this long (tree printer, web page). */
  readonly traceQuietMs: number;
  readonly traceMaxTraces: number;
  /** Ring-buffer wakeup threshold in bytes for the span tracers (0: every record); undefined: the agent's default. */
  readonly ringWakeupBytes?: number;
  /** Bytes of each span ring buffer; undefined: the agent's default. */
  readonly ringSizeBytes?: number;
  /** Period of the periodic ring-buffer consume; undefined: the backend's default. */
  readonly ringPollIntervalMs?: number;
  /** How ring buffers wait for data; undefined: the backend's default. */
  readonly ringWait?: 'uv-poll' | 'worker';
  /** Kernel-side limits of the syscall tracer; unset ones keep the tracer's defaults. */
  readonly sysHttp: { readonly maxConnections?: number; readonly correlationWindowMs?: number; readonly threadContextMaxAgeMs?: number };
  /** Where Go HTTP/1 server spans come from (setting go.server_path). */
  readonly goServerPath: 'uprobes' | 'syscall';
  /** Where Go HTTP/1 client spans come from (setting go.client_path). */
  readonly goClientPath: 'uprobes' | 'syscall';
  /** Calls a second up to which a Go process keeps the client roundTrip probe (go.client_caller_probe_max_rate); undefined: the default. */
  readonly goClientCallerProbeMaxRate?: number;
  /** Every libbpf message to stderr. */
  readonly libbpfDebug: boolean;
  /** Where /proc is read; undefined: /proc. */
  readonly procRoot?: string;
  /** Declared route patterns, the unmatched mode and the route limit (global and per selection). */
  readonly routes: RoutesSettings;
  /** The merged configuration, for `--print-config` and start-up logs. */
  readonly config: LoadedConfig;
}

export const RUN_USAGE = `Usage: spanbridge run [selectors] [options]

Traces the selected processes and exports their spans over OTLP.

Selectors (a process matching any of them is traced; processes started later are followed;
flags replace the config file's selections):
  --pid N              a process id (repeatable)
  --exe GLOB           executable glob: 'api-*' (base name), '/srv/*/api' or '**/api' (full path;
                       * within a segment, ** across) (repeatable)
  --open-port P        a process listening on TCP port P (repeatable)
  --container ID       every process in a container whose id starts with ID (hex, as
                       \`docker ps\` / \`podman ps\` print it; repeatable)

Options:
  --config FILE             YAML configuration file (default $SPANBRIDGE_CONFIG); settings merge as
                            defaults < file < environment < flags (docs/configuration.md)
  --print-config            print the merged configuration (with each value's source) and exit
  --print-spans none|json|tree
                            stdout: one JSON line per finished span, or each finished trace as an
                            indented tree (default none)
  --trace-quiet-ms MS       a trace is finished when no span arrived for it for MS (default 1500)
  --web-port P|off          serve recent traces as a waterfall on http://127.0.0.1:P/ (default off)
  --web-host ADDR           address of the web page (default 127.0.0.1; others log a warning)
  --redaction-query-keys K1,K2
                            query keys exported as key=REDACTED; 'default' is the built-in list
                            (default: default; 'default,x-api-key' adds a key)
  --redaction-query keys|all
                            all: every query value is exported as REDACTED (default keys)
  --ready-file PATH         create PATH once the processes matched at start are attached
  --inject-headers auto|on|off
                            traceparent injection into outgoing requests (default auto;
                            off = the agent never changes application traffic)
  --export otlp|none        deliver spans to the Collector over OTLP (default otlp;
                            env OTEL_TRACES_EXPORTER)
  --otlp-endpoint URL       OTLP base endpoint (default $OTEL_EXPORTER_OTLP_ENDPOINT or
                            http://localhost:4318, grpc: http://localhost:4317); for HTTP
                            /v1/traces and /v1/metrics are appended
  --otlp-protocol P         http/protobuf (default), http/json or grpc
                            (default $OTEL_EXPORTER_OTLP_PROTOCOL)
  --prometheus-port P|off   serve RED and self-metrics at http://HOST:P/metrics
                            (default $SPANBRIDGE_PROMETHEUS_PORT or 9400; 0 or off disables)
  --prometheus-host ADDR    address the metrics endpoint listens on
                            (default $SPANBRIDGE_PROMETHEUS_HOST or 127.0.0.1)
  --queue-max-bytes SIZE    memory cap of the span export queue, e.g. 64MiB
                            (default $SPANBRIDGE_QUEUE_MAX_BYTES or 64MiB)
  --routes-unmatched heuristic|path|wildcard|unset
                            http.route of server spans no framework or declared pattern
                            (routes.patterns in the config file) names (default heuristic:
                            id-like segments become {id})
  --log-level debug|info|warn|error (default info; env SPANBRIDGE_LOG_LEVEL)
  --bpf-dir DIR             where the compiled BPF objects are (default: build/bpf)
  -h, --help                this help
`;

const FLAG_OPTIONS: NonNullable<ParseArgsConfig['options']> = {
  pid: { type: 'string', multiple: true },
  exe: { type: 'string', multiple: true },
  'open-port': { type: 'string', multiple: true },
  container: { type: 'string', multiple: true },
  config: { type: 'string' },
  'print-config': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  ...Object.fromEntries(SETTINGS.filter((s) => s.flag).map((s) => [s.flag, { type: 'string' as const }])),
};

export function parseRunArgs(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  readFile?: (path: string) => string,
): (RunOptions & { printConfig?: boolean }) | 'help' {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: false, strict: true, options: FLAG_OPTIONS });
  } catch (err) {
    throw new SpanbridgeError('ERR_CONFIG', `${(err as Error).message}\n\n${RUN_USAGE}`);
  }
  const flags = parsed.values as Record<string, string | string[] | boolean | undefined>;
  if (flags.help) return 'help';
  const config = loadConfig({ flags, env, readFile });
  const selection = toSelection(config.selections);
  if (isEmptySelection(selection) && !flags['print-config']) {
    throw new SpanbridgeError(
      'ERR_CONFIG',
      `no process selected: give --pid, --exe, --open-port or --container, or selections in a --config file\n\n${RUN_USAGE}`,
    );
  }
  const v = config.values;
  const num = (k: string): number | undefined => v[k] as number | undefined;
  const str = (k: string): string | undefined => v[k] as string | undefined;
  const otlp: OtlpSettings = {
    ...(str('otlp.endpoint') !== undefined ? { baseEndpoint: str('otlp.endpoint') } : {}),
    ...(str('otlp.protocol') !== undefined ? { protocol: str('otlp.protocol') } : {}),
    ...(str('otlp.compression') !== undefined ? { compression: str('otlp.compression') } : {}),
    ...(num('otlp.timeout_ms') !== undefined ? { timeoutMs: num('otlp.timeout_ms') } : {}),
    ...(v['otlp.headers'] !== undefined ? { headers: v['otlp.headers'] as Record<string, string> } : {}),
  };
  const queue = {
    ...(num('queue.max_bytes') !== undefined ? { maxQueueBytes: num('queue.max_bytes') } : {}),
    ...(num('queue.max_spans') !== undefined ? { maxQueueSize: num('queue.max_spans') } : {}),
    ...(num('queue.max_batch_spans') !== undefined ? { maxBatchSize: num('queue.max_batch_spans') } : {}),
    ...(num('queue.schedule_delay_ms') !== undefined ? { scheduledDelayMs: num('queue.schedule_delay_ms') } : {}),
  };
  const bridge: DeliverySettings = {
    ...(v['prometheus.port'] !== undefined ? { prometheusPort: v['prometheus.port'] as number | 'off' } : {}),
    ...(str('prometheus.host') !== undefined ? { prometheusHost: str('prometheus.host') } : {}),
    ...(Object.keys(queue).length > 0 ? { queue } : {}),
    ...(num('retry.max_elapsed_ms') !== undefined ? { retry: { maxElapsedMs: num('retry.max_elapsed_ms') } } : {}),
    ...(num('metrics.export_interval_ms') !== undefined ? { metricExportIntervalMs: num('metrics.export_interval_ms') } : {}),
    ...(v['metrics.otlp'] !== undefined ? { otlpMetrics: v['metrics.otlp'] as boolean } : {}),
    ...(v.resource_attributes !== undefined ? { resourceAttributes: v.resource_attributes as Record<string, string> } : {}),
  };
  const webPort = v['web.port'];
  const queryKeys = v['redaction.query_keys'] as string[] | undefined;
  return {
    selection,
    printSpans: (str('print_spans') ?? 'none') as RunOptions['printSpans'],
    readyFile: str('ready_file'),
    injectHeaders: (str('inject_headers') ?? 'auto') as InjectHeaders,
    export: (str('export') ?? 'otlp') as RunOptions['export'],
    otlp,
    bridge,
    logLevel: (str('log_level') ?? 'info') as LogLevel,
    bpfDir: str('bpf_dir'),
    webPort: typeof webPort === 'number' ? webPort : undefined,
    webHost: str('web.host') ?? '127.0.0.1',
    urlRedaction: urlRedaction({ query: str('redaction.query') as 'keys' | 'all' | undefined, queryKeys }),
    redactionReplacesDefaults: queryKeys !== undefined && !queryKeys.includes(DEFAULT_KEYS_TOKEN),
    traceQuietMs: num('trace_view.quiet_ms') ?? 1500,
    traceMaxTraces: num('trace_view.max_traces') ?? 1000,
    ringWakeupBytes: num('ring_buffer.wakeup_bytes'),
    ringSizeBytes: num('ring_buffer.size'),
    ringPollIntervalMs: num('ring_buffer.poll_interval_ms'),
    ringWait: str('ring_buffer.wait') as RunOptions['ringWait'],
    sysHttp: {
      ...(num('sys_http.max_connections') !== undefined ? { maxConnections: num('sys_http.max_connections') } : {}),
      ...(num('sys_http.correlation_window_ms') !== undefined ? { correlationWindowMs: num('sys_http.correlation_window_ms') } : {}),
      ...(num('sys_http.thread_context_max_age_ms') !== undefined ? { threadContextMaxAgeMs: num('sys_http.thread_context_max_age_ms') } : {}),
    },
    goServerPath: (str('go.server_path') ?? DEFAULT_GO_SERVER_PATH) as RunOptions['goServerPath'],
    goClientPath: (str('go.client_path') ?? DEFAULT_GO_CLIENT_PATH) as RunOptions['goClientPath'],
    goClientCallerProbeMaxRate: num('go.client_caller_probe_max_rate'),
    libbpfDebug: v['debug.libbpf'] === true,
    procRoot: str('proc_root'),
    routes: toRoutesSettings(config),
    config,
    ...(flags['print-config'] ? { printConfig: true } : {}),
  };
}

/** `--print-config`: every setting with its value and source, as YAML-ish lines. */
export function describeConfig(opts: RunOptions): string {
  const c = opts.config;
  const lines: string[] = [`# spanbridge run configuration${c.file ? ` (file: ${c.file})` : ''}`];
  lines.push(`selections:  # from ${c.selectionSource}`);
  for (const s of c.selections) {
    const sel = s.pid !== undefined ? `pid: ${s.pid}` : s.exe !== undefined ? `exe: '${s.exe}'` : s.container !== undefined ? `container: ${s.container}` : `open_port: ${s.openPort}`;
    const routes = s.routes
      ? `, routes: {${[
          s.routes.patterns ? `patterns: ${JSON.stringify(s.routes.patterns.map((p) => p.route))}` : '',
          s.routes.unmatched ? `unmatched: ${s.routes.unmatched}` : '',
        ]
          .filter(Boolean)
          .join(', ')}}`
      : '';
    lines.push(`  - {${sel}${s.serviceName ? `, service_name: ${s.serviceName}` : ''}${routes}}`);
  }
  for (const s of SETTINGS) {
    const source = c.sources[s.key] ?? 'default';
    const raw = c.values[s.key];
    // Parsed patterns print as the routes they report.
    const value = s.key === 'routes.patterns' && Array.isArray(raw) ? (raw as RoutePattern[]).map((p) => p.route) : secretValuesHidden(s.key, raw);
    const shown =
      value !== undefined
        ? JSON.stringify(value)
        : source === 'env'
          ? `(from ${s.env?.join(' / ')}, resolved by the bridge)`
          : `${s.defaultText}`;
    lines.push(`${s.key}: ${shown}  # ${source}`);
  }
  for (const w of c.warnings) lines.push(`# warning: ${w}`);
  return `${lines.join('\n')}\n`;
}

/** `otlp.headers` values are credentials (an Authorization header to the Collector): shown as REDACTED. */
function secretValuesHidden(key: string, value: unknown): unknown {
  if (key !== 'otlp.headers' || value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.keys(value).map((k) => [k, 'REDACTED']));
}
