/**
 * A span's own attributes as Span.attributes fields, for the trace encoder (trace-encoder.ts):
 * runs of attributes equal to the last span's of the same kind copied from where that span's were
 * written, the others through the key caches (key-value.ts). Also sums the attributes' part of
 * the span's queue estimate (span-size.ts) in the same walk.
 */
import { estimateAttributeBytes } from '../span-size';
import { cachedField, EMPTY, keyEntry, writeSpanAttribute, writeUncachedAttribute, type KeyEntry } from './key-value';
import type { Writer } from './proto-writer';

/*
 * The last span's attributes, one memory per span kind: keys, entries and values by position, and
 * their encoded fields, where they were written (attribute i at prevStart + prevOff[i] ..
 * prevStart + prevOff[i + 1] of `prevWriter`'s bytes, valid while that writer is at
 * `prevGeneration`: writers only append until they go back to the pool, and a grown buffer keeps
 * its bytes at their offsets). Spans of one kind from one tracer list the same keys in the same
 * order (for-in yields internalized strings: one pointer comparison finds a key), and most values
 * repeat from one span to the next, so a span's attributes are mostly runs equal to the last
 * span's, copied as a block. An attribute whose value changed but whose field the key's caches
 * hold at the length of the last span's field (a path of the same length, a port, a thread id)
 * does not end its run: the run is copied as one block and that field written over its copy (a
 * patch). A service that makes calls alternates server and client spans, whose keys differ after
 * the first few: one memory per kind keeps each kind's runs (one memory for both: a Go server
 * calling one downstream encoded its spans ~1.9x slower, every attribute through the key caches).
 * A field is a pure function of its key and value (=== tells 200 from '200'; NaN, never ===, is
 * found in the key's map).
 */
export class AttributeRuns {
  /** The last span name of this kind and its Span.name field (a name is a pure function of its string). */
  name: string | undefined = undefined;
  nameBytes: Buffer = EMPTY;
  readonly keys: string[] = [];
  readonly entries: KeyEntry[] = [];
  readonly values: unknown[] = [];
  prevWriter: Writer | null = null;
  prevGeneration = -1;
  prevStart = 0;
  prevOff: number[] = [0];
  prevCount = 0;
  curOff: number[] = [];
  /** The pending run's patches: attribute positions and the fields written over their copies. */
  readonly patchAt: number[] = [];
  readonly patchBytes: Buffer[] = [];
}

/** The memories of server and client spans. */
export const serverRuns = new AttributeRuns();
export const clientRuns = new AttributeRuns();

/**
 * A span's own attributes: runs equal to the last span's (of `m`) copied from its bytes, the others
 * through the key caches. Returns their part of the span's queue estimate (span-size.ts).
 */
export function writeSpanAttributes(w: Writer, attributes: Readonly<Record<string, unknown>>, m: AttributeRuns): number {
  // Unset until the end: a span that fails half-way leaves no stale bytes behind for the next one.
  const count = m.prevWriter !== null && m.prevWriter.generation === m.prevGeneration ? m.prevCount : 0;
  m.prevCount = 0;
  const seqKeys = m.keys;
  const seqEntries = m.entries;
  const seqValues = m.values;
  const prevOff = m.prevOff;
  const start = w.pos;
  const off = m.curOff;
  let i = 0;
  /** First index of the pending run (attributes equal to the last span's, not yet copied), -1: none. */
  let run = -1;
  /** Patches of the pending run (m.patchAt, m.patchBytes). */
  let patches = 0;
  let estimate = 0;
  for (const key in attributes) {
    if (!Object.prototype.hasOwnProperty.call(attributes, key)) continue;
    const value = attributes[key];
    estimate += estimateAttributeBytes(key, value);
    if (i < count && seqKeys[i] === key) {
      const entry = seqEntries[i];
      if (seqValues[i] === value) {
        entry.hits++;
        if (run < 0) run = i;
        i++;
        continue;
      }
      seqValues[i] = value;
      const cached = cachedField(entry, value);
      if (cached !== undefined && cached.length === prevOff[i + 1] - prevOff[i]) {
        if (run < 0) run = i;
        m.patchAt[patches] = i;
        m.patchBytes[patches] = cached;
        patches++;
        i++;
        continue;
      }
      if (run >= 0) {
        copyRun(w, m, start, off, run, i, patches);
        run = -1;
        patches = 0;
      }
      off[i] = w.pos - start;
      if (cached !== undefined) w.raw(cached);
      else writeUncachedAttribute(w, entry, value);
      i++;
      continue;
    }
    if (run >= 0) {
      copyRun(w, m, start, off, run, i, patches);
      run = -1;
      patches = 0;
    }
    let entry: KeyEntry;
    if (seqKeys[i] === key) {
      entry = seqEntries[i];
    } else {
      entry = keyEntry(key);
      seqKeys[i] = key;
      seqEntries[i] = entry;
    }
    seqValues[i] = value;
    off[i] = w.pos - start;
    writeSpanAttribute(w, entry, value);
    i++;
  }
  if (run >= 0) copyRun(w, m, start, off, run, i, patches);
  off[i] = w.pos - start;
  // Remembered where they are (no copy): the next span's runs are copied from here.
  m.prevWriter = w;
  m.prevGeneration = w.generation;
  m.prevStart = start;
  m.curOff = m.prevOff;
  m.prevOff = off;
  // Positions past this span's count must not match a later span's (their keys and values stay).
  m.prevCount = i;
  return estimate;
}

/**
 * Copies the last span's attributes from..to-1 (one block), writes the run's `patches` over their
 * copies (each the length of the field it replaces) and records where each attribute starts.
 */
function copyRun(w: Writer, m: AttributeRuns, start: number, off: number[], from: number, to: number, patches: number): void {
  const prevOff = m.prevOff;
  const at = w.pos;
  const base = at - start - prevOff[from];
  for (let j = from; j < to; j++) off[j] = prevOff[j] + base;
  const src = m.prevWriter!;
  if (src === w) w.rawOwn(m.prevStart + prevOff[from], m.prevStart + prevOff[to]);
  else w.rawFrom(src.buf, m.prevStart + prevOff[from], m.prevStart + prevOff[to]);
  if (patches === 0) return;
  const buf = w.buf;
  for (let k = 0; k < patches; k++) {
    const bytes = m.patchBytes[k];
    const p = at + prevOff[m.patchAt[k]] - prevOff[from];
    const n = bytes.length;
    for (let b = 0; b < n; b++) buf[p + b] = bytes[b];
  }
}
