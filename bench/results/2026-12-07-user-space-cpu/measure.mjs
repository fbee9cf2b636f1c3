// usage: taskset -c 1 node measure.mjs AGENT_CHECKOUT go|chain|python|node rate|sat|idle SECONDS [RATE]
// The agent's CPU per exported span (utime+stime ticks / spans_exported_total) as make bench reads it: server on CPU 0,
// agent + load + this OTLP sink on CPU 1, real OTLP/HTTP export, Prometheus on. Env: WARM=s (load at RATE first),
// PERF=file (perf record -g of the agent over the load), AGENT_ENV='{"SPANBRIDGE_NODE_FLAGS":"--perf-basic-prof"}'.
import http from 'node:http';
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, existsSync, rmSync } from 'node:fs';
const [wt, kind, mode, secs, rateArg] = process.argv.slice(2);
const seconds = Number(secs ?? 5);
// The bench's programs and test apps from this checkout (make setup; bench/run.sh builds build/bench/bin).
const REPO = new URL('../../..', import.meta.url).pathname.replace(/\/$/, '');
const BIN = process.env.BENCH_BIN ?? `${REPO}/build/bench/bin`;
const CLK = 100;
const ticks = (pid) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return Number(f[11]) + Number(f[12]); };
let reqs = 0, bytes = 0;
const sink = http.createServer((req, res) => { let b = 0; req.on('data', (d) => (b += d.length)); req.on('end', () => { if (req.url.startsWith('/v1/traces')) { reqs++; bytes += b; } res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 }); res.end(); }); });
sink.keepAliveTimeout = 60000;
await new Promise((r) => sink.listen(0, '127.0.0.1', r));
const sinkPort = sink.address().port;
const port = 20000 + Math.floor(Math.random() * 10000);
const promPort = port + 1;
const dsPort = port + 2;
const ds = kind === 'chain' ? spawn('taskset', ['-c', '0', `${BIN}/goserver`], { stdio: 'ignore', env: { ...process.env, PORT: String(dsPort) } }) : undefined;
const srv = kind === 'chain' ? spawn('taskset', ['-c', '0', `${BIN}/chain`], { stdio: 'ignore', env: { ...process.env, PORT: String(port), DOWNSTREAM: `http://127.0.0.1:${dsPort}` } })
  : kind === 'python' ? spawn('taskset', ['-c', '0', 'python3', `${REPO}/bench/python/threaded_server.py`, String(port)], { stdio: 'ignore' })
  : kind === 'go'
  ? spawn('taskset', ['-c', '0', `${BIN}/goserver`], { stdio: 'ignore', env: { ...process.env, PORT: String(port) } })
  : spawn('taskset', ['-c', '0', 'node', `${REPO}/test/apps/node-http/server.js`, String(port)], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 800));
const srvPid = srv.pid;
const ready = `/tmp/spanbridge-measure-ready-${port}`; rmSync(ready, { force: true });
const agent = spawn('taskset', ['-c', '1', `${wt}/bin/spanbridge`, 'run', '--pid', String(srvPid), '--otlp-endpoint', `http://127.0.0.1:${sinkPort}`, '--prometheus-port', String(promPort), '--ready-file', ready], { stdio: ['ignore', process.env.AGENT_OUT ? (await import('node:fs')).openSync(process.env.AGENT_OUT, 'w') : 'ignore', 'pipe'], env: { ...process.env, ...(process.env.AGENT_ENV ? JSON.parse(process.env.AGENT_ENV) : {}) } });
let err = ''; agent.stderr.on('data', (d) => (err += d));
for (let i = 0; i < 300 && !existsSync(ready); i++) await new Promise((r) => setTimeout(r, 100));
if (!existsSync(ready)) { console.error('not ready', err); process.exit(1); }
const agentPid = agent.pid;
const run = (cmd, args) => new Promise((r) => { const p = spawn('taskset', ['-c', '1', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }); let o = ''; p.stdout.on('data', (d) => (o += d)); p.stderr.on('data', (d) => (o += d)); p.on('close', () => r(o)); });
const scrape = () => new Promise((r) => http.get(`http://127.0.0.1:${promPort}/metrics`, (res) => { let b = ''; res.on('data', (d) => (b += d)); res.on('end', () => r(b)); }));
const total = (txt, name) => txt.split('\n').filter((l) => l.startsWith(name)).reduce((a, l) => a + Number(l.split(' ').pop()), 0);
const rate = Number(rateArg ?? 4000);
await run(`${BIN}/loadgen`, ['-addr', `127.0.0.1:${port}`, '-rate', '1000', '-requests', '500', '-conns', '16']);
if (process.env.WARM) await run(`${BIN}/loadgen`, ['-addr', `127.0.0.1:${port}`, '-path', '/items/1', '-rate', String(rate), '-duration', `${process.env.WARM}s`, '-conns', '16']);
await new Promise((r) => setTimeout(r, 1700));
const m0 = await scrape(); const t0 = ticks(agentPid); reqs = 0; bytes = 0;
let out;
const perf = process.env.PERF ? spawn('perf', ['record', '-F', '2000', '-g', '-p', String(agentPid), '-o', process.env.PERF], { stdio: 'ignore' }) : undefined;
if (mode === 'idle') { out = ''; await new Promise((r) => setTimeout(r, seconds * 1000)); }
else if (mode === 'sat') out = await run('wrk', ['-t1', '-c32', `-d${seconds}s`, `http://127.0.0.1:${port}/items/1`]);
else out = await run(`${BIN}/loadgen`, ['-addr', `127.0.0.1:${port}`, '-path', '/items/1', '-rate', String(rate), '-duration', `${seconds}s`, '-conns', '16']);
await new Promise((r) => setTimeout(r, 1600));
const t1 = ticks(agentPid);
if (perf) { perf.kill('SIGINT'); await new Promise((r) => perf.on('exit', r)); } const m1 = await scrape();
const spans = total(m1, 'spanbridge_spans_exported_total') - total(m0, 'spanbridge_spans_exported_total');
const dropped = total(m1, 'spanbridge_spans_dropped_total') - total(m0, 'spanbridge_spans_dropped_total');
const rps = mode === 'sat' ? (/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]) : rate;
console.log(JSON.stringify({ wt: wt.split('/').pop(), kind, mode, rps: Number(rps), spans, dropped, cpuMs: (t1 - t0) * 10, usPerSpan: +(((t1 - t0) / CLK) * 1e6 / spans).toFixed(2), exports: reqs, kbPerExport: +(bytes / reqs / 1024).toFixed(1) }));
agent.kill('SIGTERM'); await new Promise((r) => agent.on('exit', r));
ds?.kill(); srv.kill(); try { process.kill(srvPid); } catch {}
sink.close(); sink.closeAllConnections(); process.exit(0);
