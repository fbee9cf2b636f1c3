/** Assertions on the agent's errors, for unit and kernel tests alike. */
import { SpanbridgeError } from '../../src/errors';

/**
 * The SpanbridgeError that `fn` throws, for checks on its code and message; any other error is
 * rethrown, and returning normally fails the test. `errno`: errors of the libbpf binding carry the
 * kernel's errno.
 */
export function thrownSpanbridgeError(fn: () => unknown): SpanbridgeError & { errno?: number } {
  try {
    fn();
  } catch (err) {
    if (err instanceof SpanbridgeError) return err;
    throw err;
  }
  throw new Error('expected an error');
}
