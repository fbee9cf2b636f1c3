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

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
