/**
 * Identity of a binary on disk for caching inspection results: many processes usually run the
 * same executable, and inspecting it (decompressing DWARF, decoding functions) is the expensive
 * part of attaching. (device, inode) names the file; size and mtime change when it is replaced
 * in place, so a rebuilt binary is never served stale results.
 */
import * as fs from 'node:fs';
import { SpanbridgeError } from '../../errors';

/** "dev:ino:size:mtimeNs" of the file at `path` (symlinks followed, so /proc/<pid>/exe works). */
export function binaryCacheKey(path: string): string {
  let st: fs.BigIntStats;
  try {
    st = fs.statSync(path, { bigint: true });
  } catch (err) {
    throw new SpanbridgeError('ERR_INSPECT', `inspect ${path}: cannot stat: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`;
}
