/**
 * The results model (every figure with its unit, rounds and spread, and its target when it has
 * one) and the markdown summary rendered from it.
 */
import { round, type Spread } from './stats';

export interface Target {
  /** e.g. '>= 0.95', '<= 20 us'. */
  readonly text: string;
  /** null: not judged (figure unavailable). */
  readonly met: boolean | null;
}

export interface Figure {
  readonly id: string;
  readonly label: string;
  /** null with `unavailable` when the figure could not be measured. */
  readonly value: number | null;
  readonly unit: string;
  /** Rounds (or samples) the value is the median of. */
  readonly rounds: number;
  readonly spread?: Pick<Spread, 'min' | 'p25' | 'p75' | 'max'>;
  readonly target?: Target;
  /** One line: what the value is made of (arms, method). */
  readonly detail?: string;
  readonly unavailable?: string;
}

export interface SectionResult {
  readonly id: string;
  readonly title: string;
  readonly figures: Figure[];
  readonly notes: string[];
  /** Average CPU cores used by other processes on the machine during the section (noise). */
  backgroundCores?: number;
  /** Wall time of the section, seconds. */
  seconds?: number;
  readonly raw: Record<string, unknown>;
  error?: string;
}

export interface Results {
  readonly date: string;
  readonly host: Record<string, unknown>;
  readonly config: Record<string, unknown>;
  readonly sections: SectionResult[];
  profile?: { context: string; topFrames: Array<{ frame: string; selfPct: number }>; areas: Array<{ area: string; selfPct: number }>; file: string };
  durationSeconds?: number;
}

export function section(id: string, title: string): SectionResult {
  return { id, title, figures: [], notes: [], raw: {} };
}

export function fig(f: Figure): Figure {
  return f;
}

const fmt = (v: number) => {
  const r = round(v, 3);
  return Math.abs(r) >= 1000 ? r.toLocaleString('en-US') : String(r);
};

function spreadText(f: Figure): string {
  if (!f.spread) return '';
  const s = f.spread;
  return `${fmt(s.min)} .. ${fmt(s.max)} (IQR ${fmt(s.p25)} .. ${fmt(s.p75)})`;
}

function targetText(f: Figure): string {
  if (!f.target) return '';
  const verdict = f.target.met === null ? 'n/a' : f.target.met ? 'met' : '**missed**';
  return `${f.target.text}: ${verdict}`;
}

export function missedTargets(r: Results): Array<{ section: SectionResult; figure: Figure }> {
  const out: Array<{ section: SectionResult; figure: Figure }> = [];
  for (const s of r.sections) for (const f of s.figures) if (f.target?.met === false) out.push({ section: s, figure: f });
  return out;
}

export function renderMarkdown(r: Results, commentary: string[]): string {
  const lines: string[] = [];
  lines.push(`# spanbridge benchmarks — ${r.date}`, '');
  const h = r.host;
  lines.push(
    `Agent at commit ${h.commit}${h.uncommittedFiles ? ` with ${h.uncommittedFiles} uncommitted files under src/ bpf/ receiver/` : ''}` +
      `${h.agentRoot ? ` (${h.agentRoot}; harness at ${h.harnessCommit})` : ''}. ` +
      `Host: ${h.cpus} CPUs (${h.cpuModel}), kernel ${h.kernel}, Node ${h.node}, ${h.go}, wrk ${h.wrk}. ` +
      `Rounds: ${r.config.rounds} alternating pairs (without agent, with agent, ...), ${r.config.seconds} s of load each; ` +
      `server pinned to CPU ${r.config.serverCpu}, load generator + agent + harness to CPU ${r.config.loadCpu}. ` +
      `Every value is the median over rounds; spread is min .. max (IQR). Run took ${Math.round(r.durationSeconds ?? 0)} s. ` +
      `Raw data: the JSON file next to this one.`,
    '',
  );
  const missed = missedTargets(r);
  lines.push('## Summary', '');
  if (missed.length === 0) lines.push('- Every target with a figure was met.');
  for (const m of missed) lines.push(`- **Missed**: ${m.figure.label} = ${fmt(m.figure.value ?? NaN)} ${m.figure.unit} (target ${m.figure.target?.text}).`);
  for (const c of commentary) lines.push(`- ${c}`);
  lines.push('');
  for (const s of r.sections) {
    lines.push(`## ${s.title}`, '');
    if (s.error) lines.push(`Section failed: \`${s.error}\``, '');
    if (s.figures.length > 0) {
      lines.push('| figure | value | unit | rounds | spread | target | detail |', '| --- | --- | --- | --- | --- | --- | --- |');
      for (const f of s.figures) {
        const value = f.value === null ? `not available: ${f.unavailable ?? 'unknown'}` : fmt(f.value);
        lines.push(`| ${f.label} | ${value} | ${f.unit} | ${f.rounds} | ${spreadText(f)} | ${targetText(f)} | ${f.detail ?? ''} |`);
      }
      lines.push('');
    }
    const notes = [...s.notes];
    if (s.backgroundCores !== undefined) notes.push(`Other processes on the machine used ${fmt(s.backgroundCores)} CPU cores on average during this section (noise)${s.seconds !== undefined ? `; the section took ${Math.round(s.seconds)} s` : ''}.`);
    for (const n of notes) lines.push(`- ${n}`);
    if (notes.length > 0) lines.push('');
  }
  if (r.profile) {
    lines.push('## Agent CPU profile', '', `${r.profile.context} Top frames by self time (\`${r.profile.file}\`):`, '');
    lines.push(`By area: ${r.profile.areas.map((a) => `${a.area} ${fmt(a.selfPct)}%`).join(', ')}.`, '');
    lines.push('| self % | frame |', '| --- | --- |');
    for (const t of r.profile.topFrames) lines.push(`| ${fmt(t.selfPct)} | \`${t.frame}\` |`);
    lines.push('');
  }
  return lines.join('\n');
}
