/**
 * Waits until the Go client adoption probe ((*persistConn).roundTrip, src/tracers/go-client-adoption.ts)
 * has gone from a traced process: blocks of `calls` calls (made with `call`) until one block had no
 * write from an unknown connection and none ahead of its caller (either brings the probe back or
 * keeps it: bpf/common/go_client_ctx.h), then the agent's next look. Writes ahead of their caller
 * are a scheduling race (up to ~1% of calls at low rates), so a few blocks may be needed.
 */
import type { AgentProcess } from './processes';

const missed = (c: Record<string, number>) =>
  (c.sys_http_skip_go_client_no_conn ?? 0) + (c.sys_http_link_go_client_ahead ?? 0) + (c.sys_http_skip_go_client_unparked ?? 0);

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
