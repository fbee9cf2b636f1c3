/**
 * The stock OpenTelemetry Collector (build/otelcol/otelcol, built by `make collector`) as a test
 * fixture: an OTLP/HTTP receiver on 127.0.0.1 and a `file` exporter writing OTLP/JSON lines to a
 * temporary file, which `readSpans()` turns into flat, easily compared span objects.
 *
 *   const collector = await startCollector();
 *   ... export to collector.tracesEndpoint ...
 *   const spans = await collector.waitForSpans((s) => s.length >= 3);
 *   await collector.stop();
 *
 * The generated config has OTLP/HTTP and OTLP/gRPC receivers and traces + metrics pipelines into
 * the file exporter. `extraConfig` is deep-merged into it (objects merge, arrays and scalars
 * replace). The config is written as JSON, which the Collector's YAML loader accepts, so no YAML
 * library is needed.
 *
 * `configFile` runs a committed config file as-is instead; the helper passes the ports and the
 * output path through the environment variables that config reads (COLLECTOR_CONFIG_ENV), plus
 * `env`. `kill()` and `restart()` simulate a Collector crash and its comeback on the same ports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../helpers/child-process';

export { freePort } from '../../helpers/child-process';

export const COLLECTOR_BINARY =
  process.env.SPANBRIDGE_OTELCOL ?? path.resolve(__dirname, '../../../build/otelcol/otelcol');

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type FlatAttributeValue = string | number | boolean | FlatAttributeValue[] | { [key: string]: FlatAttributeValue };
export type FlatAttributes = Record<string, FlatAttributeValue>;

/** One span from the Collector's output, flattened (same field names as `--print-spans json`). */
export interface FlatSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  kind: 'UNSPECIFIED' | 'INTERNAL' | 'SERVER' | 'CLIENT' | 'PRODUCER' | 'CONSUMER';
  /** Unix nanoseconds as a decimal string (exact). */
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  status: { code: 'UNSET' | 'OK' | 'ERROR'; message?: string };
  attributes: FlatAttributes;
  /** The attributes of the span's resource. */
  resource: FlatAttributes;
  scope: { name: string; version?: string };
  /** The OTLP span flags (W3C trace flags in the low byte, plus the is-remote bits). */
  flags: number;
  /** The W3C trace flags alone (flags & 0xff). */
  traceFlags: number;
  traceState: string;
}

export interface StartCollectorOptions {
  /** Port of the OTLP/HTTP receiver (default: a free one). */
  otlpHttpPort?: number;
  /** Port of the OTLP/gRPC receiver (default: a free one). */
  otlpGrpcPort?: number;
  /** Deep-merged into the generated configuration. */
  extraConfig?: { [key: string]: JsonValue };
  /** Run this config file as-is (see COLLECTOR_CONFIG_ENV) instead of the generated one. */
  configFile?: string;
  /** Extra environment for the Collector process (e.g. more `${env:...}` values). */
  env?: Record<string, string>;
  /** How long to wait for the receiver to accept connections (default 30 s). */
  startTimeoutMs?: number;
}

/** The variables a committed config reads, set by the helper for `configFile`. */
export const COLLECTOR_CONFIG_ENV = {
  otlpHttp: 'SPANBRIDGE_OTLP_HTTP_ENDPOINT',
  otlpGrpc: 'SPANBRIDGE_OTLP_GRPC_ENDPOINT',
  output: 'SPANBRIDGE_COLLECTOR_OUTPUT',
} as const;

export interface RunningCollector {
  /** Base URL of the OTLP/HTTP receiver, like OTEL_EXPORTER_OTLP_ENDPOINT: http://127.0.0.1:<port> */
  readonly endpoint: string;
  /** URL of the OTLP/gRPC receiver: http://127.0.0.1:<port> */
  readonly grpcEndpoint: string;
  readonly otlpGrpcPort: number;
  /** `${endpoint}/v1/traces`, like OTEL_EXPORTER_OTLP_TRACES_ENDPOINT. */
  readonly tracesEndpoint: string;
  readonly otlpHttpPort: number;
  /** The file exporter's output (OTLP/JSON, one request per line) of the first incarnation. */
  readonly outputFile: string;
  readonly configFile: string;
  /** Every JSON line written so far, parsed (traces, metrics or logs requests). */
  readRecords(): Promise<JsonValue[]>;
  /** Every span written so far, flattened, in file order. */
  readSpans(): Promise<FlatSpan[]>;
  /** Polls `readSpans()` until `done` holds; rejects with what was seen at the timeout. */
  waitForSpans(done: (spans: FlatSpan[]) => boolean, timeoutMs?: number): Promise<FlatSpan[]>;
  /** Every metric data point written so far, flattened, in file order. */
  readMetrics(): Promise<FlatMetricPoint[]>;
  /** Polls `readMetrics()` until `done` holds; rejects with what was seen at the timeout. */
  waitForMetrics(done: (points: FlatMetricPoint[]) => boolean, timeoutMs?: number): Promise<FlatMetricPoint[]>;
  /** The Collector's own log (stdout+stderr, last 256 KiB). */
  output(): string;
  /** Pid of the running Collector process (changes after `restart`). */
  readonly pid: number;
  /** SIGKILL (a crash): nothing is flushed. Resolves once the process is gone. */
  kill(): Promise<void>;
  /** Starts the Collector again with the same config, ports and output file (after `kill`). */
  restart(): Promise<void>;
  /** SIGTERM, then SIGKILL after 5 s; removes the temp directory. Idempotent. */
  stop(): Promise<void>;
}

/** One metric data point from the Collector's output, flattened. */
export interface FlatMetricPoint {
  name: string;
  unit: string;
  type: 'sum' | 'gauge' | 'histogram' | 'other';
  /** The attributes of the metric's resource. */
  resource: FlatAttributes;
  attributes: FlatAttributes;
  /** sum/gauge value. */
  value?: number;
  /** histogram fields. */
  count?: number;
  sum?: number;
  bucketCounts?: number[];
  explicitBounds?: number[];
  isMonotonic?: boolean;
  /** 1 = delta, 2 = cumulative. */
  temporality?: number;
}

export async function startCollector(options: StartCollectorOptions = {}): Promise<RunningCollector> {
  if (!existsSync(COLLECTOR_BINARY)) {
    throw new Error(`the stock Collector is not built: ${COLLECTOR_BINARY} is missing (run \`make collector\`)`);
  }
  const port = options.otlpHttpPort ?? (await freePort());
  const grpcPort = options.otlpGrpcPort ?? (await freePort());
  const dir = await mkdtemp(path.join(os.tmpdir(), 'spanbridge-otelcol-'));
  // One output file per incarnation (restart() starts a new one; the file exporter would rotate
  // the old one away on open); readRecords() reads them all, in order.
  const outputFiles = [path.join(dir, 'output.jsonl')];
  const outputFile = outputFiles[0];
  let configFile = options.configFile;
  if (!configFile) {
    configFile = path.join(dir, 'config.yaml');
    const base: { [key: string]: JsonValue } = {
      receivers: {
        otlp: { protocols: { http: { endpoint: `127.0.0.1:${port}` }, grpc: { endpoint: `127.0.0.1:${grpcPort}` } } },
      },
      exporters: { file: { path: `\${env:${COLLECTOR_CONFIG_ENV.output}}`, format: 'json', flush_interval: '100ms' } },
      service: {
        telemetry: { metrics: { level: 'none' } },
        pipelines: {
          traces: { receivers: ['otlp'], exporters: ['file'] },
          metrics: { receivers: ['otlp'], exporters: ['file'] },
        },
      },
    };
    const config = options.extraConfig ? deepMerge(base, options.extraConfig) : base;
    await writeFile(configFile, JSON.stringify(config, null, 2));
  }
  const env = (): NodeJS.ProcessEnv => ({
    ...process.env,
    [COLLECTOR_CONFIG_ENV.otlpHttp]: `127.0.0.1:${port}`,
    [COLLECTOR_CONFIG_ENV.otlpGrpc]: `127.0.0.1:${grpcPort}`,
    [COLLECTOR_CONFIG_ENV.output]: outputFiles[outputFiles.length - 1],
    ...options.env,
  });

  let log = '';
  let child: ChildProcess;
  let exited: Promise<number | null>;
  let running = false;
  const killOnExit = (): void => {
    if (running) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const launch = async (): Promise<void> => {
    child = spawn(COLLECTOR_BINARY, ['--config', configFile as string], { stdio: ['ignore', 'pipe', 'pipe'], env: env() });
    const append = (chunk: Buffer): void => {
      log = (log + chunk.toString()).slice(-256 * 1024);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    running = true;
    const me = child;
    exited = new Promise<number | null>((resolve) => me.once('exit', (code) => resolve(code)));
    void exited.then(() => {
      if (child === me) running = false;
    });
    await waitUntilListening(port, options.startTimeoutMs ?? 30_000, () => running, () => log);
  };

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      await terminate(child, exited, () => running);
      process.off('exit', killOnExit);
      await rm(dir, { recursive: true, force: true });
    })();
    return stopped;
  };

  try {
    await launch();
  } catch (err) {
    await stop();
    throw err;
  }

  const readRecords = async (): Promise<JsonValue[]> => {
    let text = '';
    for (const file of outputFiles) {
      try {
        text += `${await readFile(file, 'utf8')}\n`;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    const records: JsonValue[] = [];
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        records.push(JSON.parse(line) as JsonValue);
      } catch {
        // The last line may be half-written while the exporter flushes; the next read gets it.
      }
    }
    return records;
  };
  const readSpans = async (): Promise<FlatSpan[]> => (await readRecords()).flatMap(flattenTraceRequest);
  const readMetrics = async (): Promise<FlatMetricPoint[]> => (await readRecords()).flatMap(flattenMetricsRequest);

  async function poll<T extends unknown[]>(what: string, read: () => Promise<T>, done: (v: T) => boolean, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await read();
      if (done(v)) return v;
      if (Date.now() > deadline || !running) {
        const shown = JSON.stringify(v.slice(-50), null, 1);
        throw new Error(
          `collector output did not reach the expected state within ${timeoutMs} ms` +
            `${running ? '' : ' (the Collector exited)'}; got ${v.length} ${what} (last 50 shown):\n` +
            `${shown}\ncollector log:\n${log}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  return {
    get pid() {
      return child?.pid ?? -1;
    },
    endpoint: `http://127.0.0.1:${port}`,
    tracesEndpoint: `http://127.0.0.1:${port}/v1/traces`,
    grpcEndpoint: `http://127.0.0.1:${grpcPort}`,
    otlpHttpPort: port,
    otlpGrpcPort: grpcPort,
    outputFile,
    configFile,
    readRecords,
    readSpans,
    waitForSpans: (done, timeoutMs = 15_000) => poll('spans', readSpans, done, timeoutMs),
    readMetrics,
    waitForMetrics: (done, timeoutMs = 15_000) => poll('metric points', readMetrics, done, timeoutMs),
    output: () => log,
    async kill() {
      if (!running) return;
      child.kill('SIGKILL');
      await exited;
    },
    async restart() {
      if (running) throw new Error('restart: the Collector is still running (kill() it first)');
      outputFiles.push(path.join(dir, `output-${outputFiles.length}.jsonl`));
      await launch();
    },
    stop,
  };
}

async function terminate(child: ChildProcess, exited: Promise<unknown>, running: () => boolean): Promise<void> {
  if (!running()) return;
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      if (running()) child.kill('SIGKILL');
      resolve();
    }, 5000);
  });
  await Promise.race([exited, killed]);
  clearTimeout(timer);
  await exited;
}

async function waitUntilListening(port: number, timeoutMs: number, running: () => boolean, log: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!running()) throw new Error(`the Collector exited during startup:\n${log()}`);
    if (await canConnect(port)) return;
    if (Date.now() > deadline) throw new Error(`the Collector did not listen on 127.0.0.1:${port} within ${timeoutMs} ms:\n${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function isObject(v: JsonValue | undefined): v is { [key: string]: JsonValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepMerge(a: { [key: string]: JsonValue }, b: { [key: string]: JsonValue }): { [key: string]: JsonValue } {
  const out: { [key: string]: JsonValue } = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = isObject(prev) && isObject(v) ? deepMerge(prev, v) : v;
  }
  return out;
}

const KINDS: FlatSpan['kind'][] = ['UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'];
const STATUS: FlatSpan['status']['code'][] = ['UNSET', 'OK', 'ERROR'];

/** OTLP/JSON (as the Collector's pdata marshaler writes it: zero values omitted) -> FlatSpan[]. */
export function flattenTraceRequest(record: JsonValue): FlatSpan[] {
  if (!isObject(record) || !Array.isArray(record.resourceSpans)) return [];
  const out: FlatSpan[] = [];
  for (const rs of record.resourceSpans) {
    if (!isObject(rs)) continue;
    const resource = attributes(isObject(rs.resource) ? rs.resource.attributes : undefined);
    for (const ss of Array.isArray(rs.scopeSpans) ? rs.scopeSpans : []) {
      if (!isObject(ss)) continue;
      const scopeObj = isObject(ss.scope) ? ss.scope : {};
      const scope: FlatSpan['scope'] = { name: str(scopeObj.name) };
      if (scopeObj.version !== undefined) scope.version = str(scopeObj.version);
      for (const s of Array.isArray(ss.spans) ? ss.spans : []) {
        if (!isObject(s)) continue;
        const statusObj = isObject(s.status) ? s.status : {};
        const status: FlatSpan['status'] = { code: STATUS[num(statusObj.code)] ?? 'UNSET' };
        if (statusObj.message !== undefined && statusObj.message !== '') status.message = str(statusObj.message);
        const flags = num(s.flags);
        out.push({
          traceId: str(s.traceId),
          spanId: str(s.spanId),
          parentSpanId: str(s.parentSpanId),
          name: str(s.name),
          kind: KINDS[num(s.kind)] ?? 'UNSPECIFIED',
          startTimeUnixNano: str(s.startTimeUnixNano) || '0',
          endTimeUnixNano: str(s.endTimeUnixNano) || '0',
          status,
          attributes: attributes(s.attributes),
          resource,
          scope,
          flags,
          traceFlags: flags & 0xff,
          traceState: str(s.traceState),
        });
      }
    }
  }
  return out;
}

/** OTLP/JSON metrics request (as the Collector's file exporter writes it) -> one entry per data point. */
export function flattenMetricsRequest(record: JsonValue): FlatMetricPoint[] {
  if (!isObject(record) || !Array.isArray(record.resourceMetrics)) return [];
  const out: FlatMetricPoint[] = [];
  for (const rm of record.resourceMetrics) {
    if (!isObject(rm)) continue;
    const resource = attributes(isObject(rm.resource) ? rm.resource.attributes : undefined);
    for (const sm of Array.isArray(rm.scopeMetrics) ? rm.scopeMetrics : []) {
      if (!isObject(sm)) continue;
      for (const m of Array.isArray(sm.metrics) ? sm.metrics : []) {
        if (!isObject(m)) continue;
        const base = { name: str(m.name), unit: str(m.unit), resource };
        const data = isObject(m.sum) ? m.sum : isObject(m.gauge) ? m.gauge : isObject(m.histogram) ? m.histogram : undefined;
        const type: FlatMetricPoint['type'] = isObject(m.sum) ? 'sum' : isObject(m.gauge) ? 'gauge' : isObject(m.histogram) ? 'histogram' : 'other';
        for (const dp of data && Array.isArray(data.dataPoints) ? data.dataPoints : []) {
          if (!isObject(dp)) continue;
          const point: FlatMetricPoint = { ...base, type, attributes: attributes(dp.attributes) };
          if (type === 'histogram') {
            point.count = num(dp.count);
            point.sum = num(dp.sum);
            point.bucketCounts = (Array.isArray(dp.bucketCounts) ? dp.bucketCounts : []).map(num);
            point.explicitBounds = (Array.isArray(dp.explicitBounds) ? dp.explicitBounds : []).map(num);
          } else {
            point.value = dp.asInt !== undefined ? num(dp.asInt) : num(dp.asDouble);
          }
          if (data && data.aggregationTemporality !== undefined) point.temporality = num(data.aggregationTemporality);
          if (data && data.isMonotonic !== undefined) point.isMonotonic = data.isMonotonic === true;
          out.push(point);
        }
      }
    }
  }
  return out;
}

function str(v: JsonValue | undefined): string {
  return v === undefined || v === null ? '' : String(v);
}

function num(v: JsonValue | undefined): number {
  return typeof v === 'number' ? v : typeof v === 'string' && v !== '' ? Number(v) : 0;
}

function attributes(list: JsonValue | undefined): FlatAttributes {
  const out: FlatAttributes = {};
  for (const kv of Array.isArray(list) ? list : []) {
    if (!isObject(kv)) continue;
    out[str(kv.key)] = anyValue(kv.value);
  }
  return out;
}

/** AnyValue -> plain value. int64 arrives as a decimal string; kept a string only beyond 2^53. */
function anyValue(v: JsonValue | undefined): FlatAttributeValue {
  if (!isObject(v)) return '';
  if (v.stringValue !== undefined) return str(v.stringValue);
  if (v.boolValue !== undefined) return v.boolValue === true;
  if (v.intValue !== undefined) {
    const n = Number(v.intValue);
    return Number.isSafeInteger(n) ? n : str(v.intValue);
  }
  if (v.doubleValue !== undefined) return num(v.doubleValue);
  if (isObject(v.arrayValue)) return (Array.isArray(v.arrayValue.values) ? v.arrayValue.values : []).map(anyValue);
  if (isObject(v.kvlistValue)) return attributes(v.kvlistValue.values);
  if (v.bytesValue !== undefined) return str(v.bytesValue);
  // An empty AnyValue (no value set at all); zero values of a set type are written explicitly.
  return '';
}
