/**
 * The libbpf binding: implements the typed BPF API (./types.ts) on libbpf.so.1 through koffi.
 * koffi is imported only under ./libbpf/; everything else sees BpfBackend and its fake.
 *
 * Flow, as libbpf-bootstrap: open -> set .rodata by name -> autoload choices -> load (verifier log
 * kept on failure) -> attach (links owned by the object) -> ring buffers -> close (links in
 * reverse order, ring buffers, object). One close() frees everything the object owns.
 *
 * One file per concept in ./libbpf/: native.ts (the bound C functions), errors.ts, object.ts,
 * rodata.ts, program.ts and link.ts, map.ts, ring-buffer.ts and ring-poller.ts. Ring buffers never
 * block Node's event loop, and link detaches (which wait for RCU grace periods in the kernel) run
 * on a worker thread, and so can the verifier's work (BpfObject.loadAsync); what stays synchronous
 * is open, attach, and load() where a caller needs it so.
 */
import { SpanbridgeError } from '../errors';
import type { BpfBackend } from './types';
import { errnoText } from './libbpf/errors';
import { loadNative } from './libbpf/native';
import { LibbpfObject } from './libbpf/object';
import { DEFAULT_POLL_INTERVAL_MS, type BackendConfig, type LibbpfBackendOptions } from './libbpf/options';
import { RingPoller } from './libbpf/ring-poller';

export { DEFAULT_POLL_INTERVAL_MS, type LibbpfBackendOptions, type RingWaitMode } from './libbpf/options';

export function createLibbpfBackend(options: LibbpfBackendOptions = {}): BpfBackend {
  const n = loadNative();
  if (options.libbpfDebug !== undefined) n.log.debug = options.libbpfDebug;
  const cfg: BackendConfig = {
    ringWait: options.ringWait ?? 'uv-poll',
    waitTimeoutMs: options.waitTimeoutMs ?? 200,
    consumeTurnMs: options.consumeTurnMs ?? 5,
    pollIntervalMs: options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS,
  };
  let cpus: number | undefined;
  const possibleCpus = (): number => {
    if (cpus === undefined) {
      const r = n.numPossibleCpus() as number;
      if (r <= 0) throw new SpanbridgeError('ERR_BPF_MAP', `possible cpus: ${errnoText(n, r)}`);
      cpus = r;
    }
    return cpus;
  };
  const poller = new RingPoller(cfg.pollIntervalMs);
  return {
    open: (path, openOptions) => LibbpfObject.open(n, cfg, poller, possibleCpus, path, openOptions ?? {}),
    possibleCpus,
    releaseFreeMemory: () => {
      n.mallocTrim(0);
    },
  };
}
