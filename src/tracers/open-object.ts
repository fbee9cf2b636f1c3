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

export async function openTracerObject(
  backend: BpfBackend,
  objectPath: string,
  options: OpenOptions,
  setup: (obj: BpfObject, links: BpfLink[]) => void,
): Promise<OpenedObject> {
  const obj = backend.open(objectPath, options);
  try {
    // On a worker thread: the tracers started together verify their objects at once.
    await obj.loadAsync();
  } catch (err) {
    await obj.close();
    throw err;
  }
  return setUp(obj, setup);
}

/**
 * The same, loading on the calling thread: for an object loaded on demand in a synchronous path
 * (nginx linking, at the first nginx process), small enough that its load takes milliseconds.
 */
export function openTracerObjectSync(
  backend: BpfBackend,
  objectPath: string,
  options: OpenOptions,
  setup: (obj: BpfObject, links: BpfLink[]) => void,
): OpenedObject {
  const obj = backend.open(objectPath, options);
  try {
    obj.load();
  } catch (err) {
    void obj.close();
    throw err;
  }
  return setUp(obj, setup);
}

function setUp(obj: BpfObject, setup: (obj: BpfObject, links: BpfLink[]) => void): OpenedObject {
  const links: BpfLink[] = [];
  try {
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
