import { AttachmentTable } from '../../../src/cli/attach-table';

describe('attachment table', () => {
  it('lists attached processes by pid with their tracer and probes; detaches remove rows', () => {
    const t = new AttachmentTable();
    t.on({ kind: 'attached', pid: 30, service: 'demo-reviews', exe: '/usr/bin/python3.11', reason: 'port 8082', tracer: 'syscall tracepoints (HTTP/1.x)', probes: null, notes: [], routes: 'heuristic (ids -> {id})', injection: 'none', connectionsTakenOver: 0, serverSpans: null, clientSpans: null });
    t.on({ kind: 'attached', pid: 12, service: 'demo-frontend', exe: '/srv/demo-frontend', reason: 'exe demo-*', tracer: 'Go uprobes (go1.26.8)', probes: 33, notes: [], routes: 'Go ServeMux pattern (Request.Pattern) > 2 declared patterns > heuristic (ids -> {id})', injection: 'none', connectionsTakenOver: 0, serverSpans: null, clientSpans: null });
    expect(t.render()).toEqual([
      'traced processes: 2',
      '  PID  SERVICE        TRACER                          PROBES  MATCHED BY  EXECUTABLE           ROUTES',
      '  12   demo-frontend  Go uprobes (go1.26.8)           33      exe demo-*  /srv/demo-frontend   Go ServeMux pattern (Request.Pattern) > 2 declared patterns > heuristic (ids -> {id})',
      '  30   demo-reviews   syscall tracepoints (HTTP/1.x)  shared  port 8082   /usr/bin/python3.11  heuristic (ids -> {id})',
    ]);
    t.on({ kind: 'detached', pid: 12 });
    t.on({ kind: 'detached', pid: 99 });
    expect(t.processes().map((p) => p.pid)).toEqual([30]);
  });

  it('prints once after a burst of changes', async () => {
    const printed: string[][] = [];
    const t = new AttachmentTable((l) => printed.push(l), 20);
    for (let pid = 1; pid <= 5; pid++) t.on({ kind: 'attached', pid, service: 's', exe: '/x', reason: 'pid 1', tracer: 'Go uprobes', probes: 9, notes: [], routes: 'heuristic (ids -> {id})', injection: 'none', connectionsTakenOver: 0, serverSpans: null, clientSpans: null });
    // The attaches above ran synchronously, so one debounce period covers them all.
    for (let i = 0; i < 500 && printed.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 50));
    expect(printed).toHaveLength(1);
    expect(printed[0][0]).toBe('traced processes: 5');
    t.stop();
  });
});
