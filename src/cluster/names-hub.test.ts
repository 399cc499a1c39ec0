import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { Interpreter } from '../interpreter/interpreter.ts';
import type { Resolution } from '../naming/resolution.ts';
import { NamesHub } from './names-hub.ts';
import { type NamesToPrimary, type NamesToWorker, RemoteNames } from './remote-names.ts';

it('workers share one watch per destination; a joining worker gets the last resolution; the watch ends with its last worker', async () => {
  const watches = new Map<string, (r: Resolution) => void>();
  let opened = 0, closed = 0;
  const real: Interpreter = {
    watch: (dst, cb) => { opened++; watches.set(dst, cb); return { close: () => { closed++; watches.delete(dst); } }; },
    close: async () => {},
  };
  const workers = new Map<number, RemoteNames>();
  const hub = new NamesHub((rt) => (rt === 'r' ? real : undefined), (id, m: NamesToWorker) => workers.get(id)!.deliver(m.rt, m.dst, m.resolution));
  const worker = (id: number): RemoteNames => {
    const w = new RemoteNames((m: NamesToPrimary) => hub.onMessage(id, m));
    workers.set(id, w);
    return w;
  };
  const got1: Resolution[] = [], got2: Resolution[] = [];
  const w1 = worker(1).interpreter('r').watch('/svc/a', (r) => got1.push(r));
  const bound: Resolution = { kind: 'bound', endpoints: [{ host: '127.0.0.1', port: 1, weight: 1 }] };
  watches.get('/svc/a')!(bound);
  assert.deepEqual(got1, [bound]);
  const w2 = worker(2).interpreter('r').watch('/svc/a', (r) => got2.push(r));
  await Promise.resolve(); // a known resolution arrives next tick, never inside watch()
  await Promise.resolve();
  assert.deepEqual(got2, [bound]);
  assert.equal(opened, 1);
  assert.equal(worker(3).interpreter('nope').watch('/svc/a', () => {}) !== undefined, true); // unknown router: nothing opened
  assert.equal(opened, 1);
  w1.close();
  assert.equal(closed, 0);
  hub.dropWorker(2);
  assert.equal(closed, 1);
  assert.equal(hub.watched, 0);
  w2.close(); // after the hub dropped it: harmless
  await hub.close();
});

it('a worker joining after a failure gets the last good resolution first, then the failure: it keeps the endpoints the others keep', async () => {
  let push: (r: Resolution) => void = () => {};
  const real: Interpreter = { watch: (_dst, cb) => { push = cb; return { close: () => {} }; }, close: async () => {} };
  const workers = new Map<number, RemoteNames>();
  const hub = new NamesHub(() => real, (id, m: NamesToWorker) => workers.get(id)!.deliver(m.rt, m.dst, m.resolution));
  const worker = (id: number): RemoteNames => {
    const w = new RemoteNames((m: NamesToPrimary) => hub.onMessage(id, m));
    workers.set(id, w);
    return w;
  };
  const bound: Resolution = { kind: 'bound', endpoints: [{ host: '127.0.0.1', port: 1, weight: 1 }] };
  const failed: Resolution = { kind: 'failed', reason: 'namerd request failed: ECONNREFUSED' };
  const w1 = worker(1).interpreter('r');
  w1.watch('/svc/a', () => {});
  push(bound);
  push(failed); // namerd went away
  const got2: Resolution[] = [];
  worker(2).interpreter('r').watch('/svc/a', (r) => got2.push(r)); // a worker that starts (or restarts) now
  await Promise.resolve();
  assert.deepEqual(got2, [bound, failed]);
  // And a second router of the same worker watching the same destination later, likewise.
  const again: Resolution[] = [];
  w1.watch('/svc/a', (r) => again.push(r));
  await Promise.resolve();
  assert.deepEqual(again, [bound, failed]);
  await hub.close();
});
