/**
 * Java client calls made on a thread other than the one that read the server request
 * (docs/java-async-linking.md): the JDK's HttpClient (its selector and worker threads), an
 * application thread pool, CompletableFuture.supplyAsync, and virtual threads moving between
 * carrier threads (Temurin 25). A stock Spring Boot service (Tomcat) calls a FastAPI leaf that
 * echoes the traceparent it got. Every request comes in with a traceparent of its own trace id,
 * so the trace id the leaf echoes says which request the agent took as the parent: the same one
 * (connected), another one in flight (a wrong parent: never allowed), or a new trace (unlinked,
 * and then counted on /metrics). Sequential requests and 32 at once with random handler delays.
 */
import { readFileSync } from 'node:fs';
import { echoed, hex, send } from './helpers/chains';
import { startFramework, type FrameworkService } from './helpers/frameworks';
import { requireRootAndBpf } from './helpers/privileges';
import { startAgent, waitFor, type AgentProcess, type PrintedSpanLine } from './helpers/processes';

interface Outcome {
  connected: number;
  wrong: number;
  unlinked: number;
  /** Which threads wrote the client requests (names with their numbers left out), by outcome. */
  writers: Record<string, number>;
  problems: string[];
}

/** A thread's name with its numbers left out ("HttpClient-3-Worker-1" -> "HttpClient-N-Worker-N"). */
function threadName(pid: number, tid: unknown): string {
  try {
    return readFileSync(`/proc/${pid}/task/${String(tid)}/comm`, 'utf8').trim().replace(/\d+/g, 'N');
  } catch {
    return '(exited)';
  }
}

describe('Java: client calls on other threads than the request\'s are linked right or not at all', () => {
  let leaf: FrameworkService;
  let spring: FrameworkService;
  let virtual: FrameworkService;
  let agent: AgentProcess | undefined;

  beforeAll(async () => {
    requireRootAndBpf();
    leaf = await startFramework('fastapi-uvicorn', 'java-leaf');
    spring = await startFramework('spring', 'spring-jdk17');
    // Spring Boot on Java 21+ serves each request on a virtual thread (Tomcat's executor).
    virtual = await startFramework('spring', 'spring-virtual', { jdk: 'temurin-25', springArgs: ['--spring.threads.virtual.enabled=true'] });
    const pids = [leaf, spring, virtual].flatMap((s) => ['--pid', String(s.proc.pid)]);
    agent = await startAgent([...pids, '--export', 'none'], {}, 120_000);
  }, 240_000);

  afterAll(async () => {
    await agent?.stop();
    await Promise.all([leaf?.proc.stop(), spring?.proc.stop(), virtual?.proc.stop()]);
  });

  it('says per Java process what thread linking covers (/api/processes, as the start-up log)', async () => {
    const processes = await agent!.processes();
    for (const svc of [spring, virtual]) {
      const notes = processes.find((p) => p.pid === svc.proc.pid)?.notes.join('; ') ?? '(not traced)';
      expect(notes).toMatch(/thread linking on \(Java: a JDK HttpClient connection's first request through the thread that connected it; never on ForkJoinPool workers, virtual-thread carriers among them\)/);
    }
  });

  /** Sends `path` (a route of `front` taking url=) to the leaf's /headers, each with a fresh trace; trace id -> echoed traceparent. */
  async function calls(front: FrameworkService, route: string, n: number, concurrent: boolean, delayMs: number): Promise<Map<string, string>> {
    const one = async (): Promise<[string, string]> => {
      const traceId = hex(16);
      const sep = route.includes('?') ? '&' : '?';
      const url = `${front.url}${route}${sep}url=${encodeURIComponent(`${leaf.url}/headers`)}${delayMs ? `&delay_ms=${delayMs}` : ''}`;
      const r = await send(url, { headers: { traceparent: `00-${traceId}-${hex(8)}-01` } });
      expect({ url, status: r.status }).toEqual({ url, status: 200 });
      return [traceId, echoed(r.body)?.traceparent ?? ''];
    };
    const out = new Map<string, string>();
    if (concurrent) for (const [t, e] of await Promise.all(Array.from({ length: n }, one))) out.set(t, e);
    else for (let i = 0; i < n; i++) out.set(...(await one()));
    return out;
  }

  /** Checks each request's echoed header against the spans the agent reported for `front`. */
  async function judge(front: FrameworkService, path: string, sent: Map<string, string>): Promise<Outcome> {
    const spansOf = (kind: string): PrintedSpanLine[] => agent!.spans().filter((s) => s.kind === kind && s.resource['service.name'] === front.service);
    const echoedSpans = new Set([...sent.values()].map((tp) => tp.split('-')[2]));
    await waitFor(`${front.service} spans`, () => {
      const ids = new Set(spansOf('SERVER').map((s) => s.traceId));
      const clients = new Set(spansOf('CLIENT').map((s) => s.spanId));
      return [...sent.keys()].every((t) => ids.has(t)) && [...echoedSpans].every((s) => clients.has(s));
    }, 30_000).catch(() => undefined);
    const servers = spansOf('SERVER');
    const clients = spansOf('CLIENT');
    const o: Outcome = { connected: 0, wrong: 0, unlinked: 0, writers: {}, problems: [] };
    for (const [traceId, tp] of sent) {
      const [, gotTrace, gotSpan] = tp.split('-');
      const client = clients.find((c) => c.spanId === gotSpan);
      const server = servers.find((s) => s.traceId === traceId && s.attributes['url.path'] === path);
      if (!client || !server) {
        o.problems.push(`${traceId}: echoed ${tp}, client span ${client ? 'found' : 'missing'}, server span ${server ? 'found' : 'missing'}`);
        continue;
      }
      let outcome: string;
      if (gotTrace === traceId && client.parentSpanId === server.spanId && client.attributes['spanbridge.parent.source'] === 'thread') {
        o.connected++;
        outcome = 'connected';
      } else if (sent.has(gotTrace) || client.parentSpanId !== '' || gotTrace !== client.traceId) {
        o.wrong++;
        outcome = 'wrong';
        o.problems.push(`${traceId}: wrong parent (leaf got ${tp}, client parent ${client.parentSpanId}, server ${server.spanId})`);
      } else {
        o.unlinked++;
        outcome = 'unlinked';
      }
      const w = `${outcome} ${threadName(front.proc.pid, client.attributes['thread.id'])}`;
      o.writers[w] = (o.writers[w] ?? 0) + 1;
    }
    return o;
  }

  const unlinkedCount = async (): Promise<number> => agent!.metric('spanbridge_client_spans_unlinked_total', { runtime: 'java' });

  /** Runs sequential then 32-concurrent rounds; asserts no wrong parent, every unlinked one counted. */
  async function check(front: () => FrameworkService, route: string, path: string, delayMs: number, minConnected: { sequential: number; concurrent: number }): Promise<void> {
    const before = await unlinkedCount();
    const k0 = await agent!.kernelCounters();
    const seq = await judge(front(), path, await calls(front(), route, 10, false, delayMs));
    const sent = new Map<string, string>();
    for (let round = 0; round < 2; round++) for (const [t, e] of await calls(front(), route, 32, true, delayMs)) sent.set(t, e);
    const conc = await judge(front(), path, sent);
    // The figures docs/java-async-linking.md quotes.
    const k1 = await agent!.kernelCounters();
    const delta = Object.fromEntries(['sys_http_link_thread', 'sys_http_link_java_connect', 'sys_http_skip_java_connect_gone', 'sys_http_skip_thread_pooled', 'sys_http_skip_thread_ambiguous'].map((k) => [k, (k1[k] ?? 0) - (k0[k] ?? 0)]));
    console.log(`${front().service} ${route}: sequential ${JSON.stringify(seq)}; 32 concurrent x2 ${JSON.stringify({ ...conc, problems: conc.problems.length })}; kernel ${JSON.stringify(delta)}`);
    expect(seq.problems).toEqual([]);
    expect(conc.wrong).toBe(0);
    expect(conc.problems).toEqual([]);
    expect(seq.connected / 10).toBeGreaterThanOrEqual(minConnected.sequential);
    expect(conc.connected / sent.size).toBeGreaterThanOrEqual(minConnected.concurrent);
    const unlinked = seq.unlinked + conc.unlinked;
    if (unlinked) await waitFor('unlinked client spans counted', async () => (await unlinkedCount()) - before >= unlinked, 30_000);
  }

  describe('Java 17, Tomcat platform threads', () => {
    it('RestTemplate on the request thread: connected', () => check(() => spring, '/call', '/call', 100, { sequential: 1, concurrent: 0.99 }), 180_000);
    it('JDK HttpClient.send: a new connection\'s first request linked through the thread that connected it; no wrong parent; unlinked ones counted', async () => {
      const linked = async (): Promise<number> => (await agent!.kernelCounters()).sys_http_link_java_connect ?? 0;
      const before = await linked();
      // 32 at once open new connections (the client's pool has fewer): those are linked (21-24 of
      // 64 here, with the calls the caller's thread wrote itself); the bound leaves room for load
      await check(() => spring, '/call-jdk?mode=send', '/call-jdk', 100, { sequential: 0, concurrent: 0.1 });
      expect(await linked()).toBeGreaterThan(before);
    }, 180_000);
    it('JDK HttpClient.sendAsync: no wrong parent; unlinked ones counted', () => check(() => spring, '/call-jdk?mode=async', '/call-jdk', 100, { sequential: 0, concurrent: 0 }), 180_000);
    it('application thread pool: no wrong parent; unlinked ones counted', () => check(() => spring, '/call-jdk?mode=executor', '/call-jdk', 100, { sequential: 0, concurrent: 0 }), 180_000);
    it('CompletableFuture.supplyAsync: no wrong parent; unlinked ones counted', () => check(() => spring, '/call-jdk?mode=supply', '/call-jdk', 100, { sequential: 0, concurrent: 0 }), 180_000);
  });

  describe('Java 25, virtual threads (spring.threads.virtual.enabled)', () => {
    // A virtual thread moves between carrier threads: never linked by thread (bpf/sys_http/sys_http_java.h).
    const pooled = async (): Promise<number> => (await agent!.kernelCounters()).sys_http_skip_thread_pooled ?? 0;

    it('RestTemplate on a virtual thread: not linked by its carrier thread, counted', async () => {
      const before = await pooled();
      await check(() => virtual, '/call', '/call', 100, { sequential: 0, concurrent: 0 });
      expect(await pooled()).toBeGreaterThan(before);
    }, 180_000);
    it('JDK HttpClient.send on a virtual thread: no wrong parent; unlinked ones counted', () => check(() => virtual, '/call-jdk?mode=send', '/call-jdk', 100, { sequential: 0, concurrent: 0 }), 180_000);
    it('2 to 4 requests at a time (one request active per carrier, the case a thread link got wrong): no wrong parent', async () => {
      const before = await pooled();
      const sent = new Map<string, string>();
      for (let round = 0; round < 30; round++) for (const [t, e] of await calls(virtual, '/call', 2 + (round % 3), true, 50)) sent.set(t, e);
      const o = await judge(virtual, '/call', sent);
      console.log(`spring-virtual /call, 2-4 at a time: ${JSON.stringify({ ...o, problems: o.problems.slice(0, 5) })}`);
      expect(o.wrong).toBe(0);
      expect(o.problems).toEqual([]);
      expect(o.connected).toBe(0);
      expect(await pooled()).toBeGreaterThan(before);
    }, 180_000);
  });
});
