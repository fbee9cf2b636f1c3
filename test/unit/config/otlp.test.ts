import {
  DEFAULT_TIMEOUT_MS,
  DEFAULT_TRACES_ENDPOINT,
  assertProtocol,
  parseHeaderList,
  resolveOtlpConfig,
  resolveOtlpTraceConfig,
  type Env,
} from '../../../src/config/otlp';
import { SpanbridgeError } from '../../../src/errors';

function resolve(env: Env, options = {}) {
  const warnings: string[] = [];
  const config = resolveOtlpTraceConfig(options, env, (m) => warnings.push(m));
  return { config, warnings };
}

describe('resolveOtlpTraceConfig', () => {
  it('defaults to http/protobuf on localhost:4318 with a 10 s timeout', () => {
    const { config, warnings } = resolve({});
    expect(config).toEqual({
      signal: 'traces',
      endpoint: DEFAULT_TRACES_ENDPOINT,
      headers: {},
      timeoutMs: DEFAULT_TIMEOUT_MS,
      protocol: 'http/protobuf',
      compression: 'none',
    });
    expect(DEFAULT_TRACES_ENDPOINT).toBe('http://localhost:4318/v1/traces');
    expect(DEFAULT_TIMEOUT_MS).toBe(10000);
    expect(warnings).toEqual([]);
  });

  it('appends /v1/traces to the generic endpoint, with or without a trailing slash or a path', () => {
    expect(resolve({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).config.endpoint).toBe(
      'http://collector:4318/v1/traces',
    );
    expect(resolve({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }).config.endpoint).toBe(
      'http://collector:4318/v1/traces',
    );
    expect(resolve({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://gw.example/otlp/' }).config.endpoint).toBe(
      'https://gw.example/otlp/v1/traces',
    );
  });

  it('uses the traces endpoint as given and prefers it to the generic one; options win over both', () => {
    const env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://generic:4318',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://traces:9999/custom',
    };
    expect(resolve(env).config.endpoint).toBe('http://traces:9999/custom');
    expect(resolve(env, { endpoint: 'http://flag:1/x' }).config.endpoint).toBe('http://flag:1/x');
  });

  it('treats empty values as unset', () => {
    const { config, warnings } = resolve({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '', OTEL_EXPORTER_OTLP_TIMEOUT: ' ' });
    expect(config.endpoint).toBe(DEFAULT_TRACES_ENDPOINT);
    expect(config.timeoutMs).toBe(DEFAULT_TIMEOUT_MS);
    expect(warnings).toEqual([]);
  });

  it('warns about and skips unusable endpoints, falling through to the next source', () => {
    const { config, warnings } = resolve({
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'not a url',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://x',
    });
    expect(config.endpoint).toBe(DEFAULT_TRACES_ENDPOINT);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
    expect(warnings[1]).toContain('unsupported scheme ftp:');
  });

  it('merges generic and traces headers (traces win), URL-decodes values, options win last', () => {
    const { config, warnings } = resolve(
      {
        OTEL_EXPORTER_OTLP_HEADERS: 'api-key=gen%20eric, x-tenant = a ,authorization=Basic%20dXNlcjpwYXNz',
        OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-tenant=b,x-eq=a%3Db',
      },
      { headers: { 'api-key': 'from-flag' } },
    );
    expect(config.headers).toEqual({
      'api-key': 'from-flag',
      'x-tenant': 'b',
      authorization: 'Basic dXNlcjpwYXNz',
      'x-eq': 'a=b',
    });
    expect(warnings).toEqual([]);
  });

  it('warns about and skips bad header entries but keeps the good ones', () => {
    const warnings: string[] = [];
    const headers = parseHeaderList('good=1,novalue,bad key=2,pct=%E0%A4%A,crlf=a%0D%0Ab,,=empty', 'X', (m) =>
      warnings.push(m),
    );
    expect(headers).toEqual({ good: '1' });
    expect(warnings).toHaveLength(5);
    expect(warnings.join('\n')).toMatch(/expected key=value/);
    expect(warnings.join('\n')).toMatch(/invalid percent-encoding/);
    expect(warnings.join('\n')).toMatch(/control characters/);
  });

  it('names a bad header entry by position and key, never by its value (a credential)', () => {
    const warnings: string[] = [];
    parseHeaderList('authorization=Bearer%ZZsecret-1,secret-2-no-equals,x-key=sec%0Aret-3', 'OTEL_EXPORTER_OTLP_HEADERS', (m) => warnings.push(m));
    expect(warnings).toEqual([
      'otlp config: ignoring entry 1 ("authorization") in OTEL_EXPORTER_OTLP_HEADERS: invalid percent-encoding',
      'otlp config: ignoring entry 2 in OTEL_EXPORTER_OTLP_HEADERS: expected key=value',
      'otlp config: ignoring entry 3 ("x-key") in OTEL_EXPORTER_OTLP_HEADERS: header value contains control characters',
    ]);
  });

  it('reads the timeout in milliseconds, traces-specific first; bad values warned and ignored', () => {
    expect(resolve({ OTEL_EXPORTER_OTLP_TIMEOUT: '2500' }).config.timeoutMs).toBe(2500);
    expect(
      resolve({ OTEL_EXPORTER_OTLP_TIMEOUT: '2500', OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '700' }).config.timeoutMs,
    ).toBe(700);
    const bad = resolve({ OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: 'soon', OTEL_EXPORTER_OTLP_TIMEOUT: '-1' });
    expect(bad.config.timeoutMs).toBe(DEFAULT_TIMEOUT_MS);
    expect(bad.warnings).toHaveLength(2);
    const opt = resolve({ OTEL_EXPORTER_OTLP_TIMEOUT: '2500' }, { timeoutMs: 0 });
    expect(opt.config.timeoutMs).toBe(2500);
    expect(opt.warnings).toHaveLength(1);
    expect(resolve({}, { timeoutMs: 300 }).config.timeoutMs).toBe(300);
  });

  it('accepts every OTLP protocol, signal-specific first; ignores nonsense with a warning', () => {
    expect(resolve({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' }).config.protocol).toBe('http/protobuf');
    expect(resolve({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }).config.protocol).toBe('grpc');
    expect(resolve({ OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json' }).config.protocol).toBe('http/json');
    expect(
      resolve({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' }).config.protocol,
    ).toBe('http/protobuf');
    expect(resolve({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, { protocol: 'http/json' }).config.protocol).toBe('http/json');
    const nonsense = resolve({ OTEL_EXPORTER_OTLP_PROTOCOL: 'carrier-pigeon' });
    expect(nonsense.config.protocol).toBe('http/protobuf');
    expect(nonsense.warnings).toHaveLength(1);
    expect(() => assertProtocol('carrier-pigeon', '--otlp-protocol')).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG' }) as SpanbridgeError,
    );
  });

  it('grpc: endpoints are used as given (no path), default localhost:4317', () => {
    expect(resolve({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }).config.endpoint).toBe('http://localhost:4317');
    expect(
      resolve({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_ENDPOINT: 'https://collector:4317' }).config.endpoint,
    ).toBe('https://collector:4317');
    expect(resolve({}, { protocol: 'grpc', baseEndpoint: 'http://c:1234' }).config.endpoint).toBe('http://c:1234');
  });

  it('resolves the metrics signal from its own variables, then the generic ones', () => {
    const warnings: string[] = [];
    const env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://generic:4318',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://traces:1/t',
      OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'x-m=1',
      OTEL_EXPORTER_OTLP_HEADERS: 'x-g=2',
      OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: '1234',
      OTEL_EXPORTER_OTLP_METRICS_COMPRESSION: 'gzip',
    };
    expect(resolveOtlpConfig('metrics', {}, env, (m) => warnings.push(m))).toEqual({
      signal: 'metrics',
      endpoint: 'http://generic:4318/v1/metrics',
      headers: { 'x-g': '2', 'x-m': '1' },
      timeoutMs: 1234,
      protocol: 'http/json',
      compression: 'gzip',
    });
    expect(resolveOtlpConfig('traces', {}, env).compression).toBe('none');
    expect(resolveOtlpConfig('metrics', { baseEndpoint: 'http://flag:4318/' }, env).endpoint).toBe('http://flag:4318/v1/metrics');
    expect(warnings).toEqual([]);
  });

  it('reads compression (none or gzip), signal-specific first; warns about anything else', () => {
    expect(resolve({ OTEL_EXPORTER_OTLP_COMPRESSION: 'none' }).warnings).toEqual([]);
    expect(resolve({ OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip' }).config.compression).toBe('gzip');
    expect(
      resolve({ OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip', OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'none' }).config.compression,
    ).toBe('none');
    const bad = resolve({ OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'zstd' });
    expect(bad.warnings[0]).toMatch(/expected none or gzip/);
    expect(bad.config.compression).toBe('none');
  });
});
