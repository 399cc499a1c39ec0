// Test harness: spawns the real CLI on a config, follows its JSON log lines, and waits on
// events with deadlines (never sleeps). Backends are real sockets on 127.0.0.1 port 0.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { once } from 'node:events';

export const MAIN = new URL('../../src/main.ts', import.meta.url).pathname;

/** Workers each spawned proxy runs unless its config or test says otherwise (default 1). */
export const TEST_WORKERS = process.env['LINKERD_TCP_TEST_WORKERS'] ?? '1';

export type LogLine = Record<string, unknown> & { msg?: string };

/** `p`, or a rejection naming `what` after `ms`. */
export function deadline<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms}ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export function writeConfig(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'l5d-tcp-'));
  const file = join(dir, text.trimStart().startsWith('{') ? 'config.json' : 'config.yml');
  writeFileSync(file, text);
  return file;
}

export class Proxy {
  readonly proc: ChildProcess;
  readonly logs: LogLine[] = [];
  stderr = '';
  private waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  readonly exited: Promise<number | null>;

  /**
   * `nofile`: start under that open-file limit (`ulimit -n`, through sh, same pid).
   * `detached`: in its own process group, so a test can signal the group as Ctrl-C does.
   */
  constructor(args: string[], env: NodeJS.ProcessEnv = {}, opts: { nofile?: number; detached?: boolean } = {}) {
    const [cmd, argv] = opts.nofile === undefined
      ? [process.execPath, [MAIN, ...args]]
      : ['sh', ['-c', `ulimit -n ${opts.nofile} && exec "$0" "$@"`, process.execPath, MAIN, ...args]];
    this.proc = spawn(cmd, argv, {
      // One process unless a test asks for more (the default is one worker per core), or the
      // whole run does: LINKERD_TCP_TEST_WORKERS=2 runs every proxy of the suite with two workers.
      env: { ...process.env, LOG_LEVEL: 'debug', LINKERD_TCP_WORKERS: TEST_WORKERS, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: opts.detached ?? false,
    });
    this.exited = once(this.proc, 'exit').then(([code]) => code as number | null);
    this.proc.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      let l: LogLine;
      try {
        l = JSON.parse(line) as LogLine;
      } catch {
        l = { msg: line, raw: true };
      }
      this.logs.push(l);
      this.waiters = this.waiters.filter((w) => (w.pred(l) ? (w.resolve(l), false) : true));
    });
  }

  /** The first log line (already seen or future) matching `pred`. */
  waitForLog(pred: (l: LogLine) => boolean, ms = 10_000, what = 'a log line'): Promise<LogLine> {
    const seen = this.logs.find(pred);
    if (seen) return Promise.resolve(seen);
    return deadline(ms, what, new Promise<LogLine>((resolve) => this.waiters.push({ pred, resolve })));
  }

  /** Waits until `n` log lines match `pred` (counting those already seen). */
  async waitForCount(pred: (l: LogLine) => boolean, n: number, ms = 10_000, what = `${n} matching log lines`): Promise<LogLine[]> {
    const matching = (): LogLine[] => this.logs.filter(pred);
    if (matching().length >= n) return matching();
    await deadline(ms, what, new Promise<void>((resolve) => {
      const w = { pred: (l: LogLine) => pred(l) && matching().length >= n, resolve: () => resolve() };
      this.waiters.push(w);
    }));
    return matching();
  }

  /** Waits for `n` 'listening' lines and returns their ports in config order. */
  async listening(n: number): Promise<number[]> {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      // Generous: a start with two workers on a machine loaded by two CPU hogs took over 15 s.
      const l = await this.waitForLog((x) => x.msg === 'listening' && !ports.includes(portOf(x)), 45_000, `listener ${i}`);
      ports.push(portOf(l));
    }
    return ports;
  }

  /** Resolves when every process of the proxy (workers too: they share its stdout) has exited. */
  allGone(ms = 10_000): Promise<void> {
    const out = this.proc.stdout!;
    if (out.closed) return Promise.resolve();
    return deadline(ms, 'every process of the proxy to exit', once(out, 'close').then(() => {}));
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    return deadline(20_000, 'proxy exit', this.exited);
  }
}

function portOf(l: LogLine): number {
  return Number(String(l['srv']).split(':').pop());
}

/** Starts the CLI on `configText` and waits for `servers` listeners. */
export async function startProxy(configText: string, servers = 1, env: NodeJS.ProcessEnv = {}): Promise<{ proxy: Proxy; ports: number[] }> {
  const proxy = new Proxy([writeConfig(configText)], env);
  try {
    const ports = await Promise.race([
      proxy.listening(servers),
      proxy.exited.then((c) => { throw new Error(`proxy exited with ${c}: ${proxy.stderr}`); }),
    ]);
    return { proxy, ports };
  } catch (e) {
    await proxy.stop('SIGKILL');
    throw e;
  }
}

/** Runs the CLI to completion; returns its exit code and output. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const [code] = await deadline(45_000, 'cli exit', once(p, 'exit')); // many at once on a loaded machine took over 20 s
  return { code: code as number | null, stdout, stderr };
}

export interface Backend {
  readonly server: Server;
  readonly port: number;
  /** Connections accepted so far. */
  accepted: number;
  readonly sockets: Set<Socket>;
  close(): Promise<void>;
}

/** A TCP backend on 127.0.0.1:0 running `handler` for each connection. */
export async function startBackend(handler: (s: Socket) => void, opts: { allowHalfOpen?: boolean; port?: number } = {}): Promise<Backend> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: opts.allowHalfOpen ?? true }, (s) => {
    b.accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    handler(s);
  });
  server.listen(opts.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  const b: Backend = {
    server, sockets, accepted: 0,
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      if (server.listening) await new Promise<void>((r) => server.close(() => r()));
    },
  };
  return b;
}

/**
 * Resolves when the peer has closed `s`: its FIN arrived ('end') or the socket closed
 * (RST or full close). Reads and discards what is left, so a FIN behind data is seen.
 */
export function peerClosed(s: Socket): Promise<void> {
  return new Promise<void>((resolve) => {
    if (s.destroyed || s.readableEnded) return resolve();
    s.once('end', () => resolve());
    s.once('close', () => resolve());
    s.resume();
  });
}

/** An echo backend that half-closes when the client does. */
export const echo = (s: Socket): void => {
  s.pipe(s);
};

/** A port with nothing listening on it (bound then released). */
export async function deadPort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A listener whose accept queue is full, so further connects hang (SYNs are dropped). */
export async function startBlackhole(): Promise<{ port: number; close(): void }> {
  const py = spawn('python3', ['-c', [
    'import socket, sys, time',
    's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)',
    'fill = []',
    'for _ in range(4):',
    '    c = socket.socket(); c.setblocking(False)',
    '    try: c.connect(s.getsockname())',
    '    except BlockingIOError: pass',
    '    fill.append(c)',
    'print(s.getsockname()[1], flush=True)',
    'sys.stdin.read()',
  ].join('\n')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [line] = await deadline(5000, 'blackhole port', once(py.stdout!.setEncoding('utf8'), 'data'));
  return { port: Number(String(line).trim()), close: () => py.kill() };
}
