/**
 * The Go uprobe path's records -> spans stage, beside the syscall one (src/tracers/sys-http-stage.ts):
 * decodes the Go tracer's ring records, builds server spans at once and client spans when their
 * response body closes (go-client-ends.ts), and hands every span to `deliver`. The agent owns the
 * tracer (its injection strategy can change at start) and tells this stage when a process is gone.
 */
import type { RecordHandler } from '../bpf/types';
import { ringHandler, type RingRecord } from '../events/decoder';
import { GO_HTTP_OBJECT } from '../events/structs.generated';
import { fieldsTruncated, recordsDecoded, spansDropped } from '../metrics/catalogue';
import type { SelfMetrics } from '../metrics/counters';
import type { Clock } from '../time/clock';
import { goClientSpan } from './go-client-span';
import { GoClientEnds } from './go-client-ends';
import { goServerSpan } from './go-server-span';
import type { Resource, Span } from './span';
import type { UrlRedaction } from './url-redaction';

export interface GoHttpStageDeps {
  readonly clock: Clock;
  readonly metrics: SelfMetrics;
  readonly resourceOf: (pid: number) => Resource | undefined;
  readonly deliver: (span: Span) => void;
  /** Applied where URL attributes are built (default: DEFAULT_URL_REDACTION). */
  readonly redaction?: UrlRedaction;
}

export class GoHttpStage {
  /** Client spans whose response body is open wait here for its close (their end). */
  private readonly clientEnds: GoClientEnds;
  /** The Go tracer's ring-buffer handler: that ring's decoder, bound to this stage. */
  readonly onRecord: RecordHandler;

  constructor(private readonly d: GoHttpStageDeps) {
    this.onRecord = ringHandler(GO_HTTP_OBJECT.maps.go_http_events, d.metrics, (rec) => this.onGoRecord(rec));
    this.clientEnds = new GoClientEnds((rec, endNs, bodyClosed) => {
      const resource = d.resourceOf(rec.pid);
      if (!resource) {
        spansDropped.add(d.metrics, { reason: 'unknown_process' });
        return;
      }
      d.deliver(goClientSpan(endNs === rec.endNs ? rec : { ...rec, endNs }, resource, d.clock, d.redaction, bodyClosed));
    }, d.metrics);
  }

  private onGoRecord(rec: RingRecord<typeof GO_HTTP_OBJECT.maps.go_http_events>): void {
    recordsDecoded.add(this.d.metrics, { type: rec.type });
    if (rec.type === 'go_http_client_end') {
      this.clientEnds.end(rec);
      return;
    }
    const resource = this.d.resourceOf(rec.pid);
    if (!resource) {
      spansDropped.add(this.d.metrics, { reason: 'unknown_process' });
      return;
    }
    if (rec.truncated.length > 0) fieldsTruncated.add(this.d.metrics, {}, rec.truncated.length);
    if (rec.type === 'go_http_server') this.d.deliver(goServerSpan(rec, resource, this.d.clock, this.d.redaction));
    else this.clientEnds.add(rec);
  }

  /** Periodic work: client spans whose body stayed open too long end at their head. */
  tick(): void {
    this.clientEnds.sweep(this.d.clock.nowMonotonic());
  }

  /** A process is gone: its open bodies will never close, so its client spans end now. */
  release(pid: number): void {
    this.clientEnds.flush(pid);
  }

  /** Stopping: every waiting client span ends now. */
  flush(): void {
    this.clientEnds.flush();
  }
}
