/**
 * Drives the Collector bridge with synthetic spans (no eBPF needed): unique ids per span, HTTP
 * attributes so RED metrics have something to aggregate, and a steady-rate generator.
 */
import type { Resource, Span } from '../../../src/spans/span';
import { makeResource, makeSpan } from '../../fixtures/spans';

let sequence = 0;

export function syntheticResource(serviceName: string, pid = 4242): Resource {
  return makeResource(serviceName, pid, { 'service.instance.id': `${serviceName}-${pid}` });
}

/** A sampled SERVER span with ids unique across runs, ~`durationMs` long, ending now. */
export function syntheticSpan(resource: Resource, overrides: Partial<Span> = {}, durationMs = 12): Span {
  sequence++;
  const id = (BigInt(Date.now()) * 1_000_000n + BigInt(sequence)).toString(16).padStart(16, '0').slice(-16);
  const end = BigInt(Date.now()) * 1_000_000n;
  return makeSpan(resource, {
    traceId: `5b8efff798038103${id}`,
    spanId: id,
    name: 'GET /items/{id}',
    startTimeUnixNano: end - BigInt(durationMs) * 1_000_000n,
    endTimeUnixNano: end,
    attributes: {
      'http.request.method': 'GET',
      'url.path': `/items/${sequence}`,
      'url.scheme': 'http',
      'http.route': '/items/{id}',
      'http.response.status_code': 200,
    },
    ...overrides,
  });
}

/** Calls `emit` with `perSecond` spans a second, in 20 ms ticks, until `stop()`. */
export function steadyRate(perSecond: number, emit: () => void): { stop(): void; readonly emitted: number } {
  const tickMs = 20;
  const started = Date.now();
  let emitted = 0;
  const timer = setInterval(() => {
    const due = Math.floor(((Date.now() - started) / 1000) * perSecond);
    while (emitted < due) {
      emit();
      emitted++;
    }
  }, tickMs);
  return {
    stop: () => clearInterval(timer),
    get emitted() {
      return emitted;
    },
  };
}
