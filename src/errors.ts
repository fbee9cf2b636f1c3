/**
 * One base error class with stable codes. Callers switch on `code`, never on message text.
 * Causes are chained with the standard `cause` option.
 */
export type ErrorCode =
  | 'ERR_CONFIG' // bad configuration or command-line input
  | 'ERR_PRIVILEGE' // missing privileges or kernel features the agent cannot do without
  | 'ERR_NOT_SUPPORTED' // a feature this kernel, binary or Go version does not support
  | 'ERR_BPF_OPEN' // opening a BPF object file failed
  | 'ERR_BPF_LOAD' // the kernel refused to load a BPF object (verifier log attached)
  | 'ERR_BPF_ATTACH' // attaching a program (uprobe, tracepoint, ...) failed
  | 'ERR_BPF_MAP' // a map operation failed
  | 'ERR_INSPECT' // a target binary could not be inspected (ELF, DWARF, build info)
  | 'ERR_EXPORT'; // delivering telemetry to the Collector failed

export class SpanbridgeError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SpanbridgeError';
    this.code = code;
  }
}

/** A feature is not available here; `feature` names it, `requirement` says what would provide it. */
export class NotSupportedError extends SpanbridgeError {
  readonly feature: string;
  readonly requirement: string;

  constructor(feature: string, requirement: string, options?: { cause?: unknown }) {
    super('ERR_NOT_SUPPORTED', `${feature} not supported (requires ${requirement})`, options);
    this.name = 'NotSupportedError';
    this.feature = feature;
    this.requirement = requirement;
  }
}

/**
 * A libbpf call failed (open, attach, map, ring buffer). `errno` is the error number libbpf or
 * the kernel gave, when there was one.
 */
export class BpfError extends SpanbridgeError {
  declare readonly errno?: number;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; errno?: number }) {
    super(code, message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    if (options?.errno !== undefined) Object.defineProperty(this, 'errno', { value: options.errno, enumerable: true });
  }
}

/**
 * The kernel refused to load a BPF object (ERR_BPF_LOAD). `program` is the program the verifier
 * rejected when libbpf named it; `verifierLog` is that program's whole log (the message keeps
 * only its tail). Callers choose fallbacks from these fields, never from the message.
 */
export class BpfLoadError extends BpfError {
  declare readonly errno: number;
  declare readonly program?: string;
  declare readonly verifierLog: string;

  constructor(message: string, fields: { errno: number; program?: string; verifierLog: string; cause?: unknown }) {
    super('ERR_BPF_LOAD', message, { cause: fields.cause, errno: fields.errno });
    if (fields.program !== undefined) Object.defineProperty(this, 'program', { value: fields.program, enumerable: true });
    // Not enumerable: a verifier log can be megabytes, and inspecting the error should not print it.
    Object.defineProperty(this, 'verifierLog', { value: fields.verifierLog, enumerable: false });
  }
}

/**
 * The stable code of an error from the agent (SpanbridgeError) or from receiver/ (whose errors
 * carry the same codes without sharing the class); `undefined` for anything else.
 */
export function errorCode(err: unknown): string | undefined {
  if (err instanceof SpanbridgeError) return err.code;
  const code = err instanceof Error ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^ERR_[A-Z_]+$/.test(code) ? code : undefined;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
