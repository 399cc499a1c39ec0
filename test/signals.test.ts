// Signals and exit codes with two workers (the default mode), through the real CLI: a
// second SIGTERM or Ctrl-C to the process group exits 1 at once, one Ctrl-C drains and
// exits 0, /shutdown and /abort reach every worker, a hung worker cannot hold the exit
// past the drain deadline, and a primary descheduled while its workers exit still exits.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { deadline, echo, Proxy, startBackend, writeConfig } from './support/harness.ts';

const cleanup: (() => Promise<unknown> | void)[] = [];
after(async () => { for (const c of cleanup.reverse()) await c(); });

/** A proxy with two workers, started (both listening); `detached`: its own process group. */
async function twoWorkers(graceSecs: number, detached = false): Promise<{ p: Proxy; port: number; admin: string; pids: number[] }> {
  const b = await startBackend(echo);
  cleanup.push(() => b.close());
  const p = new Proxy([writeConfig(`
workers: 2
admin: {port: 0, graceSecs: ${graceSecs}}
routers:
- label: s
  dtab: /svc => /$/inet/127.0.0.1/${b.port};
  servers:
  - {port: 0, dstName: /svc}
`)], {}, { detached });
  cleanup.push(() => {
    try { process.kill(detached ? -p.proc.pid! : p.proc.pid!, 'SIGKILL'); } catch { /* gone */ }
  });
  const listening = await Promise.race([
    p.waitForCount((l) => l.msg === 'listening', 2, 20_000, 'both workers listening'),
    p.exited.then((c) => { throw new Error(`proxy exited with ${c}: ${p.stderr}`); }),
  ]);
  const admin = String((await p.waitForLog((l) => l.msg === 'admin listening'))['admin']);
  return { p, port: Number(String(listening[0]!['srv']).split(':').pop()), admin, pids: listening.map((l) => Number(l['pid'])) };
}

/** A client connection that stays open (so a drain has something to wait for). */
async function holdOpen(port: number): Promise<Socket> {
  const s = connect({ port, host: '127.0.0.1' });
  s.on('error', () => {});
  cleanup.push(() => { s.destroy(); });
  await deadline(5000, 'connect', once(s, 'connect'));
  s.write('x');
  await deadline(5000, 'echo', once(s, 'data'));
  return s;
}

/** Milliseconds until the proxy exits, and its code. */
async function timeExit(p: Proxy, ms: number): Promise<{ code: number | null; ms: number }> {
  const t0 = performance.now();
  const code = await deadline(ms, 'proxy exit', p.exited);
  return { code, ms: performance.now() - t0 };
}

describe('signals with two workers', () => {
  it('a second SIGTERM to the primary exits 1 at once, workers included, while a connection drains', { timeout: 30_000 }, async () => {
    const { p, port } = await twoWorkers(30);
    await holdOpen(port);
    p.proc.kill('SIGTERM');
    await p.waitForLog((l) => l.msg === 'shutting down' && l['worker'] === undefined);
    p.proc.kill('SIGTERM');
    const { code, ms } = await timeExit(p, 5000);
    assert.equal(code, 1);
    assert.ok(ms < 3000, `exited after ${ms} ms`);
    await p.allGone(5000);
    assert.ok(p.logs.some((l) => l.msg === 'second signal: exiting now'));
  });

  it('Ctrl-C twice to the process group exits 1 at once; once drains and exits 0', { timeout: 30_000 }, async () => {
    const twice = await twoWorkers(30, true);
    await holdOpen(twice.port);
    process.kill(-twice.p.proc.pid!, 'SIGINT');
    await twice.p.waitForCount((l) => l.msg === 'shutting down', 3); // the primary and both workers
    process.kill(-twice.p.proc.pid!, 'SIGINT');
    const t = await timeExit(twice.p, 5000);
    assert.equal(t.code, 1);
    assert.ok(t.ms < 3000, `exited after ${t.ms} ms`);
    await twice.p.allGone(5000);

    const once_ = await twoWorkers(30, true);
    process.kill(-once_.p.proc.pid!, 'SIGINT');
    assert.equal((await timeExit(once_.p, 10_000)).code, 0, 'one Ctrl-C is a drain, not an abort');
    await once_.p.allGone(5000);
  });

  it('POST /shutdown drains every worker and exits 0; POST /abort exits 1 at once', { timeout: 30_000 }, async () => {
    const a = await twoWorkers(30);
    assert.equal((await fetch(`http://${a.admin}/shutdown`, { method: 'POST' })).status, 202);
    assert.equal((await timeExit(a.p, 10_000)).code, 0);
    await a.p.allGone(5000);
    const b = await twoWorkers(30);
    await holdOpen(b.port);
    assert.equal((await fetch(`http://${b.admin}/abort`, { method: 'POST' })).status, 202);
    const t = await timeExit(b.p, 5000);
    assert.equal(t.code, 1);
    assert.ok(t.ms < 3000, `exited after ${t.ms} ms`);
    await b.p.allGone(5000);
  });

  it('a hung worker cannot hold the exit past the drain deadline (graceSecs + 3 s): exit 1, nothing left behind', { timeout: 30_000 }, async () => {
    const { p, pids } = await twoWorkers(1);
    process.kill(pids[0]!, 'SIGSTOP'); // hung: it will never drain nor exit on its own
    cleanup.push(() => { try { process.kill(pids[0]!, 'SIGKILL'); } catch { /* gone */ } });
    p.proc.kill('SIGTERM');
    const { code, ms } = await timeExit(p, 10_000);
    assert.equal(code, 1);
    assert.ok(ms < 6000, `exited after ${ms} ms`);
    await p.allGone(5000);
    assert.ok(p.logs.some((l) => l.msg === 'drain deadline passed: exiting now'));
  });

  it('a primary descheduled while its workers answer scrapes and exit (IPC answers unread) neither hangs nor crashes: exit 0', { timeout: 40_000 }, async () => {
    const { p, admin, pids } = await twoWorkers(1);
    // Scrapes in flight, so the workers' answers sit unread in the channel when they exit.
    let scraping = true;
    let answered = 0;
    const warm = Promise.withResolvers<void>();
    const scrapes = Array.from({ length: 16 }, async (_, i) => {
      while (scraping) {
        await fetch(`http://${admin}/${i % 2 ? 'metrics' : 'api/state'}`).then((r) => r.text(), () => '');
        if (++answered === 32) warm.resolve();
      }
    });
    await deadline(10_000, 'scrapes under way', warm.promise);
    cleanup.push(() => { scraping = false; }); // a failed test must not leave them looping
    p.proc.kill('SIGTERM');
    await p.waitForLog((l) => l.msg === 'draining workers'); // logged once the shutdown messages are sent
    process.kill(p.proc.pid!, 'SIGSTOP');
    cleanup.push(() => { try { process.kill(p.proc.pid!, 'SIGCONT'); } catch { /* gone */ } });
    await p.waitForCount((l) => l.msg === 'stopped', 2, 10_000, 'both workers stopped');
    // Both workers are zombies of the stopped primary before it runs again (state Z in /proc).
    await deadline(5000, 'workers exited', (async () => {
      const exited = (pid: number): boolean => { try { return /\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return true; } };
      while (!pids.every(exited)) await new Promise((r) => setTimeout(r, 20));
    })());
    process.kill(p.proc.pid!, 'SIGCONT');
    const { code } = await timeExit(p, 8000);
    scraping = false;
    await Promise.all(scrapes);
    assert.equal(code, 0);
  });
});
