/**
 * Benchmark settings: defaults < environment (SPANBRIDGE_BENCH_*). Bad values are reported and the
 * default kept. Documented in bench/README.md.
 */
import path from 'node:path';
import { existsSync } from 'node:fs';

/** The clone's root, found from this file whether it runs from bench/ or dist/bench/. */
export const REPO_ROOT = (() => {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'Makefile')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();

export interface BenchConfig {
  /** Alternating round pairs (without agent, with agent) per comparison. */
  readonly rounds: number;
  /** Seconds of load per measured run. */
  readonly seconds: number;
  /** Seconds per step of the sustained-rate search. */
  readonly stepSeconds: number;
  /** Connections for wrk (saturation) and for the fixed-rate load generator. */
  readonly wrkConns: number;
  readonly rateConns: number;
  /** CPU for the server under test; the load generator, the agent and the harness share the other. */
  readonly serverCpu: number;
  readonly loadCpu: number;
  /** The server sections' extra arm with the agent pinned to the server's CPU (the whole cost to the service's core). */
  readonly serverCpuArm: boolean;
  /** Only these sections (comma list of floor,untraced,tpfloor,tpfloornode,capfloor,capfloornode,budget,budgetnode,go,gochain,sys,python,nginx,asyncio,nodelink,javalink,agent,routes,profile); all when empty. */
  readonly only: readonly string[];
  /** The server whose traffic the agent is profiled under (profile section). */
  readonly profileServer: 'go' | 'node';
  readonly outDir: string;
  readonly agentCli: string;
  /** bin/spanbridge: the agent as users start it (bounded V8 heap). */
  readonly agentLauncher: string;
  /** 'launcher' (default): bin/spanbridge; 'node': `node dist/src/cli/main.js`, Node's default heap (for A/B). */
  readonly agentStart: 'launcher' | 'node';
  readonly binDir: string;
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (Number.isInteger(v) && v >= min && v <= max) return v;
  process.stderr.write(`bench: ${name}='${raw}' is not an integer in ${min}..${max}; using ${fallback}\n`);
  return fallback;
}

function oneOf<T extends string>(env: NodeJS.ProcessEnv, name: string, values: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if ((values as readonly string[]).includes(raw)) return raw as T;
  process.stderr.write(`bench: ${name}='${raw}' is not one of ${values.join(', ')}; using ${fallback}\n`);
  return fallback;
}

/** The checkout whose agent is measured: this one, or SPANBRIDGE_BENCH_AGENT_ROOT (another built
 * checkout, e.g. main's, for an A/B of two agents with the same harness and sections). */
function agentRoot(env: NodeJS.ProcessEnv): string {
  const root = env.SPANBRIDGE_BENCH_AGENT_ROOT;
  if (!root) return REPO_ROOT;
  if (!existsSync(path.join(root, 'dist', 'src', 'cli', 'main.js'))) {
    process.stderr.write(`bench: SPANBRIDGE_BENCH_AGENT_ROOT='${root}' has no built agent (dist/src/cli/main.js); using ${REPO_ROOT}\n`);
    return REPO_ROOT;
  }
  return path.resolve(root);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): BenchConfig {
  return {
    rounds: int(env, 'SPANBRIDGE_BENCH_ROUNDS', 3, 1, 100),
    seconds: int(env, 'SPANBRIDGE_BENCH_SECONDS', 5, 1, 600),
    stepSeconds: int(env, 'SPANBRIDGE_BENCH_STEP_SECONDS', 15, 1, 600),
    wrkConns: int(env, 'SPANBRIDGE_BENCH_WRK_CONNS', 32, 1, 10_000),
    rateConns: int(env, 'SPANBRIDGE_BENCH_RATE_CONNS', 16, 1, 10_000),
    serverCpu: int(env, 'SPANBRIDGE_BENCH_SERVER_CPU', 0, 0, 1023),
    loadCpu: int(env, 'SPANBRIDGE_BENCH_LOAD_CPU', 1, 0, 1023),
    serverCpuArm: int(env, 'SPANBRIDGE_BENCH_SERVER_CPU_ARM', 1, 0, 1) === 1,
    only: (env.SPANBRIDGE_BENCH_ONLY ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    profileServer: oneOf(env, 'SPANBRIDGE_BENCH_PROFILE_SERVER', ['go', 'node'] as const, 'go'),
    outDir: env.SPANBRIDGE_BENCH_OUT ?? path.join(REPO_ROOT, 'bench', 'results'),
    agentCli: path.join(agentRoot(env), 'dist', 'src', 'cli', 'main.js'),
    agentLauncher: path.join(agentRoot(env), 'bin', 'spanbridge'),
    agentStart: oneOf(env, 'SPANBRIDGE_BENCH_AGENT_START', ['launcher', 'node'] as const, 'launcher'),
    binDir: path.join(REPO_ROOT, 'build', 'bench', 'bin'),
  };
}

export function wants(config: BenchConfig, section: string): boolean {
  return config.only.length === 0 || config.only.includes(section);
}
