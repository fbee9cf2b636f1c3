/**
 * Command-line parsing and validation for `spanbridge run`. Validated once, with messages that
 * name the bad option and the allowed values.
 */
import { parseArgs } from 'node:util';
import { SpanbridgeError } from '../errors';
import { isLogLevel, type LogLevel } from '../log';
import type { InjectHeaders } from '../agent';
import { isContainerIdPrefix, normalizeContainerIdPrefix } from '../discovery/container';
import { isEmptySelection, type Selection } from '../discovery/selectors';
import { assertProtocol, parseByteSize, parsePrometheusPort, type OtlpProtocol } from '../../receiver';

export interface RunOptions {
  readonly selection: Selection;
  readonly printSpans: 'none' | 'json';
  readonly readyFile?: string;
  readonly injectHeaders: InjectHeaders;
  readonly export: 'otlp' | 'none';
  readonly otlpEndpoint?: string;
  readonly otlpProtocol?: OtlpProtocol;
  /** A port, 'off', or undefined (environment / default 9400). */
  readonly prometheusPort?: number | 'off';
  readonly prometheusHost?: string;
  readonly queueMaxBytes?: number;
  readonly logLevel: LogLevel;
  readonly bpfDir?: string;
}

export const RUN_USAGE = `Usage: spanbridge run [selectors] [options]

Traces the selected processes and exports their spans over OTLP.

Selectors (a process matching any of them is traced; processes started later are followed):
  --pid N              a process id (repeatable)
  --exe GLOB           executable path glob, e.g. '*/frontend' or 'api-*' (repeatable)
  --open-port P        a process listening on TCP port P (repeatable)
  --container ID       every process in a container whose id starts with ID (hex, as
                       \`docker ps\` / \`podman ps\` print it; repeatable)

Options:
  --print-spans json|none   write each finished span as one JSON line on stdout (default none)
  --ready-file PATH         create PATH once the processes matched at start are attached
  --inject-headers auto|on|off
                            traceparent injection into outgoing requests (default auto;
                            off = the agent never changes application traffic)
  --export otlp|none        deliver spans to the Collector over OTLP (default otlp)
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
  --log-level debug|info|warn|error (default info; env SPANBRIDGE_LOG_LEVEL)
  --bpf-dir DIR             where the compiled BPF objects are (default: build/bpf)
  -h, --help                this help
`;

function oneOf<T extends string>(name: string, value: string | undefined, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new SpanbridgeError('ERR_CONFIG', `--${name}: '${value}' is not one of ${allowed.join(', ')}`);
}

function integers(name: string, values: string[] | undefined, min: number, max: number): number[] {
  return (values ?? []).map((v) => {
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
      throw new SpanbridgeError('ERR_CONFIG', `--${name}: '${v}' is not an integer in ${min}..${max}`);
    }
    return Number(v);
  });
}

export function parseRunArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): RunOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        pid: { type: 'string', multiple: true },
        exe: { type: 'string', multiple: true },
        'open-port': { type: 'string', multiple: true },
        container: { type: 'string', multiple: true },
        'print-spans': { type: 'string' },
        'ready-file': { type: 'string' },
        'inject-headers': { type: 'string' },
        export: { type: 'string' },
        'otlp-endpoint': { type: 'string' },
        'otlp-protocol': { type: 'string' },
        'prometheus-port': { type: 'string' },
        'prometheus-host': { type: 'string' },
        'queue-max-bytes': { type: 'string' },
        'log-level': { type: 'string' },
        'bpf-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new SpanbridgeError('ERR_CONFIG', `${(err as Error).message}\n\n${RUN_USAGE}`);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  const selection: Selection = {
    pids: integers('pid', v.pid, 1, 2 ** 22),
    exeGlobs: (v.exe ?? []).filter((g) => {
      if (g.trim() === '') throw new SpanbridgeError('ERR_CONFIG', '--exe: empty pattern');
      return true;
    }),
    openPorts: integers('open-port', v['open-port'], 1, 65535),
    containerIds: (v.container ?? []).map((c) => {
      const id = normalizeContainerIdPrefix(c);
      if (!isContainerIdPrefix(id)) {
        throw new SpanbridgeError('ERR_CONFIG', `--container: '${c}' is not a container id or id prefix (1 to 64 hex digits)`);
      }
      return id;
    }),
  };
  if (isEmptySelection(selection)) {
    throw new SpanbridgeError('ERR_CONFIG', `no process selected: give --pid, --exe, --open-port or --container\n\n${RUN_USAGE}`);
  }
  const logLevelRaw = v['log-level'] ?? env.SPANBRIDGE_LOG_LEVEL;
  if (logLevelRaw !== undefined && !isLogLevel(logLevelRaw)) {
    throw new SpanbridgeError('ERR_CONFIG', `--log-level: '${logLevelRaw}' is not one of debug, info, warn, error`);
  }
  const endpoint = v['otlp-endpoint'];
  if (endpoint !== undefined && !/^https?:\/\/[^\s]+$/.test(endpoint)) {
    throw new SpanbridgeError('ERR_CONFIG', `--otlp-endpoint: '${endpoint}' is not an http(s) URL`);
  }
  const promPortRaw = v['prometheus-port'];
  const prometheusPort = promPortRaw === undefined ? undefined : parsePrometheusPort(promPortRaw);
  if (prometheusPort === undefined && promPortRaw !== undefined) {
    throw new SpanbridgeError('ERR_CONFIG', `--prometheus-port: '${promPortRaw}' is not a port 1..65535, 0 or off`);
  }
  const queueRaw = v['queue-max-bytes'];
  const queueMaxBytes = queueRaw === undefined ? undefined : parseByteSize(queueRaw);
  if (queueMaxBytes === undefined && queueRaw !== undefined) {
    throw new SpanbridgeError('ERR_CONFIG', `--queue-max-bytes: '${queueRaw}' is not a size like 67108864, 512KiB or 64MiB`);
  }
  return {
    selection,
    printSpans: oneOf('print-spans', v['print-spans'], ['none', 'json'] as const, 'none'),
    readyFile: v['ready-file'],
    injectHeaders: oneOf('inject-headers', v['inject-headers'], ['auto', 'on', 'off'] as const, 'auto'),
    export: oneOf('export', v.export, ['otlp', 'none'] as const, 'otlp'),
    otlpEndpoint: endpoint,
    otlpProtocol: v['otlp-protocol'] === undefined ? undefined : assertProtocol(v['otlp-protocol'], '--otlp-protocol'),
    prometheusPort,
    prometheusHost: v['prometheus-host'],
    queueMaxBytes,
    logLevel: (logLevelRaw as LogLevel | undefined) ?? 'info',
    bpfDir: v['bpf-dir'],
  };
}
