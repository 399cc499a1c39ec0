// The naming contract every interpreter (and, through the default interpreter, every namer)
// keeps, as one function that registers the same tests for whatever a factory builds (hono's
// common.case.test.ts pattern): callbacks never run inside watch(), never after the watch or
// the interpreter is closed; a failing source never replaces the last good set with anything
// but a failure; a burst of changes is delivered coalesced, ending with the latest.
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { Interpreter } from '../../src/interpreter/interpreter.ts';
import type { Resolution } from '../../src/naming/resolution.ts';
import { deadline } from './harness.ts';

export interface Subject {
  readonly interp: Interpreter;
  readonly dst: string;
  /** A second interpreter over the same source (to see a change after `interp` is closed). */
  another(): Interpreter;
  /** Makes `dst` resolve to 127.0.0.1 on these ports (synchronously: the source is changed on return). */
  set?(ports: readonly number[]): void;
  /** Breaks the source (bad answer, bad file…); resolves once the interpreter has surely seen it. */
  break?(): Promise<void>;
}

export type Factory = (t: TestContext) => Promise<Subject>;

/** The ports a resolution names, sorted, or its kind. */
export const portsOf = (r: Resolution | undefined): string =>
  r === undefined ? 'nothing' : r.kind === 'bound' ? r.endpoints.map((e) => e.port).sort((a, b) => a - b).join(',') || 'none' : r.kind;

/** Subscribes, recording every resolution and whether it came from inside watch(). */
function record(interp: Interpreter, dst: string) {
  const seen: Resolution[] = [];
  let inside = true;
  let syncCalls = 0;
  let closedAt = -1;
  let afterClose = 0;
  const waiters = new Set<() => void>();
  const w = interp.watch(dst, (r) => {
    if (inside) syncCalls++;
    if (closedAt >= 0) afterClose++;
    seen.push(r);
    for (const x of [...waiters]) x();
  });
  inside = false;
  return {
    seen,
    get syncCalls() { return syncCalls; },
    get afterClose() { return afterClose; },
    close() { closedAt = seen.length; w.close(); },
    /** Waits until the latest resolution names `want` (ports joined by commas, a kind, or '*' for anything); its index. */
    until(want: string, ms = 8000): Promise<number> {
      const ok = (): boolean => seen.length > 0 && (want === '*' || portsOf(seen.at(-1)) === want);
      if (ok()) return Promise.resolve(seen.length - 1);
      return deadline(ms, `${dst} → ${want} (last: ${portsOf(seen.at(-1))})`, new Promise<number>((resolve) => {
        const check = (): void => {
          if (!ok()) return;
          waiters.delete(check);
          resolve(seen.length - 1);
        };
        waiters.add(check);
      }));
    },
  };
}

/**
 * Registers the contract for `factory`'s subjects. `can` says which parts apply: a source of
 * IP literals (`/$/inet/127.0.0.1/…`) neither changes nor fails, so only the first two do.
 */
export function namingContract(name: string, factory: Factory, can: { change: boolean; fail: boolean }): void {
  describe(`naming contract: ${name}`, () => {
    it('never calls back from inside watch(), for the first subscriber or a later one', async (t) => {
      const s = await factory(t);
      s.set?.([1001]);
      const a = record(s.interp, s.dst);
      t.after(() => a.close());
      await a.until('*');
      const b = record(s.interp, s.dst); // a value is cached now: still not synchronous
      t.after(() => b.close());
      await b.until(portsOf(a.seen.at(-1)));
      assert.equal(a.syncCalls + b.syncCalls, 0);
    });

    it('never calls back after the watch is closed, nor after the interpreter is', async (t) => {
      const s = await factory(t);
      s.set?.([1001]);
      const a = record(s.interp, s.dst);
      const b = record(s.interp, s.dst);
      const want = s.set ? '1001' : '*';
      await a.until(want);
      await b.until(want);
      a.close();
      const closedEarly = record(s.interp, s.dst);
      closedEarly.close(); // closed before its first value could come
      if (s.set) {
        s.set([1002]);
        await b.until('1002');
      } else await record(s.interp, s.dst).until('*'); // a later subscriber is still served
      await s.interp.close();
      s.set?.([1003]);
      // A second interpreter over the same source sees the change: the closed one had every chance to call back.
      const other = s.another();
      t.after(() => other.close());
      const c = record(other, s.dst);
      await c.until(s.set ? '1003' : '*');
      c.close();
      assert.equal(a.afterClose, 0, 'nothing after Watch.close()');
      assert.equal(closedEarly.seen.length, 0, 'nothing for a watch closed at once');
      assert.equal(b.seen.filter((r) => portsOf(r) === '1003').length, 0, 'nothing after Interpreter.close()');
      b.close();
    });

    if (can.fail) it('keeps the last good set while the source fails: only failures, never another set', async (t) => {
      const s = await factory(t);
      if (!s.set || !s.break) throw new Error('a subject that can fail needs set() and break()');
      s.set([1001, 1002]);
      const a = record(s.interp, s.dst);
      t.after(() => a.close());
      const good = await a.until('1001,1002');
      await s.break();
      const during = a.seen.slice(good + 1).map(portsOf);
      assert.ok(during.every((x) => x === 'failed'), `while broken: ${during.join(' | ')}`);
      s.set([1003]);
      await a.until('1003');
    });

    if (can.change) it('coalesces a burst of changes, ending with the latest', async (t) => {
      const s = await factory(t);
      if (!s.set) throw new Error('a subject that can change needs set()');
      s.set([1001]);
      const a = record(s.interp, s.dst);
      t.after(() => a.close());
      const first = await a.until('1001');
      for (let i = 0; i < 20; i++) s.set([2000 + i]);
      await a.until('2019');
      const delivered = a.seen.slice(first + 1).map(portsOf);
      assert.ok(delivered.length <= 3, `20 changes delivered as ${delivered.length}: ${delivered.join(' | ')}`);
    });
  });
}
