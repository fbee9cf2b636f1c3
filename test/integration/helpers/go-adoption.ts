/**
 * Waits until the Go client roundTrip probe (src/tracers/go-client-adoption.ts), attached to adopt
 * connections from before the attach, has gone from a traced process whose agent runs with
 * go.client_caller_probe_max_rate 0: blocks of `calls` calls (made with `call`) until one block had
 * no write from an unknown connection (that brings the probe back or keeps it), then the agent's
 * next look.
 */
import type { AgentProcess } from './processes';

const missed = (c: Record<string, number>) => c.sys_http_skip_go_client_no_conn ?? 0;

export async function untilAdoptionProbeAway(agent: AgentProcess, call: (k: number) => Promise<void>, calls = 300, maxBlocks = 40): Promise<number> {
  // An unknown write just before brings the probe back at the agent's next look (every 0.5 s).
  await new Promise((r) => setTimeout(r, 1500));
  for (let block = 1; block <= maxBlocks; block++) {
    const before = missed(await agent.kernelCounters());
    for (let k = 0; k < calls; k++) await call(block * calls + k);
    if (missed(await agent.kernelCounters()) === before) {
      await new Promise((r) => setTimeout(r, 1500)); // the agent's next look + margin
      return block;
    }
  }
  throw new Error(`every one of ${maxBlocks} blocks of ${calls} calls had a write the probe would be kept for`);
}
