// The native engine's one instance per process: initialises the addon with its one entry
// point, the outcome batch once per loop turn (new connections included: no call into
// JavaScript per accept), and dispatches the records by id to listeners and connections.
// Times in records are the engine clock (uv_hrtime in ms, also read by `binding.hrNow()`) and
// stay on it: a native connection takes every time it keeps (accepted, connected, closed,
// deadlines) from that one clock, so a duration is a later reading minus an earlier one and
// never negative. No offset to performance.now() is estimated: one taken around `init` was
// off by half the call's duration (negative connect times, issue 20), and Node exposes no
// exact one (performance.now() subtracts a private hrtime origin).
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import type { Logger } from '../log.ts';
import { noteFdExhaustion } from '../metrics/fd-exhaustion.ts';
import type { Registry } from '../metrics/registry.ts';
import type { NativeBinding } from './native-binding.ts';

/** What a native connection hears back from the engine (outcome records, native/engine.h). */
/** `at` arguments are engine-clock ms (`binding.hrNow()`), never performance.now(). */
export interface NativeConnHandler {
  connected(latencyUs: number, at: number): void;
  /** `detail`: for TLS_CONNECT_ERR, the X509 verify result (0: not a verification failure). */
  connectFailed(errno: number, at: number, detail: number): void;
  closed(reason: number, errno: number, rx: number, tx: number, at: number): void;
  peeked(bytes: number, eof: boolean): void;
  /** The client's TLS handshake finished (`us` long; `resumed`) or failed (`cause`: TF_* in native/engine.h). */
  tlsDone?(us: number, resumed: boolean, at: number): void;
  tlsFailed?(cause: number, at: number): void;
}

export interface NativeListenerHandler {
  /** `at`: when the engine accepted it, engine-clock ms. */
  accept(connId: number, at: number): void;
  /** Out of descriptors or another accept failure: `refused` connections were closed at once, or -1 (accepting paused 100 ms). */
  acceptError(errno: number, refused: number): void;
}

/** A backend's TLS handshake or verification failed (OUT_CONNECT_FAILED's errno slot; native/engine.h). */
export const TLS_CONNECT_ERR = 100000;

/** Why a client's TLS handshake failed (TF_* in native/engine.h), named as the node engine names them. */
export const TLS_FAILURE_CAUSES = ['', 'timeout', 'protocol_version', 'unknown_sni', 'no_shared_cipher', 'alpn', 'client_cert', 'malformed', 'closed', 'other'] as const;

/** Close reasons from the engine (R_* in native/engine.h). */
export const R_DONE = 0, R_CLIENT_ERROR = 1, R_BACKEND_ERROR = 2, R_LIFETIME = 3, R_IDLE = 4, R_WAIT_TIMEOUT = 5, R_LOCAL = 6;

const OUT_CONNECTED = 1, OUT_CONNECT_FAILED = 2, OUT_CLOSED = 3, OUT_PEEKED = 4, OUT_ACCEPT_ERROR = 5, OUT_ACCEPTED = 6, OUT_TLS_DONE = 7, OUT_TLS_FAILED = 8;
const REC = 8;

const errnoNames = new Map<number, string>();
for (const [name, n] of Object.entries(constants.errno)) if (!errnoNames.has(n)) errnoNames.set(n, name);

/**
 * An OUT_ACCEPT_ERROR record, logged (both native servers): out of descriptors, the engine
 * closed the waiting connections at once (`refused` >= 0, as libuv does for Node's servers;
 * the open-files warning says why); else accepting paused (-1), could not resume (-2), or
 * stopped (-3).
 */
export function logAcceptError(log: Logger, srv: string, errno: number, refused: number): void {
  if (errno === EMFILE || errno === ENFILE) noteFdExhaustion(); // for the open-files warning
  if (refused >= 0) {
    if (log.isLevelEnabled('debug')) log.debug({ srv, err: errnoName(errno), refused }, 'out of descriptors: waiting connections closed');
  } else if (refused === -1) log.warn({ srv, err: errnoName(errno) }, 'accept failed; pausing accepts for 100 ms');
  else if (refused === -2) log.warn({ srv, err: errnoName(errno) }, 'accepting could not resume; trying again in 100 ms');
  else log.error({ srv, err: errnoName(errno) }, 'listener stopped accepting: its poll or pause timer failed');
}
const { EMFILE, ENFILE } = constants.errno;

/** `ECONNREFUSED` for 111, and so on. */
export function errnoName(n: number): string {
  return errnoNames.get(n) ?? `errno ${n}`;
}

/** Slots in a connection id: its low 22 bits (native/conn.c), above them a generation. */
const SLOTS = 0x400000;

/** Connections by id, in an array indexed by the id's slot: no hashing of (large) ids per record. */
export class ConnTable<H = NativeConnHandler> {
  private readonly ids: number[] = [];
  private readonly handlers: (H | undefined)[] = [];
  get(id: number): H | undefined {
    const s = id % SLOTS;
    return this.ids[s] === id ? this.handlers[s] : undefined;
  }
  set(id: number, h: H): void {
    const s = id % SLOTS;
    // Slots are handed out lowest first, so the arrays grow without holes.
    while (this.ids.length < s) { this.ids.push(-1); this.handlers.push(undefined); }
    this.ids[s] = id;
    this.handlers[s] = h;
  }
  delete(id: number): void {
    const s = id % SLOTS;
    if (this.ids[s] === id) {
      this.ids[s] = -1;
      this.handlers[s] = undefined;
    }
  }
}

export class NativeEngine {
  readonly binding: NativeBinding;
  readonly listeners = new Map<number, NativeListenerHandler>();
  readonly conns = new ConnTable();
  private readonly records: Float64Array;

  constructor(binding: NativeBinding) {
    this.binding = binding;
    this.records = binding.init((n) => this.batch(n)).records;
  }

  private accept(listenerId: number, connId: number, at: number): void {
    const l = this.listeners.get(listenerId);
    if (l) l.accept(connId, at);
    else this.binding.close(connId);
  }

  private batch(n: number): void {
    const r = this.records;
    for (let i = 0; i < n; i++) {
      const o = i * REC;
      const kind = r[o]!, id = r[o + 1]!, at = r[o + 6]!;
      if (kind === OUT_ACCEPTED) {
        this.accept(r[o + 2]!, id, at);
        continue;
      }
      if (kind === OUT_ACCEPT_ERROR) {
        this.listeners.get(id)?.acceptError(r[o + 2]!, r[o + 3]!);
        continue;
      }
      const c = this.conns.get(id);
      if (!c) continue; // closed from JavaScript meanwhile
      switch (kind) {
        case OUT_CONNECTED: c.connected(r[o + 2]!, at); break;
        case OUT_CONNECT_FAILED: c.connectFailed(r[o + 2]!, at, r[o + 3]!); break;
        case OUT_CLOSED: this.conns.delete(id); c.closed(r[o + 2]!, r[o + 3]!, r[o + 4]!, r[o + 5]!, at); break;
        case OUT_PEEKED: c.peeked(r[o + 2]!, r[o + 3] === 1); break;
        case OUT_TLS_DONE: c.tlsDone?.(r[o + 2]!, r[o + 3] === 1, at); break;
        case OUT_TLS_FAILED: c.tlsFailed?.(r[o + 2]!, at); break;
      }
    }
  }
}

let engine: NativeEngine | undefined;

/**
 * The process's engine over `binding` (created on first use, with its byte budget for pipes
 * and buffers: `pipeBudget(processes)`).
 */
export function nativeEngine(binding: NativeBinding, processes = 1): NativeEngine {
  if (!engine) {
    engine = new NativeEngine(binding);
    binding.setBudget(pipeBudget(processes));
  }
  return engine;
}

/**
 * The engine's memory figures as `l5d:engine:*` (read at scrape time; once per registry).
 * Unlabelled: several workers' add up to the whole proxy's.
 */
export function registerEngineMetrics(registry: Registry, binding: NativeBinding): void {
  const stat = (i: number) => (): number => binding.stats()[i]!;
  registry.gauge('l5d:engine:pipe_bytes', {}, stat(6));
  registry.gauge('l5d:engine:buffer_bytes', {}, stat(7));
  registry.gauge('l5d:engine:budget_bytes', {}, stat(8));
  const refused = registry.counter('l5d:engine:splice_refused'), trims = registry.counter('l5d:engine:heap_trims');
  if (registered.has(registry)) return;
  registered.add(registry);
  registry.onCollect(() => {
    const s = binding.stats();
    refused.value = s[9];
    trims.value = s[5];
  });
}
const registered = new WeakSet<Registry>();

/** Without a per-user pipe quota (fs.pipe-user-pages-soft 0), what all processes together may hold. */
const UNCAPPED_BYTES = 256 * 2 ** 20;

/**
 * The native engine's byte budget for kernel pipes and copy buffers in one of `processes`
 * processes: three quarters of the user's pipe quota (`fs.pipe-user-pages-soft`, 16,384 pages
 * = 64 MiB by default; past it the kernel gives an unprivileged user's new pipes 8 KiB), shared
 * evenly, the rest left to the user's other programs. `softPages` is read from /proc unless given.
 */
export function pipeBudget(processes: number, softPages = readSoftPages()): number {
  const all = softPages > 0 ? softPages * 4096 * 0.75 : UNCAPPED_BYTES;
  return Math.floor(all / Math.max(1, processes));
}

function readSoftPages(): number {
  try {
    const n = Number(readFileSync('/proc/sys/fs/pipe-user-pages-soft', 'utf8').trim());
    return Number.isFinite(n) && n >= 0 ? n : 16384;
  } catch {
    return 16384; // not Linux's /proc: its default
  }
}
