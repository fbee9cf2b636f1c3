/**
 * How every tracer opens its BPF object, the same way (libbpf-bootstrap's loader flow): open with
 * its settings (.rodata, map sizes, programs left out), load, then `setup` attaches what every
 * process shares and starts the ring buffer. If any step fails, the links made so far are
 * destroyed in reverse order and the object is closed; the error is rethrown unchanged, so a
 * caller's strategy switches on its type (BpfLoadError: errno, failing program, verifier log).
 */
import type { BpfBackend, BpfLink, BpfObject, OpenOptions } from '../bpf/types';

export interface OpenedObject {
  readonly obj: BpfObject;
  /** Links `setup` created, in creation order (the object destroys them in reverse at close). */
  readonly links: BpfLink[];
}

export function openTracerObject(
  backend: BpfBackend,
  objectPath: string,
  options: OpenOptions,
  setup: (obj: BpfObject, links: BpfLink[]) => void,
): OpenedObject {
  const obj = backend.open(objectPath, options);
  const links: BpfLink[] = [];
  try {
    obj.load();
    setup(obj, links);
  } catch (err) {
    for (const l of [...links].reverse()) l.destroy();
    void obj.close();
    throw err;
  }
  return { obj, links };
}

/** The key of every per-process map (a tgid as the kernel's u32, little-endian). */
export function pidKey(pid: number): Buffer {
  const k = Buffer.alloc(4);
  k.writeUInt32LE(pid);
  return k;
}
