import { featuresFromProbes, LIBBPF_PROBE_SOURCE, probeBpfFeatures, UNKNOWN_FEATURES } from '../../../src/capabilities/bpf-features';
import type { Capabilities } from '../../../src/capabilities/probe';
import { describeStrategies, planStrategies, type FeatureId } from '../../../src/capabilities/strategy';
import { ALL_BPF_FEATURES, LOCKED_DOWN_HOST } from '../helpers/capabilities';

const OPEN: Capabilities = { ...LOCKED_DOWN_HOST, lockdown: 'none', probeWriteUser: true };

function status(plan: ReturnType<typeof planStrategies>, f: FeatureId): string {
  return plan.strategies.find((s) => s.feature === f)!.status;
}

describe('libbpf feature probes', () => {
  const answers = { tracepointProgType: 1, skMsgProgType: 1, sockOpsProgType: 0, msgPushData: 1, bpfLoop: 1, ringbufMap: -95 };

  it('reads program types and helpers accepted by the verifier; a probe that could not run is unknown', () => {
    expect(featuresFromProbes(answers)).toEqual({
      source: LIBBPF_PROBE_SOURCE,
      skMsgProgType: true,
      sockOpsProgType: false,
      msgPushData: true,
      // Not probed: libbpf counts the verifier's lockdown refusal as a yes (feature-probes.ts).
      probeWriteUser: null,
      bpfLoop: true,
      ringbufMap: null,
    });
  });

  it('no right to load a tracepoint program: every answer is unknown, and says why', () => {
    const f = featuresFromProbes({ ...answers, tracepointProgType: 0 });
    expect(f).toMatchObject({ skMsgProgType: null, sockOpsProgType: null, msgPushData: null, probeWriteUser: null, bpfLoop: null, ringbufMap: null });
    expect(f.source).toMatch(/could not load a minimal tracepoint program \(refused: CAP_BPF \+ CAP_PERFMON or root needed\)/);
  });

  it('a failing probe never throws', () => {
    const f = probeBpfFeatures(() => {
      throw new Error('libbpf.so.1: cannot open shared object file');
    });
    expect(f).toMatchObject({ skMsgProgType: null, msgPushData: null });
    expect(f.source).toMatch(/libbpf feature probes failed \(libbpf.so.1: cannot open shared object file\)/);
  });
});

describe('strategy plan', () => {
  it('locked-down kernel: no memory injection, says why; syscall tracer and black-box correlation on', () => {
    const plan = planStrategies(LOCKED_DOWN_HOST, { ...ALL_BPF_FEATURES, probeWriteUser: false }, { injectHeaders: 'auto' });
    expect(plan.goInjection).toBe('none');
    expect(plan.missing).toEqual([]);
    expect(status(plan, 'go-spans')).toBe('on');
    expect(status(plan, 'any-language-http')).toBe('on');
    expect(status(plan, 'black-box-correlation')).toBe('on');
    expect(status(plan, 'process-following')).toBe('on');
    const linking = plan.strategies.find((s) => s.feature === 'in-process-linking')!;
    expect(linking.status).toBe('fallback');
    expect(linking.strategy).toMatch(/Go: goroutine ancestry/);
    expect(linking.strategy).toMatch(/thread-per-request runtimes/);
    expect(linking.strategy).toMatch(/Node\.js \(versions whose structure offsets are measured/);
    expect(linking.strategy).toMatch(/not linked: .*Java calls written by another thread .*ForkJoinPool worker \(virtual-thread carriers/);
    const inj = plan.strategies.find((s) => s.feature === 'go-memory-injection')!;
    expect(inj.status).toBe('unavailable');
    expect(inj.why).toMatch(/lockdown=integrity/);
  });

  it('lockdown none + CAP_SYS_ADMIN + the verifier accepting the helper: memory injection', () => {
    expect(planStrategies(OPEN, ALL_BPF_FEATURES, { injectHeaders: 'auto' }).goInjection).toBe('memory');
    // The verifier has the last word even when lockdown says none (another LSM may forbid it).
    expect(planStrategies(OPEN, { ...ALL_BPF_FEATURES, probeWriteUser: false }, { injectHeaders: 'auto' }).goInjection).toBe('none');
    // bpftool unavailable: decided from lockdown and privileges.
    expect(planStrategies(OPEN, UNKNOWN_FEATURES('x'), { injectHeaders: 'auto' }).goInjection).toBe('memory');
  });

  it('inject_headers off turns both injections off', () => {
    const plan = planStrategies(OPEN, ALL_BPF_FEATURES, { injectHeaders: 'off' });
    expect(plan.goInjection).toBe('none');
    expect(status(plan, 'go-memory-injection')).toBe('off');
    expect(status(plan, 'sk-msg-injection')).toBe('off');
  });

  it('sk_msg: reports what the kernel lacks', () => {
    const plan = planStrategies({ ...LOCKED_DOWN_HOST, cgroup2Mount: null }, { ...ALL_BPF_FEATURES, skMsgProgType: false }, { injectHeaders: 'auto' });
    const sk = plan.strategies.find((s) => s.feature === 'sk-msg-injection')!;
    expect(sk.status).toBe('unavailable');
    expect(sk.why).toMatch(/kernel lacks it \(sk_msg: no.*cgroup v2: not mounted\)/);
  });

  it('no syscall tracepoints, no tracefs, no uprobes: fallbacks and what is missing', () => {
    const plan = planStrategies({ ...LOCKED_DOWN_HOST, syscallTracepoints: false, tracefsMounted: false, uprobes: false }, ALL_BPF_FEATURES, { injectHeaders: 'auto' });
    expect(status(plan, 'any-language-http')).toBe('unavailable');
    expect(status(plan, 'black-box-correlation')).toBe('unavailable');
    expect(status(plan, 'process-following')).toBe('fallback');
    expect(status(plan, 'go-spans')).toBe('unavailable');
    expect(status(plan, 'in-process-linking')).toBe('unavailable');
    expect(plan.missing.join()).toMatch(/uprobes/);
  });

  it('old kernel without bpf_loop: no syscall tracer', () => {
    const plan = planStrategies(LOCKED_DOWN_HOST, { ...ALL_BPF_FEATURES, bpfLoop: false }, { injectHeaders: 'auto' });
    expect(plan.strategies.find((s) => s.feature === 'any-language-http')!.why).toMatch(/bpf_loop/);
  });

  it('describes one line per feature', () => {
    const lines = describeStrategies(planStrategies(LOCKED_DOWN_HOST, ALL_BPF_FEATURES, { injectHeaders: 'auto' }));
    expect(lines).toHaveLength(7);
    // The default go.server_path: syscall tracepoints for HTTP/1 server spans.
    expect(lines[0]).toMatch(/^Go net\/http server and client spans: ON — server spans from syscall tracepoints/);
  });

  it('go.server_path: the Go strategy says where server spans come from, and falls back without the syscall tracer', () => {
    const go = (plan: ReturnType<typeof planStrategies>) => plan.strategies.find((s) => s.feature === 'go-spans')!;
    expect(go(planStrategies(LOCKED_DOWN_HOST, ALL_BPF_FEATURES, { injectHeaders: 'auto', goServerPath: 'syscall' })).strategy).toMatch(/^server spans from syscall tracepoints.*TLS/);
    expect(go(planStrategies(LOCKED_DOWN_HOST, ALL_BPF_FEATURES, { injectHeaders: 'auto', goServerPath: 'uprobes' })).strategy).toMatch(/^uprobes at function entry/);
    const noSys = go(planStrategies({ ...LOCKED_DOWN_HOST, syscallTracepoints: false }, ALL_BPF_FEATURES, { injectHeaders: 'auto', goServerPath: 'syscall' }));
    expect(noSys.strategy).toMatch(/^uprobes at function entry/);
    expect(noSys.why).toMatch(/syscall tracer cannot run/);
  });
});
