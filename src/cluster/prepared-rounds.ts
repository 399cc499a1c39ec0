// A worker's side of the reload rounds (cluster-reload.ts is the primary's): a prepared
// reload waits here by round id for the primary's commit or abort. An abort can overtake its
// own prepare (the primary gives up on a slow worker after 15 s and aborts everywhere): the
// prepare that finishes after it is aborted at once, never kept, or its new listeners would
// stay bound (and a later reload adding the same port would fail with EADDRINUSE).

export interface Preparable {
  commit(): void;
  abort(): Promise<void>;
}

export class PreparedRounds<P extends Preparable> {
  private readonly ready = new Map<number, P>();
  private readonly preparing = new Set<number>();
  private readonly aborted = new Set<number>();

  /** Waits for round `id`'s prepare: null when it is ready for commit, else why not. */
  async prepare(id: number, work: Promise<P>): Promise<string | null> {
    this.preparing.add(id);
    let p: P;
    try {
      p = await work;
    } catch (e) {
      this.aborted.delete(id);
      return (e as Error).message;
    } finally {
      this.preparing.delete(id);
    }
    if (this.aborted.delete(id)) {
      await p.abort().catch(() => {}); // what it bound is let go either way; nobody waits on this round
      return 'aborted by the primary before it was prepared';
    }
    this.ready.set(id, p);
    return null;
  }

  commit(id: number): void {
    const p = this.ready.get(id);
    this.ready.delete(id);
    p?.commit();
  }

  /** Aborts round `id`: now when prepared, else as soon as its prepare finishes. */
  abort(id: number): Promise<void> {
    const p = this.ready.get(id);
    this.ready.delete(id);
    if (!p && this.preparing.has(id)) this.aborted.add(id);
    return p ? p.abort() : Promise.resolve();
  }

  /** Rounds held for a commit or an abort (for tests and state). */
  get held(): number {
    return this.ready.size;
  }
}
