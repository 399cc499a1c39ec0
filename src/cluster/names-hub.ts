// The primary's side of remote-names.ts: one real interpreter per router, one watch per
// destination whatever the number of workers asking, and every resolution sent to each
// worker watching it (the last one at once to a worker that joins: after a failure, the last
// good one first, so it keeps what the others keep). A worker that exits
// has its watches dropped; a destination nobody watches any more is unwatched.
import type { Interpreter, Watch } from '../interpreter/interpreter.ts';
import type { Resolution } from '../naming/resolution.ts';
import { type NamesToPrimary, type NamesToWorker, namesKey, replay } from './remote-names.ts';

interface Shared {
  readonly watch: Watch;
  readonly workers: Set<number>;
  last: Resolution | undefined;
  /** The last resolution that was not a failure: consumers keep its endpoints through failures. */
  good: Resolution | undefined;
}

export class NamesHub {
  private readonly interpreters = new Map<string, Interpreter>();
  private readonly shared = new Map<string, Shared>();
  private readonly make: (rt: string) => Interpreter | undefined;
  private readonly send: (worker: number, m: NamesToWorker) => void;

  /** `make`: the interpreter of a router label (undefined for an unknown one); `send`: to one worker. */
  constructor(make: (rt: string) => Interpreter | undefined, send: (worker: number, m: NamesToWorker) => void) {
    this.make = make;
    this.send = send;
  }

  onMessage(worker: number, m: NamesToPrimary): void {
    const key = namesKey(m.rt, m.dst);
    switch (m.type) {
      case 'names-watch': {
        let s = this.shared.get(key);
        if (!s) {
          const interp = this.interpreter(m.rt);
          if (!interp) return;
          const { rt, dst } = m;
          const workers = new Set<number>();
          const entry: Shared = {
            workers, last: undefined, good: undefined,
            watch: interp.watch(dst, (resolution) => {
              entry.last = resolution;
              if (resolution.kind !== 'failed') entry.good = resolution;
              for (const w of [...workers]) this.send(w, { type: 'resolution', rt, dst, resolution });
            }),
          };
          this.shared.set(key, (s = entry));
        }
        s.workers.add(worker);
        for (const resolution of replay(s.good, s.last)) this.send(worker, { type: 'resolution', rt: m.rt, dst: m.dst, resolution });
        return;
      }
      case 'names-unwatch':
        this.leave(key, worker);
        return;
    }
  }

  /** A worker exited: its watches end (a restarted worker watches again). */
  dropWorker(worker: number): void {
    for (const key of [...this.shared.keys()]) this.leave(key, worker);
  }

  /**
   * Router `rt`'s interpreter, the one the workers' destinations resolve through (made now if
   * none watched yet; undefined for an unknown router): the admin's delegator asks it.
   */
  interpreterOf(rt: string): Interpreter | undefined {
    return this.interpreter(rt);
  }

  /** Destinations watched now, for tests and state. */
  get watched(): number {
    return this.shared.size;
  }

  async close(): Promise<void> {
    for (const s of this.shared.values()) s.watch.close();
    this.shared.clear();
    await Promise.all([...this.interpreters.values()].map((i) => i.close()));
    this.interpreters.clear();
  }

  private leave(key: string, worker: number): void {
    const s = this.shared.get(key);
    if (!s || !s.workers.delete(worker) || s.workers.size > 0) return;
    s.watch.close();
    this.shared.delete(key);
  }

  /**
   * A config reload changed or removed router `rt`: its interpreter is made again (`make`
   * reads the new config) and every destination watched through it moves over. Resolves once
   * each has a resolution from the new one (at most `waitMs`), so that new connections,
   * committed after this, see the new dtab.
   */
  async replace(rt: string, waitMs = 2000): Promise<void> {
    const old = this.interpreters.get(rt);
    this.interpreters.delete(rt);
    const firsts: Promise<void>[] = [];
    for (const [key, s] of [...this.shared]) {
      if (!key.startsWith(namesKey(rt, ''))) continue;
      const dst = key.slice(namesKey(rt, '').length);
      s.watch.close();
      const interp = this.interpreter(rt);
      if (!interp) {
        this.shared.delete(key); // the router is gone: its workers' routers are retired too
        continue;
      }
      const got = Promise.withResolvers<void>();
      const workers = s.workers;
      const entry: Shared = {
        workers, last: s.last, good: s.good,
        watch: interp.watch(dst, (resolution) => {
          entry.last = resolution;
          if (resolution.kind !== 'failed') entry.good = resolution;
          got.resolve();
          for (const w of [...workers]) this.send(w, { type: 'resolution', rt, dst, resolution });
        }),
      };
      this.shared.set(key, entry);
      firsts.push(got.promise);
    }
    await old?.close();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(firsts), new Promise<void>((r) => { timer = setTimeout(r, waitMs); })]);
    clearTimeout(timer);
  }

  private interpreter(rt: string): Interpreter | undefined {
    let i = this.interpreters.get(rt);
    if (!i) {
      i = this.make(rt);
      if (i) this.interpreters.set(rt, i);
    }
    return i;
  }
}
