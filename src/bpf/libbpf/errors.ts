/**
 * Errors of the libbpf binding: errno text, the errno of a failed pointer-returning call, and a
 * SpanbridgeError carrying libbpf's own messages for the failed call as its `cause`.
 */
import { BpfError, type ErrorCode } from '../../errors';
import type { Native } from './native';

/** "No such process (errno 3)". */
export function errnoText(n: Native, errno: number): string {
  const e = Math.abs(errno);
  return `${(n.strerror(e) as string | null) ?? 'unknown error'} (errno ${e})`;
}

/** The errno of a failed pointer-returning libbpf call: errno, else libbpf_get_error(NULL). */
export function pointerErrno(n: Native, errno: number): number {
  if (errno !== 0) return errno;
  const e = Number(n.getError(null) as number | bigint);
  return e !== 0 ? Math.abs(e) : 0;
}

/** Builds the error; libbpf's own messages for this call go into `cause`. */
export function bpfError(n: Native, code: ErrorCode, message: string, extra?: { errno?: number }): BpfError {
  const lines = n.log.take();
  const cause = lines.length > 0 ? new Error(lines.join('\n')) : undefined;
  return new BpfError(code, message, { cause, errno: extra?.errno });
}
