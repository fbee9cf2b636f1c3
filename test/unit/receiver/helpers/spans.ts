/** Span and resource builders for receiver tests. */
import type { Resource, Span } from '../../../../src/spans/span';

export function makeResource(serviceName: string, pid: number): Resource {
  return { attributes: { 'service.name': serviceName, 'process.pid': pid, 'host.name': 'node-1' } };
}

let counter = 0;

/** A sampled server span with unique ids; `overrides` replace any field. */
export function makeSpan(resource: Resource, overrides: Partial<Span> = {}): Span {
  counter++;
  const n = counter.toString(16).padStart(16, '0');
  return {
    traceId: `4bf92f3577b34da6${n}`,
    spanId: n,
    parentSpanId: '',
    traceFlags: 1,
    traceState: '',
    name: 'GET /users/{id}',
    kind: 'SERVER',
    startTimeUnixNano: 1732500000123456789n,
    endTimeUnixNano: 1732500000223456789n,
    status: { code: 'UNSET' },
    attributes: { 'http.request.method': 'GET', 'url.path': '/users/7', 'http.response.status_code': 200 },
    resource,
    ...overrides,
  };
}
