/**
 * `spanbridge doctor [--json]`: what this kernel and these privileges allow, and which strategy
 * each feature will use here and why (the same plan `run` logs at start-up).
 */
import { existsSync, readdirSync } from 'node:fs';
import { ensureKernelFilesystems, type MountOutcome } from '../bpf/mounts';
import { probeBpfFeatures, type BpfFeatures } from '../capabilities/bpf-features';
import { probeCapabilities, type Capabilities } from '../capabilities/probe';
import { planStrategies, type Strategy, type StrategyOptions } from '../capabilities/strategy';
import { describePolicy, DEFAULT_ROUTES, OVERFLOW_ROUTE, type RoutesSettings } from '../spans/routes/route-policy';
import { AGENT_VERSION } from '../version';
import { inspectNginx } from '../discovery/nginx';
import { inspectNodeBinary } from '../discovery/node';
import { inspectInterpreter, type InterpreterReport } from '../discovery/python-asyncio';

/** How server spans get http.route: for every process, and for each selection with its own `routes`. */
export interface RoutesReport {
  /** Go servers (Go >= 1.23) report the ServeMux pattern that matched, before anything else. */
  readonly goServeMux: string;
  /** Every other process (and Go servers without a pattern), in order of precedence. */
  readonly default: string;
  readonly patterns: readonly string[];
  readonly selections: readonly { readonly selection: string; readonly routes: string; readonly patterns: readonly string[] }[];
  readonly maxPerService: number;
  readonly overflowRoute: string;
}

export function routesReport(settings: RoutesSettings): RoutesReport {
  return {
    goServeMux: 'Go ServeMux pattern (Request.Pattern, Go >= 1.23) first, then as below',
    default: describePolicy(settings.global),
    patterns: settings.global.patterns.map((p) => p.route),
    selections: Object.entries(settings.bySelection).map(([selection, o]) => ({
      selection,
      routes: describePolicy({ patterns: o.patterns ?? settings.global.patterns, unmatched: o.unmatched ?? settings.global.unmatched }),
      patterns: (o.patterns ?? settings.global.patterns).map((p) => p.route),
    })),
    maxPerService: settings.maxPerService,
    overflowRoute: OVERFLOW_ROUTE,
  };
}

export interface DoctorReport {
  readonly agentVersion: string;
  readonly kernel: { readonly release: string; readonly lockdown: Capabilities['lockdown']; readonly lockdownSource: string };
  readonly privileges: {
    readonly root: boolean;
    readonly capSysAdmin: boolean;
    readonly capBpf: boolean;
    readonly capPerfmon: boolean;
  };
  /** Facts from src/capabilities/probe.ts (files under /sys and /proc). */
  readonly capabilities: Capabilities;
  /** Facts from loading tiny programs (libbpf feature probes); null = unknown. */
  readonly bpfFeatures: BpfFeatures;
  readonly mounts: readonly { fstype: string; target: string; status: string; reason?: string }[];
  readonly strategies: readonly Strategy[];
  /** How traced processes' server spans get http.route (from the configuration given). */
  readonly routes: RoutesReport;
  /**
   * nginx reverse-proxy linking for the nginx binary installed here (PATH, /usr/sbin/nginx): whether
   * its upstream requests can be linked (src/discovery/nginx.ts) and why not. null: no nginx found.
   */
  readonly nginx: NginxReport | null;
  /**
   * Python asyncio linking for the CPython interpreters installed here (python3 on PATH, through
   * pyenv shims' versions too, and /usr/bin/python3): linkable, or why not (no symbols).
   */
  readonly python: readonly InterpreterReport[];
  /**
   * Node.js linking for the node binary installed here (PATH node, /usr/bin/node): linkable (its
   * version's offsets are measured and its symbols present: src/discovery/node.ts) or why not.
   */
  readonly node: NginxReport | null;
  /** The agent can start here. */
  readonly ready: boolean;
  readonly missing: readonly string[];
}

export interface NginxReport {
  readonly path: string;
  readonly version: string | null;
  readonly linkable: boolean;
  /** "uprobe at ngx_chain_writer (file offset 0x...)" or why not. */
  readonly detail: string;
}

/**
 * The CPython interpreters found here: each `python3` on PATH that is an ELF file, /usr/bin/python3,
 * and pyenv's versions when a pyenv shim is on PATH; each once (by real path).
 */
export function pythonReport(uprobes: boolean, pathEnv = process.env.PATH ?? '', pyenvRoot = process.env.PYENV_ROOT ?? `${process.env.HOME ?? '/root'}/.pyenv`): InterpreterReport[] {
  const candidates = [...pathEnv.split(':').filter(Boolean).map((d) => `${d}/python3`), '/usr/bin/python3'];
  if (pathEnv.split(':').some((d) => d.endsWith('/.pyenv/shims') || d === `${pyenvRoot}/shims`)) {
    try {
      for (const v of readdirSync(`${pyenvRoot}/versions`).sort()) candidates.push(`${pyenvRoot}/versions/${v}/bin/python3`);
    } catch {
      // no versions
    }
  }
  const seen = new Set<string>();
  const out: InterpreterReport[] = [];
  for (const c of candidates) {
    const r = existsSync(c) ? inspectInterpreter(c) : null;
    if (!r || seen.has(r.path)) continue;
    seen.add(r.path);
    out.push(r.linkable && !uprobes ? { ...r, linkable: false, detail: 'no uprobes on this kernel' } : r);
  }
  return out;
}

/** Inspects the first node binary found on PATH or at /usr/bin/node; null when there is none. */
export function nodeReport(pathEnv = process.env.PATH ?? ''): NginxReport | null {
  const candidates = [...pathEnv.split(':').filter(Boolean).map((d) => `${d}/node`), '/usr/bin/node'];
  const found = candidates.find((p) => existsSync(p));
  if (!found) return null;
  const t = inspectNodeBinary(found);
  if (!t.ok) return { path: found, version: t.version ?? null, linkable: false, detail: t.reason };
  return { path: found, version: t.version, linkable: true, detail: `async ids read at syscalls (no uprobe), node ${t.version} offsets` };
}

/** Inspects the first nginx binary found on PATH or at /usr/sbin/nginx; null when there is none. */
export function nginxReport(uprobes: boolean, pathEnv = process.env.PATH ?? ''): NginxReport | null {
  const candidates = [...pathEnv.split(':').filter(Boolean).map((d) => `${d}/nginx`), '/usr/sbin/nginx'];
  const found = candidates.find((p) => existsSync(p));
  if (!found) return null;
  const t = inspectNginx(found);
  if (!t.ok) return { path: found, version: t.version ?? null, linkable: false, detail: t.reason };
  if (!uprobes) return { path: found, version: t.version, linkable: false, detail: 'no uprobes on this kernel' };
  return { path: found, version: t.version, linkable: true, detail: `uprobe at ngx_chain_writer (file offset 0x${t.offset.toString(16)}), nginx ${t.version} layout` };
}

export function buildDoctorReport(
  caps: Capabilities,
  features: BpfFeatures,
  mounts: readonly MountOutcome[],
  options: StrategyOptions = { injectHeaders: 'auto' },
  routes: RoutesSettings = DEFAULT_ROUTES,
  nginx: NginxReport | null = null,
  python: readonly InterpreterReport[] = [],
  node: NginxReport | null = null,
): DoctorReport {
  const plan = planStrategies(caps, features, options);
  const missing = [...plan.missing];
  for (const m of mounts) if (m.status === 'failed' && m.fs.required) missing.push(m.reason);
  return {
    agentVersion: AGENT_VERSION,
    kernel: { release: caps.kernelRelease, lockdown: caps.lockdown, lockdownSource: caps.lockdownSource },
    privileges: { root: caps.isRoot, capSysAdmin: caps.capSysAdmin, capBpf: caps.capBpf, capPerfmon: caps.capPerfmon },
    capabilities: caps,
    bpfFeatures: features,
    mounts: mounts.map((m) => ({
      fstype: m.fs.fstype,
      target: m.fs.target,
      status: m.status,
      ...(m.status === 'failed' ? { reason: m.reason } : {}),
    })),
    strategies: plan.strategies,
    routes: routesReport(routes),
    nginx,
    python,
    node,
    ready: missing.length === 0,
    missing,
  };
}

const yn = (b: boolean | null): string => (b === null ? 'unknown' : b ? 'yes' : 'no');

/** The human-readable report. */
export function formatDoctorReport(r: DoctorReport): string {
  const c = r.capabilities;
  const f = r.bpfFeatures;
  const rows: Array<[string, string]> = [
    ['kernel', r.kernel.release],
    ['lockdown', `${r.kernel.lockdown} (${r.kernel.lockdownSource})`],
    ['privileges', `root=${yn(r.privileges.root)} CAP_SYS_ADMIN=${yn(r.privileges.capSysAdmin)} CAP_BPF=${yn(r.privileges.capBpf)} CAP_PERFMON=${yn(r.privileges.capPerfmon)}`],
    ['BTF', yn(c.btf)],
    ['uprobes', yn(c.uprobes)],
    ['kprobes', `${yn(c.kprobes)} (not needed)`],
    ['syscall tracepoints', yn(c.syscallTracepoints)],
    ['tracefs', c.tracefsMounted ? 'mounted' : 'not mounted'],
    ['cgroup v2', c.cgroup2Mount ?? 'not mounted'],
    ['sk_msg / sock_ops', `${yn(f.skMsgProgType)} / ${yn(f.sockOpsProgType)}; bpf_msg_push_data: ${yn(f.msgPushData)}`],
    ['bpf_probe_write_user', `${c.probeWriteUser ? 'allowed by lockdown and privileges' : 'forbidden by lockdown or privileges'}; verifier: ${yn(f.probeWriteUser)}`],
    ['bpf_loop', yn(f.bpfLoop)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const out: string[] = [`spanbridge ${r.agentVersion} doctor`, '', 'Kernel and privileges'];
  for (const [k, v] of rows) out.push(`  ${k.padEnd(width)}  ${v}`);
  out.push(`  (helpers and program types: ${f.source})`);
  const mountNotes = r.mounts.filter((m) => m.status !== 'already-mounted');
  for (const m of mountNotes) out.push(`  ${m.fstype} at ${m.target}: ${m.status}${m.reason ? ` (${m.reason})` : ''}`);
  out.push('', 'Strategies here');
  for (const s of r.strategies) {
    out.push(`  ${s.status.toUpperCase().padEnd(11)} ${s.title}`);
    out.push(`              uses: ${s.strategy}`);
    out.push(`              why:  ${s.why}`);
  }
  out.push(
    '',
    `nginx upstream linking: ${r.nginx ? `${r.nginx.path}${r.nginx.version ? ` (nginx ${r.nginx.version})` : ''}: ${r.nginx.linkable ? 'linkable' : 'NOT linkable'} — ${r.nginx.detail}` : 'no nginx binary found (PATH, /usr/sbin/nginx)'}`,
  );
  out.push(
    '',
    `Node.js linking: ${r.node ? `${r.node.path}${r.node.version ? ` (node ${r.node.version})` : ''}: ${r.node.linkable ? 'linkable' : 'NOT linkable'} — ${r.node.detail}` : 'no node binary found (PATH, /usr/bin/node)'}`,
  );
  out.push('', `Python asyncio linking (CPython interpreters found here)${r.python.length ? '' : ': none found (PATH python3, /usr/bin/python3, pyenv)'}`);
  for (const p of r.python) out.push(`  ${p.path} (CPython ${p.version}): ${p.linkable ? 'linkable' : 'NOT linkable'} — ${p.detail}`);
  out.push('', 'Routes (http.route and span names of server spans, in order of precedence)');
  out.push(`  Go servers          ${r.routes.goServeMux}`);
  out.push(`  every process       ${r.routes.default}`);
  if (r.routes.patterns.length > 0) out.push(`                      patterns: ${r.routes.patterns.join(', ')}`);
  for (const sel of r.routes.selections) {
    out.push(`  selection ${sel.selection}: ${sel.routes}`);
    if (sel.patterns.length > 0) out.push(`                      patterns: ${sel.patterns.join(', ')}`);
  }
  out.push(`  limit               ${r.routes.maxPerService} distinct routes per service; then http.route=${r.routes.overflowRoute}`);
  out.push('');
  out.push(r.ready ? 'Ready: `spanbridge run` can start here.' : `NOT ready: missing ${r.missing.join('; ')}`);
  return `${out.join('\n')}\n`;
}

/** Probes everything (mounts kernel filesystems the agent needs, as `run` would). */
export function runDoctor(options?: StrategyOptions, routes?: RoutesSettings): DoctorReport {
  const mounts = ensureKernelFilesystems();
  const caps = probeCapabilities();
  return buildDoctorReport(caps, probeBpfFeatures(), mounts, options, routes, nginxReport(caps.uprobes), pythonReport(caps.uprobes), nodeReport());
}
