/**
 * The agent under test, started as a user runs it (bin/spanbridge run ..., or with
 * SPANBRIDGE_BENCH_AGENT_START=node `node dist/src/cli/main.js run ...`), pinned to the
 * load generator's CPU (or, for the arms that read the whole cost to the service's core, to the
 * server's), exporting OTLP to the harness's sink, with its Prometheus endpoint on a free
 * port for the self-metrics (spans exported, kernel drop counters).
 */
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BenchConfig } from './config';
import { cpuTicks, freePort, spawnPinned, waitFor, type Child } from './procs';

export interface Agent extends Child {
  readonly promPort: number;
  /** performance.now() when the ready file appeared. */
  readonly readyAt: number;
  metrics(): Promise<Metrics>;
  cpuTicks(): number;
  /** SIGTERM, then the "stopped: ..." and "kernel counters: ..." lines. */
  shutdown(): Promise<{ stopLine: string; kernelLine: string }>;
}

export interface AgentOptions {
  readonly pids: number[];
  readonly otlpEndpoint: string;
  /** Extra node flags, e.g. ['--cpu-prof', '--cpu-prof-dir', DIR]. */
  readonly nodeFlags?: string[];
  /** --inject-headers (default: the agent's default, auto). */
  readonly injectHeaders?: 'auto' | 'on' | 'off';
  /** Resolve right after spawning instead of waiting for the ready file. */
  readonly noWait?: boolean;
  /** Extra environment for the agent (settings such as SPANBRIDGE_GO_SERVER_PATH). */
  readonly env?: Record<string, string>;
  /** The CPU the agent is pinned to (default: the load generator's, config.loadCpu). */
  readonly cpu?: number;
}

export async function startAgent(config: BenchConfig, o: AgentOptions): Promise<Agent> {
  if (!existsSync(config.agentCli)) throw new Error(`${config.agentCli} is missing: run make setup`);
  const ready = path.join(mkdtempSync(path.join(os.tmpdir(), 'spanbridge-bench-')), 'ready');
  const promPort = await freePort();
  const args = [
    'run',
    ...o.pids.flatMap((p) => ['--pid', String(p)]),
    '--otlp-endpoint', o.otlpEndpoint,
    '--prometheus-port', String(promPort),
    '--ready-file', ready,
    ...(o.injectHeaders ? ['--inject-headers', o.injectHeaders] : []),
  ];
  // The launcher execs node (same pid) with its heap flags; extra node flags go through its environment.
  const cpu = o.cpu ?? config.loadCpu;
  const child =
    config.agentStart === 'launcher'
      ? spawnPinned(cpu, config.agentLauncher, args, { ...o.env, SPANBRIDGE_NODE_FLAGS: (o.nodeFlags ?? []).join(' '), PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}` })
      : spawnPinned(cpu, process.execPath, [...(o.nodeFlags ?? []), config.agentCli, ...args], o.env);
  let readyAt = Number.NaN;
  const waitReady = async () => {
    await waitFor('agent ready file', () => {
      if (child.proc.exitCode !== null) throw new Error(`agent exited with ${child.proc.exitCode}:\n${child.stderr()}`);
      return existsSync(ready);
    }, 30_000, 10);
    readyAt = performance.now();
  };
  if (o.noWait) {
    waitReady().catch(() => undefined); // readyAt stays NaN if it never gets ready
  } else {
    try {
      await waitReady();
    } catch (err) {
      await child.stop('SIGKILL');
      throw err;
    }
  }
  return {
    ...child,
    promPort,
    get readyAt() {
      return readyAt;
    },
    metrics: () => scrape(promPort),
    cpuTicks: () => cpuTicks(child.pid),
    async shutdown() {
      await child.stop('SIGTERM', 20_000);
      const err = child.stderr();
      return {
        stopLine: /stopped: .*/.exec(err)?.[0] ?? '',
        kernelLine: /kernel counters: .*/.exec(err)?.[0] ?? '',
      };
    },
  };
}

/** Prometheus text exposition, flattened: `name{labels}` -> value. */
export class Metrics {
  constructor(readonly values: ReadonlyMap<string, number>) {}

  /** The sum over every series of a metric. */
  total(name: string): number {
    let sum = 0;
    for (const [k, v] of this.values) if (k === name || k.startsWith(`${name}{`)) sum += v;
    return sum;
  }

  get(series: string): number {
    return this.values.get(series) ?? 0;
  }

  /** Ring-buffer records lost in the kernel (every tracer). */
  ringbufLost(): number {
    let sum = 0;
    for (const [k, v] of this.values) if (k.startsWith('spanbridge_kernel_drops{') && k.includes('ringbuf_full')) sum += v;
    return sum;
  }
}

export async function scrape(port: number): Promise<Metrics> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  const text = await res.text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    values.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return new Metrics(values);
}

/** Exported spans (OTLP) so far. */
export async function spansExported(agent: Agent): Promise<number> {
  return (await agent.metrics()).total('spanbridge_spans_exported_total');
}
