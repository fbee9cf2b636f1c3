/**
 * Which path a Go process's HTTP/1 server spans take (setting go.server_path), decided per binary:
 * 'syscall' only where the syscall tracer runs and the binary's goroutine can be read at a
 * tracepoint (runtime.g.goid known, g's TLS slot resolved: src/discovery/go/tls.ts); otherwise
 * 'uprobes', with the reason for the start-up report.
 */
import { GO_FUNCS, LEAN_CLIENT_FIELDS, type GoClientPath, type GoInjection, type GoServerPath, type GoTarget } from './go-http-tracer';
import type { GoServerOptions } from './sys-http-tracer';

/**
 * The default of go.server_path: the syscall path (no uprobe per request; ~5 traps per request on
 * the uprobe path). Every Go test passes on it, pipelined requests included (the kernel decides
 * each request head of a read: bpf/sys_http/sys_http_pipelined.h); go-server-spans runs both paths
 * explicitly. What stays on uprobes: binaries of unknown TLS layout and servers that accept TLS or
 * HTTP/2 (ciphertext or h2 frames at the syscall), chosen per process; 'uprobes' selects that same
 * code for every Go server. A traceparent past 8 KiB of head is not seen on this path, as for every
 * other language (split-heads.test.ts).
 */
export const DEFAULT_GO_SERVER_PATH: GoServerPath = 'syscall';

export interface GoServerPathChoice {
  readonly path: GoServerPath;
  /** With path 'syscall': what the syscall tracer needs. */
  readonly goServer?: GoServerOptions;
  /** For the attach line and doctor: what was chosen and why. */
  readonly note: string;
}

export function chooseGoServerPath(wanted: GoServerPath, target: GoTarget, syscallTracer: boolean): GoServerPathChoice {
  if (wanted === 'uprobes') return { path: 'uprobes', note: 'server spans: uprobes' };
  const fallback = (why: string): GoServerPathChoice => ({ path: 'uprobes', note: `server spans: uprobes (go.server_path syscall not possible: ${why})` });
  if (!syscallTracer) return fallback('the syscall tracer is not running');
  const goid = target.offsets['runtime.g.goid'];
  if (goid === undefined) return fallback('offset of runtime.g.goid unknown');
  if (!target.gTls) return fallback('thread-local layout not inspected');
  if (!target.gTls.ok) return fallback(target.gTls.reason);
  const o = target.offsets;
  const route = o['net/http.conn.curReq'] !== undefined && o['net/http.response.req'] !== undefined && o['net/http.Request.Pattern'] !== undefined;
  return {
    path: 'syscall',
    goServer: {
      goidOffset: goid,
      gTlsOffset: target.gTls.offset,
      ...(route ? { connCurReq: o['net/http.conn.curReq'], respReq: o['net/http.response.req'], reqPattern: o['net/http.Request.Pattern'] } : {}),
    },
    note: `server spans: syscall tracepoints (${target.gTls.how}; no per-request uprobe)`,
  };
}

/**
 * The default of go.client_path: the syscall path (no uprobe hit per request), which
 * chooseGoClientPath turns into uprobes where it cannot run (server spans on uprobes, headers
 * written into memory, net/http symbols missing). Calls that fail before writing get their span
 * from two probes that do not fire per request (bpf/go_http/go_http_client_lean.h). What stays with
 * uprobes: parents deeper than one goroutine below the handler (set go.client_path: uprobes for
 * those), and HTTPS calls, which move the process's client spans to uprobes at the agent's next
 * check (ProcessAttacher.moveTlsGoClients).
 */
export const DEFAULT_GO_CLIENT_PATH: GoClientPath = 'syscall';

export interface GoClientPathChoice {
  readonly path: GoClientPath;
  /** For the attach line and doctor: what was chosen and why. */
  readonly note: string;
}

/**
 * Client path 'syscall' only where the server spans take the syscall path (the syscall tracer then
 * traces the process), headers are not written into memory (that needs the writer's uprobes), and
 * the binary has (*persistConn).writeLoop and every offset of LEAN_CLIENT_FIELDS (from DWARF, or the
 * offsets table for a binary without it); otherwise 'uprobes', with the reason.
 */
export function chooseGoClientPath(wanted: GoClientPath, server: GoServerPath, injection: GoInjection, target: GoTarget): GoClientPathChoice {
  if (wanted === 'uprobes') return { path: 'uprobes', note: 'client spans: uprobes' };
  const fallback = (why: string): GoClientPathChoice => ({ path: 'uprobes', note: `client spans: uprobes (go.client_path syscall not possible: ${why})` });
  if (server !== 'syscall') return fallback('server spans are not on the syscall path');
  if (injection === 'memory') return fallback('traceparent is written into memory (bpf_probe_write_user), which needs the header writer\'s uprobes');
  if (!target.functions[GO_FUNCS.persistConnWriteLoop]) return fallback(`${GO_FUNCS.persistConnWriteLoop} not found`);
  const unknown = LEAN_CLIENT_FIELDS.filter((f) => target.offsets[f] === undefined);
  if (unknown.length > 0) return fallback(`offsets of ${unknown.join(', ')} unknown`);
  return { path: 'syscall', note: 'client spans: syscall tracepoints (no uprobe per request: one per connection at (*persistConn).writeLoop; uprobes from the first HTTPS call on)' };
}
