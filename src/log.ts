// Structured logging, behind one module: JSON lines (pino) on stdout. The level comes from
// LOG_LEVEL (trace|debug|info|warn|error|fatal|silent), or from linkerd-tcp's RUST_LOG form
// (`linkerd_tcp=info`, `trace`). Never pass key material to a logger.
import { pino } from 'pino';

type LogFn = (obj: object, msg: string) => void;

export interface Logger {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
  child(bindings: Record<string, unknown>): Logger;
  /** True when `level` would be written; lets hot paths skip building log objects. */
  isLevelEnabled(level: LogLevel): boolean;
}

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
const LEVELS: readonly string[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** The level named by the environment: LOG_LEVEL wins, then RUST_LOG, else `info`. */
export function levelFromEnv(env: NodeJS.ProcessEnv): LogLevel {
  const direct = env['LOG_LEVEL']?.trim().toLowerCase();
  if (direct && LEVELS.includes(direct)) return direct as LogLevel;
  const rust = env['RUST_LOG']?.trim().toLowerCase();
  if (rust) {
    // RUST_LOG is a comma list of `target=level` or bare `level`; use ours or the bare one.
    for (const part of rust.split(',')) {
      const [target, level] = part.includes('=') ? part.split('=', 2) : ['', part];
      if ((target === '' || target === 'linkerd_tcp') && level && LEVELS.includes(level)) {
        return level as LogLevel;
      }
      if (level === 'warning') return 'warn';
    }
  }
  return 'info';
}

export function createLogger(level: LogLevel, destination: NodeJS.WritableStream = process.stdout): Logger {
  return pino(
    { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    destination,
  ) as unknown as Logger;
}

/** A logger that drops everything (unit tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' }) as unknown as Logger;
}
