// TLS session-ID resumption across workers: each worker's TLS servers keep their sessions
// in the primary's one cache (server/session-cache.ts), so a client resuming by session ID
// (TLS 1.2 without tickets) is known whichever worker accepts it. A lookup the primary
// does not answer within LOOKUP_TIMEOUT_MS is a miss (a full handshake), never a hang.
// Session data holds key material: it crosses IPC between our own processes only, and is
// never logged.
import { ExpiringLru, type SessionCache, type SessionStore } from '../server/session-cache.ts';

export const LOOKUP_TIMEOUT_MS = 250;

export type SessionsToPrimary =
  | { readonly type: 'session-set'; readonly id: string; readonly data: Uint8Array }
  | { readonly type: 'session-get'; readonly id: string; readonly req: number };

export type SessionsToWorker =
  | { readonly type: 'session'; readonly req: number; readonly data: Uint8Array | null }
  // A session some worker stored: every worker learns its ID, so a lookup of any other ID
  // (a TLS 1.3 client's random legacy session ID, on every full handshake) misses at once,
  // without a round trip to the primary.
  | { readonly type: 'session-known'; readonly id: string };

export class RemoteSessions implements SessionStore {
  private readonly send: (m: SessionsToPrimary) => void;
  private readonly pending = new Map<number, { cb: (data: Buffer | undefined) => void; timer: NodeJS.Timeout }>();
  private nextReq = 1;
  /** IDs some worker stored, bounded and expiring as the primary's cache is. */
  private readonly known: ExpiringLru<true>;

  constructor(send: (m: SessionsToPrimary) => void, known = new ExpiringLru<true>()) {
    this.send = send;
    this.known = known;
  }

  set(id: Buffer, data: Buffer): void {
    const key = id.toString('hex');
    this.known.put(key, true);
    this.send({ type: 'session-set', id: key, data });
  }

  /** The primary says some worker stored this session. */
  learn(id: string): void {
    this.known.put(id, true);
  }

  get(id: Buffer, cb: (data: Buffer | undefined) => void): void {
    const key = id.toString('hex');
    if (!this.known.lookup(key)) return cb(undefined); // no worker stored it: a miss, no round trip
    const req = this.nextReq++;
    const timer = setTimeout(() => this.answer(req, null), LOOKUP_TIMEOUT_MS);
    timer.unref();
    this.pending.set(req, { cb, timer });
    this.send({ type: 'session-get', id: key, req });
  }

  /** The primary's answer (or the timeout's miss). */
  answer(req: number, data: Uint8Array | null): void {
    const p = this.pending.get(req);
    if (!p) return;
    this.pending.delete(req);
    clearTimeout(p.timer);
    p.cb(data ? Buffer.from(data) : undefined);
  }
}

/** The primary's side: stores a worker's session and tells every worker its ID, or answers a lookup. */
export function answerSessions(cache: SessionCache, m: SessionsToPrimary, reply: (m: SessionsToWorker) => void, tellAll: (m: SessionsToWorker) => void): void {
  if (m.type === 'session-set') {
    cache.put(m.id, Buffer.from(m.data));
    tellAll({ type: 'session-known', id: m.id });
  } else reply({ type: 'session', req: m.req, data: cache.lookup(m.id) ?? null });
}
