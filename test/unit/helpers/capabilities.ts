/**
 * Capability fixtures for unit tests: a root host with BTF, uprobes and syscall tracepoints but no
 * kprobes, under lockdown=integrity (so no bpf_probe_write_user), and a kernel accepting every
 * BPF feature the agent probes for.
 */
import type { BpfFeatures } from '../../../src/capabilities/bpf-features';
import type { Capabilities } from '../../../src/capabilities/probe';

export const LOCKED_DOWN_HOST: Capabilities = {
  kernelRelease: '6.18.0-test',
  isRoot: true,
  capSysAdmin: true,
  capBpf: true,
  capPerfmon: true,
  btf: true,
  uprobes: true,
  kprobes: false,
  syscallTracepoints: true,
  tracefsMounted: true,
  lockdown: 'integrity',
  lockdownSource: 'securityfs',
  cgroup2Mount: '/sys/fs/cgroup',
  probeWriteUser: false,
};

export const ALL_BPF_FEATURES: BpfFeatures = {
  source: 'test',
  skMsgProgType: true,
  sockOpsProgType: true,
  msgPushData: true,
  probeWriteUser: true,
  bpfLoop: true,
  ringbufMap: true,
};
