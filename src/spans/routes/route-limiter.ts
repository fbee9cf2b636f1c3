/**
 * The cardinality guard: at most `maxPerService` distinct routes per service. A route seen before
 * is always admitted; a new one is admitted while the service has room, after that it folds into
 * OVERFLOW_ROUTE. Routes feed span names and the RED metrics' `http.route`, so this bounds both:
 * a scan of random paths costs one set of at most `maxPerService` strings per service, never more.
 *
 * Services themselves are bounded too (MAX_SERVICES), and so is the sum of routes over all services
 * (MAX_TOTAL_ROUTES, ~10 MB of strings at most): beyond either, new routes get the overflow route.
 * Services come from traced processes, so reaching them means something is very wrong.
 */
import { OVERFLOW_ROUTE } from './route-policy';

export const MAX_SERVICES = 10_000;
export const MAX_TOTAL_ROUTES = 100_000;

export interface Admission {
  readonly route: string;
  /** The route was folded into OVERFLOW_ROUTE. */
  readonly overflow: boolean;
  /** This call is the service's first overflow (report it once). */
  readonly firstOverflow: boolean;
  /** A new route was admitted (the service's distinct-route count changed). */
  readonly added: boolean;
}

export class RouteLimiter {
  private readonly routes = new Map<string, Set<string>>();
  private readonly overflowed = new Set<string>();
  private total = 0;

  constructor(
    readonly maxPerService: number,
    private readonly maxTotal = MAX_TOTAL_ROUTES,
  ) {}

  admit(service: string, route: string): Admission {
    let known = this.routes.get(service);
    if (!known) {
      if (this.routes.size >= MAX_SERVICES) return this.overflow(service);
      known = new Set();
      this.routes.set(service, known);
    }
    if (known.has(route)) return { route, overflow: false, firstOverflow: false, added: false };
    if (known.size >= this.maxPerService || this.total >= this.maxTotal) return this.overflow(service);
    known.add(route);
    this.total++;
    return { route, overflow: false, firstOverflow: false, added: true };
  }

  /** Distinct routes admitted for `service`. */
  count(service: string): number {
    return this.routes.get(service)?.size ?? 0;
  }

  private overflow(service: string): Admission {
    const first = !this.overflowed.has(service) && this.overflowed.size < MAX_SERVICES;
    if (first) this.overflowed.add(service);
    return { route: OVERFLOW_ROUTE, overflow: true, firstOverflow: first, added: false };
  }
}
