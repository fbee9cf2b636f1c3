/**
 * In-memory fake of the typed BPF API (src/bpf/types.ts) for unit tests of everything above the
 * libbpf binding: no kernel, no root, no koffi.
 *
 * What it mirrors from the real binding (so tests written against it stay true):
 * - error codes and message shapes (ERR_BPF_OPEN/LOAD/ATTACH/MAP, "attach uprobe p+0x10 pid 7:
 *   <reason> (errno N)"), attach only after load, disabled programs cannot attach;
 * - records are handed over in place, valid during the handler's call only (below); handler
 *   exceptions are counted, not thrown;
 * - close() destroys links in reverse creation order, closes ring buffers, is idempotent.
 * What it adds for tests: `emit()` to push records, a log of every link (and whether it was
 * destroyed), the rodata each object was opened with, and switches to make open/load/attach fail.
 *
 * Delivery is synchronous: `emit()` calls the handler of every started ring buffer of that map
 * before returning; records emitted before start() wait in a queue, like in a real ring. Records
 * reach handlers in place, as from the agent's real reader (RecordHandler): at a moving offset of
 * the fake ring's memory, overwritten (0xee) as soon as the handler returns, so a handler (decoder,
 * assembler) that keeps a view of a record past its call reads garbage in every test that uses
 * this fake.
 * An object whose file is one of the agent's (go_http.bpf.o, sys_http.bpf.o, ...) knows the
 * programs, maps and rodata globals its BTF names (BPF_OBJECTS, generated from the built objects),
 * so a renamed program or map fails the unit tests as it would fail the real load. Other objects
 * accept any name unless given a spec (constructor or `define()`).
 */
import { getSystemErrorMap } from 'node:util';
import { basename } from 'node:path';
import { BpfLoadError, SpanbridgeError } from '../../src/errors';
import { BPF_OBJECTS } from '../../src/events/structs.generated';
import type {
  BpfBackend,
  BpfLink,
  BpfMap,
  BpfObject,
  BpfProgram,
  CloseOptions,
  OpenOptions,
  RecordHandler,
  RingBufferSource,
  UprobeTarget,
} from '../../src/bpf/types';

export interface FakeMapSpec {
  readonly keySize: number;
  readonly valueSize: number;
  readonly kind?: 'hash' | 'per-cpu' | 'ring-buffer' | 'sockhash';
}

export interface FakeObjectSpec {
  readonly programs?: readonly string[];
  readonly maps?: Readonly<Record<string, FakeMapSpec>>;
  /** Map names, when their sizes are not given (`maps` wins). */
  readonly mapNames?: readonly string[];
  /** Names of the object's `const volatile` globals. */
  readonly rodata?: readonly string[];
}

export type FakeAttachTarget =
  | { readonly kind: 'uprobe'; readonly binaryPath: string; readonly offset: number; readonly pid: number; readonly retprobe?: true }
  | { readonly kind: 'tracepoint'; readonly category: string; readonly name: string }
  | { readonly kind: 'cgroup'; readonly cgroupPath: string }
  | { readonly kind: 'raw_tracepoint'; readonly name: string }
  | { readonly kind: 'sk_msg'; readonly mapName: string };

export interface FakeLinkRecord {
  readonly objectPath: string;
  readonly program: string;
  readonly target: FakeAttachTarget;
  readonly description: string;
  destroyed: boolean;
  /** Position in the backend-wide destroy sequence (0-based), once destroyed. */
  destroyOrder?: number;
}

const EACCES = 13;

/** "No such process (errno 3)": libuv's message, capitalised like strerror. */
export function fakeErrnoText(errno: number): string {
  const entry = getSystemErrorMap().get(-Math.abs(errno));
  const text = entry ? entry[1] : 'unknown error';
  return `${text.charAt(0).toUpperCase()}${text.slice(1)} (errno ${Math.abs(errno)})`;
}

export class FakeBpfBackend implements BpfBackend {
  readonly objects: FakeBpfObject[] = [];
  readonly links: FakeLinkRecord[] = [];
  private readonly specs = new Map<string, FakeObjectSpec>();
  private readonly cpus: number;
  private destroyCount = 0;
  private readonly held = new Map<string, Promise<void>>();
  /** Records emitted while no started ring buffer existed for the map, by map name. */
  private readonly pending = new Map<string, Buffer[]>();
  readonly failures = {
    open: new Map<string, string>(),
    load: new Map<string, string>(),
    attach: new Map<string, number>(),
  };

  constructor(options: { possibleCpus?: number; objects?: Readonly<Record<string, FakeObjectSpec>> } = {}) {
    this.cpus = options.possibleCpus ?? 4;
    for (const [path, spec] of Object.entries(options.objects ?? {})) this.specs.set(path, spec);
  }

  possibleCpus(): number {
    return this.cpus;
  }

  /** Declares what the object at `path` contains, making unknown names fail. */
  define(path: string, spec: FakeObjectSpec): this {
    this.specs.set(path, spec);
    return this;
  }

  /** Opening `path` fails with ERR_BPF_OPEN and this reason. */
  failOpen(path: string, reason = 'No such file or directory (errno 2)'): this {
    this.failures.open.set(path, reason);
    return this;
  }

  /** Loading any object with `program` enabled fails with ERR_BPF_LOAD and this verifier log. */
  failLoad(program: string, verifierLog = "R0 invalid mem access 'map_value_or_null'"): this {
    this.failures.load.set(program, verifierLog);
    return this;
  }

  /** Asynchronous loads of objects named `file` (e.g. 'sk_inject.bpf.o') wait until the returned function is called. */
  holdLoad(file: string): () => void {
    let release!: () => void;
    this.held.set(file, new Promise<void>((r) => (release = r)));
    return () => {
      this.held.delete(file);
      release();
    };
  }

  /** @internal */
  loadGate(path: string): Promise<void> | undefined {
    return this.held.get(basename(path));
  }

  /** Attaching `program` fails with ERR_BPF_ATTACH and this errno (default ENOENT). */
  failAttach(program: string, errno = 2): this {
    this.failures.attach.set(program, errno);
    return this;
  }

  open(path: string, options: OpenOptions = {}): BpfObject {
    const reason = this.failures.open.get(path);
    if (reason !== undefined) throw new SpanbridgeError('ERR_BPF_OPEN', `open ${path}: ${reason}`);
    const obj = new FakeBpfObject(this, path, this.specs.get(path) ?? agentObjectSpec(path), options);
    this.objects.push(obj);
    return obj;
  }

  /**
   * Pushes one record into every started ring buffer on `mapName` (of open objects); returns how
   * many handlers received it. With none started, the record waits for the next start().
   */
  emit(mapName: string, record: Buffer): number {
    const sources = this.objects.filter((o) => !o.closed).flatMap((o) => o.startedRings(mapName));
    if (sources.length === 0) {
      const queue = this.pending.get(mapName) ?? [];
      queue.push(Buffer.from(record));
      this.pending.set(mapName, queue);
      return 0;
    }
    for (const s of sources) s.deliver(record);
    return sources.length;
  }

  /** Links attached and not destroyed yet. */
  activeLinks(): FakeLinkRecord[] {
    return this.links.filter((l) => !l.destroyed);
  }

  /** Objects opened and not closed yet. */
  openObjects(): FakeBpfObject[] {
    return this.objects.filter((o) => !o.closed);
  }

  /** The rodata the most recent object opened from `path` got. */
  rodataOf(path: string): OpenOptions['rodata'] {
    return [...this.objects].reverse().find((o) => o.path === path)?.options.rodata;
  }

  /** The options the most recent object opened from `path` was closed with (undefined: not closed). */
  closeOptionsOf(path: string): CloseOptions | undefined {
    return [...this.objects].reverse().find((o) => o.path === path)?.closeOptions;
  }

  /** @internal */
  takePending(mapName: string): Buffer[] {
    const q = this.pending.get(mapName) ?? [];
    this.pending.delete(mapName);
    return q;
  }

  /** @internal */
  nextDestroyOrder(): number {
    return this.destroyCount++;
  }
}

/** The names one of the agent's own objects has (by file name), from its generated BTF view. */
function agentObjectSpec(path: string): FakeObjectSpec | undefined {
  const o = BPF_OBJECTS.find((x) => x.file === basename(path));
  if (!o) return undefined;
  return { programs: Object.keys(o.programs), mapNames: Object.keys(o.maps), rodata: Object.keys(o.rodata) };
}

export class FakeBpfObject implements BpfObject {
  loaded = false;
  closed = false;
  /** What the first close() asked for ({} when called without options). Delivery here is
   * synchronous, so a draining close has nothing left to read out. */
  closeOptions: CloseOptions | undefined;
  readonly disabled: ReadonlySet<string>;
  private readonly links: FakeLink[] = [];
  private readonly rings: FakeRingBuffer[] = [];
  private readonly maps = new Map<string, FakeMap>();

  constructor(
    readonly backend: FakeBpfBackend,
    readonly path: string,
    readonly spec: FakeObjectSpec | undefined,
    readonly options: OpenOptions,
  ) {
    for (const name of Object.keys(options.rodata ?? {})) {
      if (spec?.rodata && !spec.rodata.includes(name)) {
        throw new SpanbridgeError('ERR_BPF_OPEN', `set rodata ${name} in ${path}: no such variable (known: ${spec.rodata.join(', ')})`);
      }
    }
    for (const name of options.disablePrograms ?? []) {
      if (spec?.programs && !spec.programs.includes(name)) {
        throw new SpanbridgeError('ERR_BPF_OPEN', `disable program ${name}: not in ${path}`);
      }
    }
    this.disabled = new Set(options.disablePrograms ?? []);
  }

  private live(code: 'ERR_BPF_LOAD' | 'ERR_BPF_OPEN' | 'ERR_BPF_ATTACH' | 'ERR_BPF_MAP', what: string): void {
    if (this.closed) throw new SpanbridgeError(code, `${what}: object ${this.path} is closed`);
  }

  /** load() after a turn of the event loop, as a load on a worker thread returns. */
  async loadAsync(): Promise<void> {
    await Promise.resolve();
    await this.backend.loadGate(this.path);
    this.load();
  }

  load(): void {
    this.live('ERR_BPF_LOAD', `load ${this.path}`);
    if (this.loaded) return;
    const programs = this.spec?.programs ?? [...this.backend.failures.load.keys()];
    for (const p of programs) {
      const log = this.backend.failures.load.get(p);
      if (log !== undefined && !this.disabled.has(p)) {
        throw new BpfLoadError(`load ${this.path}: program ${p}: ${fakeErrnoText(EACCES)}\nverifier log:\n${log}`, {
          errno: EACCES,
          program: p,
          verifierLog: log,
        });
      }
    }
    this.loaded = true;
  }

  program(name: string): BpfProgram {
    this.live('ERR_BPF_OPEN', `program ${name}`);
    if (this.spec?.programs && !this.spec.programs.includes(name)) {
      throw new SpanbridgeError('ERR_BPF_OPEN', `program ${name}: not in ${this.path}`);
    }
    return new FakeProgram(this, name);
  }

  map(name: string): BpfMap {
    this.live('ERR_BPF_MAP', `map ${name}`);
    let m = this.maps.get(name);
    if (!m) {
      const spec = this.spec?.maps?.[name];
      const known = this.spec?.maps ? spec !== undefined : (this.spec?.mapNames?.includes(name) ?? true);
      if (!known) throw new SpanbridgeError('ERR_BPF_MAP', `map ${name}: not in ${this.path}`);
      m = new FakeMap(this, name, spec ?? { keySize: 0, valueSize: 0 });
      this.maps.set(name, m);
    }
    return m;
  }

  ringBuffer(mapName: string, onRecord: RecordHandler): RingBufferSource {
    const spec = this.spec?.maps?.[mapName];
    if (spec && spec.kind !== 'ring-buffer') {
      throw new SpanbridgeError('ERR_BPF_MAP', `ring buffer ${mapName}: map is not a ring buffer`);
    }
    this.map(mapName);
    if (!this.loaded) throw new SpanbridgeError('ERR_BPF_MAP', `ring buffer ${mapName}: object ${this.path} is not loaded`);
    const rb = new FakeRingBuffer(this, mapName, onRecord);
    this.rings.push(rb);
    return rb;
  }

  /** @internal */
  attach(program: string, target: FakeAttachTarget, what: string, description: string): BpfLink {
    this.live('ERR_BPF_ATTACH', what);
    if (!this.loaded) throw new SpanbridgeError('ERR_BPF_ATTACH', `${what}: object ${this.path} is not loaded`);
    if (this.disabled.has(program)) {
      throw new SpanbridgeError('ERR_BPF_ATTACH', `${what}: program ${program} is disabled (not loaded)`);
    }
    const errno = this.backend.failures.attach.get(program);
    if (errno !== undefined) {
      const err = new SpanbridgeError('ERR_BPF_ATTACH', `${what}: ${fakeErrnoText(errno)}`);
      Object.defineProperty(err, 'errno', { value: errno, enumerable: true });
      throw err;
    }
    const record: FakeLinkRecord = { objectPath: this.path, program, target, description, destroyed: false };
    this.backend.links.push(record);
    const link = new FakeLink(this.backend, record);
    this.links.push(link);
    return link;
  }

  /** @internal */
  startedRings(mapName: string): FakeRingBuffer[] {
    return this.rings.filter((r) => r.mapName === mapName && r.running);
  }

  async close(options: CloseOptions = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closeOptions = options;
    for (const l of [...this.links].reverse()) l.destroy();
    await Promise.all(this.rings.map((r) => r.close()));
  }
}

class FakeProgram implements BpfProgram {
  constructor(
    private readonly obj: FakeBpfObject,
    readonly name: string,
  ) {}

  attachUprobe(target: UprobeTarget): BpfLink {
    const pid = target.pid ?? -1;
    const hex = `0x${target.offset.toString(16)}`;
    return this.obj.attach(
      this.name,
      { kind: 'uprobe', binaryPath: target.binaryPath, offset: target.offset, pid, ...(target.retprobe ? { retprobe: true as const } : {}) },
      `attach uprobe ${target.binaryPath}+${hex}${pid >= 0 ? ` pid ${pid}` : ''}`,
      `uprobe:${target.binaryPath}+${hex}${pid >= 0 ? ` pid=${pid}` : ''}`,
    );
  }

  attachTracepoint(category: string, name: string): BpfLink {
    return this.obj.attach(
      this.name,
      { kind: 'tracepoint', category, name },
      `attach tracepoint ${category}/${name}`,
      `tracepoint:${category}/${name}`,
    );
  }

  attachRawTracepoint(name: string): BpfLink {
    return this.obj.attach(this.name, { kind: 'raw_tracepoint', name }, `attach raw tracepoint ${name}`, `raw_tracepoint:${name}`);
  }

  attachCgroup(cgroupPath: string): BpfLink {
    return this.obj.attach(
      this.name,
      { kind: 'cgroup', cgroupPath },
      `attach ${this.name} to cgroup ${cgroupPath}`,
      `cgroup:${cgroupPath} ${this.name}`,
    );
  }

  attachSkMsg(mapName: string): BpfLink {
    this.obj.map(mapName); // unknown maps fail like libbpf's lookup
    const spec = this.obj.spec?.maps?.[mapName];
    if (spec && spec.kind !== 'sockhash') {
      throw new SpanbridgeError('ERR_BPF_ATTACH', `attach ${this.name} to sockmap ${mapName}: map is not a SOCKMAP or SOCKHASH`);
    }
    return this.obj.attach(this.name, { kind: 'sk_msg', mapName }, `attach ${this.name} to sockmap ${mapName}`, `sk_msg:${mapName} ${this.name}`);
  }
}

class FakeLink implements BpfLink {
  constructor(
    private readonly backend: FakeBpfBackend,
    readonly record: FakeLinkRecord,
  ) {}

  get description(): string {
    return this.record.description;
  }

  destroy(): void {
    if (this.record.destroyed) return;
    this.record.destroyed = true;
    this.record.destroyOrder = this.backend.nextDestroyOrder();
  }
}

/** Keys are stored by hex; per-CPU maps keep one Buffer per CPU. */
class FakeMap implements BpfMap {
  readonly entries = new Map<string, Buffer | Buffer[]>();

  constructor(
    private readonly obj: FakeBpfObject,
    readonly name: string,
    private readonly spec: FakeMapSpec,
  ) {}

  get keySize(): number {
    return this.spec.keySize;
  }

  get valueSize(): number {
    return this.spec.valueSize;
  }

  private check(op: string, key: Buffer): string {
    const what = `${op} map ${this.name}`;
    if (this.obj.closed) throw new SpanbridgeError('ERR_BPF_MAP', `${what}: object ${this.obj.path} is closed`);
    if (this.spec.keySize > 0 && key.length !== this.spec.keySize) {
      throw new SpanbridgeError('ERR_BPF_MAP', `${what}: key is ${key.length} bytes, map wants ${this.spec.keySize}`);
    }
    return what;
  }

  update(key: Buffer, value: Buffer): void {
    const what = this.check('update', key);
    if (this.spec.valueSize > 0 && this.spec.kind !== 'per-cpu' && value.length !== this.spec.valueSize) {
      throw new SpanbridgeError('ERR_BPF_MAP', `${what}: value is ${value.length} bytes, map wants ${this.spec.valueSize}`);
    }
    if (this.spec.kind === 'per-cpu') {
      const cpus = this.obj.backend.possibleCpus();
      this.entries.set(key.toString('hex'), Array.from({ length: cpus }, () => Buffer.from(value)));
    } else {
      this.entries.set(key.toString('hex'), Buffer.from(value));
    }
  }

  lookup(key: Buffer): Buffer | null {
    const what = this.check('lookup', key);
    if (this.spec.kind === 'per-cpu') throw new SpanbridgeError('ERR_BPF_MAP', `${what}: per-CPU map, use lookupPerCpu`);
    const v = this.entries.get(key.toString('hex'));
    return v === undefined ? null : Buffer.from(v as Buffer);
  }

  delete(key: Buffer): boolean {
    this.check('delete', key);
    return this.entries.delete(key.toString('hex'));
  }

  lookupPerCpu(key: Buffer): Buffer[] | null {
    const what = this.check('lookup', key);
    if (this.spec.kind !== 'per-cpu') throw new SpanbridgeError('ERR_BPF_MAP', `${what}: not a per-CPU map`);
    const v = this.entries.get(key.toString('hex'));
    return v === undefined ? null : (v as Buffer[]).map((b) => Buffer.from(b));
  }

  /** Sockets inserted with insertSocketOf, in order. */
  readonly sockets: { pid: number; fd: number; cookie: bigint; tcpNoDelay: boolean }[] = [];

  /** SOCKHASH maps: records the (pid, fd); fd < 0 fails like a closed fd (EBADF). */
  insertSocketOf(pid: number, fd: number, options: { readonly tcpNoDelay?: boolean } = {}): bigint {
    const what = `insert socket ${pid}/${fd} into map ${this.name}`;
    if (this.obj.closed) throw new SpanbridgeError('ERR_BPF_MAP', `${what}: object ${this.obj.path} is closed`);
    if (this.spec.kind !== undefined && this.spec.kind !== 'sockhash') throw new SpanbridgeError('ERR_BPF_MAP', `${what}: not a SOCKMAP or SOCKHASH`);
    if (fd < 0) throw new SpanbridgeError('ERR_BPF_MAP', `${what}: pidfd_getfd: ${fakeErrnoText(9)}`);
    const cookie = BigInt(1000 + this.sockets.length);
    this.sockets.push({ pid, fd, cookie, tcpNoDelay: options.tcpNoDelay ?? false });
    return cookie;
  }

  /** Test helper: sets a per-CPU value with a different value on each CPU. */
  setPerCpu(key: Buffer, values: readonly Buffer[]): void {
    this.entries.set(key.toString('hex'), values.map((b) => Buffer.from(b)));
  }
}

/** A real ring's record header (u32 len, u32 pg_off): records start 8 bytes into their slot. */
const RING_HDR = 8;

class FakeRingBuffer implements RingBufferSource {
  delivered = 0;
  handlerErrors = 0;
  lastHandlerError: unknown = undefined;
  running = false;
  private closed = false;

  constructor(
    private readonly obj: FakeBpfObject,
    readonly mapName: string,
    private readonly onRecord: RecordHandler,
  ) {}

  start(): void {
    if (this.running || this.closed) return;
    this.running = true;
    for (const rec of this.obj.backend.takePending(this.mapName)) this.deliver(rec);
  }

  /** The fake ring's memory and where the next record goes (records never wrap, as in a real ring's double mapping). */
  private memory = Buffer.alloc(1 << 16, 0xee);
  private pos = 0;

  /** @internal */
  deliver(record: Buffer): void {
    if (!this.running) return;
    this.delivered++;
    const len = record.length;
    const size = (len + RING_HDR + 7) & ~7;
    if (this.memory.length < size) this.memory = Buffer.alloc(size * 2, 0xee);
    if (this.pos + size > this.memory.length) this.pos = 0;
    const at = this.pos + RING_HDR;
    this.pos += size;
    record.copy(this.memory, at);
    const memory = this.memory;
    try {
      this.onRecord(memory, at, len);
    } catch (err) {
      this.handlerErrors++;
      this.lastHandlerError = err;
    } finally {
      // The space is the kernel's again: what a handler kept a view of is overwritten.
      memory.fill(0xee, at, at + len);
    }
  }

  async close(): Promise<void> {
    this.running = false;
    this.closed = true;
  }
}
