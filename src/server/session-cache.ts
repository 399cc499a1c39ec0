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

export class SessionCache implements SessionStore {
  private readonly entries = new Map<string, { data: Buffer; at: number }>();
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

  set(id: Buffer, data: Buffer): void {
    this.put(id.toString('hex'), data);
  }

  get(id: Buffer, cb: (data: Buffer | undefined) => void): void {
    cb(this.lookup(id.toString('hex')));
  }

  /** By hex id (what crosses IPC). */
  put(key: string, data: Buffer): void {
    this.entries.delete(key); // re-inserted last: the most recent
    this.entries.set(key, { data, at: this.now() });
    while (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
  }

  lookup(key: string): Buffer | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (this.now() - e.at > this.ttlMs) {
      this.entries.delete(key);
      return undefined;
    }
    return e.data;
  }
}
