// A config reload with several workers, decided by the primary: the new config gets its
// ports checked and pinned (a kept `port: 0` server keeps its port), then every worker
// prepares it (TLS loaded, new listeners bound) and answers; only when all are ready is
// it committed everywhere, else aborted everywhere. So all workers switch, or none does.
import type { Config } from '../config/types.ts';
import { LinkerdTcpError } from '../errors.ts';
import type { ReloadPlan } from '../reload/plan.ts';
import type { PortBook } from './ports.ts';

/** Primary → worker and back (carried by protocol.ts). */
export type ReloadToWorker =
  | { readonly type: 'reload-prepare'; readonly id: number; readonly config: Config }
  | { readonly type: 'reload-commit'; readonly id: number }
  | { readonly type: 'reload-abort'; readonly id: number };
export type ReloadToPrimary =
  | { readonly type: 'reload-prepared'; readonly id: number; readonly error: string | null }
  | { readonly type: 'reload-committed'; readonly id: number };

const PREPARE_TIMEOUT_MS = 15_000;
/** How long a commit waits for the workers to say it is in force (they commit synchronously). */
const COMMIT_TIMEOUT_MS = 5_000;

/**
 * `next` with concrete ports: kept and changed `port: 0` servers keep theirs; new ones are
 * claimed in `ports` (checked free, and held). The caller lets go of what the config it
 * ends up running has no server on (`ports.keepOnly`), whether the reload went through or not.
 */
export async function pinReloadPorts(running: Config, next: Config, plan: ReloadPlan, ports: PortBook): Promise<Config> {
  const routers = next.routers.map((r) => ({ ...r, servers: [...r.servers] }));
  const held = new Set(running.routers.flatMap((r) => r.servers.map((s) => `${s.ip} ${s.port}`)));
  const added: [number, number][] = [];
  for (const ch of plan.servers) {
    if (ch.kind === 'removed') continue;
    const [i, j] = ch.next!;
    const sc = routers[i]!.servers[j]!;
    if (ch.kind !== 'added') {
      const port = running.routers[ch.old![0]]?.servers[ch.old![1]]?.port;
      if (sc.port === 0 && port !== undefined) routers[i]!.servers[j] = { ...sc, port };
      continue;
    }
    if (sc.port !== 0 && held.has(`${sc.ip} ${sc.port}`)) continue; // ours already (moved between routers)
    added.push([i, j]);
  }
  // All at once, so two added `port: 0` servers never get the same port.
  const got = await ports.claim(added.map(([i, j]) => ({ ...routers[i]!.servers[j]!, rt: next.routers[i]!.label })));
  added.forEach(([i, j], n) => { routers[i]!.servers[j] = { ...routers[i]!.servers[j]!, port: got[n]! }; });
  return { ...next, routers };
}

interface Waiting {
  readonly workers: Set<number>;
  readonly errors: string[];
  readonly done: () => void;
}

/** The primary's side of the prepare / commit exchange. */
export class ReloadRounds {
  private nextId = 1;
  private readonly rounds = new Map<number, Waiting>();
  private readonly commits = new Map<number, Waiting>();
  private readonly send: (worker: number, m: ReloadToWorker) => boolean;

  constructor(send: (worker: number, m: ReloadToWorker) => boolean) {
    this.send = send;
  }

  /**
   * Prepares `config` on every worker, then (after `beforeCommit`) commits it on all and
   * waits until each says it is in force; or aborts it on all and rejects with the workers'
   * errors, or with `beforeCommit`'s.
   */
  async run(workers: readonly number[], config: Config, beforeCommit: () => Promise<void>): Promise<void> {
    const id = this.nextId++;
    const prepared = await this.exchange(this.rounds, workers, { type: 'reload-prepare', id, config }, PREPARE_TIMEOUT_MS);
    if (prepared.timedOut) {
      const late = [...prepared.round.workers];
      prepared.round.errors.push(`worker${late.length > 1 ? 's' : ''} ${late.join(', ')} did not prepare within ${PREPARE_TIMEOUT_MS / 1000} s`);
    }
    if (prepared.round.errors.length) {
      for (const worker of workers) this.send(worker, { type: 'reload-abort', id });
      throw new LinkerdTcpError('CONFIG_INVALID', [...new Set(prepared.round.errors)].join('\n'));
    }
    try {
      await beforeCommit();
    } catch (e) {
      for (const worker of workers) this.send(worker, { type: 'reload-abort', id }); // none left prepared
      throw e;
    }
    // Answered once every worker has it in force (removed listeners closed, new ones serving),
    // so "config reloaded" is true when said. Committed or not by the deadline, each worker
    // runs what it was sent.
    await this.exchange(this.commits, workers, { type: 'reload-commit', id }, COMMIT_TIMEOUT_MS);
  }

  /**
   * Sends `m` to every worker and waits, at most `ms`, until each it reached has answered
   * (onMessage) or exited (dropWorker). The round's `workers` are those that did neither.
   */
  private async exchange(waits: Map<number, Waiting>, workers: readonly number[], m: ReloadToWorker, ms: number): Promise<{ round: Waiting; timedOut: boolean }> {
    const w = Promise.withResolvers<void>();
    const round: Waiting = { workers: new Set(), errors: [], done: w.resolve };
    waits.set(m.id, round);
    for (const worker of workers) round.workers.add(worker); // all before any answer can arrive
    for (const worker of workers) if (!this.send(worker, m)) round.workers.delete(worker);
    let timedOut = false;
    if (round.workers.size > 0) {
      const timer = setTimeout(() => { timedOut = true; w.resolve(); }, ms);
      await w.promise;
      clearTimeout(timer);
    }
    waits.delete(m.id);
    return { round, timedOut };
  }

  onMessage(worker: number, m: ReloadToPrimary): void {
    const round = (m.type === 'reload-prepared' ? this.rounds : this.commits).get(m.id);
    if (!round || !round.workers.delete(worker)) return;
    if (m.type === 'reload-prepared' && m.error !== null) round.errors.push(m.error);
    if (round.workers.size === 0) round.done();
  }

  /** A worker exited mid-round: it no longer counts (it restarts with whichever config is committed). */
  dropWorker(worker: number): void {
    for (const round of [...this.rounds.values(), ...this.commits.values()]) if (round.workers.delete(worker) && round.workers.size === 0) round.done();
  }
}
