// TLS session-ID resumption: Node's TLS server keeps no session cache of its own (it asks
// through 'newSession'/'resumeSession'), so a TLS 1.2 client that does not take tickets
// never resumes. SessionCache is a bounded store (LRU, entries expire after ttlMs as
// OpenSSL's default 300 s); with several workers a shared store in the primary takes its
// place (cluster/remote-sessions.ts). Session data holds key material: never log it.

/** Where a TLS server keeps sessions: set when one is made, get (possibly later) to resume. */
export interface SessionStore {
  set(id: Buffer, data: Buffer): void;
  get(id: Buffer, cb: (data: Buffer | undefined) => void): void;
}

/** A bounded map whose entries expire: least recently set out past `max`, gone after `ttlMs`. */
export class ExpiringLru<V> {
  private readonly entries = new Map<string, { value: V; at: number }>();
  private readonly max: number;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(opts: { max?: number; ttlMs?: number; now?: () => number } = {}) {
    this.max = opts.max ?? 10_000;
    this.ttlMs = opts.ttlMs ?? 300_000;
    this.now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  put(key: string, value: V): void {
    this.entries.delete(key); // re-inserted last: the most recent
    this.entries.set(key, { value, at: this.now() });
    while (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
  }

  lookup(key: string): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (this.now() - e.at > this.ttlMs) {
      this.entries.delete(key);
      return undefined;
    }
    return e.value;
  }
}

/** Sessions by hex id (what crosses IPC as `put`/`lookup`). */
export class SessionCache extends ExpiringLru<Buffer> implements SessionStore {
  set(id: Buffer, data: Buffer): void {
    this.put(id.toString('hex'), data);
  }

  get(id: Buffer, cb: (data: Buffer | undefined) => void): void {
    cb(this.lookup(id.toString('hex')));
  }
}

/**
 * Whether OpenSSL's serialized session (`newSession`'s data: DER, SEQUENCE { INTEGER 1,
 * INTEGER ssl_version, … }) is a TLS 1.3 one. Those resume by ticket only (stateless, with
 * the shared ticket keys), never by session ID, so storing them only costs. Never throws:
 * anything unexpected is "not 1.3" (and kept, as before).
 */
export function isTls13Session(der: Uint8Array): boolean {
  if (der.length < 2 || der[0] !== 0x30) return false;
  let at = 2;
  const len = der[1]!;
  if (len & 0x80) at += len & 0x7f; // long form: that many length bytes follow
  // INTEGER 1 (the encoding's version), then INTEGER ssl_version (0x0304 for TLS 1.3).
  if (der[at] !== 0x02 || der[at + 1] !== 0x01) return false;
  at += 3;
  if (der[at] !== 0x02) return false;
  const n = der[at + 1]!;
  if (n < 1 || n > 3 || at + 2 + n > der.length) return false;
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 256 + der[at + 2 + i]!;
  return v === 0x0304;
}
