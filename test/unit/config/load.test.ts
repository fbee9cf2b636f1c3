import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeConfig } from '../../../src/cli/args';
import { loadConfig, toSelection } from '../../../src/config/load';
import { SETTINGS } from '../../../src/config/settings';
import { configErr, runOptions as run } from '../../helpers/run-options';

const YAML = `
selections:
  - exe: '*/api'
    service_name: checkout
  - open_port: 8080
  - pid: 4242
    service_name: legacy
log_level: debug
print_spans: tree
inject_headers: off
web:
  port: 9411
otlp:
  endpoint: http://collector:4318
  protocol: http/json
  headers: { authorization: "Bearer abc" }
prometheus:
  port: off
queue:
  max_bytes: 8MiB
  max_spans: 4096
resource_attributes:
  deployment.environment: staging
  team: shop
`;

describe('config merge: defaults < YAML < environment < flags', () => {
  it('defaults alone', () => {
    const o = run(['--pid', '1']);
    expect(o).toMatchObject({ printSpans: 'none', injectHeaders: 'auto', export: 'otlp', logLevel: 'info', traceQuietMs: 1500 });
    expect(o.webPort).toBeUndefined();
    expect(o.otlp).toEqual({});
    expect(o.bridge).toEqual({});
  });

  it('the YAML file sets everything, selections with service names included', () => {
    const o = run(['--config', '/etc/sb.yaml'], {}, { '/etc/sb.yaml': YAML });
    expect(o.selection).toEqual({
      pids: [4242],
      exeGlobs: ['*/api'],
      openPorts: [8080],
      serviceNames: { 'exe */api': 'checkout', 'pid 4242': 'legacy' },
    });
    expect(o).toMatchObject({ logLevel: 'debug', printSpans: 'tree', injectHeaders: 'off', webPort: 9411 });
    expect(o.otlp).toEqual({ baseEndpoint: 'http://collector:4318', protocol: 'http/json', headers: { authorization: 'Bearer abc' } });
    expect(o.bridge).toEqual({
      prometheusPort: 'off',
      queue: { maxQueueBytes: 8 * 1024 * 1024, maxQueueSize: 4096 },
      resourceAttributes: { 'deployment.environment': 'staging', team: 'shop' },
    });
    expect(o.config.sources.log_level).toBe('yaml');
  });

  it('SPANBRIDGE_CONFIG names the file when --config is absent', () => {
    expect(run([], { SPANBRIDGE_CONFIG: '/c.yaml' }, { '/c.yaml': 'selections: [{open_port: 80}]' }).selection.openPorts).toEqual([80]);
  });

  it('environment beats YAML, flags beat both', () => {
    const fs = { '/c.yaml': YAML };
    const env = { SPANBRIDGE_LOG_LEVEL: 'warn', SPANBRIDGE_PRINT_SPANS: 'json', OTEL_TRACES_EXPORTER: 'none', SPANBRIDGE_WEB_PORT: '0' };
    const o = run(['--config', '/c.yaml'], env, fs);
    expect(o).toMatchObject({ logLevel: 'warn', printSpans: 'json', export: 'none' });
    expect(o.webPort).toBeUndefined();
    const f = run(['--config', '/c.yaml', '--log-level', 'error', '--print-spans', 'none', '--export', 'otlp', '--web-port', '7000'], env, fs);
    expect(f).toMatchObject({ logLevel: 'error', printSpans: 'none', export: 'otlp', webPort: 7000 });
    expect(f.config.sources).toMatchObject({ log_level: 'flag', print_spans: 'flag', inject_headers: 'yaml' });
  });

  it('bridge settings: a set environment variable makes the YAML value step aside (receiver/ reads it)', () => {
    const o = run(['--config', '/c.yaml'], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://env:4318', SPANBRIDGE_PROMETHEUS_PORT: '9999' }, { '/c.yaml': YAML });
    expect(o.otlp.baseEndpoint).toBeUndefined();
    expect(o.otlp.protocol).toBe('http/json');
    expect(o.bridge.prometheusPort).toBeUndefined();
    expect(o.config.sources['otlp.endpoint']).toBe('env');
    // the signal-specific variable counts too
    expect(run(['--config', '/c.yaml'], { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t/v1/traces' }, { '/c.yaml': YAML }).otlp.baseEndpoint).toBeUndefined();
    // and the flag still wins
    expect(run(['--config', '/c.yaml', '--otlp-endpoint', 'http://flag:4318'], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://env:4318' }, { '/c.yaml': YAML }).otlp.baseEndpoint).toBe('http://flag:4318');
  });

  it('resource attributes: environment wins key by key over the YAML mapping', () => {
    const o = run(['--config', '/c.yaml'], { OTEL_RESOURCE_ATTRIBUTES: 'team=payments,region=eu' }, { '/c.yaml': YAML });
    expect(o.bridge.resourceAttributes).toEqual({ 'deployment.environment': 'staging', team: 'payments', region: 'eu' });
  });

  it('selector flags replace the file selections', () => {
    const o = run(['--config', '/c.yaml', '--exe', 'worker'], {}, { '/c.yaml': YAML });
    expect(o.selection).toEqual({ pids: [], exeGlobs: ['worker'], openPorts: [] });
    expect(o.config.selectionSource).toBe('flag');
  });

  it('a bad OTEL_* value is warned about and ignored (the next source applies)', () => {
    const o = run(['--config', '/c.yaml'], { OTEL_TRACES_EXPORTER: 'zipkin' }, { '/c.yaml': 'selections: [{pid: 1}]\nexport: none' });
    expect(o.export).toBe('none');
    expect(o.config.warnings).toEqual(['config: ignoring OTEL_TRACES_EXPORTER="zipkin": expected one of otlp, none']);
    expect(run(['--pid', '1'], { OTEL_TRACES_EXPORTER: 'otlp,console' }).export).toBe('otlp');
  });

  it('container selections', () => {
    const o = run(['--config', '/c.yaml'], {}, { '/c.yaml': 'selections: [{container: ABC123, service_name: box}]' });
    expect(o.selection).toMatchObject({ containerIds: ['abc123'], serviceNames: { 'container abc123': 'box' } });
  });

  it('ring buffer: wakeup threshold (0 allowed) and poll period from YAML or the environment; unset leaves the defaults to the agent', () => {
    expect(run(['--pid', '1'])).toMatchObject({ ringWakeupBytes: undefined, ringPollIntervalMs: undefined });
    const yaml = { '/c.yaml': 'ring_buffer: {wakeup_bytes: 16KiB, poll_interval_ms: 100}' };
    expect(run(['--config', '/c.yaml', '--pid', '1'], {}, yaml)).toMatchObject({ ringWakeupBytes: 16384, ringPollIntervalMs: 100 });
    expect(run(['--config', '/c.yaml', '--pid', '1'], { SPANBRIDGE_RING_WAKEUP_BYTES: '0', SPANBRIDGE_RING_POLL_MS: '20' }, yaml)).toMatchObject({
      ringWakeupBytes: 0,
      ringPollIntervalMs: 20,
    });
    expect(configErr(() => run(['--pid', '1'], { SPANBRIDGE_RING_WAKEUP_BYTES: '2MiB' }))).toMatch(/SPANBRIDGE_RING_WAKEUP_BYTES: '2MiB' is not a size like 65536 or 64KiB, at most 1MiB, or 0/);
    expect(configErr(() => run(['--pid', '1'], { SPANBRIDGE_RING_POLL_MS: '0' }))).toMatch(/SPANBRIDGE_RING_POLL_MS: '0' is not an integer 10\.\.1000/);
  });

  it('toSelection keeps the first service name of a repeated selector', () => {
    expect(toSelection([{ exe: 'a', serviceName: 'one' }, { exe: 'a', serviceName: 'two' }]).serviceNames).toEqual({ 'exe a': 'one' });
  });
});

describe('config validation names the bad key and the allowed values', () => {
  it.each([
    ['log_level: loud', /\/c\.yaml: log_level: 'loud' is not one of debug, info, warn, error/],
    ['print_spans: xml', /print_spans: 'xml' is not one of none, json, tree/],
    ['web: {port: 70000}', /web\.port: 70000 is not a port 1\.\.65535, 0 or off/],
    ['otlp: {endpoint: "ftp://x"}', /otlp\.endpoint: 'ftp:\/\/x' is not an http\(s\) URL/],
    ['otlp: {endpont: "http://x"}', /unknown key 'otlp\.endpont' \(known keys under otlp: endpoint, protocol, compression, timeout_ms, headers\)/],
    ['colour: blue', /unknown key 'colour' \(known keys: log_level, inject_headers, print_spans, trace_view/],
    ['queue: {max_bytes: lots}', /queue\.max_bytes: 'lots' is not a size like 67108864, 512KiB or 64MiB/],
    ['otlp: {headers: [a, b]}', /otlp\.headers: \["a","b"\] is not a mapping of header names to values/],
    ['otlp: 5', /otlp: expected a mapping \(keys: endpoint/],
    ['selections: {exe: x}', /selections: expected a list/],
    ['selections: [{exe: x, open_port: 80}]', /selections\[0\]: give exactly one of pid, exe, open_port, container \(found exe, open_port\)/],
    ['selections: [{service_name: x}]', /selections\[0\]: give exactly one of .* \(found none\)/],
    ['selections: [{exe: x, servce_name: y}]', /selections\[0\]: unknown key 'servce_name' \(known keys: pid, exe, open_port, container, service_name, routes\)/],
    ['selections: [{open_port: 99999}]', /selections\[0\]\.open_port: '99999' is not an integer in 1\.\.65535/],
    ['selections: [{container: xyz}]', /selections\[0\]\.container: 'xyz' is not a container id/],
    ['a: [unclosed', /\/c\.yaml: invalid YAML: .* at line 1, column \d+$/],
    ['a: 1\na: 2', /\/c\.yaml: invalid YAML: Map keys must be unique at line 2/],
    ['- just\n- a list', /the top level must be a mapping/],
  ])('%s', (yaml, msg) => {
    expect(configErr(() => run(['--config', '/c.yaml', '--pid', '1'], {}, { '/c.yaml': yaml }))).toMatch(msg);
  });

  it('environment and flags', () => {
    expect(configErr(() => run(['--pid', '1'], { SPANBRIDGE_INJECT_HEADERS: 'always' }))).toMatch(/SPANBRIDGE_INJECT_HEADERS: 'always' is not one of auto, on, off/);
    expect(configErr(() => run(['--pid', '1', '--web-port', 'http']))).toMatch(/--web-port: 'http' is not a port 1\.\.65535, 0 or off/);
    expect(configErr(() => run(['--pid', '1', '--trace-quiet-ms', '5']))).toMatch(/--trace-quiet-ms: '5' is not an integer 100\.\.60000/);
    expect(configErr(() => run(['--config', '/missing.yaml', '--pid', '1']))).toMatch(/--config: cannot read \/missing\.yaml: ENOENT/);
  });

  it('an empty file is fine', () => {
    expect(run(['--config', '/c.yaml', '--pid', '1'], {}, { '/c.yaml': '# nothing\n' }).logLevel).toBe('info');
  });
});

describe('--print-config and docs', () => {
  it('prints every setting with its source', () => {
    const text = describeConfig(run(['--config', '/c.yaml', '--log-level', 'warn'], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://e' }, { '/c.yaml': YAML }));
    expect(text).toMatch(/^log_level: "warn" {2}# flag$/m);
    expect(text).toMatch(/^print_spans: "tree" {2}# yaml$/m);
    expect(text).toMatch(/^otlp\.endpoint: \(from OTEL_EXPORTER_OTLP_TRACES_ENDPOINT \/ OTEL_EXPORTER_OTLP_ENDPOINT, resolved by the bridge\) {2}# env$/m);
    expect(text).toMatch(/^ {2}- \{exe: '\*\/api', service_name: checkout\}$/m);
    expect(text).toMatch(/^trace_view\.quiet_ms: 1500 {2}# default$/m);
  });

  it('docs/configuration.md documents every setting: YAML key, environment variables, flag', () => {
    const doc = readFileSync(join(__dirname, '../../../docs/configuration.md'), 'utf8');
    for (const s of SETTINGS) {
      expect(doc).toContain(`\`${s.key}\``);
      for (const e of s.env ?? []) expect(doc).toContain(e);
      if (s.flag) expect(doc).toContain(`--${s.flag}`);
    }
  });

  it('loadConfig without a file and without flags selects nothing', () => {
    expect(loadConfig({ flags: {}, env: {} }).selectionSource).toBe('none');
  });
});
