/**
 * A map of a loaded object: update, lookup and delete by key (per-CPU values spread over every
 * possible CPU), and inserting another process's socket into a SOCKHASH/SOCKMAP.
 */
import koffi from 'koffi';
import { SpanbridgeError } from '../../errors';
import type { BpfMap } from '../types';
import { errnoText } from './errors';
import type { Native } from './native';
import type { LibbpfObject } from './object';

const BPF_MAP_TYPE_SOCKMAP = 15;
const BPF_MAP_TYPE_SOCKHASH = 18;
/** BPF_MAP_TYPE_PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH, PERCPU_CGROUP_STORAGE. */
const PER_CPU_MAP_TYPES = new Set([5, 6, 10, 21]);
const SYS_PIDFD_OPEN = 434;
const SYS_PIDFD_GETFD = 438;
const SOL_SOCKET = 1;
const SO_COOKIE = 57;
const IPPROTO_TCP = 6;
const TCP_NODELAY = 1;

export class LibbpfMap implements BpfMap {
  readonly keySize: number;
  readonly valueSize: number;
  readonly type: number;

  constructor(
    private readonly n: Native,
    private readonly obj: LibbpfObject,
    readonly name: string,
    readonly ptr: bigint,
  ) {
    this.keySize = n.mapKeySize(ptr) as number;
    this.valueSize = n.mapValueSize(ptr) as number;
    this.type = n.mapType(ptr) as number;
  }

  private get perCpu(): boolean {
    return PER_CPU_MAP_TYPES.has(this.type);
  }

  /** Kernel layout of a per-CPU value: one 8-byte-aligned slot per possible CPU. */
  private get perCpuStride(): number {
    return Math.ceil(this.valueSize / 8) * 8;
  }

  private check(op: string, key: Buffer): string {
    const what = `${op} map ${this.name}`;
    this.obj.handle('ERR_BPF_MAP', what);
    if (!this.obj.isLoaded()) throw new SpanbridgeError('ERR_BPF_MAP', `${what}: object ${this.obj.path} is not loaded`);
    if (key.length !== this.keySize) {
      throw new SpanbridgeError('ERR_BPF_MAP', `${what}: key is ${key.length} bytes, map wants ${this.keySize}`);
    }
    return what;
  }

  /**
   * Puts the socket that process `pid` has open as `fd` into this SOCKHASH/SOCKMAP (a copy of the
   * fd is taken with pidfd_getfd, Linux 5.6+, and closed again), keyed by its socket cookie.
   * Returns the cookie.
   */
  insertSocketOf(pid: number, fd: number, options: { readonly tcpNoDelay?: boolean } = {}): bigint {
    const what = `insert socket ${pid}/${fd} into map ${this.name}`;
    this.obj.handle('ERR_BPF_MAP', what);
    if (this.type !== BPF_MAP_TYPE_SOCKMAP && this.type !== BPF_MAP_TYPE_SOCKHASH) {
      throw new SpanbridgeError('ERR_BPF_MAP', `${what}: map type ${this.type} is not a SOCKMAP or SOCKHASH`);
    }
    const n = this.n;
    const pidfd = Number(n.syscall(SYS_PIDFD_OPEN, 'int', pid, 'unsigned int', 0));
    if (pidfd < 0) throw new SpanbridgeError('ERR_BPF_MAP', `${what}: pidfd_open: ${errnoText(n, koffi.errno())}`);
    let sfd = -1;
    try {
      sfd = Number(n.syscall(SYS_PIDFD_GETFD, 'int', pidfd, 'int', fd, 'unsigned int', 0));
      if (sfd < 0) throw new SpanbridgeError('ERR_BPF_MAP', `${what}: pidfd_getfd: ${errnoText(n, koffi.errno())}`);
      const cookie = [0n];
      const len = [8];
      if ((n.getsockopt(sfd, SOL_SOCKET, SO_COOKIE, cookie, len) as number) < 0) {
        throw new SpanbridgeError('ERR_BPF_MAP', `${what}: SO_COOKIE: ${errnoText(n, koffi.errno())}`);
      }
      const key = Buffer.alloc(8);
      key.writeBigUInt64LE(BigInt(cookie[0]));
      const value = Buffer.alloc(this.valueSize);
      if (this.valueSize === 8) value.writeBigUInt64LE(BigInt(sfd));
      else value.writeUInt32LE(sfd);
      const r = n.mapUpdate(this.ptr, key, key.length, value, value.length, 0) as number;
      if (r < 0) throw new SpanbridgeError('ERR_BPF_MAP', `${what}: ${errnoText(n, r)}`);
      // The copy is the same socket: the option holds for the process's fd too.
      if (options.tcpNoDelay) n.setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, [1], 4);
      return BigInt(cookie[0]);
    } finally {
      if (sfd >= 0) n.close(sfd);
      n.close(pidfd);
    }
  }

  /**
   * For per-CPU maps `value` is either one value (written to every CPU) or the full kernel
   * layout (possibleCpus() slots of round_up(valueSize, 8) bytes).
   */
  update(key: Buffer, value: Buffer): void {
    const what = this.check('update', key);
    let v = value;
    if (this.perCpu) {
      const cpus = this.obj.possibleCpus();
      const stride = this.perCpuStride;
      if (value.length === this.valueSize) {
        v = Buffer.alloc(cpus * stride);
        for (let c = 0; c < cpus; c++) value.copy(v, c * stride);
      } else if (value.length !== cpus * stride) {
        throw new SpanbridgeError(
          'ERR_BPF_MAP',
          `${what}: per-CPU value is ${value.length} bytes, want ${this.valueSize} or ${cpus}x${stride}`,
        );
      }
    } else if (value.length !== this.valueSize) {
      throw new SpanbridgeError('ERR_BPF_MAP', `${what}: value is ${value.length} bytes, map wants ${this.valueSize}`);
    }
    const r = this.n.mapUpdate(this.ptr, key, key.length, v, v.length, 0) as number;
    if (r < 0) throw new SpanbridgeError('ERR_BPF_MAP', `${what}: ${errnoText(this.n, r)}`);
  }

  lookup(key: Buffer): Buffer | null {
    const what = this.check('lookup', key);
    if (this.perCpu) throw new SpanbridgeError('ERR_BPF_MAP', `${what}: per-CPU map, use lookupPerCpu`);
    const out = Buffer.alloc(this.valueSize);
    const r = this.n.mapLookup(this.ptr, key, key.length, out, out.length, 0) as number;
    if (r === -2) return null; // ENOENT
    if (r < 0) throw new SpanbridgeError('ERR_BPF_MAP', `${what}: ${errnoText(this.n, r)}`);
    return out;
  }

  delete(key: Buffer): boolean {
    const what = this.check('delete', key);
    const r = this.n.mapDelete(this.ptr, key, key.length, 0) as number;
    if (r === -2) return false;
    if (r < 0) throw new SpanbridgeError('ERR_BPF_MAP', `${what}: ${errnoText(this.n, r)}`);
    return true;
  }

  lookupPerCpu(key: Buffer): Buffer[] | null {
    const what = this.check('lookup', key);
    if (!this.perCpu) throw new SpanbridgeError('ERR_BPF_MAP', `${what}: not a per-CPU map (type ${this.type})`);
    const cpus = this.obj.possibleCpus();
    const stride = this.perCpuStride;
    const out = Buffer.alloc(cpus * stride);
    const r = this.n.mapLookup(this.ptr, key, key.length, out, out.length, 0) as number;
    if (r === -2) return null;
    if (r < 0) throw new SpanbridgeError('ERR_BPF_MAP', `${what}: ${errnoText(this.n, r)}`);
    const values: Buffer[] = [];
    for (let c = 0; c < cpus; c++) values.push(out.subarray(c * stride, c * stride + this.valueSize));
    return values;
  }
}
