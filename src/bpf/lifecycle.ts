/**
 * The registry of open BPF objects: the libbpf binding registers each object on open and
 * unregisters it on close, so tests can check that nothing leaks and a shutdown path can close
 * whatever is still open (in reverse order of opening). No koffi here: this module is testable
 * with plain objects.
 */

/** What the registry needs from an open object. */
export interface Closable {
  readonly path?: string;
  close(): Promise<void>;
}

const open = new Set<Closable>();

/** Registers an open object; returns the function that unregisters it (call it from close()). */
export function trackOpenObject(obj: Closable): () => void {
  open.add(obj);
  return () => {
    open.delete(obj);
  };
}

/** Objects opened and not yet closed (tests check that close leaks nothing). */
export function openObjectCount(): number {
  return open.size;
}

/**
 * Closes every registered object, in reverse order of opening. Never throws: errors are returned
 * so a shutdown path can log them and carry on.
 */
export async function closeAllOpenObjects(): Promise<unknown[]> {
  const errors: unknown[] = [];
  for (const obj of [...open].reverse()) {
    try {
      await obj.close();
    } catch (err) {
      errors.push(err);
    }
    open.delete(obj);
  }
  return errors;
}
