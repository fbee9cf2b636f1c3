/**
 * Agent CPU per exported span, A/B between built checkouts, alternating in one window (the server
 * sections' fixed-rate measurement, alone): one server for every round, a fresh agent per arm and
 * round, pinned as in `make bench` (server on the server CPU, agent + load generator on the load CPU).
 *
 * Usage (after bench/run.sh has built build/bench/bin once, and `npx tsc -p bench/tsconfig.json`):
 *   AB_ROOTS=base=/path/a,new=/path/b[@ENV=value...] AB_KIND=python|gochain|go|node AB_RATE=5000 AB_SECONDS=5 AB_ROUNDS=5 \
 *     taskset -c 1 node build/bench/js/bench/ab-span-cpu.js
 * AB_SATURATED=1: the measured window is wrk (closed loop, -t1 -c<bench wrkConns>) for AB_SECONDS, as
 * the server sections' saturated figure, instead of bench/go/loadgen at AB_RATE.
 * Prints one line per run and the medians per arm.
 */
import { spawn } from 'node:child_process';
import { startAgent } from './lib/agent';
import { loadConfig } from './lib/config';
import { loadgen, wrk } from './lib/load';
import { CLK_TCK, sleep } from './lib/procs';
import { startSink } from './lib/sink';
import { startServer, stopServer, type ServerKind } from './sections/context';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function main(): Promise<void> {
  const roots = (process.env.AB_ROOTS ?? '').split(',').filter(Boolean).map((s) => {
    // name=root, or name=root@VAR=value@VAR2=value2 (extra environment for that arm's agent)
    const [name, rest] = [s.slice(0, s.indexOf('=')), s.slice(s.indexOf('=') + 1)];
    const [root, ...envs] = rest.split('@');
    return { name, root: root!, env: Object.fromEntries(envs.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])) };
  });
  if (roots.length === 0) throw new Error('AB_ROOTS=name=/checkout,... is required');
  const kind = (process.env.AB_KIND ?? 'python') as ServerKind;
  const rate = Number(process.env.AB_RATE ?? 5000);
  const seconds = Number(process.env.AB_SECONDS ?? 5);
  const rounds = Number(process.env.AB_ROUNDS ?? 5);
  const sink = await startSink();
  const base = loadConfig();
  const ctx = { config: base, sink, log: (m: string) => process.stderr.write(`${m}\n`) };
  const server = await startServer(ctx, kind);
  const results = new Map<string, number[]>(roots.map((r) => [r.name, []]));
  try {
    for (let i = 0; i < rounds; i++) {
      const order = i % 2 === 0 ? roots : [...roots].reverse();
      for (const { name, root, env } of order) {
        const config = loadConfig({ ...process.env, SPANBRIDGE_BENCH_AGENT_ROOT: root });
        const agent = await startAgent(config, { pids: [server.child.pid], otlpEndpoint: sink.endpoint, env, nodeFlags: process.env.AB_PERF ? ['--perf-basic-prof'] : [] });
        try {
          await loadgen(config, { addr: server.addr, path: server.path, rate: 1000, requests: 300, conns: 4 });
          await loadgen(config, { addr: server.addr, path: server.path, rate, seconds: 1 });
          await sleep(1600);
          const m0 = await agent.metrics();
          const t0 = agent.cpuTicks();
          // AB_PERF=DIR: perf record -g of the agent over the measured window (DIR/NAME-ROUND.data;
          // the agent runs with --perf-basic-prof so JS frames resolve).
          const perf = process.env.AB_PERF ? spawn('perf', ['record', '-g', '-F', process.env.AB_PERF_F ?? '999', '-o', `${process.env.AB_PERF}/${name}-${i}.data`, '-p', String(agent.pid)], { stdio: 'ignore' }) : undefined;
          const lat = process.env.AB_SATURATED
            ? await wrk(config, server.url, seconds).then((r) => ({ requests: r.requests, achievedRate: r.rps }))
            : await loadgen(config, { addr: server.addr, path: server.path, rate, seconds });
          if (perf) {
            perf.kill('SIGINT');
            await new Promise((r) => perf.once('exit', r));
          }
          await sleep(1600);
          const m1 = await agent.metrics();
          const cpuUs = ((agent.cpuTicks() - t0) / CLK_TCK) * 1e6;
          const spans = m1.total('spanbridge_spans_exported_total') - m0.total('spanbridge_spans_exported_total');
          const perSpan = cpuUs / spans;
          results.get(name)!.push(perSpan);
          if (process.env.AB_RECORDS) {
            const per = [...m1.values].filter(([k]) => k.startsWith('spanbridge_records_total{')).map(([k, v]) => `${/type="([^"]+)"/.exec(k)?.[1]} ${((v - m0.get(k)) / spans).toFixed(2)}`);
            console.log(`  records per span: ${per.join(', ')}`);
          }
          console.log(`round ${i} ${name}: ${perSpan.toFixed(2)} us/span (${spans} spans, ${lat.requests} requests at ${lat.achievedRate.toFixed(0)}/s, lost ${m1.ringbufLost() - m0.ringbufLost()})`);
        } finally {
          await agent.shutdown();
        }
      }
    }
  } finally {
    await stopServer(server);
    await sink.close();
  }
  for (const [name, xs] of results) console.log(`median ${name}: ${median(xs).toFixed(2)} us/span [${xs.map((x) => x.toFixed(2)).join(' ')}]`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
