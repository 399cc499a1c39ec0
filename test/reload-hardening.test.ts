// Reloads that must not cut or misread (issue 20, items 3-5): a server whose settings change
// keeps its open connections past admin.graceSecs (only a removed server cuts them); a config
// rewritten in place in two parts under watchConfig is applied once, whole; files written
// beside the watched certificates never trigger a TLS reload, while a Kubernetes-style
// `..data` symlink swap does.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { roundTrip } from './support/client.ts';
import { deadline, deadPort, echo, Proxy, startBackend, writeConfig } from './support/harness.ts';

const PKI = new URL('./fixtures/tls/', import.meta.url).pathname;

/** An open connection that echoes: `say` checks a round trip without closing. */
async function hold(port: number): Promise<{ s: Socket; closed: Promise<void>; say(msg: string): Promise<void> }> {
  const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  s.on('error', () => {});
  await deadline(5000, `connect to ${port}`, once(s, 'connect'));
  const closed = new Promise<void>((resolve) => { s.once('close', () => resolve()); s.once('end', () => resolve()); });
  let got = '';
  s.setEncoding('utf8').on('data', (d: string) => (got += d));
  return {
    s, closed,
    async say(msg: string): Promise<void> {
      got = '';
      s.write(msg);
      await deadline(5000, `echo of ${msg}`, new Promise<void>((resolve, reject) => {
        const check = (): void => { if (got === msg) { s.off('data', check); resolve(); } };
        s.on('data', check);
        closed.then(() => reject(new Error(`connection closed before the echo of ${msg}`)));
      }));
    },
  };
}

describe('reloads that keep connections and read files whole', () => {
  const cleanup: (() => Promise<unknown> | void)[] = [];
  after(async () => { for (const c of cleanup.reverse()) await c(); });

  async function start(text: string, servers: number): Promise<{ proxy: Proxy; ports: number[]; file: string; admin: string }> {
    const file = writeConfig(text);
    const proxy = new Proxy([file]);
    cleanup.push(() => proxy.stop('SIGKILL'));
    const ports = await Promise.race([proxy.listening(servers), proxy.exited.then((c) => { throw new Error(`proxy exited with ${c}: ${proxy.stderr}`); })]);
    const admin = String((await proxy.waitForLog((l) => l.msg === 'admin listening'))['admin']);
    return { proxy, ports, file, admin };
  }

  it('a settings-only reload keeps open connections past graceSecs; new connections get the new settings; a removed server is cut', async () => {
    const be = await startBackend(echo);
    cleanup.push(() => be.close());
    const [changed, removed] = [await deadPort(), await deadPort()];
    const cfg = (settings: string, servers: string): string => `admin: {port: 0, graceSecs: 1}
routers:
- label: r
  dtab: /svc/a => /$/inet/127.0.0.1/${be.port};
  servers:
  - {port: ${changed}, dstName: /svc/a, ${settings}}${servers}
`;
    const { file, admin } = await start(cfg('connectTimeoutMs: 2000, idleTimeoutMs: 60000', `\n  - {port: ${removed}, dstName: /svc/a}`), 2);
    const held = await Promise.all(Array.from({ length: 20 }, () => hold(changed)));
    await Promise.all(held.map((h, i) => h.say(`before ${i}`)));
    const cut = await hold(removed);
    await cut.say('before');

    writeFileSync(file, cfg('connectTimeoutMs: 500, idleTimeoutMs: 300', ''));
    const r = await fetch(`http://${admin}/reload`, { method: 'POST' });
    const body = await r.json() as { result: string; changes: string[] };
    assert.equal(body.result, 'ok', JSON.stringify(body));
    assert.deepEqual(body.changes, [
      `server r 127.0.0.1:${changed}: connectTimeoutMs, idleTimeoutMs changed (new connections get the new settings; open ones keep theirs and run to their end)`,
      `server r 127.0.0.1:${removed}: removed (stops accepting; open connections drain for admin.graceSecs, then the rest are cut)`,
    ]);
    // The removed server's connection is cut once graceSecs is over: the clock for the rest.
    await deadline(10_000, 'the removed server cutting its connection', cut.closed);
    // A new connection has the new idle timeout (300 ms): it is closed while idle.
    const fresh = await hold(changed);
    await fresh.say('new');
    await deadline(10_000, 'the new idle timeout closing a new connection', fresh.closed);
    // Past graceSecs, and past the new idle timeout: every connection from before still works.
    await Promise.all(held.map((h, i) => h.say(`after ${i}`)));
    for (const h of held) h.s.destroy();
  });

  it('watchConfig reads a config rewritten in place in two parts once, whole', async () => {
    const be = await startBackend(echo);
    cleanup.push(() => be.close());
    const [a, b, c] = [await deadPort(), await deadPort(), await deadPort()];
    const head = `admin: {port: 0, graceSecs: 1}
watchConfig: true
routers:
- label: r
  dtab: /svc/a => /$/inet/127.0.0.1/${be.port};
  servers:
  - {port: ${a}, dstName: /svc/a}
`;
    const { proxy, file } = await start(head + `  - {port: ${b}, dstName: /svc/a}\n`, 2);
    const onB = await Promise.all(Array.from({ length: 10 }, () => hold(b)));
    await Promise.all(onB.map((h) => h.say('before')));
    // In place: truncate and write the first part (a valid config without B), the rest a second later.
    const n = proxy.logs.length;
    const fd = openSync(file, 'w');
    writeSync(fd, head);
    await delay(1000); // the writer's pause between its two parts: the hazard itself, not a wait for the proxy
    writeSync(fd, `  - {port: ${b}, dstName: /svc/a}\n  - {port: ${c}, dstName: /svc/a}\n`);
    closeSync(fd);
    const line = await proxy.waitForLog((l) => proxy.logs.indexOf(l) >= n && (l.msg === 'config reloaded' || l.msg === 'config reload failed'), 15_000, 'the watched reload');
    assert.equal(line.msg, 'config reloaded', JSON.stringify(line));
    assert.deepEqual(line['changes'], [`server r 127.0.0.1:${c}: added (starts listening)`]);
    assert.equal(await roundTrip(c, 'c'), 'c');
    await Promise.all(onB.map((h) => h.say('after')));
    assert.equal(proxy.logs.slice(n).filter((l) => String(l.msg).startsWith('config reload')).length, 1, 'one reload, of the whole file');
    for (const h of onB) h.s.destroy();
  });

  it('TLS files: writes beside them never reload; a ..data symlink swap does, once', async () => {
    const be = await startBackend(echo);
    cleanup.push(() => be.close());
    // The layout kubelet gives a mounted Secret: key.pem -> ..data/key.pem, ..data -> ..<timestamp>.
    const dir = mkdtempSync(join(tmpdir(), 'l5d-k8s-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const version = (name: string, kind: 'ec' | 'rsa'): void => {
      mkdirSync(join(dir, name));
      copyFileSync(join(PKI, `${kind}.key`), join(dir, name, 'key.pem'));
      writeFileSync(join(dir, name, 'cert.pem'), readFileSync(join(PKI, `${kind}.pem`), 'utf8') + readFileSync(join(PKI, 'chain.pem'), 'utf8'));
    };
    version('..v1', 'ec');
    symlinkSync('..v1', join(dir, '..data'));
    symlinkSync('..data/key.pem', join(dir, 'key.pem'));
    symlinkSync('..data/cert.pem', join(dir, 'cert.pem'));
    const { proxy } = await start(`admin: {port: 0, graceSecs: 1}
routers:
- label: tls
  dtab: /svc/a => /$/inet/127.0.0.1/${be.port};
  servers:
  - port: 0
    dstName: /svc/a
    tls: {defaultIdentity: {privateKey: ${join(dir, 'key.pem')}, certs: [${join(dir, 'cert.pem')}]}}
`, 1);
    const n = proxy.logs.length;
    // A log file beside the certificates, written every 300 ms for 1.5 s (each write was a reload before).
    for (let i = 0; i < 5; i++) {
      writeFileSync(join(dir, 'proxy.log'), `line ${i}\n`, { flag: 'a' });
      await delay(300); // spacing the writes, as a logging process does: not a wait for the proxy
    }
    // The swap kubelet does: a new version directory, a new ..data link renamed over the old one.
    version('..v2', 'rsa');
    symlinkSync('..v2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    const done = await proxy.waitForLog((l) => proxy.logs.indexOf(l) >= n && l.msg === 'tls reload done', 15_000, 'tls reload done');
    assert.equal(done['trigger'], 'file change');
    assert.equal(done['reloaded'], 1, JSON.stringify(done));
    // More writes beside them afterwards: still nothing. SIGHUP marks the end of what we look at.
    writeFileSync(join(dir, 'proxy.log'), 'more\n', { flag: 'a' });
    proxy.proc.kill('SIGHUP');
    await proxy.waitForLog((l) => l.msg === 'tls reload done' && l['trigger'] === 'SIGHUP', 15_000, 'the SIGHUP reload');
    // Each process of the proxy (one, or each worker) watches and reloads on its own: once each.
    const fileChanges = proxy.logs.slice(n).filter((l) => l.msg === 'tls reload done' && l['trigger'] === 'file change');
    const pids = fileChanges.map((l) => l['pid']);
    assert.equal(pids.length, new Set(pids).size, JSON.stringify(fileChanges));
  });
});
