/**
 * Hits per request of every agent program (uprobes, syscall and raw tracepoints, sock_ops, sk_msg)
 * and the agent's BPF time per request, counted with the kernel's BPF run-time statistics over one
 * load, the same way in every section. Tracepoints fire for every process on the machine (other
 * engineers' tests too), so their rate in idle windows before and after the load is subtracted,
 * scaled to the load's duration, and the share subtracted is reported as the count's noise.
 */
import { subtractBackground } from './background';
import { agentProgStats, isUprobeProg, progDelta, withBpfStats, type ProgDelta } from './bpf-stats';
import { sleep } from './procs';
import { fig, type Figure } from './report';
import { round } from './stats';

export interface Hits {
  /** Uprobe hits per request (the uprobe floor's multiplier). */
  readonly hitsPerRequest: number;
  /** Agent BPF time per uprobe hit, ns. */
  readonly bpfNsPerHit: number;
  /** Uprobe programs. */
  readonly programs: ProgDelta[];
  /** Tracepoint and raw-tracepoint hits per request (syscall path, fork/exec). */
  readonly tracepointHitsPerRequest: number;
  /** The share of the tracepoint hits counted over the load that the idle windows attribute to other processes (the count's noise). */
  readonly tracepointBackgroundShare: number;
  /** Every program of the agent (uprobes, tracepoints, sock_ops, sk_msg), per request, us. */
  readonly bpfUsPerRequest: number;
  readonly allPrograms: ProgDelta[];
  readonly requests: number;
  /** How the requests were sent, for the figures' detail. */
  readonly load: string;
}

/** 5 = tracepoint, 17 = raw tracepoint. */
const TRACEPOINT_TYPES = new Set([5, 17]);

/**
 * Counts the agent's programs over `load` (which returns how many requests it completed), minus the
 * mean rate of two idle windows of `idleMs` (before and after) scaled to the load's duration.
 */
export async function countHits(agentPid: number, load: () => Promise<{ requests: number }>, loadText: string, idleMs = 1500): Promise<Hits> {
  return withBpfStats(async () => {
    // Idle windows before and after the load, averaged: other processes' syscalls drift.
    const idleWindow = async () => {
      const s0 = agentProgStats(agentPid);
      const t0 = performance.now();
      await sleep(idleMs);
      return { counts: progDelta(s0, agentProgStats(agentPid)), ms: performance.now() - t0 };
    };
    const idleBefore = await idleWindow();
    const before = agentProgStats(agentPid);
    const loadStart = performance.now();
    const r = await load();
    const after = agentProgStats(agentPid);
    const loadMs = performance.now() - loadStart;
    const idleAfter = await idleWindow();
    const raw = progDelta(before, after);
    const all = subtractBackground(raw, [idleBefore, idleAfter], loadMs);
    const d = all.filter(isUprobeProg);
    const runs = d.reduce((a, x) => a + x.runs, 0);
    const isTp = (x: { type: number }) => TRACEPOINT_TYPES.has(x.type);
    const tp = all.filter(isTp).reduce((a, x) => a + x.runs, 0);
    const tpRaw = raw.filter(isTp).reduce((a, x) => a + x.runs, 0);
    const n = Math.max(1, r.requests);
    return {
      hitsPerRequest: runs / n,
      bpfNsPerHit: runs > 0 ? d.reduce((a, x) => a + x.ns, 0) / runs : 0,
      programs: d,
      tracepointHitsPerRequest: tp / n,
      tracepointBackgroundShare: tpRaw > 0 ? 1 - tp / tpRaw : 0,
      bpfUsPerRequest: all.reduce((a, x) => a + x.ns, 0) / n / 1000,
      allPrograms: all,
      requests: r.requests,
      load: loadText,
    };
  });
}

/** The three per-request figures of one count: uprobe hits, tracepoint hits, BPF time. */
export function hitFigures(idPrefix: string, idSuffix: string, labelSuffix: string, h: Hits): Figure[] {
  const byProg = (progs: ProgDelta[]) => progs.map((p) => `${p.name} ${round(p.runs / Math.max(1, h.requests), 3)}`).join(', ') || 'none';
  return [
    fig({ id: `${idPrefix}.uprobe_hits${idSuffix}`, label: `Uprobe hits per request${labelSuffix}`, value: h.hitsPerRequest, unit: 'hits', rounds: 1, detail: `BPF run-time statistics over ${h.requests} requests (${h.load}): ${byProg(h.programs)}; agent BPF time ${round(h.bpfNsPerHit)} ns/hit` }),
    fig({ id: `${idPrefix}.tracepoint_hits${idSuffix}`, label: `Tracepoint hits per request${labelSuffix}`, value: h.tracepointHitsPerRequest, unit: 'hits', rounds: 1, detail: `syscall and raw tracepoints of the agent, minus other processes' rate in idle windows before and after (${round(100 * h.tracepointBackgroundShare)}% of the hits counted over the load were theirs: the count's noise): ${byProg(h.allPrograms.filter((p) => TRACEPOINT_TYPES.has(p.type)))}` }),
    fig({ id: `${idPrefix}.bpf_us_per_request${idSuffix}`, label: `Agent BPF time per request${labelSuffix}`, value: h.bpfUsPerRequest, unit: 'us', rounds: 1, detail: 'every program of the agent (run_time_ns: uprobes, tracepoints, sock_ops, sk_msg; other processes\' share from the idle windows subtracted), excluding the uprobe trap itself' }),
  ];
}

/** One note line: every program's hits per request and its time per hit. */
export function programsNote(h: Hits): string {
  const progs = [...h.allPrograms].sort((a, b) => b.ns - a.ns);
  return `Agent BPF programs per request (BPF stats, ${h.requests} requests): ${progs.map((p) => `${p.name} ${round(p.runs / Math.max(1, h.requests), 3)} hits x ${round(p.ns / p.runs)} ns`).join(', ')}.`;
}
