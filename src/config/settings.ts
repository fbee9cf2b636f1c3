/**
 * Every scalar setting of `spanbridge run`, once: its YAML key, environment variable(s), flag,
 * default, allowed values and meaning. The loader (load.ts), `--help` and docs/configuration.md
 * (checked by a unit test) all read this table.
 *
 * Environment: OpenTelemetry's standard names (`OTEL_*`) where one exists, product settings under
 * `SPANBRIDGE_*`. Settings marked `bridgeEnv` are resolved from the environment by the delivery
 * resolvers (src/config/otlp.ts, src/config/delivery.ts), which warn about and ignore a bad value,
 * as the OpenTelemetry spec asks; for those the loader only steps aside when the variable is set,
 * so precedence stays defaults < YAML < environment < flags.
 */
import { parsePatternList } from '../spans/routes/pattern';
import { DEFAULT_MAX_ROUTES_PER_SERVICE, UNMATCHED_MODES } from '../spans/routes/route-policy';
import { parseByteSize, parsePrometheusPort } from './units';

/**
 * A failed parse may say where inside the value (`at`, appended to the key, e.g. `[2]`) and what
 * is wrong (`why`, replacing the generic "is not <allowed>").
 */
export type Parsed<T> = { ok: true; value: T } | { ok: false; at?: string; why?: string };

export interface Setting {
  /** Dotted YAML path, e.g. `otlp.endpoint`. */
  readonly key: string;
  /** Long flag without dashes, e.g. `otlp-endpoint`. */
  readonly flag?: string;
  /** Environment variables consulted, first set one wins. */
  readonly env?: readonly string[];
  /** The environment is resolved (and validated) by the delivery resolvers (see the file comment). */
  readonly bridgeEnv?: boolean;
  /** For help and docs. */
  readonly defaultText: string;
  /** Allowed values, as named in error messages. */
  readonly allowed: string;
  readonly help: string;
  parse(raw: unknown): Parsed<unknown>;
}

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad: Parsed<never> = { ok: false };

function str(raw: unknown): string | undefined {
  if (typeof raw === 'string') return raw.trim();
  if (typeof raw === 'number' || typeof raw === 'boolean') return String(raw);
  return undefined;
}

export function oneOf(values: readonly string[]): (raw: unknown) => Parsed<string> {
  return (raw) => {
    const s = str(raw);
    return s !== undefined && values.includes(s) ? ok(s) : bad;
  };
}

export function intIn(min: number, max: number): (raw: unknown) => Parsed<number> {
  return (raw) => {
    const s = str(raw);
    if (s === undefined || !/^\d+$/.test(s)) return bad;
    const n = Number(s);
    return n >= min && n <= max ? ok(n) : bad;
  };
}

export function portOrOff(raw: unknown): Parsed<number | 'off'> {
  const s = str(raw);
  if (s === undefined || s === 'false') return s === 'false' ? ok('off') : bad;
  const p = parsePrometheusPort(s);
  return p === undefined ? bad : ok(p);
}

function byteSize(raw: unknown): Parsed<number> {
  const s = str(raw);
  const n = s === undefined ? undefined : parseByteSize(s);
  return n === undefined ? bad : ok(n);
}

/** 0, or a size up to `max` bytes. */
function byteSizeOrZero(max: number): (raw: unknown) => Parsed<number> {
  return (raw) => {
    const s = str(raw);
    if (s !== undefined && /^0+$/.test(s)) return ok(0);
    const p = byteSize(raw);
    return p.ok && p.value <= max ? p : bad;
  };
}

/** A power-of-two size in bytes within [min, max] (what a BPF ring buffer accepts). */
function powerOfTwoSize(min: number, max: number): (raw: unknown) => Parsed<number> {
  return (raw) => {
    const p = byteSize(raw);
    return p.ok && p.value >= min && p.value <= max && (p.value & (p.value - 1)) === 0 ? p : bad;
  };
}

function httpUrl(raw: unknown): Parsed<string> {
  const s = str(raw);
  return s !== undefined && /^https?:\/\/[^\s]+$/.test(s) ? ok(s) : bad;
}

function nonEmpty(raw: unknown): Parsed<string> {
  const s = typeof raw === 'string' ? raw.trim() : undefined;
  return s ? ok(s) : bad;
}

/**
 * Query keys: a YAML list, or a comma-separated string (environment, flag). Each key is a
 * non-empty name without whitespace, `&`, `;`, `=`, `?` or `#`.
 */
export function queryKeyList(raw: unknown): Parsed<string[]> {
  const items = Array.isArray(raw) ? raw.map(str) : typeof raw === 'string' ? raw.split(',').map((k) => k.trim()) : undefined;
  if (!items || items.length === 0) return bad;
  const out: string[] = [];
  for (const k of items) {
    if (k === undefined || k === '' || /[\s&;=?#]/.test(k)) return bad;
    out.push(k);
  }
  return ok(out);
}

function bool(raw: unknown): Parsed<boolean> {
  if (typeof raw === 'boolean') return ok(raw);
  const s = str(raw)?.toLowerCase();
  if (s === 'true' || s === 'yes' || s === 'on' || s === '1') return ok(true);
  if (s === 'false' || s === 'no' || s === 'off' || s === '0') return ok(false);
  return bad;
}

/** A list of route patterns (YAML list, or comma-separated in the environment), validated. */
export function routePatterns(raw: unknown): Parsed<unknown> {
  const p = parsePatternList(raw);
  return p.ok ? ok(p.patterns) : { ok: false, at: p.at, why: p.why };
}

/** A YAML mapping of string keys to string/number/boolean values. */
export function stringMap(raw: unknown): Parsed<Record<string, string>> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return bad;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    const s = str(v);
    if (s === undefined) return bad;
    out[k] = s;
  }
  return ok(out);
}

export const SETTINGS: readonly Setting[] = [
  {
    key: 'log_level',
    flag: 'log-level',
    env: ['SPANBRIDGE_LOG_LEVEL'],
    defaultText: 'info',
    allowed: 'one of debug, info, warn, error',
    help: 'log verbosity (logs go to stderr)',
    parse: oneOf(['debug', 'info', 'warn', 'error']),
  },
  {
    key: 'inject_headers',
    flag: 'inject-headers',
    env: ['SPANBRIDGE_INJECT_HEADERS'],
    defaultText: 'auto',
    allowed: 'one of auto, on, off',
    help: 'traceparent injection into outgoing requests (off: the agent never changes application traffic)',
    parse: oneOf(['auto', 'on', 'off']),
  },
  {
    key: 'print_spans',
    flag: 'print-spans',
    env: ['SPANBRIDGE_PRINT_SPANS'],
    defaultText: 'none',
    allowed: 'one of none, json, tree',
    help: 'stdout output: one JSON line per span, or each finished trace as an indented tree',
    parse: oneOf(['none', 'json', 'tree']),
  },
  {
    key: 'trace_view.quiet_ms',
    flag: 'trace-quiet-ms',
    env: ['SPANBRIDGE_TRACE_QUIET_MS'],
    defaultText: '1500',
    allowed: 'an integer 100..60000 (milliseconds)',
    help: 'a trace is finished (printed as a tree, shown on the web page) when no span arrived for it this long',
    parse: intIn(100, 60_000),
  },
  {
    key: 'trace_view.max_traces',
    env: ['SPANBRIDGE_TRACE_MAX_TRACES'],
    defaultText: '1000',
    allowed: 'an integer 10..100000',
    help: 'traces held at once by the tree printer and the web page (oldest evicted, counted)',
    parse: intIn(10, 100_000),
  },
  {
    key: 'web.port',
    flag: 'web-port',
    env: ['SPANBRIDGE_WEB_PORT'],
    defaultText: 'off',
    allowed: 'a port 1..65535, 0 or off',
    help: 'serve the recent-traces web page on http://127.0.0.1:PORT/ (opt-in)',
    parse: portOrOff,
  },
  {
    key: 'web.host',
    flag: 'web-host',
    env: ['SPANBRIDGE_WEB_HOST'],
    defaultText: '127.0.0.1',
    allowed: 'an address',
    help: 'address the web page listens on; anything but loopback is logged as a warning (the page shows URLs and attributes of traced requests)',
    parse: nonEmpty,
  },
  {
    key: 'redaction.query_keys',
    flag: 'redaction-query-keys',
    env: ['SPANBRIDGE_REDACTION_QUERY_KEYS'],
    defaultText: 'default',
    allowed: "a list of query keys (YAML list or comma-separated), 'default' standing for the built-in list",
    help: "query keys whose values are exported as REDACTED, matched without regard to case or percent-encoding; 'default' is AWSAccessKeyId, Signature, sig, X-Goog-Signature, access_token, refresh_token, id_token, api_key, apikey, password, passwd, secret, client_secret, token, code ([default, x-api-key] adds a key, [x-api-key] replaces the list)",
    parse: queryKeyList,
  },
  {
    key: 'redaction.query',
    flag: 'redaction-query',
    env: ['SPANBRIDGE_REDACTION_QUERY'],
    defaultText: 'keys',
    allowed: 'one of keys, all',
    help: 'keys: redact the values of redaction.query_keys; all: every query value is exported as REDACTED (keys kept)',
    parse: oneOf(['keys', 'all']),
  },
  {
    key: 'ready_file',
    flag: 'ready-file',
    defaultText: '(none)',
    allowed: 'a path',
    help: 'created once the processes matched at start are attached',
    parse: nonEmpty,
  },
  {
    key: 'bpf_dir',
    flag: 'bpf-dir',
    env: ['SPANBRIDGE_BPF_DIR'],
    defaultText: 'build/bpf (in the package)',
    allowed: 'a directory',
    help: 'where the compiled BPF objects are',
    parse: nonEmpty,
  },
  {
    key: 'ring_buffer.wakeup_bytes',
    env: ['SPANBRIDGE_RING_WAKEUP_BYTES'],
    defaultText: 'an eighth of ring_buffer.size (256KiB)',
    allowed: 'a size like 65536 or 64KiB, at most 1MiB, or 0',
    help: 'the kernel wakes the agent only once this much span data waits in a ring buffer (0: on every record, ~14 us more per request in the traced process on our VMs); less waits for the periodic consume',
    parse: byteSizeOrZero(1024 * 1024),
  },
  {
    key: 'ring_buffer.size',
    env: ['SPANBRIDGE_RING_SIZE'],
    defaultText: '2MiB',
    allowed: 'a power of two from 256KiB to 64MiB, like 4MiB or 4194304',
    help: 'bytes of each span ring buffer (Go, syscall tracers): records wait here while the agent is busy; the agent maps each ring twice, so its resident memory grows by twice this per ring',
    parse: powerOfTwoSize(256 * 1024, 64 * 1024 * 1024),
  },
  {
    key: 'ring_buffer.poll_interval_ms',
    env: ['SPANBRIDGE_RING_POLL_MS'],
    defaultText: '50',
    allowed: 'an integer 10..1000 (milliseconds)',
    help: 'every ring buffer is also read this often, so a record below the wakeup threshold waits at most this long',
    parse: intIn(10, 1000),
  },
  {
    key: 'ring_buffer.wait',
    env: ['SPANBRIDGE_RING_WAIT'],
    defaultText: 'uv-poll',
    allowed: 'one of uv-poll, worker',
    help: "how a ring buffer waits for data without blocking the event loop: libuv's poll phase on its epoll fd, or epoll_wait on a libuv pool thread (one held per ring buffer)",
    parse: oneOf(['uv-poll', 'worker']),
  },
  {
    key: 'sys_http.max_connections',
    env: ['SPANBRIDGE_SYS_HTTP_MAX_CONNECTIONS'],
    defaultText: '16384',
    allowed: 'an integer 1..65536',
    help: 'connections the syscall tracer keeps state for in the kernel (a connection beyond it is not traced, counted)',
    parse: intIn(1, 65536),
  },
  {
    key: 'sys_http.correlation_window_ms',
    env: ['SPANBRIDGE_SYS_HTTP_CORRELATION_WINDOW_MS'],
    defaultText: '5000',
    allowed: 'an integer 1..3600000 (milliseconds)',
    help: 'longest a client request may start before the server request it is matched to on the same node (black-box parent)',
    parse: intIn(1, 3_600_000),
  },
  {
    key: 'go.server_path',
    env: ['SPANBRIDGE_GO_SERVER_PATH'],
    defaultText: 'syscall',
    allowed: 'one of uprobes, syscall',
    help: "where Go HTTP/1 server spans come from: syscall tracepoints reading the goroutine from the thread's TLS (one uprobe per connection, for http.route; a binary whose TLS layout is unknown, or a server that accepts TLS/HTTP/2, gets uprobes), or uprobes on net/http (~5 traps per request)",
    parse: oneOf(['uprobes', 'syscall']),
  },
  {
    key: 'go.client_path',
    env: ['SPANBRIDGE_GO_CLIENT_PATH'],
    defaultText: 'syscall',
    allowed: 'one of uprobes, syscall',
    help: 'where Go HTTP/1 client spans come from: syscall tracepoints, with no uprobe per request above go.client_caller_probe_max_rate calls a second (one per connection at (*net/http.persistConn).writeLoop; the parent is found from the request write, through the caller waiting on its response channel) (needs go.server_path syscall and no memory injection, else uprobes; a process that makes HTTPS calls moves to uprobes; parents found to goroutine depth 1), or uprobes on net/http (~13 traps per request; parents to depth 4)',
    parse: oneOf(['uprobes', 'syscall']),
  },
  {
    key: 'go.client_caller_probe_max_rate',
    env: ['SPANBRIDGE_GO_CLIENT_CALLER_PROBE_MAX_RATE'],
    defaultText: '200',
    allowed: 'an integer 0..1000000 (calls a second)',
    help: "go.client_path syscall: calls a second up to which a Go process keeps one uprobe per call at (*net/http.persistConn).roundTrip, which names the caller of a request its writer goroutine sends before the caller is waiting (a scheduling race: up to ~1% of calls at low rates, ~1 in 10,000 under load; such a call is otherwise left without a parent); a process calling faster loses it (measured again a minute later); 0: only while connections from before the attach are adopted",
    parse: intIn(0, 1_000_000),
  },
  {
    key: 'sys_http.thread_context_max_age_ms',
    env: ['SPANBRIDGE_SYS_HTTP_THREAD_CONTEXT_MAX_AGE_MS'],
    defaultText: '60000',
    allowed: 'an integer 1..3600000 (milliseconds)',
    help: "longest a thread counts as inside a server request, for the parent of the thread's client requests",
    parse: intIn(1, 3_600_000),
  },
  {
    key: 'debug.libbpf',
    env: ['SPANBRIDGE_LIBBPF_DEBUG'],
    defaultText: 'false',
    allowed: 'true or false (1 or 0)',
    help: "copy every libbpf message, debug level included, to stderr (libbpf's warnings always reach the errors they explain)",
    parse: bool,
  },
  {
    key: 'proc_root',
    env: ['SPANBRIDGE_PROC_ROOT'],
    defaultText: '/proc',
    allowed: 'a directory',
    help: 'where the proc filesystem is read (discovery, container membership, sockets); tests point it at a prepared tree',
    parse: nonEmpty,
  },
  {
    key: 'export',
    flag: 'export',
    env: ['OTEL_TRACES_EXPORTER'],
    defaultText: 'otlp',
    allowed: 'one of otlp, none',
    help: 'deliver spans and metrics to the Collector over OTLP, or not',
    parse: oneOf(['otlp', 'none']),
  },
  {
    key: 'otlp.endpoint',
    flag: 'otlp-endpoint',
    env: ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_ENDPOINT'],
    bridgeEnv: true,
    defaultText: 'http://localhost:4318 (grpc: http://localhost:4317)',
    allowed: 'an http(s) URL',
    help: 'OTLP base endpoint; for HTTP /v1/traces and /v1/metrics are appended',
    parse: httpUrl,
  },
  {
    key: 'otlp.protocol',
    flag: 'otlp-protocol',
    env: ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL'],
    bridgeEnv: true,
    defaultText: 'http/protobuf',
    allowed: 'one of http/protobuf, http/json, grpc',
    help: 'OTLP transport',
    parse: oneOf(['http/protobuf', 'http/json', 'grpc']),
  },
  {
    key: 'otlp.compression',
    env: ['OTEL_EXPORTER_OTLP_TRACES_COMPRESSION', 'OTEL_EXPORTER_OTLP_COMPRESSION'],
    bridgeEnv: true,
    defaultText: 'none',
    allowed: 'one of gzip, none',
    help: 'request body compression',
    parse: oneOf(['gzip', 'none']),
  },
  {
    key: 'otlp.timeout_ms',
    env: ['OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 'OTEL_EXPORTER_OTLP_TIMEOUT'],
    bridgeEnv: true,
    defaultText: '10000',
    allowed: 'an integer 1..600000 (milliseconds)',
    help: 'per-request timeout (retries have their own budget)',
    parse: intIn(1, 600_000),
  },
  {
    key: 'otlp.headers',
    env: ['OTEL_EXPORTER_OTLP_TRACES_HEADERS', 'OTEL_EXPORTER_OTLP_HEADERS'],
    bridgeEnv: true,
    defaultText: '(none)',
    allowed: 'a mapping of header names to values',
    help: 'extra request headers (gRPC metadata), e.g. {authorization: "Bearer x"}',
    parse: stringMap,
  },
  {
    key: 'prometheus.port',
    flag: 'prometheus-port',
    env: ['SPANBRIDGE_PROMETHEUS_PORT'],
    bridgeEnv: true,
    defaultText: '9400',
    allowed: 'a port 1..65535, 0 or off',
    help: 'RED and self-metrics at http://HOST:PORT/metrics for the Collector to scrape',
    parse: portOrOff,
  },
  {
    key: 'prometheus.host',
    flag: 'prometheus-host',
    env: ['SPANBRIDGE_PROMETHEUS_HOST'],
    bridgeEnv: true,
    defaultText: '127.0.0.1',
    allowed: 'an address',
    help: 'address the metrics endpoint listens on',
    parse: nonEmpty,
  },
  {
    key: 'queue.max_bytes',
    flag: 'queue-max-bytes',
    env: ['SPANBRIDGE_QUEUE_MAX_BYTES'],
    bridgeEnv: true,
    defaultText: '64MiB',
    allowed: 'a size like 67108864, 512KiB or 64MiB',
    help: 'memory cap of the span export queue',
    parse: byteSize,
  },
  {
    key: 'queue.max_spans',
    env: ['OTEL_BSP_MAX_QUEUE_SIZE'],
    bridgeEnv: true,
    defaultText: '65536',
    allowed: 'an integer 1..2147483647',
    help: 'spans held in the export queue',
    parse: intIn(1, 2 ** 31 - 1),
  },
  {
    key: 'queue.max_batch_spans',
    env: ['OTEL_BSP_MAX_EXPORT_BATCH_SIZE'],
    bridgeEnv: true,
    defaultText: '2048',
    allowed: 'an integer 1..2147483647',
    help: 'spans per export request',
    parse: intIn(1, 2 ** 31 - 1),
  },
  {
    key: 'queue.schedule_delay_ms',
    env: ['OTEL_BSP_SCHEDULE_DELAY'],
    bridgeEnv: true,
    defaultText: '1000',
    allowed: 'an integer 1..2147483647 (milliseconds)',
    help: 'longest wait before a partial batch is sent',
    parse: intIn(1, 2 ** 31 - 1),
  },
  {
    key: 'retry.max_elapsed_ms',
    env: ['SPANBRIDGE_RETRY_MAX_ELAPSED_MS'],
    bridgeEnv: true,
    defaultText: '300000',
    allowed: 'an integer 1..2147483647 (milliseconds)',
    help: 'how long one batch is retried before it is dropped (counted)',
    parse: intIn(1, 2 ** 31 - 1),
  },
  {
    key: 'metrics.export_interval_ms',
    env: ['OTEL_METRIC_EXPORT_INTERVAL'],
    bridgeEnv: true,
    defaultText: '60000',
    allowed: 'an integer 1..2147483647 (milliseconds)',
    help: 'OTLP metrics push interval',
    parse: intIn(1, 2 ** 31 - 1),
  },
  {
    key: 'metrics.otlp',
    env: ['OTEL_METRICS_EXPORTER'],
    bridgeEnv: true,
    defaultText: 'true',
    allowed: 'true or false (env: a list of exporters; otlp in it means true)',
    help: 'push RED and self-metrics over OTLP (the Prometheus endpoint has its own switch)',
    parse: bool,
  },
  {
    key: 'routes.patterns',
    env: ['SPANBRIDGE_ROUTES_PATTERNS'],
    defaultText: '(none)',
    allowed: 'a list of path patterns like /users/{id} (env: comma-separated)',
    help: 'declared routes for server spans: a match sets http.route and the span name {method} {route}; the most specific wins; {id} or :id is one segment, {rest...} the rest; selections[].routes.patterns replace it for what they select',
    parse: routePatterns,
  },
  {
    key: 'routes.unmatched',
    flag: 'routes-unmatched',
    env: ['SPANBRIDGE_ROUTES_UNMATCHED'],
    defaultText: 'heuristic',
    allowed: `one of ${UNMATCHED_MODES.join(', ')}`,
    help: 'route of a server span no framework or declared pattern names: id-like segments -> {id} (heuristic), the path itself, /** (wildcard), or none',
    parse: oneOf(UNMATCHED_MODES),
  },
  {
    key: 'routes.max_per_service',
    env: ['SPANBRIDGE_ROUTES_MAX_PER_SERVICE'],
    defaultText: String(DEFAULT_MAX_ROUTES_PER_SERVICE),
    allowed: 'an integer 1..100000',
    help: 'distinct routes per service in span names and RED metrics; requests on further new routes get http.route=(overflow) (counted, logged once)',
    parse: intIn(1, 100_000),
  },
  {
    key: 'resource_attributes',
    env: ['OTEL_RESOURCE_ATTRIBUTES'],
    defaultText: '(none)',
    allowed: 'a mapping of attribute names to values',
    help: 'added to every exported resource; the environment wins key by key',
    parse: stringMap,
  },
];

export const SETTINGS_BY_KEY: ReadonlyMap<string, Setting> = new Map(SETTINGS.map((s) => [s.key, s]));

/** Keys of a selection entry in the YAML `selections` list. */
export const SELECTION_KEYS = ['pid', 'exe', 'open_port', 'container', 'service_name', 'routes'] as const;
/** Keys of a selection entry's `routes` mapping (the same meaning as the global `routes.*`). */
export const SELECTION_ROUTE_KEYS = ['patterns', 'unmatched'] as const;
