// Host names a namer must turn into addresses (`/$/inet/<name>/<port>`, an io.l5d.fs line
// `<name> <port>`): each looked up through the system resolver (getaddrinfo: /etc/hosts,
// then DNS A and AAAA, as the JVM's InetAddress does), then again every `refreshMs`, or at
// once when asked (a file naming it changed). A failed refresh keeps the last good answer;
// only a first lookup can fail. An answer that changes calls `onChange`, never synchronously.
import { lookup } from 'node:dns/promises';
import type { Activity } from '../../naming/bind.ts';
import type { Logger } from '../../log.ts';

/** All the addresses the system resolver gives for `host` (rejects with the errno code: ENOTFOUND, EAI_AGAIN…). */
export type LookupAll = (host: string) => Promise<readonly string[]>;

export const systemLookup: LookupAll = async (host) => (await lookup(host, { all: true })).map((a) => a.address);

interface Entry {
  state: Activity<readonly string[]>;
  timer: NodeJS.Timeout | undefined;
  inFlight: boolean;
  /** The failure last warned about, until an answer: a failure that repeats is logged at debug. */
  failure: string | undefined;
}

export class HostLookups {
  private readonly entries = new Map<string, Entry>();
  private readonly refreshMs: number;
  private readonly lookupAll: LookupAll;
  private readonly log: Logger;
  private readonly label: string;
  private readonly onChange: () => void;
  private closed = false;

  /** `label` opens each log message (`inet`, `io.l5d.fs`). */
  constructor(opts: { refreshMs: number; log: Logger; label: string; onChange: () => void; lookup?: LookupAll | undefined }) {
    this.refreshMs = opts.refreshMs;
    this.lookupAll = opts.lookup ?? systemLookup;
    this.log = opts.log;
    this.label = opts.label;
    this.onChange = opts.onChange;
  }

  /** The current answer for `host` (sorted, distinct addresses): pending until the first lookup ends. */
  get(host: string): Activity<readonly string[]> {
    let e = this.entries.get(host);
    if (!e) {
      e = { state: { kind: 'pending' }, timer: undefined, inFlight: false, failure: undefined };
      this.entries.set(host, e);
      void this.refresh(host, e);
    }
    return e.state;
  }

  /** Looks `host` up again now, if it is known and not being looked up already; its answer stays meanwhile. */
  refreshNow(host: string): void {
    const e = this.entries.get(host);
    if (!e || e.inFlight) return;
    clearTimeout(e.timer);
    void this.refresh(host, e);
  }

  /** Forgets (and stops refreshing) every host `keep` says no to. */
  retain(keep: (host: string) => boolean): void {
    for (const [host, e] of this.entries) {
      if (keep(host)) continue;
      clearTimeout(e.timer);
      this.entries.delete(host);
    }
  }

  close(): void {
    this.closed = true;
    for (const e of this.entries.values()) clearTimeout(e.timer);
    this.entries.clear();
  }

  private async refresh(host: string, e: Entry): Promise<void> {
    e.inFlight = true;
    let next: Activity<readonly string[]>;
    try {
      const ips = [...new Set(await this.lookupAll(host))].sort();
      // getaddrinfo answers ENOTFOUND rather than nothing; a test double might not.
      next = ips.length ? { kind: 'ok', value: ips } : { kind: 'failed', reason: `cannot resolve ${host}: no addresses` };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      next = { kind: 'failed', reason: `cannot resolve ${host}: ${code}` };
    }
    e.inFlight = false;
    if (this.closed || this.entries.get(host) !== e) return;
    if (next.kind === 'failed') {
      const fields = { host, reason: next.reason, keeping: e.state.kind === 'ok' ? e.state.value : [] };
      if (e.failure === next.reason) this.log.debug(fields, `${this.label}: host lookup failed`);
      else this.log.warn(fields, `${this.label}: host lookup failed`);
      e.failure = next.reason;
      // Keep the last good answer through a failed refresh; fail only before the first.
      if (e.state.kind === 'ok') next = e.state;
    } else e.failure = undefined;
    const changed = JSON.stringify(next) !== JSON.stringify(e.state);
    e.state = next;
    e.timer = setTimeout(() => void this.refresh(host, e), this.refreshMs);
    e.timer.unref();
    if (changed) this.onChange();
  }
}
