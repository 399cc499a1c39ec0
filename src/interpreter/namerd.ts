// The `io.l5d.namerd.http` interpreter: asks namerd's HTTP API what a name resolves to.
// Poll mode (linkerd-tcp's): GET /api/1/resolve/<ns>?path=… now, then every periodSecs
// after the previous answer. Watch mode (`watch: true`): one streaming request whose
// newline-delimited JSON lines are updates, reconnected with jittered backoff. Every
// request is bounded; failures are delivered (consumers keep their last good set),
// logged and counted.
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { InterpreterConfig } from '../config/types.ts';
import type { Logger } from '../log.ts';
import type { Counter, Registry, Stat } from '../metrics/registry.ts';
import { type Resolution, sameResolution } from '../naming/resolution.ts';
import type { Interpreter, Watch } from './interpreter.ts';
import { decodeAddr } from './namerd-decode.ts';

type NamerdConfig = Extract<InterpreterConfig, { kind: 'io.l5d.namerd.http' }>;

export const MAX_BODY_BYTES = 1 << 20;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;

interface Metrics {
  readonly latencyMs: Stat;
  readonly success: Counter;
  readonly failure: Counter;
}

export function createNamerdInterpreter(opts: {
  config: NamerdConfig; routerLabel: string; dtab: string; registry: Registry; log: Logger;
  random?: () => number; periodMs?: number; backoffMinMs?: number;
}): Interpreter {
  const { config } = opts;
  const labels = { namespace: config.namespace, rt: opts.routerLabel };
  const metrics: Metrics = {
    latencyMs: opts.registry.stat('l5d:resolver:request_latency_ms', labels),
    success: opts.registry.counter('l5d:resolver:success_count', labels),
    failure: opts.registry.counter('l5d:resolver:failure_count', labels),
  };
  const log = opts.log.child({ interpreter: 'io.l5d.namerd.http', namespace: config.namespace });
  const loops = new Map<string, Resolver>();
  const env: Env = {
    config, metrics, log, random: opts.random ?? Math.random,
    periodMs: opts.periodMs ?? config.periodSecs * 1000,
    backoffMinMs: opts.backoffMinMs ?? BACKOFF_MIN_MS,
    dtab: opts.dtab.replace(/\s+/g, ' ').trim(),
  };

  return {
    watch(dstName: string, onResolution: (r: Resolution) => void): Watch {
      let loop = loops.get(dstName);
      if (!loop) {
        loop = new Resolver(dstName, env);
        loops.set(dstName, loop);
        loop.start();
      }
      const l = loop;
      const sub = (r: Resolution): void => onResolution(r);
      l.subscribers.add(sub);
      if (l.last) {
        const last = l.last;
        setImmediate(() => l.subscribers.has(sub) && sub(last));
      }
      return {
        close: () => {
          l.subscribers.delete(sub);
          if (l.subscribers.size === 0 && loops.get(dstName) === l) {
            loops.delete(dstName);
            l.stop();
          }
        },
      };
    },
    async close(): Promise<void> {
      for (const l of loops.values()) l.stop();
      loops.clear();
    },
  };
}

interface Env {
  readonly config: NamerdConfig;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly random: () => number;
  readonly periodMs: number;
  readonly backoffMinMs: number;
  readonly dtab: string;
}

/** One destination's loop: poll or watch, deliver changes, back off on trouble. */
class Resolver {
  readonly subscribers = new Set<(r: Resolution) => void>();
  last: Resolution | undefined;
  private readonly dst: string;
  private readonly env: Env;
  private readonly url: URL;
  private req: ClientRequest | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private backoffMs: number;

  constructor(dst: string, env: Env) {
    this.dst = dst;
    this.env = env;
    this.backoffMs = env.backoffMinMs;
    const c = env.config;
    this.url = new URL(`${c.baseUrl}/api/1/resolve/${encodeURIComponent(c.namespace)}`);
    this.url.searchParams.set('path', dst);
    if (env.dtab) this.url.searchParams.set('dtab', env.dtab);
    if (c.watch) this.url.searchParams.set('watch', 'true');
  }

  start(): void {
    this.request();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.req?.destroy();
    this.req = undefined;
  }

  private deliver(r: Resolution): void {
    if (this.stopped) return;
    const m = this.env.metrics;
    if (r.kind === 'failed') {
      m.failure.value++;
      this.env.log.warn({ dst: this.dst, reason: r.reason }, 'namerd resolution failed');
    } else m.success.value++;
    if (this.last && sameResolution(this.last, r)) return;
    this.last = r;
    for (const s of [...this.subscribers]) if (this.subscribers.has(s)) s(r);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.request(), ms);
  }

  /** After a failure: wait a jittered, doubling delay (watch) or the poll period (poll). */
  private retryLater(): void {
    if (!this.env.config.watch) return this.schedule(this.env.periodMs);
    const jittered = this.backoffMs * (0.5 + this.env.random() / 2);
    this.backoffMs = Math.min(BACKOFF_MAX_MS, this.backoffMs * 2);
    this.schedule(jittered);
  }

  private request(): void {
    if (this.stopped) return;
    const started = performance.now();
    const send = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(this.url, { headers: { accept: 'application/json' }, agent: false });
    this.req = req;
    let settled = false;
    const fail = (reason: string): void => {
      if (settled || this.stopped) return;
      settled = true;
      clearTimeout(timeout);
      req.destroy();
      this.deliver({ kind: 'failed', reason });
      this.retryLater();
    };
    // Bounds the wait for an answer: the whole body when polling, the first line when watching.
    const timeout = setTimeout(() => fail(`no answer from namerd within ${this.env.config.requestTimeoutMs}ms`), this.env.config.requestTimeoutMs);
    req.on('error', (e) => fail(`namerd request failed: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
    req.on('response', (res: IncomingMessage) => {
      res.on('error', (e) => fail(`namerd response failed: ${e.message}`));
      if (res.statusCode !== 200) {
        res.resume();
        fail(`namerd answered HTTP ${res.statusCode}`);
        return;
      }
      if (this.env.config.watch) this.readStream(res, started, () => clearTimeout(timeout), fail, () => { settled = true; });
      else this.readBody(res, started, timeout, fail, () => { settled = true; });
    });
    req.end();
  }

  private readBody(res: IncomingMessage, started: number, timeout: NodeJS.Timeout, fail: (r: string) => void, settle: () => void): void {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) fail(`namerd response over ${MAX_BODY_BYTES} bytes`);
      else chunks.push(c);
    });
    res.on('end', () => {
      if (size > MAX_BODY_BYTES) return;
      clearTimeout(timeout);
      const text = Buffer.concat(chunks).toString('utf8');
      let r: Resolution | undefined;
      try {
        r = decodeAddr(JSON.parse(text));
      } catch {
        r = { kind: 'failed', reason: `namerd answered something that is not JSON: ${JSON.stringify(text.slice(0, 80))}` };
      }
      settle();
      this.env.metrics.latencyMs.record(performance.now() - started);
      if (r) this.deliver(r);
      this.schedule(this.env.periodMs);
    });
  }

  private readStream(res: IncomingMessage, started: number, firstLine: () => void, fail: (r: string) => void, settle: () => void): void {
    let buf = '';
    let first = true;
    res.setEncoding('utf8');
    res.socket.setKeepAlive(true, 30_000); // a dead peer is noticed even when no update comes
    res.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        if (first) {
          first = false;
          firstLine();
          this.env.metrics.latencyMs.record(performance.now() - started);
        }
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch {
          // namerd writes an error as a plain-text line, then ends the stream.
          fail(`namerd watch error: ${line.slice(0, 200)}`);
          return;
        }
        const r = decodeAddr(value);
        if (r) this.deliver(r);
        if (r && r.kind !== 'failed') this.backoffMs = this.env.backoffMinMs;
      }
      if (buf.length > MAX_BODY_BYTES) fail(`namerd watch line over ${MAX_BODY_BYTES} bytes`);
    });
    res.on('end', () => {
      if (this.stopped) return;
      settle();
      this.env.log.info({ dst: this.dst }, 'namerd watch stream ended; reconnecting');
      this.retryLater();
    });
  }
}
