/**
 * Return points of a Go function, as file offsets for uprobes.
 *
 * Go moves goroutine stacks, and a uretprobe rewrites the return address on the stack, so
 * uretprobes on Go code crash the target. Instead the agent puts a plain uprobe on every RET
 * instruction of the function. Finding them needs a real x86-64 decoder (a 0xC3 byte is often
 * part of another instruction), here iced-x86 (WebAssembly, no native addon).
 *
 * The decoder walks the function linearly from its entry. Go emits no data inside functions
 * (jump tables live in .rodata) and pads between functions with INT3, so a linear sweep sees
 * every instruction. A function that ends in a tail call (JMP) has no RET of its own; the caller
 * then gets an empty list.
 */
import type * as Iced from 'iced-x86';

/** iced-x86 (a WebAssembly module of several MB) loads on the first Go binary, not at start-up. */
let iced: typeof Iced | undefined;
function loadIced(): typeof Iced {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (iced ??= require('iced-x86') as typeof Iced);
}
import { ElfFile, ElfFunction } from './elf';

/**
 * File offsets of every RET (near or far, with or without imm16) in `code`, which is a function's
 * bytes starting at virtual address `vaddr` and file offset `fileOffset`.
 */
export function decodeRetOffsets(code: Uint8Array, vaddr: number, fileOffset: number): number[] {
  const { Decoder, DecoderOptions, FlowControl, Instruction } = loadIced();
  const out: number[] = [];
  const decoder = new Decoder(64, code, DecoderOptions.None);
  const instr = new Instruction();
  try {
    decoder.ip = BigInt(vaddr);
    while (decoder.canDecode) {
      const at = decoder.position;
      decoder.decodeOut(instr);
      if (instr.flowControl === FlowControl.Return) out.push(fileOffset + at);
    }
  } finally {
    instr.free();
    decoder.free();
  }
  return out;
}

/** Cache: binary key -> function entry vaddr -> RET file offsets. Bounded by binaries, oldest evicted. */
const cache = new Map<string, Map<number, number[]>>();
const MAX_CACHED_BINARIES = 64;

/**
 * RET file offsets of `fn` in `elf`, reading the function's bytes at its file offset. With a
 * `binaryKey` (see `binaryCacheKey`) results are cached per binary.
 */
export function findRetOffsets(elf: ElfFile, fn: ElfFunction, binaryKey?: string): number[] {
  const perBinary = binaryKey !== undefined ? cache.get(binaryKey) : undefined;
  const hit = perBinary?.get(fn.vaddr);
  if (hit) return [...hit];
  const code = elf.readChecked(fn.fileOffset, fn.size, `code of ${fn.name}`);
  const rets = decodeRetOffsets(code, fn.vaddr, fn.fileOffset);
  if (binaryKey !== undefined) {
    let m = perBinary;
    if (!m) {
      if (cache.size >= MAX_CACHED_BINARIES) cache.delete(cache.keys().next().value as string);
      m = new Map();
      cache.set(binaryKey, m);
    }
    m.set(fn.vaddr, rets);
  }
  return [...rets];
}

/** Drops cached RET offsets (tests; or when the agent knows a binary is gone). */
export function clearRetCache(): void {
  cache.clear();
}
