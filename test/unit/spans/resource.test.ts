import type { ProcessInfo } from '../../../src/discovery/process-info';
import { parseResourceAttributes, processResource } from '../../../src/spans/resource';

const proc = (env: Record<string, string> = {}): ProcessInfo => ({
  pid: 77,
  exePath: '/srv/bin/api-server',
  exeOpenPath: '/proc/77/exe',
  exeName: 'api-server',
  exeKey: '1:2',
  cmdline: ['/srv/bin/api-server'],
  env,
  startTicks: 1234,
});

describe('process resource', () => {
  it('service.name: the process OTEL_SERVICE_NAME, then its OTEL_RESOURCE_ATTRIBUTES, then an override, then the executable', () => {
    expect(processResource(proc({ OTEL_SERVICE_NAME: 'checkout', OTEL_RESOURCE_ATTRIBUTES: 'service.name=x' })).attributes['service.name']).toBe('checkout');
    expect(processResource(proc({ OTEL_RESOURCE_ATTRIBUTES: 'service.name=cart,deployment.environment=prod' })).attributes).toMatchObject({
      'service.name': 'cart',
      'deployment.environment': 'prod',
    });
    expect(processResource(proc(), { serviceNameOverride: 'from-config' }).attributes['service.name']).toBe('from-config');
    expect(processResource(proc()).attributes['service.name']).toBe('api-server');
  });

  it('carries process, host, sdk and runtime attributes', () => {
    const r = processResource(proc(), { runtime: { name: 'go', version: 'go1.26.8' }, language: 'go' });
    expect(r.attributes).toMatchObject({
      'process.pid': 77,
      'process.executable.name': 'api-server',
      'process.executable.path': '/srv/bin/api-server',
      'process.runtime.name': 'go',
      'process.runtime.version': 'go1.26.8',
      'telemetry.sdk.name': 'spanbridge',
      'telemetry.sdk.language': 'go',
    });
    expect(String(r.attributes['service.instance.id'])).toMatch(/-77-1234$/);
    expect(typeof r.attributes['host.name']).toBe('string');
  });

  it('parses OTEL_RESOURCE_ATTRIBUTES leniently: percent-decoding, bad entries skipped', () => {
    expect(parseResourceAttributes('a=1, b = x%20y ,bad,=v,c=%E0%A4%A')).toEqual({ a: '1', b: 'x y' });
    expect(parseResourceAttributes(undefined)).toEqual({});
  });
});
