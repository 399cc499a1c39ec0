// Shared helpers for the interop suite (test/interop/*.interop.ts): real third-party
// clients and servers (openssl, curl, redis, MariaDB, iperf3) through the real CLI.
// Every process started here is tracked and killed by its PID; every temp dir removed.
import { type ChildProcess, spawn, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { deadline, type Proxy, startProxy } from '../support/harness.ts';

export { deadPort as freePort, deadline, startBackend, echo } from '../support/harness.ts';

export const PKI = new URL('../fixtures/tls/', import.meta.url).pathname;
export const pki = (f: string): string => join(PKI, f);

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  out: Buffer;
  ms: number;
}

/** Runs `cmd args` to completion (SIGKILLed after `timeoutMs`), feeding it `input` on stdin. */
export async function run(
  cmd: string,
  args: readonly string[],
  opts: { input?: string | Buffer; timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<RunResult> {
  const t0 = performance.now();
  const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...opts.env }, cwd: opts.cwd });
  track(p);
  const out: Buffer[] = [];
  let stderr = '';
  p.stdout!.on('data', (d: Buffer) => out.push(d));
  p.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  p.stdin!.on('error', () => {});
  p.stdin!.end(opts.input ?? '');
  const exited = once(p, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
  const ms = opts.timeoutMs ?? 30_000;
  try {
    const [code, signal] = await deadline(ms, `${cmd} ${args.join(' ')}`, exited);
    const buf = Buffer.concat(out);
    return { code, signal, stdout: buf.toString('utf8'), stderr, out: buf, ms: performance.now() - t0 };
  } catch (e) {
    p.kill('SIGKILL');
    throw new Error(`${(e as Error).message}\nstderr: ${stderr.slice(-2000)}`);
  }
}

/** Like `run`, but fails unless the command exits 0. */
export async function runOk(cmd: string, args: readonly string[], opts: Parameters<typeof run>[2] = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code ?? r.signal}\nstdout: ${r.stdout.slice(-2000)}\nstderr: ${r.stderr.slice(-2000)}`);
  return r;
}

/**
 * Last resort when the test process dies without running its `after` hooks (an uncaught
 * error, the runner's SIGTERM, Ctrl-C): SIGKILL what is still running by PID and remove the
 * temp dirs, synchronously.
 */
const live = new Set<ChildProcess>();
const dirs = new Set<string>();
function emergencyCleanup(): void {
  for (const p of live) if (p.exitCode === null && p.signalCode === null && p.pid) try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
process.once('exit', emergencyCleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    emergencyCleanup();
    process.kill(process.pid, sig);
  });
}
function track(p: ChildProcess): void {
  live.add(p);
  p.once('exit', () => live.delete(p));
}

/** A long-running process with its output kept; `stop()` kills it by PID. */
export class Daemon {
  readonly proc: ChildProcess;
  output = '';
  readonly exited: Promise<unknown>;
  readonly name: string;
  constructor(name: string, cmd: string, args: readonly string[], opts: SpawnOptions = {}) {
    this.name = name;
    this.proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    track(this.proc);
    this.exited = once(this.proc, 'exit');
    this.proc.on('error', (e) => (this.output += `spawn error: ${e.message}\n`));
    for (const s of [this.proc.stdout, this.proc.stderr]) s?.setEncoding('utf8').on('data', (d: string) => (this.output = (this.output + d).slice(-20_000)));
  }
  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }
  /** Resolves once `re` appears in its output; rejects if it exits first or after `ms`. */
  waitFor(re: RegExp, ms: number): Promise<void> {
    return deadline(ms, `${this.name}: ${re}`, new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (re.test(this.output)) { cleanupListeners(); resolve(); }
      };
      const onExit = (): void => { cleanupListeners(); reject(new Error(`${this.name} exited: ${this.output.slice(-2000)}`)); };
      const cleanupListeners = (): void => {
        this.proc.stdout?.off('data', check);
        this.proc.stderr?.off('data', check);
        this.proc.off('exit', onExit);
      };
      this.proc.stdout?.on('data', check);
      this.proc.stderr?.on('data', check);
      this.proc.once('exit', onExit);
      if (!this.running) onExit();
      else setImmediate(check);
    }));
  }
  /** SIGTERM by PID, SIGKILL after `graceMs`; resolves when it has exited. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.running) return;
    process.kill(this.proc.pid!, 'SIGTERM');
    try {
      await deadline(graceMs, `${this.name} exit`, this.exited);
    } catch {
      if (this.running) process.kill(this.proc.pid!, 'SIGKILL');
      await deadline(5000, `${this.name} exit after SIGKILL`, this.exited);
    }
  }
}

export { track };

/** Resolves once something accepts TCP connections on 127.0.0.1:`port`. */
export async function waitForPort(port: number, ms: number, what = `127.0.0.1:${port}`): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`timed out after ${ms}ms waiting for ${what} to accept`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Cleanups run in reverse order in an `after` hook, each given its chance even if another fails. */
export class Cleanup {
  private readonly fns: (() => unknown)[] = [];
  add(fn: () => unknown): void {
    this.fns.push(fn);
  }
  tmpDir(prefix: string): string {
    const d = mkdtempSync(join(tmpdir(), `l5d-interop-${prefix}-`));
    dirs.add(d);
    this.add(() => { rmSync(d, { recursive: true, force: true }); dirs.delete(d); });
    return d;
  }
  daemon(name: string, cmd: string, args: readonly string[], opts: SpawnOptions = {}): Daemon {
    const d = new Daemon(name, cmd, args, opts);
    this.add(() => d.stop());
    return d;
  }
  /** Starts the proxy (waiting for `servers` listeners); on cleanup stops it and removes its config dir. */
  async proxy(config: string, servers = 1): Promise<{ proxy: Proxy; port: number }> {
    const { proxy, ports } = await startProxy(config, servers);
    track(proxy.proc);
    const cfg = proxy.proc.spawnargs.at(-1);
    const cfgDir = cfg && dirname(cfg).startsWith(join(tmpdir(), 'l5d-tcp-')) ? dirname(cfg) : undefined;
    if (cfgDir) dirs.add(cfgDir);
    this.add(async () => {
      await proxy.stop().catch(async () => { proxy.proc.kill('SIGKILL'); await proxy.exited; });
      if (cfgDir) { rmSync(cfgDir, { recursive: true, force: true }); dirs.delete(cfgDir); }
    });
    return { proxy, port: ports[0]! };
  }
  async run(): Promise<void> {
    const errors: unknown[] = [];
    for (const fn of this.fns.splice(0).reverse()) {
      try {
        await fn();
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length) throw new AggregateError(errors, 'cleanup failed');
  }
}

/** A one-server proxy config to 127.0.0.1:`backend`; `serverTls`/`clientTls` are YAML flow maps. */
export function proxyConfig(backend: number, opts: { serverTls?: string; clientTls?: string; server?: string } = {}): string {
  return `
admin: {port: 0, graceSecs: 1}
routers:
- label: interop
  dtab: /svc/be => /$/inet/127.0.0.1/${backend};
  servers:
  - port: 0
    dstName: /svc/be
    ${opts.server ?? ''}
    ${opts.serverTls ? `tls: ${opts.serverTls}` : ''}
  ${opts.clientTls ? `client: {kind: io.l5d.global, tls: ${opts.clientTls}}` : ''}
`;
}

/** A TLS identity as a YAML flow map: the leaf, then the intermediate. */
export const identity = (name: string): string => `{privateKey: ${pki(name + '.key')}, certs: [${pki(name + '.pem')}, ${pki('chain.pem')}]}`;

/** Reports a measured figure in the test output. */
export function report(t: { diagnostic(msg: string): void }, msg: string): void {
  t.diagnostic(msg);
  console.log(`# interop: ${msg}`);
}
