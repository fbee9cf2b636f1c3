/**
 * A minimal W3C `tracestate` value for the OpenTelemetry API's `TraceState` interface.
 *
 * Why not `createTraceState` from `@opentelemetry/api`: it re-parses the header, silently drops
 * entries it considers invalid and re-orders nothing back, so what we export could differ from
 * what the kernel saw on the wire. The agent reports the tracestate it observed; this class keeps
 * the raw string and `serialize()` returns it byte for byte. `get`/`set`/`unset` exist because the
 * interface requires them; they follow the W3C rules (a modified key moves to the front).
 */
import type { TraceState } from '@opentelemetry/api';

const LIST_MEMBER_SEPARATOR = ',';
const KEY_VALUE_SEPARATOR = '=';
/** W3C trace-context level 1: at most 32 list members. */
const MAX_MEMBERS = 32;

export class W3CTraceState implements TraceState {
  constructor(private readonly raw: string) {}

  serialize(): string {
    return this.raw;
  }

  get(key: string): string | undefined {
    for (const [k, v] of this.members()) if (k === key) return v;
    return undefined;
  }

  set(key: string, value: string): TraceState {
    const members: Array<[string, string]> = [[key, value], ...this.members().filter(([k]) => k !== key)];
    return W3CTraceState.fromMembers(members.slice(0, MAX_MEMBERS));
  }

  unset(key: string): TraceState {
    return W3CTraceState.fromMembers(this.members().filter(([k]) => k !== key));
  }

  private members(): Array<[string, string]> {
    const out: Array<[string, string]> = [];
    for (const part of this.raw.split(LIST_MEMBER_SEPARATOR)) {
      const member = part.trim();
      const eq = member.indexOf(KEY_VALUE_SEPARATOR);
      if (eq <= 0) continue; // empty list members are allowed by W3C; malformed ones are skipped
      out.push([member.slice(0, eq), member.slice(eq + 1)]);
    }
    return out;
  }

  private static fromMembers(members: Array<[string, string]>): W3CTraceState {
    return new W3CTraceState(members.map(([k, v]) => `${k}${KEY_VALUE_SEPARATOR}${v}`).join(LIST_MEMBER_SEPARATOR));
  }
}
