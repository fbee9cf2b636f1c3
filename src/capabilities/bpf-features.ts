/**
 * BPF program types and helpers this kernel actually accepts, decided by loading tiny programs:
 * libbpf's feature probes (src/bpf/libbpf/feature-probes.ts) load one minimal program per program
 * type and per (program type, helper) pair the agent's strategies depend on, and report what the
 * verifier accepted: the only reliable answer for program types and helpers a kernel may lack
 * (sk_msg, sock_ops, bpf_loop). `bpf_probe_write_user` stays unknown (null): see
 * feature-probes.ts. Six loads, ~2 ms: `spanbridge run` probes on its main thread while its
 * BPF objects verify on worker threads (src/agent.ts), `doctor` the same way.
 *
 * When the probes cannot run (libbpf missing, no privilege to load even a tracepoint program),
 * every field is `null` (unknown) and `source` says why; strategies then decide from the facts in
 * probe.ts.
 */
import { errorMessage } from '../errors';
import type * as FeatureProbes from '../bpf/libbpf/feature-probes';
import type { LibbpfProbeAnswers } from '../bpf/libbpf/feature-probes';

export interface BpfFeatures {
  /** How the answers were obtained, or why there are none. */
  readonly source: string;
  readonly skMsgProgType: boolean | null;
  readonly sockOpsProgType: boolean | null;
  /** `bpf_msg_push_data` accepted in an sk_msg program (header insertion at the socket). */
  readonly msgPushData: boolean | null;
  /** `bpf_probe_write_user` accepted in a kprobe/uprobe program (lockdown `none` only). */
  readonly probeWriteUser: boolean | null;
  /** `bpf_loop` accepted in a tracepoint program (the syscall HTTP tracer needs it). */
  readonly bpfLoop: boolean | null;
  readonly ringbufMap: boolean | null;
}

export const UNKNOWN_FEATURES = (source: string): BpfFeatures => ({
  source,
  skMsgProgType: null,
  sockOpsProgType: null,
  msgPushData: null,
  probeWriteUser: null,
  bpfLoop: null,
  ringbufMap: null,
});

export const LIBBPF_PROBE_SOURCE = 'libbpf feature probes (one minimal program loaded per program type and helper)';

/** 1 = accepted, 0 = refused, negative = the probe could not run (unknown). */
function answer(v: number): boolean | null {
  return v === 1 ? true : v === 0 ? false : null;
}

/** Turns the probes' raw answers into features. Pure. */
export function featuresFromProbes(a: LibbpfProbeAnswers): BpfFeatures {
  if (a.tracepointProgType !== 1) {
    // Without the right to load a tracepoint program every refusal below means nothing.
    return UNKNOWN_FEATURES(
      `unknown: libbpf feature probes could not load a minimal tracepoint program (${a.tracepointProgType === 0 ? 'refused: CAP_BPF + CAP_PERFMON or root needed' : `error ${a.tracepointProgType}`})`,
    );
  }
  return {
    source: LIBBPF_PROBE_SOURCE,
    skMsgProgType: answer(a.skMsgProgType),
    sockOpsProgType: answer(a.sockOpsProgType),
    msgPushData: answer(a.msgPushData),
    // Not probed (see feature-probes.ts): decided from lockdown + CAP_SYS_ADMIN (strategy.ts).
    probeWriteUser: null,
    bpfLoop: answer(a.bpfLoop),
    ringbufMap: answer(a.ringbufMap),
  };
}

/** Runs libbpf's probes (root needed for a truthful answer); never throws. */
export function probeBpfFeatures(run: () => LibbpfProbeAnswers = runProbes): BpfFeatures {
  try {
    return featuresFromProbes(run());
  } catch (err) {
    return UNKNOWN_FEATURES(`unknown: libbpf feature probes failed (${errorMessage(err).split('\n', 1)[0]})`);
  }
}

/** probeBpfFeatures for callers that await it (src/agent.ts); never rejects. */
export function probeBpfFeaturesAsync(run?: () => LibbpfProbeAnswers): Promise<BpfFeatures> {
  return Promise.resolve(probeBpfFeatures(run));
}

function runProbes(): LibbpfProbeAnswers {
  // Loaded on first use: `doctor` and `run` bind libbpf anyway; unit tests pass their own answers.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { runLibbpfProbes } = require('../bpf/libbpf/feature-probes') as typeof FeatureProbes;
  return runLibbpfProbes();
}
