/**
 * Java linking (issue 14 item 4): the stock Spring Boot test service (test/frameworks/java, Java
 * 17), pinned to the server CPU, calling the Go test server (untraced) per request, once with the
 * JDK HttpClient (`/call-jdk?mode=send`: its requests are written by its worker threads; a new
 * connection's first request is linked through the thread that connected it, bpf/sys_http/sys_http_java.h)
 * and once with RestTemplate on the request thread (`/call`: thread linking). Measured as every
 * linking section (./linking.ts): kernel link counters and unlinked client spans over the counted
 * run, uprobe (none expected) and tracepoint hits and BPF time per request, and the added p50.
 */
import path from 'node:path';
import { REPO_ROOT } from '../lib/config';
import { freePort, spawnPinned, waitForPort, type Child } from '../lib/procs';
import { section, type SectionResult } from '../lib/report';
import { startServer, type BenchContext } from './context';
import { measureLinkedService } from './linking';

const JAR = path.join(REPO_ROOT, 'build', 'frameworks', 'spring.jar');
const COUNT_REQUESTS = 1000;
const COUNT_RATE = 200;
const RATE = 50;

async function startSpring(ctx: BenchContext): Promise<{ child: Child; addr: string }> {
  const port = await freePort();
  const args = ['-Xmx256m', '-jar', JAR, `--server.port=${port}`, '--server.address=127.0.0.1', '--spring.main.banner-mode=off'];
  const child = spawnPinned(ctx.config.serverCpu, 'java', args, { OTEL_SERVICE_NAME: 'bench-spring' });
  try {
    await waitForPort(port, 120_000, 100);
  } catch (err) {
    await child.stop();
    throw new Error(`spring did not start (make setup builds ${JAR}): ${(err as Error).message}\n${child.stderr().slice(-1000)}`);
  }
  return { child, addr: `127.0.0.1:${port}` };
}

export async function javaLinkingSection(ctx: BenchContext): Promise<SectionResult> {
  const s = section('javalink', 'Java linking (Spring Boot on Java 17: JDK HttpClient.send and RestTemplate /call)');
  const leaf = await startServer(ctx, 'go');
  try {
    const svc = await startSpring(ctx);
    try {
      const url = encodeURIComponent(leaf.url);
      await measureLinkedService(ctx, s, {
        id: 'javalink.httpclient_send', label: 'Spring + JDK HttpClient.send /call-jdk', child: svc.child, addr: svc.addr, callPath: `/call-jdk?mode=send&url=${url}`,
        rate: RATE, countRate: COUNT_RATE, countRequests: COUNT_REQUESTS, reportMatch: /java/i,
      });
      await measureLinkedService(ctx, s, {
        id: 'javalink.resttemplate', label: 'Spring + RestTemplate /call', child: svc.child, addr: svc.addr, callPath: `/call?url=${url}`,
        rate: RATE, countRate: COUNT_RATE, countRequests: COUNT_REQUESTS, reportMatch: /java/i,
      });
    } finally {
      await svc.child.stop();
    }
  } finally {
    await leaf.child.stop();
  }
  return s;
}
