// Connections waiting for a destination's first resolution, in arrival order. Each gets a
// slot it can cancel in O(1) from any state (idempotent), so a connection that gives up
// leaves nothing queued; whoever drains the queue never sees a cancelled slot. Pure: the
// clock is passed in, and the owner arms the one timer for the oldest slot.

export interface Slot {
  /** When it was queued (the owner's clock, ms). */
  readonly since: number;
  /** True while still queued. */
  readonly queued: boolean;
  /** Leaves the queue; a no-op when already out (drained, expired or cancelled). */
  cancel(): void;
}

class QueueSlot<T> implements Slot {
  readonly item: T;
  readonly since: number;
  private readonly set: Set<QueueSlot<T>>;
  constructor(set: Set<QueueSlot<T>>, item: T, since: number) {
    this.set = set;
    this.item = item;
    this.since = since;
  }
  get queued(): boolean {
    return this.set.has(this);
  }
  cancel(): void {
    this.set.delete(this);
  }
}

export class WaitQueue<T> {
  // A Set keeps insertion order and deletes in O(1).
  private readonly slots = new Set<QueueSlot<T>>();

  get size(): number {
    return this.slots.size;
  }

  /** When the oldest queued slot was queued, or undefined when empty. */
  get oldest(): number | undefined {
    for (const s of this.slots) return s.since;
    return undefined;
  }

  add(item: T, now: number): Slot {
    const s = new QueueSlot(this.slots, item, now);
    this.slots.add(s);
    return s;
  }

  /** Removes every slot and returns their items in arrival order. */
  drain(): T[] {
    const out: T[] = [];
    for (const s of this.slots) out.push(s.item);
    this.slots.clear();
    return out;
  }

  /** Removes the slots queued at or before `since` and returns their items, oldest first. */
  expire(since: number): T[] {
    const out: T[] = [];
    for (const s of this.slots) {
      if (s.since > since) break;
      this.slots.delete(s);
      out.push(s.item);
    }
    return out;
  }
}
