// One namerd HTTP request loop (a "feed"): polls a URL every periodMs, or keeps one
// `watch=1` stream open and reconnects it with jittered backoff. It hands on parsed JSON
// values and failure reasons, and knows nothing of what they mean. Every request is bounded
// (requestTimeoutMs to the answer or first line, MAX_BODY_BYTES per body or line). A watch
// stream's lines are coalesced: a line is parsed and handed on at most every coalesceMs (or
// 9 × what applying the last one cost, when more), the latest one winning, so a control plane
// that flaps cannot keep the event loop busy more than about a tenth of the time.
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Logger } from '../log.ts';
import type { Counter, Stat } from '../metrics/registry.ts';
import { boundText } from '../safe-text.ts';

export const MAX_BODY_BYTES = 1 << 20;
const BACKOFF_MAX_MS = 30_000;
/** A watch update that took T ms to apply delays the next by at least DUTY_FACTOR × T. */
const DUTY_FACTOR = 9;

export interface FeedEnv {
  readonly watch: boolean;
  readonly requestTimeoutMs: number;
  readonly periodMs: number;
  readonly backoffMinMs: number;
  /** A watch stream's updates are handed on at most this often (the latest wins). */
  readonly coalesceMs: number;
  readonly random: () => number;
  readonly log: Logger;
  readonly metrics: { readonly latencyMs: Stat; readonly success: Counter; readonly failure: Counter };
}

export interface FeedSink {
  /** A JSON value namerd sent. Returns false when it was not usable (counted as a failure). */
  value(v: unknown): boolean;
  failed(reason: string): void;
}

export class Feed {
  private readonly url: URL;
  private readonly env: FeedEnv;
  private readonly sink: FeedSink;
  private req: ClientRequest | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private backoffMs: number;
  /** Watch: the newest line not handed on yet, when it may go, and the timer that sends it. */
  private held: string | undefined;
  private nextFlushAt = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  /** Ends the current request and schedules the next (set by each request). */
  private cut: () => void = () => {};

  constructor(url: URL, env: FeedEnv, sink: FeedSink) {
    this.url = url;
    this.env = env;
    this.sink = sink;
    this.backoffMs = env.backoffMinMs;
    if (env.watch) url.searchParams.set('watch', 'true');
  }

  start(): void {
    this.request();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.flushTimer);
    this.req?.destroy();
    this.req = undefined;
  }

  private failed(reason: string): void {
    if (this.stopped) return;
    this.env.metrics.failure.value++;
    this.sink.failed(reason);
  }

  private value(v: unknown): void {
    if (this.stopped) return;
    if (this.sink.value(v)) {
      this.env.metrics.success.value++;
      this.backoffMs = this.env.backoffMinMs;
    } else this.env.metrics.failure.value++;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.request(), ms);
  }

  /** After a failure or a stream's end: a jittered, doubling delay (watch) or the poll period (poll). */
  private retryLater(): void {
    if (!this.env.watch) return this.schedule(this.env.periodMs);
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
    // Ends this request exactly once, whichever way it ends; false when it had already ended.
    const finish = (): boolean => {
      if (settled || this.stopped) return false;
      settled = true;
      clearTimeout(timeout);
      req.destroy();
      if (this.req === req) this.req = undefined;
      return true;
    };
    const fail = (reason: string): void => {
      if (!finish()) return;
      this.flush(); // a line held back is older than this failure
      this.failed(reason);
      this.retryLater();
    };
    this.cut = () => {
      if (finish()) this.retryLater();
    };
    // Bounds the wait for an answer: the whole body when polling, the first line when watching.
    const timeout = setTimeout(() => fail(`no answer from namerd within ${this.env.requestTimeoutMs}ms`), this.env.requestTimeoutMs);
    req.on('error', (e) => fail(`namerd request failed: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
    req.on('response', (res: IncomingMessage) => {
      res.on('error', (e) => fail(`namerd response failed: ${e.message}`));
      if (res.statusCode !== 200) {
        res.resume();
        fail(`namerd answered HTTP ${res.statusCode}`);
        return;
      }
      if (this.env.watch) this.readStream(res, started, () => clearTimeout(timeout), fail, finish);
      else this.readBody(res, started, fail, finish);
    });
    req.end();
  }

  private readBody(res: IncomingMessage, started: number, fail: (r: string) => void, finish: () => boolean): void {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) fail(`namerd response over ${MAX_BODY_BYTES} bytes`);
      else chunks.push(c);
    });
    res.on('end', () => {
      if (size > MAX_BODY_BYTES || !finish()) return;
      this.env.metrics.latencyMs.record(performance.now() - started);
      this.parse(Buffer.concat(chunks).toString('utf8'), 'not JSON');
      this.schedule(this.env.periodMs);
    });
  }

  /** Parses one answer or line: JSON → value; anything else → failed (namerd's plain-text error line). */
  private parse(text: string, what: string): boolean {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      // What namerd said, cut short with a count of the rest: a reason is logged and shown in /api/state.
      const said = boundText(text.trim(), 200);
      this.failed(what === 'not JSON' ? `namerd answered something that is not JSON: ${JSON.stringify(said)}` : `namerd watch error: ${said}`);
      return false;
    }
    this.value(v);
    return true;
  }

  private readStream(res: IncomingMessage, started: number, firstLine: () => void, fail: (r: string) => void, finish: () => boolean): void {
    const parts: string[] = [];
    let partBytes = 0;
    let first = true;
    res.setEncoding('utf8');
    res.socket.setKeepAlive(true, 30_000); // a dead peer is noticed even when no update comes
    res.on('data', (chunk: string) => {
      // Only the new chunk is searched for line ends: a 1 MB line in 64 KiB chunks is not rescanned.
      let from = 0;
      for (let nl = chunk.indexOf('\n'); nl >= 0; nl = chunk.indexOf('\n', from)) {
        parts.push(chunk.slice(from, nl));
        const line = parts.join('').trim();
        parts.length = 0;
        partBytes = 0;
        from = nl + 1;
        if (!line) continue;
        if (first) {
          first = false;
          firstLine();
          this.env.metrics.latencyMs.record(performance.now() - started);
        }
        this.hold(line);
      }
      if (from < chunk.length) {
        parts.push(chunk.slice(from));
        partBytes += chunk.length - from;
      }
      if (partBytes > MAX_BODY_BYTES) fail(`namerd watch line over ${MAX_BODY_BYTES} bytes`);
    });
    res.on('end', () => {
      if (!finish()) return;
      this.flush();
      this.env.log.info({ url: this.url.pathname }, 'namerd watch stream ended; reconnecting');
      this.retryLater();
    });
  }

  /** Keeps the newest line; hands it on now if the last one went long enough ago, else when it is time. */
  private hold(line: string): void {
    this.held = line;
    const wait = this.nextFlushAt - performance.now();
    if (wait <= 0) this.flush();
    else if (!this.flushTimer) this.flushTimer = setTimeout(() => this.flush(), wait);
  }

  private flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const line = this.held;
    if (line === undefined || this.stopped) return;
    this.held = undefined;
    const t0 = performance.now();
    // namerd writes an error as a plain-text line and ends the stream; don't wait for the end.
    const ok = this.parse(line, 'watch line');
    // Subscribers apply the update synchronously, so this measures the whole apply: the next
    // one waits coalesceMs, or DUTY_FACTOR times this one's cost when longer (≤ ~10% of the loop).
    const t1 = performance.now();
    this.nextFlushAt = t1 + Math.max(this.env.coalesceMs, (t1 - t0) * DUTY_FACTOR);
    if (!ok) this.cut();
  }
}
