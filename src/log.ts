// Structured logging, behind one module: JSON lines (pino) on stdout, or one readable line
// per record when stdout is a terminal or LOG_FORMAT=text (control and bidi characters
// escaped, safe-text.ts). The level comes from LOG_LEVEL (trace|debug|info|
// warn|error|fatal|silent), or from linkerd-tcp's RUST_LOG form (`linkerd_tcp=info`).
// Never pass key material to a logger.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { escapeTerminal } from './safe-text.ts';

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

/** What is wrong with LOG_LEVEL, or undefined when it is unset or valid (a typo must not silently mean `info`). */
export function levelProblem(env: NodeJS.ProcessEnv): string | undefined {
  const raw = env['LOG_LEVEL'];
  if (raw === undefined || raw.trim() === '' || LEVELS.includes(raw.trim().toLowerCase())) return undefined;
  return `LOG_LEVEL: expected one of ${LEVELS.join('|')}, got ${JSON.stringify(raw.slice(0, 40))}`;
}

const FORMATS: readonly string[] = ['json', 'text'];

/** What is wrong with LOG_FORMAT, or undefined when it is unset or valid (`xml` must not silently mean the default). */
export function formatProblem(env: NodeJS.ProcessEnv): string | undefined {
  const raw = env['LOG_FORMAT'];
  if (raw === undefined || raw.trim() === '' || FORMATS.includes(raw.trim().toLowerCase())) return undefined;
  return `LOG_FORMAT: expected one of ${FORMATS.join('|')}, got ${JSON.stringify(raw.slice(0, 40))}`;
}

export function createLogger(level: LogLevel, destination: NodeJS.WritableStream = process.stdout): Logger {
  const format = process.env['LOG_FORMAT']?.trim().toLowerCase(); // as formatProblem reads it
  const tty = destination === process.stdout && (format === 'text' || (process.stdout.isTTY && format !== 'json'));
  return pino(
    { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    tty ? readable(process.stdout) : destination,
  ) as unknown as Logger;
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };

/** Formats one pino JSON line as `12:00:00.123 INFO  msg key=value …`. */
export function formatLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return escapeTerminal(json);
  }
  const { level, time, msg, pid, ...rest } = o;
  void pid;
  const t = typeof time === 'string' ? time.slice(11, 23) : '';
  const fields = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`);
  // Escaped last, all of it: a client's SNI or a namerd error must not drive the terminal.
  return escapeTerminal(`${t} ${LEVEL_NAMES[Number(level)] ?? String(level)} ${String(msg ?? '')}${fields.length ? '  ' + fields.join(' ') : ''}`);
}

function readable(out: NodeJS.WritableStream): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      const lines = chunk.toString('utf8').split('\n').filter(Boolean);
      out.write(lines.map(formatLine).join('\n') + '\n');
      done();
    },
  });
}

/** A logger that drops everything (unit tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' }) as unknown as Logger;
}
