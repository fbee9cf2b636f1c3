/**
 * receiver/'s errors: a stable `code` from the agent's error codes that concern delivery, so the
 * agent's command line reports them (and chooses its exit status) like its own errors, by code.
 */
export type ReceiverErrorCode = 'ERR_CONFIG' | 'ERR_EXPORT';

export class ReceiverError extends Error {
  readonly code: ReceiverErrorCode;

  constructor(code: ReceiverErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ReceiverError';
    this.code = code;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
