/**
 * The agent's logger: one line per message on stderr (stdout is reserved for --print-spans).
 * Level from SPANBRIDGE_LOG_LEVEL or --log-level. Warnings can be rate-limited per key so a
 * recurring condition does not flood the log.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** Logs a warning at most once per `intervalMs` for the same key; counts the suppressed ones. */
  warnEvery(key: string, intervalMs: number, message: string): void;
}

export function isLogLevel(v: string): v is LogLevel {
  return v in ORDER;
}

export function createLogger(level: LogLevel = 'info', write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const min = ORDER[level];
  const last = new Map<string, { at: number; suppressed: number }>();
  const emit = (lvl: LogLevel, message: string): void => {
    if (ORDER[lvl] < min) return;
    write(`${new Date().toISOString()} ${lvl.toUpperCase().padEnd(5)} ${message}\n`);
  };
  return {
    debug: (m) => emit('debug', m),
    info: (m) => emit('info', m),
    warn: (m) => emit('warn', m),
    error: (m) => emit('error', m),
    warnEvery(key, intervalMs, message) {
      const now = Date.now();
      const prev = last.get(key);
      if (prev && now - prev.at < intervalMs) {
        prev.suppressed++;
        return;
      }
      const suffix = prev && prev.suppressed > 0 ? ` (${prev.suppressed} similar suppressed)` : '';
      last.set(key, { at: now, suppressed: 0 });
      emit('warn', message + suffix);
    },
  };
}
