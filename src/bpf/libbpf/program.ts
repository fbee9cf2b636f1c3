/**
 * A program of a loaded object and the ways to attach it: uprobe, tracepoint, cgroup (sock_ops)
 * and sk_msg on a SOCKHASH/SOCKMAP. Every link it makes belongs to the object.
 */
import koffi from 'koffi';
import { SpanbridgeError } from '../../errors';
import type { BpfLink, BpfProgram, UprobeTarget } from '../types';
import { bpfError, errnoText, pointerErrno } from './errors';
import { LibbpfLink } from './link';
import type { LibbpfMap } from './map';
import type { Native, Ptr } from './native';
import type { LibbpfObject } from './object';

const BPF_MAP_TYPE_SOCKMAP = 15;
const BPF_MAP_TYPE_SOCKHASH = 18;
/** enum bpf_attach_type */
const BPF_SK_MSG_VERDICT = 7;
const O_RDONLY = 0;
const O_DIRECTORY = 0o200000;

export class LibbpfProgram implements BpfProgram {
  constructor(
    private readonly n: Native,
    private readonly obj: LibbpfObject,
    readonly name: string,
    private readonly ptr: bigint,
  ) {}

  attachUprobe(target: UprobeTarget): BpfLink {
    const pid = target.pid ?? -1;
    const where = `${target.binaryPath}+0x${target.offset.toString(16)}${pid >= 0 ? ` pid ${pid}` : ''}`;
    const what = `attach uprobe ${where}`;
    if (!Number.isSafeInteger(target.offset) || target.offset < 0) {
      throw new SpanbridgeError('ERR_BPF_ATTACH', `${what}: offset must be a non-negative integer`);
    }
    if (!Number.isInteger(pid) || pid === 0 || pid < -1) {
      throw new SpanbridgeError('ERR_BPF_ATTACH', `${what}: pid must be a positive process id or -1 (any process)`);
    }
    this.checkAttachable(what);
    this.n.log.begin();
    // Uretprobes only when asked for (C functions: they corrupt Go stacks).
    const ret = target.retprobe === true;
    const link = this.n.attachUprobe(this.ptr, ret, pid, target.binaryPath, target.offset) as Ptr;
    return this.adopt(link, koffi.errno(), what, `${ret ? 'uretprobe' : 'uprobe'}:${target.binaryPath}+0x${target.offset.toString(16)}${pid >= 0 ? ` pid=${pid}` : ''}`);
  }

  attachTracepoint(category: string, name: string): BpfLink {
    const what = `attach tracepoint ${category}/${name}`;
    this.checkAttachable(what);
    this.n.log.begin();
    const link = this.n.attachTracepoint(this.ptr, category, name) as Ptr;
    return this.adopt(link, koffi.errno(), what, `tracepoint:${category}/${name}`);
  }

  /** A raw tracepoint (BPF_PROG_TYPE_RAW_TRACEPOINT): its arguments are the kernel's own, e.g. tasks. */
  attachRawTracepoint(name: string): BpfLink {
    const what = `attach raw tracepoint ${name}`;
    this.checkAttachable(what);
    this.n.log.begin();
    const link = this.n.attachRawTracepoint(this.ptr, name) as Ptr;
    return this.adopt(link, koffi.errno(), what, `raw_tracepoint:${name}`);
  }

  /** sock_ops (and other cgroup programs) on a cgroup v2 directory, as a BPF link. */
  attachCgroup(cgroupPath: string): BpfLink {
    const what = `attach ${this.name} to cgroup ${cgroupPath}`;
    this.checkAttachable(what);
    const fd = this.n.open(cgroupPath, O_RDONLY | O_DIRECTORY) as number;
    if (fd < 0) {
      const errno = koffi.errno();
      throw bpfError(this.n, 'ERR_BPF_ATTACH', `${what}: open: ${errnoText(this.n, errno)}`, { errno });
    }
    try {
      this.n.log.begin();
      const link = this.n.attachCgroup(this.ptr, fd) as Ptr;
      return this.adopt(link, koffi.errno(), what, `cgroup:${cgroupPath} ${this.name}`);
    } finally {
      this.n.close(fd); // the link holds its own reference to the cgroup
    }
  }

  /** An sk_msg program on a SOCKHASH/SOCKMAP of the same object (BPF_SK_MSG_VERDICT). */
  attachSkMsg(mapName: string): BpfLink {
    const what = `attach ${this.name} to sockmap ${mapName}`;
    this.checkAttachable(what);
    const map = this.obj.map(mapName) as LibbpfMap;
    if (map.type !== BPF_MAP_TYPE_SOCKMAP && map.type !== BPF_MAP_TYPE_SOCKHASH) {
      throw new SpanbridgeError('ERR_BPF_ATTACH', `${what}: map type ${map.type} is not a SOCKMAP or SOCKHASH`);
    }
    const progFd = this.n.programFd(this.ptr) as number;
    const mapFd = this.n.mapFd(map.ptr) as number;
    if (progFd < 0 || mapFd < 0) throw new SpanbridgeError('ERR_BPF_ATTACH', `${what}: no file descriptor (not loaded?)`);
    const r = this.n.progAttach(progFd, mapFd, BPF_SK_MSG_VERDICT, 0) as number;
    if (r < 0) throw bpfError(this.n, 'ERR_BPF_ATTACH', `${what}: ${errnoText(this.n, r)}`, { errno: Math.abs(r) });
    const n = this.n;
    let attached = true;
    const l: BpfLink = {
      description: `sk_msg:${mapName} ${this.name}`,
      destroy(): void {
        if (!attached) return;
        attached = false;
        n.progDetach2(progFd, mapFd, BPF_SK_MSG_VERDICT);
      },
    };
    this.obj.adoptLink(l);
    return l;
  }

  private checkAttachable(what: string): void {
    this.obj.handle('ERR_BPF_ATTACH', what);
    if (!this.obj.isLoaded()) throw new SpanbridgeError('ERR_BPF_ATTACH', `${what}: object ${this.obj.path} is not loaded`);
    if (!(this.n.programAutoload(this.ptr) as boolean)) {
      throw new SpanbridgeError('ERR_BPF_ATTACH', `${what}: program ${this.name} is disabled (not loaded)`);
    }
  }

  private adopt(link: Ptr, errnoAfter: number, what: string, description: string): BpfLink {
    if (link === null) {
      const errno = pointerErrno(this.n, errnoAfter);
      throw bpfError(this.n, 'ERR_BPF_ATTACH', `${what}: ${errnoText(this.n, errno)}`, { errno });
    }
    this.n.log.take();
    const l = new LibbpfLink(this.n, this.obj, description, link);
    this.obj.adoptLink(l);
    return l;
  }
}
