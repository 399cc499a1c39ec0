// The destinations a router created from client-chosen SNI names, least recently used
// first, bounded: random names cannot grow memory (destinations, subscriptions, metric
// series) without bound. Pure bookkeeping; the router closes what `touch` evicts.

const SCAN = 64;

export class SniLru {
  readonly capacity: number;
  /** Insertion order is recency order: a touched name is deleted and re-inserted. */
  private readonly names = new Set<string>();

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get size(): number {
    return this.names.size;
  }

  has(name: string): boolean {
    return this.names.has(name);
  }

  /**
   * Marks `name` used now; returns the names evicted to make room for it (oldest first).
   * Names `busy` says are in use (connections waiting on them) are passed over, looking at
   * most SCAN of the oldest: the set may then exceed its capacity until they are idle.
   */
  touch(name: string, busy: (name: string) => boolean = () => false): string[] {
    if (this.names.delete(name)) {
      this.names.add(name);
      return [];
    }
    const out: string[] = [];
    let looked = 0;
    for (const old of this.names) {
      if (this.names.size < this.capacity || looked++ >= SCAN) break;
      if (busy(old)) continue;
      this.names.delete(old);
      out.push(old);
    }
    this.names.add(name);
    return out;
  }
}
