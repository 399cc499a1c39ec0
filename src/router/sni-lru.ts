// The destinations a router created from client-chosen SNI names, least recently used
// first, bounded: random names cannot grow memory (destinations, subscriptions, metric
// series) without bound. Pure bookkeeping; the router closes what `touch` evicts.

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

  /** Marks `name` used now; returns the names evicted to make room for it (oldest first). */
  touch(name: string): string[] {
    if (this.names.delete(name)) {
      this.names.add(name);
      return [];
    }
    const out: string[] = [];
    for (const old of this.names) {
      if (this.names.size < this.capacity) break;
      this.names.delete(old);
      out.push(old);
    }
    this.names.add(name);
    return out;
  }
}
