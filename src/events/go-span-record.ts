/**
 * The fields every Go uprobe span record starts with (bpf/go_http/go_http_server.h, bpf/go_http/go_http_client.h):
 * where it ran, when (CLOCK_MONOTONIC ns) and the span's own ids, all decided in the kernel. The
 * parent id is not here: each record says under its own flags whether it has one.
 */
export interface GoSpanRecordFields {
  readonly pid: number;
  readonly tid: number;
  readonly goid: bigint;
  readonly startNs: bigint;
  readonly endNs: bigint;
  readonly traceId: string;
  readonly spanId: string;
  readonly traceFlags: number;
}
