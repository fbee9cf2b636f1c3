/**
 * A BPF_MAP_TYPE_RINGBUF map mapped into this process and read in JavaScript, as libbpf's
 * ringbuf.c (ring_buffer__add, ringbuf_process_ring) does in C, without a C->JS call per record.
 *
 * The kernel's layout (kernel/bpf/ringbuf.c, struct bpf_ringbuf) as seen through two mappings:
 * - the consumer page (file offset 0, one page, read-write): consumer_pos, a u64 at offset 0,
 *   written only by us;
 * - the producer page and the data area (file offset page_size, page_size + 2 * data size,
 *   read-only): producer_pos, a u64 at offset 0, then the data pages, which the kernel maps twice
 *   in a row, so a record that wraps around the end of the data area is contiguous here.
 * Each record: an 8-byte header {u32 len; u32 pg_off} then len bytes, rounded up to 8. The len
 * word carries BPF_RINGBUF_BUSY_BIT while the record is reserved but not yet submitted and
 * BPF_RINGBUF_DISCARD_BIT for a discarded one. Positions are byte counts that only grow (u64);
 * space is handed back to producers only when consumer_pos moves past it.
 *
 * Memory order. The kernel publishes producer_pos (reserve) and then each header (submit: the busy
 * bit cleared with smp_store_release, after the payload is written); it reads consumer_pos with
 * smp_load_acquire before reusing space. Here producer_pos and each header are read with
 * Atomics.load and consumer_pos written with Atomics.store: sequentially consistent, so no payload
 * read is moved before the header read that allowed it and no read of a record is moved after the
 * store that hands its space back. On x86-64 (this agent's platform) plain aligned loads already
 * have acquire order and plain stores release order (TSO); what Atomics adds there is that neither
 * V8's compiler nor the CPU may reorder them, and a full fence after the consumer_pos store, which
 * orders it before the next producer_pos load (the kernel decides whether to wake us from the
 * consumer_pos it sees at submit, so we must not miss a record submitted while we stored).
 *
 * Positions in 32 bits: the reader never holds more than the ring's size (< 2^32) between
 * consumer_pos and producer_pos, so their difference and the offset in the ring follow from the
 * low 32 bits of each (arithmetic mod 2^32) and the hot path needs no BigInt. consumer_pos is
 * stored as its low 32-bit word (the high word is unchanged, and an aligned 32-bit store is seen
 * whole by the kernel's 64-bit load), as one 64-bit store only when the low word wraps (every 4 GiB).
 *
 * Lifetime: the views cover mapped memory; after unmap() any read through them would fault and
 * crash the process, so unmap() drops them first and every reader checks `mapped`.
 *
 * Records are handed to the sink in place (no copy): the Buffer over the producer mapping, the
 * record's offset in it and its length. The data pages are mapped twice in a row, so a record is
 * always contiguous there. Its bytes are valid only during the sink's call: consumer_pos is stored
 * past it soon after (COMMIT_EVERY_RECORDS), and from then on the kernel may write new records
 * over it. See RecordHandler (src/bpf/types.ts) for what handlers must copy.
 */
import koffi from 'koffi';
import { BpfError, SpanbridgeError } from '../../errors';
import { errnoText } from './errors';
import type { Native } from './native';

const PROT_READ = 0x1;
const PROT_WRITE = 0x2;
const MAP_SHARED = 0x01;
const MAP_FAILED = 0xffffffffffffffffn;
const BPF_RINGBUF_BUSY_BIT = 0x80000000;
const BPF_RINGBUF_DISCARD_BIT = 0x40000000;
const BPF_RINGBUF_HDR_SZ = 8;
/** struct bpf_map_info: type, id, key_size, value_size, max_entries (u32 each) come first. */
const MAP_INFO_SIZE = 96;
const MAP_INFO_TYPE = 0;
const MAP_INFO_MAX_ENTRIES = 16;
const BPF_MAP_TYPE_RINGBUF = 27;
/**
 * consumer_pos is stored after at most this many records, or 1/16 of the ring, whichever comes
 * first, and at the end of every read: the store is a fenced write (xchg), so once per record (as
 * libbpf does) costs more than it buys. What producers miss meanwhile is at most 32 records' or
 * 1/16 of the ring's space, for the time 32 handlers take (~0.1 ms): a ring nearly full drops no
 * more than with a store per record, within that margin.
 */
const COMMIT_EVERY_RECORDS = 32;

/**
 * Why a read stopped. 'empty': nothing more to read (the ring is empty, or its next record is
 * still being written, i.e. busy). 'stopped': the sink asked to stop (turn over, delivery
 * stopped); records may remain. 'malformed': a header whose length runs past what the producers
 * published (never from a correct kernel): the read stops there.
 */
export type ReadEnd = 'empty' | 'stopped' | 'malformed';

/**
 * Called once per submitted record, in place: its bytes are `bytes[offset, offset + length)` of
 * the ring's mapping, valid ONLY during the call (the kernel may overwrite them once it returns:
 * the handler copies what it keeps; RecordHandler, src/bpf/types.ts). Returns false to stop
 * reading after this record (it counts as consumed).
 */
export type MappedRecordSink = (bytes: Buffer, offset: number, length: number) => boolean;

export class RingMapping {
  /** Size of the data area in bytes (the map's max_entries, a power of 2 multiple of the page size). */
  readonly dataSize: number;
  private readonly pageSize: number;
  private readonly mask: number;
  private consumerPtr: bigint;
  private producerPtr: bigint;
  private readonly producerLen: number;
  /** The consumer page: consumer_pos as a u64 (index 0) and as u32 words (low word at index 0). */
  private cons64: BigUint64Array | undefined;
  private cons32: Uint32Array | undefined;
  /** The producer mapping as u32 words (producer_pos's low word at 0, record headers) and bytes. */
  private words: Uint32Array | undefined;
  private bytes: Buffer | undefined;
  /** consumer_pos, of which we are the only writer: its low and high 32-bit words. */
  private consLo: number;
  private consHi: number;
  /** Store consumer_pos once this many bytes were read since the last store (1/16 of the ring). */
  private readonly commitBytes: number;

  private constructor(n: Native, name: string, fd: number) {
    const info = Buffer.alloc(MAP_INFO_SIZE);
    const infoLen = [MAP_INFO_SIZE];
    const r = n.objGetInfoByFd(fd, info, infoLen) as number;
    if (r < 0) throw ringError(n, name, 'map info', -r);
    if (info.readUInt32LE(MAP_INFO_TYPE) !== BPF_MAP_TYPE_RINGBUF) {
      throw new SpanbridgeError('ERR_BPF_MAP', `ring buffer ${name}: map type ${info.readUInt32LE(MAP_INFO_TYPE)} is not a ring buffer`);
    }
    this.dataSize = info.readUInt32LE(MAP_INFO_MAX_ENTRIES);
    this.pageSize = n.pageSize;
    this.mask = this.dataSize - 1;
    this.commitBytes = this.dataSize >>> 4;
    this.producerLen = this.pageSize + 2 * this.dataSize;
    const consumer = n.mmap(null, this.pageSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) as bigint;
    if (consumer === MAP_FAILED) throw ringError(n, name, 'mmap of the consumer page', koffi.errno());
    const producer = n.mmap(null, this.producerLen, PROT_READ, MAP_SHARED, fd, this.pageSize) as bigint;
    if (producer === MAP_FAILED) {
      const errno = koffi.errno();
      n.munmap(consumer, this.pageSize);
      throw ringError(n, name, 'mmap of the producer page and data', errno);
    }
    this.consumerPtr = consumer;
    this.producerPtr = producer;
    const consumerPage = koffi.view(consumer, this.pageSize);
    this.cons64 = new BigUint64Array(consumerPage, 0, 1);
    this.cons32 = new Uint32Array(consumerPage, 0, 2);
    const data = koffi.view(producer, this.producerLen);
    this.words = new Uint32Array(data);
    this.bytes = Buffer.from(data);
    const cons = Atomics.load(this.cons64, 0); // a map reused from a pin may have been read before
    this.consLo = Number(cons & 0xffffffffn);
    this.consHi = Number(cons >> 32n);
  }

  /** Maps the ring of map `fd` (which stays owned by the caller). Throws ERR_BPF_MAP with errno. */
  static map(n: Native, name: string, fd: number): RingMapping {
    return new RingMapping(n, name, fd);
  }

  get mapped(): boolean {
    return this.bytes !== undefined;
  }

  /** Bytes the producers have reserved that we have not consumed (0 once unmapped). */
  pendingBytes(): number {
    if (!this.words) return 0;
    return (Atomics.load(this.words, 0) - this.consLo) >>> 0;
  }

  /**
   * Reads records in order from consumer_pos: skips discarded ones, hands each submitted one to
   * `sink` (in place, valid during the call), stops at a record still being written, and keeps reading what producers add
   * meanwhile until the ring is empty or `sink` returns false. consumer_pos is stored after the
   * handlers of the records it covers ran, every COMMIT_EVERY_RECORDS records or commitBytes, and
   * before returning.
   */
  read(sink: MappedRecordSink): ReadEnd {
    const words = this.words;
    const bytes = this.bytes;
    if (!words || !bytes) return 'empty';
    const base = this.pageSize;
    const mask = this.mask;
    for (;;) {
      // producer_pos's low word (index 0 of the producer page): see "Positions in 32 bits".
      const avail = (Atomics.load(words, 0) - this.consLo) >>> 0;
      if (avail === 0) return 'empty';
      let off = this.consLo & mask;
      let walked = 0;
      let committed = 0;
      let sinceCommit = 0;
      while (walked < avail) {
        const hdr = Atomics.load(words, (base + off) >>> 2);
        if ((hdr & BPF_RINGBUF_BUSY_BIT) !== 0) {
          // Reserved, not yet submitted: records behind it wait too (the kernel wakes us when it
          // is submitted, since consumer_pos will then be its position).
          this.commit(walked - committed);
          return 'empty';
        }
        const len = hdr & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
        const size = (len + BPF_RINGBUF_HDR_SZ + 7) & ~7;
        if (size > avail - walked) {
          this.commit(walked - committed);
          return 'malformed';
        }
        walked += size;
        const start = base + off + BPF_RINGBUF_HDR_SZ;
        off = (off + size) & mask;
        if ((hdr & BPF_RINGBUF_DISCARD_BIT) !== 0) continue;
        // In place: no copy (a record never wraps, the data pages being mapped twice). Its space is
        // handed back only after the sink returned (the commits below and at the end).
        if (!sink(bytes, start, len)) {
          // The sink may have closed us (a handler closing its object): commit() checks.
          this.commit(walked - committed);
          return 'stopped';
        }
        if (++sinceCommit === COMMIT_EVERY_RECORDS || walked - committed >= this.commitBytes) {
          this.commit(walked - committed);
          committed = walked;
          sinceCommit = 0;
        }
      }
      this.commit(walked - committed);
      // Like libbpf: look again for records submitted while we read (no wakeup came for those:
      // the kernel wakes us only when a record is submitted at consumer_pos).
    }
  }

  /** Unmaps both areas, once. Callers guarantee no read() is running. */
  unmap(n: Native): void {
    if (!this.bytes) return;
    this.cons64 = undefined;
    this.cons32 = undefined;
    this.words = undefined;
    this.bytes = undefined;
    n.munmap(this.producerPtr, this.producerLen);
    n.munmap(this.consumerPtr, this.pageSize);
    this.producerPtr = 0n;
    this.consumerPtr = 0n;
  }

  /** Hands `bytes` more of the ring back to the producers (consumer_pos += bytes). */
  private commit(bytes: number): void {
    if (bytes === 0 || !this.cons32 || !this.cons64) return;
    const lo = this.consLo + bytes;
    if (lo < 0x100000000) {
      this.consLo = lo;
      Atomics.store(this.cons32, 0, lo);
      return;
    }
    this.consLo = lo - 0x100000000;
    this.consHi++;
    Atomics.store(this.cons64, 0, (BigInt(this.consHi) << 32n) | BigInt(this.consLo));
  }
}

function ringError(n: Native, name: string, what: string, errno: number): BpfError {
  return new BpfError('ERR_BPF_MAP', `ring buffer ${name}: ${what}: ${errnoText(n, errno)}`, { errno });
}
