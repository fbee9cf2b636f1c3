/**
 * BPF program types and helpers this kernel actually accepts, decided by loading tiny programs:
 * `bpftool feature probe kernel -j` loads one minimal program per program type and one per
 * (program type, helper) pair and reports what the verifier accepted. That is the only reliable
 * answer for helpers that lockdown forbids at load time (`bpf_probe_write_user` under
 * `integrity`) and for program types a kernel may lack (sk_msg, sock_ops). Takes ~0.5 s.
 *
 * No koffi here: bpftool is a separate process. When bpftool is missing or fails, every field is
 * `null` (unknown) and `source` says why; strategies then decide from the facts in probe.ts.
 * `spanbridge run` probes asynchronously, while its BPF objects load (src/agent.ts).
 */
import { execFile, execFileSync } from 'node:child_process';
import { errorMessage } from '../errors';

export interface BpfFeatures {
  /** `bpftool feature probe` or why it could not run. */
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

type Probe = Record<string, Record<string, unknown>>;

function flag(section: Record<string, unknown> | undefined, key: string): boolean | null {
  const v = section?.[key];
  return typeof v === 'boolean' ? v : null;
}

function helper(probe: Probe, progType: string, name: string): boolean | null {
  const list = probe.helpers?.[`${progType}_available_helpers`];
  return Array.isArray(list) ? list.includes(name) : null;
}

/** Parses `bpftool feature probe kernel -j` output. */
export function parseBpftoolFeatures(json: string): BpfFeatures {
  const probe = JSON.parse(json) as Probe;
  return {
    source: 'bpftool feature probe (loads one minimal program per program type and helper)',
    skMsgProgType: flag(probe.program_types, 'have_sk_msg_prog_type'),
    sockOpsProgType: flag(probe.program_types, 'have_sock_ops_prog_type'),
    msgPushData: helper(probe, 'sk_msg', 'bpf_msg_push_data'),
    // bpftool leaves bpf_probe_write_user out of its helper lists unless run with `full` (it
    // would print a kernel warning): only a listing is an answer, absence is unknown. The agent
    // decides from lockdown + CAP_SYS_ADMIN and falls back if the verifier refuses at load.
    probeWriteUser: helper(probe, 'kprobe', 'bpf_probe_write_user') === true ? true : null,
    bpfLoop: helper(probe, 'tracepoint', 'bpf_loop'),
    ringbufMap: flag(probe.map_types, 'have_ringbuf_map_type'),
  };
}

/** Runs bpftool (root needed for a truthful answer); never throws. */
export function probeBpfFeatures(run: () => string = runBpftool): BpfFeatures {
  try {
    return parseBpftoolFeatures(run());
  } catch (err) {
    return UNKNOWN_FEATURES(`unknown: bpftool feature probe failed (${errorMessage(err).split('\n', 1)[0]})`);
  }
}

/** probeBpfFeatures with bpftool running while the event loop goes on; never rejects. */
export async function probeBpfFeaturesAsync(run: () => Promise<string> = runBpftoolAsync): Promise<BpfFeatures> {
  try {
    return parseBpftoolFeatures(await run());
  } catch (err) {
    return UNKNOWN_FEATURES(`unknown: bpftool feature probe failed (${errorMessage(err).split('\n', 1)[0]})`);
  }
}

const BPFTOOL_ARGS = ['feature', 'probe', 'kernel', '-j'];
const BPFTOOL_TIMEOUT_MS = 10_000;
const BPFTOOL_MAX_BUFFER = 16 * 1024 * 1024;

function runBpftoolAsync(): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('bpftool', BPFTOOL_ARGS, { encoding: 'utf8', timeout: BPFTOOL_TIMEOUT_MS, maxBuffer: BPFTOOL_MAX_BUFFER }, (err, stdout) =>
      err ? reject(err) : resolve(stdout),
    );
    child.stdin?.end();
  });
}

function runBpftool(): string {
  return execFileSync('bpftool', BPFTOOL_ARGS, {
    encoding: 'utf8',
    timeout: BPFTOOL_TIMEOUT_MS,
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: BPFTOOL_MAX_BUFFER,
  });
}
