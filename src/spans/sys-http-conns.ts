/**
 * The syscall assembler's connections by id, with their order of last activity: a Map for lookup
 * and an intrusive doubly linked list for the order, so a record moves its connection to the
 * newest end without a Map delete and re-insert (the order evictions and idle sweeps walk).
 */

/** What the table needs of a connection: its id and its two links (owned by the table). */
export interface LruEntry<K, E> {
  readonly id: K;
  older: E | null;
  newer: E | null;
}

export class ConnTable<K, C extends LruEntry<K, C>> {
  private readonly byId = new Map<K, C>();
  /** Least and most recently active (the ends of the list). */
  private oldestEntry: C | null = null;
  private newestEntry: C | null = null;

  get size(): number {
    return this.byId.size;
  }

  get oldest(): C | null {
    return this.oldestEntry;
  }

  get(id: K): C | undefined {
    return this.byId.get(id);
  }

  has(id: K): boolean {
    return this.byId.has(id);
  }

  /** Adds `c` as the most recently active (its id must not be in the table). */
  add(c: C): void {
    this.byId.set(c.id, c);
    this.link(c);
  }

  delete(c: C): void {
    this.byId.delete(c.id);
    this.unlink(c);
  }

  /** `c` was active now: it becomes the newest. */
  touch(c: C): void {
    if (this.newestEntry === c) return;
    this.unlink(c);
    this.link(c);
  }

  private link(c: C): void {
    c.older = this.newestEntry;
    c.newer = null;
    if (this.newestEntry !== null) this.newestEntry.newer = c;
    else this.oldestEntry = c;
    this.newestEntry = c;
  }

  private unlink(c: C): void {
    if (c.older !== null) c.older.newer = c.newer;
    else this.oldestEntry = c.newer;
    if (c.newer !== null) c.newer.older = c.older;
    else this.newestEntry = c.older;
    c.older = c.newer = null;
  }
}
