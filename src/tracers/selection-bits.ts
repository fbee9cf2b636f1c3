/**
 * The agent's half of traced_bits (bpf/sys_http/sys_http_select.h): a bit per selected host tgid that every
 * syscall program tests before anything else, so an unselected process stops there. The agent is
 * the only writer of this half (the kernel sets its own half for children traced from their fork),
 * so it keeps the words here and rewrites a whole word at each change: no read-modify-write race.
 * A bit is set before the process's traced_tgids entry is written and cleared after it is removed:
 * the gate may let a process through to a missing entry (one hash lookup) but never hide one.
 */
import type { BpfMap } from '../bpf/types';
import { SYS_HTTP_SELECT } from '../events/structs.generated';

export const SELECT_WORDS = SYS_HTTP_SELECT.SYS_SELECT_WORDS;

export class SelectionBits {
  /** word index -> its 64 bits, for the words with a bit set. */
  private readonly words = new Map<number, bigint>();

  constructor(private readonly map: BpfMap) {}

  /** The word a tgid's bit is in, and the bit (the kernel's select_word: tgid / 64, wrapped). */
  static position(pid: number): { word: number; bit: bigint } {
    if (!Number.isInteger(pid) || pid < 0 || pid > 0xffffffff) throw new RangeError(`not a tgid: ${pid}`);
    return { word: Math.floor(pid / 64) % SELECT_WORDS, bit: 1n << BigInt(pid % 64) };
  }

  set(pid: number): void {
    const { word, bit } = SelectionBits.position(pid);
    const v = this.words.get(word) ?? 0n;
    if (v & bit) return;
    this.write(word, v | bit);
  }

  clear(pid: number): void {
    const { word, bit } = SelectionBits.position(pid);
    const v = this.words.get(word) ?? 0n;
    if (!(v & bit)) return;
    this.write(word, v & ~bit);
  }

  has(pid: number): boolean {
    const { word, bit } = SelectionBits.position(pid);
    return ((this.words.get(word) ?? 0n) & bit) !== 0n;
  }

  private write(word: number, v: bigint): void {
    const k = Buffer.alloc(4);
    k.writeUInt32LE(word);
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(v);
    this.map.update(k, b); // throws (ERR_BPF_MAP) before the copy here changes
    if (v === 0n) this.words.delete(word);
    else this.words.set(word, v);
  }
}
