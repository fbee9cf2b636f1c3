/**
 * The logging the receiver needs: two levels, plain strings. `console` satisfies it; so does the
 * agent's logger and a test's recorder.
 */
export interface ReceiverLog {
  warn(message: string): void;
  info(message: string): void;
}
