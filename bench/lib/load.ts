/**
 * Load generators, pinned to the load CPU: wrk (closed loop, saturation) and bench/go/loadgen
 * (open loop at a fixed rate, latencies measured from each request's due time).
 */
import path from 'node:path';
import type { BenchConfig } from './config';
import { runPinned } from './procs';

export interface WrkResult {
  readonly rps: number;
  readonly requests: number;
  readonly errors: number;
}

export function parseWrk(out: string): WrkResult {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
  if (!Number.isFinite(rps) || !Number.isFinite(requests)) throw new Error(`unexpected wrk output:\n${out}`);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const errors = non2xx + (sock ? sock.slice(1).reduce((s, n) => s + Number(n), 0) : 0);
  return { rps, requests, errors };
}

export async function wrk(config: BenchConfig, url: string, seconds: number): Promise<WrkResult> {
  const out = await runPinned(config.loadCpu, 'wrk', ['-t1', `-c${config.wrkConns}`, `-d${seconds}s`, url]);
  return parseWrk(out);
}

export interface LoadgenResult {
  /** Requests answered. */
  readonly requests: number;
  /** Requests still unsent when the window (plus grace) ended: in correctedUs as lower bounds. */
  readonly unsent: number;
  readonly errors: number;
  readonly seconds: number;
  readonly achievedRate: number;
  /** Latency from each request's due time (coordinated omission corrected), microseconds. */
  readonly correctedUs: Record<'p50' | 'p90' | 'p99' | 'p999' | 'max', number>;
  /** Latency from the actual send, microseconds. */
  readonly serviceUs: Record<'p50' | 'p90' | 'p99' | 'p999' | 'max', number>;
  /** How late the generator itself sent (p99, microseconds): its own timing noise. */
  readonly lateP99Us: number;
  readonly firstError?: string;
}

export interface LoadgenOptions {
  readonly addr: string;
  readonly path: string;
  readonly rate: number;
  readonly seconds?: number;
  readonly requests?: number;
  readonly conns?: number;
}

export async function loadgen(config: BenchConfig, o: LoadgenOptions): Promise<LoadgenResult> {
  const args = ['-addr', o.addr, '-path', o.path, '-rate', String(Math.round(o.rate)), '-conns', String(o.conns ?? config.rateConns)];
  if (o.requests) args.push('-requests', String(o.requests));
  else args.push('-duration', `${o.seconds ?? config.seconds}s`);
  const out = await runPinned(config.loadCpu, path.join(config.binDir, 'loadgen'), args);
  return JSON.parse(out) as LoadgenResult;
}
