// The connection ledger on its own, driven as both engines drive it, with small fakes of a
// destination, its leases and the server metrics: the retry decision and the deadline, the
// lease outcome mapping, the metrics per phase and reason, an idempotent end, a lease
// granted too late, and the `{sni}` fallback.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Endpoint } from '../balancer/endpoint.ts';
import type { Lease, Outcome } from '../balancer/lease.ts';
import type { Slot } from '../balancer/wait-queue.ts';
import type { ServerMetrics } from '../metrics/handles.ts';
import { fdExhaustions } from '../metrics/fd-exhaustion.ts';
import { type CloseReason, ConnectionLedger, outcomeOf, Phase } from './connection-ledger.ts';
import type { Destination, Grant } from './destination.ts';

class FakeLease {
  readonly endpoint: Endpoint;
  readonly outcomes: Outcome[] = [];
  latencyUs: number | undefined;
  constructor(key: string) {
    this.endpoint = { key } as Endpoint;
  }
  connected(latencyUs: number): boolean {
    this.latencyUs = latencyUs;
    return true;
  }
  /** Records every call; the real lease ignores all but the first (the ledger must not rely on that). */
  release(o: Outcome): boolean {
    this.outcomes.push(o);
    return this.outcomes.length === 1;
  }
}
const lease = (key: string): Lease => new FakeLease(key) as unknown as Lease;
const outcomes = (l: Lease | undefined): Outcome[] => (l as unknown as FakeLease).outcomes;

class FakeSlot implements Slot {
  readonly since = 0;
  queued = true;
  cancel(): void {
    this.queued = false;
  }
}

/** A destination answering request() with `first` and retry() from `spares`. */
function destination(first: Grant, spares: Lease[] = [], connectAttempts = 3) {
  const retried: string[] = [];
  const d = {
    config: { connectAttempts },
    request: () => first,
    retry: (failed: Endpoint) => {
      retried.push(failed.key);
      return spares.shift();
    },
  };
  return { dest: d as unknown as Destination, retried };
}

function metrics() {
  const counter = () => ({ value: 0 });
  const stat = () => ({ values: [] as number[], record(v: number) { this.values.push(v); } });
  return {
    closes: counter(), failures: counter(), connectFailureTimeout: counter(), connectFailureOther: counter(),
    streamFailureTimeout: counter(), streamFailureOther: counter(), connectLatencyUs: stat(), durationMs: stat(),
  };
}
type FakeMetrics = ReturnType<typeof metrics>;

/** A connection with no I/O: it records what the ledger asks of its engine. */
class TestConnection extends ConnectionLedger {
  readonly dials: string[] = [];
  readonly events: string[] = [];
  accountedCount = 0;
  /** The engine's clock, as the ledger is told it. */
  now = 0;
  constructor(m: FakeMetrics, connectTimeoutMs: number | undefined, acceptedAt = 0) {
    super({ metrics: m as unknown as ServerMetrics, connectTimeoutMs }, acceptedAt);
  }
  protected override dial(l: Lease): void {
    this.dials.push(l.endpoint.key);
  }
  override finish(reason: CloseReason, code?: string): void {
    this.end(reason, code, this.now);
  }
  protected override accounted(): void {
    this.accountedCount++;
  }
  protected override waitStarted(): void {
    this.events.push('wait');
  }
  protected override waitEnded(): void {
    this.events.push('unwait');
  }
  get phaseNow(): Phase {
    return this.phase;
  }
}

function connectingOn(keys: string[], opts: { connectTimeoutMs?: number; connectAttempts?: number } = {}) {
  const [first, ...rest] = keys.map(lease);
  const m = metrics();
  const { dest, retried } = destination({ kind: 'lease', lease: first! }, [...rest], opts.connectAttempts);
  const c = new TestConnection(m, opts.connectTimeoutMs);
  c.route(dest);
  return { c, m, retried, first: first!, rest };
}

describe('connection ledger', () => {
  it('routes to a lease: dials it, CONNECTING, one attempt; the deadline is acceptedAt + connectTimeoutMs', () => {
    const { c, first } = connectingOn(['a']);
    assert.deepEqual(c.dials, ['a']);
    assert.equal(c.phaseNow, Phase.CONNECTING);
    assert.ok(c.connecting && !c.waiting && !c.open && !c.done);
    assert.equal(c.attempts, 1);
    assert.equal(c.lease, first);
    assert.equal(c.endpoint?.key, 'a');
    assert.equal(new TestConnection(metrics(), 300, 1000).deadlineAt, 1300);
    assert.equal(new TestConnection(metrics(), undefined, 1000).deadlineAt, Infinity);
  });

  it('a failed attempt blames its endpoint once and dials another while attempts and time remain', () => {
    const { c, retried, first, rest } = connectingOn(['a', 'b', 'c'], { connectTimeoutMs: 100 });
    c.attemptFailed('refused', 'ECONNREFUSED', 10);
    assert.deepEqual(outcomes(first), [{ kind: 'failed', cause: 'refused' }]);
    assert.deepEqual(retried, ['a']);
    assert.deepEqual(c.dials, ['a', 'b']);
    assert.equal(c.attempts, 2);
    assert.equal(c.lease, rest[0]);
    assert.ok(c.connecting);
    c.attemptFailed('timeout', undefined, 20);
    assert.deepEqual(c.dials, ['a', 'b', 'c']);
    assert.equal(c.attempts, 3);
  });

  it('no retry once connectAttempts are used: closes with the cause\'s reason and code', () => {
    for (const [cause, reason] of [['refused', 'connect_refused'], ['timeout', 'connect_timeout'], ['other', 'connect_failed']] as const) {
      const { c, m, retried, first } = connectingOn(['a', 'b'], { connectAttempts: 1 });
      c.attemptFailed(cause, 'ECODE', 5);
      assert.deepEqual(retried, [], 'not even asked for another endpoint');
      assert.equal(c.reason, reason);
      assert.equal(c.error, 'ECODE');
      assert.ok(c.done);
      // Blamed once by the attempt; the close's release comes second and the real lease ignores it.
      assert.deepEqual(outcomes(first)[0], { kind: 'failed', cause });
      assert.equal(m.failures.value, 1);
      assert.equal(m.connectFailureTimeout.value, cause === 'timeout' ? 1 : 0);
      assert.equal(m.connectFailureOther.value, cause === 'timeout' ? 0 : 1);
    }
  });

  it('no retry at or after the deadline, even with attempts left', () => {
    const { c, retried } = connectingOn(['a', 'b'], { connectTimeoutMs: 100 });
    c.now = 100;
    c.attemptFailed('timeout', undefined, 100);
    assert.deepEqual(retried, []);
    assert.equal(c.reason, 'connect_timeout');
    assert.equal(c.error, undefined);
    assert.equal(c.closedAt, 100);
  });

  it('no retry when the destination has no other endpoint', () => {
    const { c, retried } = connectingOn(['a']);
    c.attemptFailed('refused', 'ECONNREFUSED', 1);
    assert.deepEqual(retried, ['a']);
    assert.equal(c.reason, 'connect_refused');
  });

  it('maps a close to the lease outcome: only connect failures blame the endpoint', () => {
    const cases: [Phase, CloseReason, string | undefined, Outcome][] = [
      [Phase.OPEN, 'done', undefined, { kind: 'closed', durationMs: 7 }],
      [Phase.OPEN, 'backend_error', 'EMFILE', { kind: 'closed', durationMs: 7 }],
      [Phase.CONNECTING, 'connect_timeout', undefined, { kind: 'failed', cause: 'timeout' }],
      [Phase.CONNECTING, 'connect_refused', 'ECONNREFUSED', { kind: 'failed', cause: 'refused' }],
      [Phase.CONNECTING, 'connect_failed', 'EPROTO', { kind: 'failed', cause: 'other' }],
      [Phase.CONNECTING, 'connect_failed', 'EMFILE', { kind: 'cancelled' }],
      [Phase.CONNECTING, 'connect_failed', 'ENFILE', { kind: 'cancelled' }],
      [Phase.CONNECTING, 'client_error', 'ECONNRESET', { kind: 'cancelled' }],
      [Phase.CONNECTING, 'shutdown', undefined, { kind: 'cancelled' }],
      [Phase.WAITING, 'resolution_timeout', undefined, { kind: 'cancelled' }],
    ];
    for (const [phase, reason, code, want] of cases) assert.deepEqual(outcomeOf(phase, reason, code, 7), want, `${phase} ${reason} ${code}`);
  });

  it('out of descriptors while connecting: the lease is cancelled, not blamed, and the shortage is noted', () => {
    const { c, first } = connectingOn(['a', 'b']);
    const before = fdExhaustions();
    c.finish('connect_failed', 'EMFILE');
    assert.deepEqual(outcomes(first), [{ kind: 'cancelled' }]);
    assert.equal(fdExhaustions(), before + 1);
    assert.equal(c.error, 'EMFILE');
    // Open, an EMFILE is the stream's: a normal close of the lease, no shortage noted here.
    const { c: o, first: l } = connectingOn(['a']);
    o.connectSucceeded(1, 2);
    o.now = 5;
    o.finish('backend_error', 'EMFILE');
    assert.deepEqual(outcomes(l), [{ kind: 'closed', durationMs: 3 }]);
    assert.equal(fdExhaustions(), before + 1);
  });

  it('counts the server metrics by the phase it ended in and the reason', () => {
    const open = (reason: CloseReason): FakeMetrics => {
      const { c, m, first } = connectingOn(['a']);
      c.now = 10;
      assert.equal(c.connectSucceeded(250, 4), true);
      assert.equal((first as unknown as FakeLease).latencyUs, 250);
      assert.ok(c.open);
      assert.equal(c.connectedAt, 4);
      assert.deepEqual(m.connectLatencyUs.values, [4000]); // accept → connected, µs
      c.finish(reason);
      assert.deepEqual(outcomes(first), [{ kind: 'closed', durationMs: 6 }]);
      assert.deepEqual(m.durationMs.values, [6]);
      return m;
    };
    const done = open('done');
    assert.deepEqual([done.closes.value, done.failures.value], [1, 0]);
    for (const r of ['lifetime', 'idle'] as const) {
      const m = open(r);
      assert.deepEqual([m.closes.value, m.failures.value, m.streamFailureTimeout.value, m.streamFailureOther.value], [0, 1, 1, 0], r);
    }
    for (const r of ['backend_error', 'client_error', 'shutdown'] as const) {
      const m = open(r);
      assert.deepEqual([m.failures.value, m.streamFailureTimeout.value, m.streamFailureOther.value], [1, 0, 1], r);
    }
    for (const [r, timeout] of [['resolution_timeout', 1], ['connect_timeout', 1], ['no_endpoints', 0], ['waiters_full', 0], ['client_error', 0], ['sni', 0]] as const) {
      const m = metrics();
      const c = new TestConnection(m, undefined);
      c.finish(r);
      assert.deepEqual([m.failures.value, m.connectFailureTimeout.value, m.connectFailureOther.value, m.closes.value], [1, timeout, 1 - timeout, 0], r);
      assert.deepEqual(m.durationMs.values, [], 'never open: no duration');
    }
  });

  it('ends once: a second end changes nothing and is not accounted again', () => {
    const { c, m, first } = connectingOn(['a']);
    c.now = 3;
    c.finish('client_error', 'ECONNRESET');
    assert.equal(c.end('shutdown', undefined, 9), false);
    c.finish('connect_timeout');
    assert.deepEqual([c.reason, c.error, c.closedAt, c.accountedCount], ['client_error', 'ECONNRESET', 3, 1]);
    assert.equal(m.failures.value, 1);
    assert.deepEqual(outcomes(first), [{ kind: 'cancelled' }]);
    // Nothing moves a finished connection: no connect, no attempt.
    assert.equal(c.connectSucceeded(1, 4), false);
    c.attemptFailed('refused', undefined, 4);
    assert.deepEqual(outcomes(first), [{ kind: 'cancelled' }]);
  });

  it('waits in a slot, cancelled when the lease comes, or when it ends; a lease granted after the end goes back cancelled', () => {
    const slot = new FakeSlot();
    const m = metrics();
    const c = new TestConnection(m, 100);
    c.route(destination({ kind: 'wait', slot }).dest);
    assert.ok(c.waiting);
    assert.equal(c.slot, slot);
    const l = lease('a');
    c.granted({ kind: 'lease', lease: l });
    assert.equal(slot.queued, false);
    assert.equal(c.slot, undefined);
    assert.deepEqual(c.events, ['wait', 'unwait']);
    assert.deepEqual(c.dials, ['a']);

    const slot2 = new FakeSlot();
    const w = new TestConnection(metrics(), 100);
    w.route(destination({ kind: 'wait', slot: slot2 }).dest);
    w.now = 100;
    w.finish('connect_timeout');
    assert.equal(slot2.queued, false, 'the end leaves the queue');
    const late = lease('b');
    w.granted({ kind: 'lease', lease: late });
    assert.deepEqual(outcomes(late), [{ kind: 'cancelled' }]);
    assert.deepEqual(w.dials, []);
    assert.equal(w.lease, undefined);
    assert.equal(w.reason, 'connect_timeout');
  });

  it('a failed destination uses the fallback once; waiters_full never does', () => {
    let fallbacks = 0;
    const c = new TestConnection(metrics(), undefined);
    const fail = destination({ kind: 'fail', reason: 'no_endpoints' }).dest;
    c.fallback = () => {
      fallbacks++;
      c.route(fail); // the default destination fails too
    };
    c.route(fail);
    assert.equal(fallbacks, 1);
    assert.equal(c.fallback, undefined);
    assert.equal(c.reason, 'no_endpoints');

    const full = new TestConnection(metrics(), undefined);
    full.fallback = () => assert.fail('waiters_full is this server\'s load: no fallback');
    full.route(destination({ kind: 'fail', reason: 'waiters_full' }).dest);
    assert.equal(full.reason, 'waiters_full');
  });

  it('adopts a lease already open (a spare) without a connect', () => {
    const m = metrics();
    const c = new TestConnection(m, undefined, 1);
    const l = lease('a');
    c.adopt(l, 3);
    assert.ok(c.open);
    assert.equal(c.attempts, 0);
    assert.equal((l as unknown as FakeLease).latencyUs, undefined);
    assert.deepEqual(m.connectLatencyUs.values, [2000]);
  });
});
