/**
 * Decoder for RECORD_PROC_EXEC / RECORD_PROC_EXIT (bpf/proc_events/proc_events.bpf.c) and RECORD_PROC_FORK
 * (a traced process forked: bpf/sys_http/sys_http_lifecycle.h), all bpf/common/proc_lifecycle_event.h.
 */
import { PROC_LIFECYCLE_EVENT as L, RECORD_TYPE } from './structs.generated';
import { readBig, readCString, readUint } from './struct-view';

export interface ProcLifecycleRecord {
  readonly type: 'proc_exec' | 'proc_exit' | 'proc_fork';
  readonly pid: number;
  readonly ppid: number;
  readonly tsNs: bigint;
  readonly comm: string;
}

export const PROC_LIFECYCLE_RECORD_SIZE = L.size;

const TYPES: Record<number, ProcLifecycleRecord['type']> = {
  [RECORD_TYPE.RECORD_PROC_EXEC]: 'proc_exec',
  [RECORD_TYPE.RECORD_PROC_EXIT]: 'proc_exit',
  [RECORD_TYPE.RECORD_PROC_FORK]: 'proc_fork',
};

export function decodeProcLifecycle(buf: Buffer): ProcLifecycleRecord {
  return {
    type: TYPES[readUint(buf, L, 'type')] ?? 'proc_exit',
    pid: readUint(buf, L, 'pid'),
    ppid: readUint(buf, L, 'ppid'),
    tsNs: readBig(buf, L, 'ts_ns'),
    comm: readCString(buf, L, 'comm'),
  };
}
