/**
 * The kernel's answers to libbpf's feature probes (libbpf_probe_bpf_prog_type, _helper, _map_type):
 * each loads one minimal program (or creates one small map) and reports whether the verifier took
 * it. Six probes take a few milliseconds on the calling thread; `bpftool feature probe`, which the
 * agent ran before, loaded thousands of programs in a child process (0.06 s of CPU, ~0.5 s wall).
 *
 * Values: 1 accepted, 0 refused, a negative errno when the probe itself could not run.
 *
 * No probe of bpf_probe_write_user: libbpf 1.1 counts a helper as supported unless the verifier
 * says "invalid func" or "unknown func", and under lockdown the verifier refuses it with "cannot
 * use helper" (a false yes, seen here); where the kernel accepts it, it logs a warning. The agent
 * decides that helper from lockdown + CAP_SYS_ADMIN and reloads without it if the verifier refuses.
 */
import { loadNative } from './native';

// enum bpf_prog_type, bpf_map_type, bpf_func_id (linux/bpf.h, stable UAPI numbers).
const PROG_TRACEPOINT = 5;
const PROG_SOCK_OPS = 13;
const PROG_SK_MSG = 16;
const MAP_RINGBUF = 27;
const FUNC_MSG_PUSH_DATA = 90;
const FUNC_LOOP = 181;

export interface LibbpfProbeAnswers {
  /** A tracepoint program loads at all: without it (no privileges) every other answer means nothing. */
  readonly tracepointProgType: number;
  readonly skMsgProgType: number;
  readonly sockOpsProgType: number;
  readonly msgPushData: number;
  readonly bpfLoop: number;
  readonly ringbufMap: number;
}

/** Runs the probes (root or CAP_BPF + CAP_PERFMON + CAP_NET_ADMIN needed for truthful answers). */
export function runLibbpfProbes(): LibbpfProbeAnswers {
  const n = loadNative();
  const prog = (t: number): number => n.probeProgType(t, null) as number;
  const helper = (t: number, f: number): number => n.probeHelper(t, f, null) as number;
  const tracepointProgType = prog(PROG_TRACEPOINT);
  const skMsgProgType = prog(PROG_SK_MSG);
  return {
    tracepointProgType,
    skMsgProgType,
    sockOpsProgType: prog(PROG_SOCK_OPS),
    // A helper probe loads a program of that type: without the type, the helper is unknown.
    msgPushData: skMsgProgType === 1 ? helper(PROG_SK_MSG, FUNC_MSG_PUSH_DATA) : -95,
    bpfLoop: helper(PROG_TRACEPOINT, FUNC_LOOP),
    ringbufMap: n.probeMapType(MAP_RINGBUF, null) as number,
  };
}
