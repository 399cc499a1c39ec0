// The primary as a supervisor, with two workers through the real CLI: a worker killed
// while the admin server asks it for metrics never takes the proxy down (no EPIPE crash),
// a systemd-style SIGTERM to every process under load exits 0, a replacement worker that
// cannot read its (now broken) TLS file leaves the others serving and retries, and a
// second instance on the same port fails with EADDRINUSE instead of sharing it.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { deadline, echo, type LogLine, Proxy, startBackend, writeConfig } from './support/harness.ts';

const PKI = new URL('./fixtures/tls/', import.meta.url).pathname;
const cleanup: (() => Promise<unknown> | void)[] = [];
after(async () => { for (const c of cleanup.reverse()) await c(); });

async function start(config: string): Promise<{ p: Proxy; port: number; admin: string }> {
  const p = new Proxy([writeConfig(config)]);
  cleanup.push(() => p.stop('SIGKILL'));
  const [l] = await Promise.race([
    p.waitForCount((x) => x.msg === 'listening', 2, 20_000, 'both workers listening'),
    p.exited.then((c) => { throw new Error(`proxy exited with ${c}: ${p.stderr}`); }),
  ]);
  const admin = String((await p.waitForLog((x) => x.msg === 'admin listening'))['admin']);
  return { p, port: Number(String(l!['srv']).split(':').pop()), admin };
}

const plain = (backend: number, port = 0, workers = 2): string => `
workers: ${workers}
admin: {port: 0, graceSecs: 2}
routers:
- label: sup
  dtab: /svc => /$/inet/127.0.0.1/${backend};
  servers:
  - {port: ${port}, dstName: /svc}
`;

/** Worker pids serving now: those that logged 'listening' and have not been reported dead. */
const liveWorkers = (p: Proxy): number[] => {
  const dead = new Set(p.logs.filter((l) => l.msg === 'worker exited; restarting').map((l) => Number(l['workerPid'] ?? l['pid'])));
  return p.logs.filter((l) => l.msg === 'listening').map((l) => Number(l['pid'])).filter((pid) => !dead.has(pid));
};

/** `n` admin scrapers looping over `paths` until `stop()`; `warm` resolves after 2n answers. */
function scrapers(admin: string, paths: string[], n = 16): { warm: Promise<void>; stop(): Promise<void> } {
  let on = true, answered = 0;
  const warm = Promise.withResolvers<void>();
  cleanup.push(() => { on = false; }); // a failed test must not leave them looping
  const loops = Array.from({ length: n }, async (_, i) => {
    while (on) {
      await fetch(`http://${admin}/${paths[i % paths.length]}`).then((r) => r.text(), () => '');
      if (++answered === 2 * n) warm.resolve();
    }
  });
  return { warm: deadline(10_000, 'scrapes under way', warm.promise), stop: async () => { on = false; await Promise.all(loops); } };
}

async function echoOnce(port: number, msg: string): Promise<string> {
  const s = netConnect({ port, host: '127.0.0.1' });
  s.on('error', () => {});
  await deadline(5000, 'connect', once(s, 'connect'));
  s.end(msg);
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

describe('the primary as a supervisor', () => {
  it('a worker killed with SIGKILL while 16 scrapes ask it for /metrics never takes the proxy down', { timeout: 60_000 }, async () => {
    const b = await startBackend(echo);
    cleanup.push(() => b.close());
    const { p, port, admin } = await start(plain(b.port));
    const load = scrapers(admin, ['metrics']);
    await load.warm;
    for (let round = 1; round <= 4; round++) {
      const victim = liveWorkers(p)[0]!;
      process.kill(victim, 'SIGKILL');
      await p.waitForLog((l) => l.msg === 'worker exited; restarting' && (l['workerPid'] ?? l['pid']) === victim, 10_000, `round ${round}: restart`);
      await p.waitForCount((l) => l.msg === 'listening', 2 + round, 45_000, `round ${round}: replacement listening`);
      assert.equal(p.proc.exitCode, null, `round ${round}: the primary is alive (${p.stderr})`);
    }
    await load.stop();
    for (let i = 0; i < 6; i++) assert.equal(await echoOnce(port, `m${i}`), `m${i}`);
    assert.equal(await p.stop('SIGTERM'), 0);
    assert.doesNotMatch(p.stderr, /internal error|EPIPE|ERR_IPC/);
  });

  it('a systemd-style SIGTERM to every process during /api/state load drains and exits 0', { timeout: 60_000 }, async () => {
    const b = await startBackend(echo);
    cleanup.push(() => b.close());
    for (let round = 1; round <= 2; round++) {
      const { p, admin } = await start(plain(b.port));
      const load = scrapers(admin, ['api/state', 'metrics']);
      await load.warm;
      for (const pid of [p.proc.pid!, ...liveWorkers(p)]) process.kill(pid, 'SIGTERM');
      const code = await deadline(15_000, 'exit', p.exited);
      await load.stop();
      assert.equal(code, 0, `round ${round}: ${p.stderr}`);
      assert.doesNotMatch(p.stderr, /internal error|EPIPE|ERR_IPC/);
    }
  });

  it('a bad TLS file on disk and a worker restart: the others keep serving, the replacement retries, /api/state says so', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'l5d-sup-tls-'));
    const certPem = readFileSync(join(PKI, 'rsa.pem'), 'utf8') + readFileSync(join(PKI, 'chain.pem'), 'utf8');
    copyFileSync(join(PKI, 'rsa.key'), join(dir, 'key.pem'));
    writeFileSync(join(dir, 'cert.pem'), certPem);
    const b = await startBackend(echo);
    cleanup.push(() => b.close());
    const { p, port, admin } = await start(`
workers: 2
admin: {port: 0, graceSecs: 2}
routers:
- label: tls
  dtab: /svc => /$/inet/127.0.0.1/${b.port};
  servers:
  - port: 0
    dstName: /svc
    tls: {defaultIdentity: {privateKey: ${join(dir, 'key.pem')}, certs: [${join(dir, 'cert.pem')}]}}
`);
    const handshake = (): Promise<string> => new Promise((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false });
      s.once('secureConnect', () => { s.end('hi'); resolve('ok'); });
      s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    writeFileSync(join(dir, 'cert.pem'), 'not a certificate');
    p.proc.kill('SIGHUP'); // the file watch may not be set up yet: SIGHUP reaches every worker
    const [victim, survivor] = liveWorkers(p) as [number, number];
    for (const pid of [victim, survivor]) {
      await p.waitForLog((l) => l.msg === 'tls reload failed; keeping the previous keys and certificates' && l['pid'] === pid, 10_000, `worker ${pid} keeps the old material`);
    }
    process.kill(victim, 'SIGKILL');
    const failed = await p.waitForLog((l: LogLine) => l.msg === 'worker failed to start; the other workers keep serving', 15_000);
    assert.match(String(failed['err']), /cert\.pem/);
    assert.equal(p.proc.exitCode, null, p.stderr);
    for (let i = 0; i < 10; i++) assert.equal(await deadline(5000, 'handshake', handshake()), 'ok', `handshake ${i}`);
    const state = await (await fetch(`http://${admin}/api/state`)).json() as { workers: { degraded: boolean; lastFailure: string | null; configured: number } };
    assert.equal(state.workers.configured, 2);
    assert.equal(state.workers.degraded, true);
    assert.match(String(state.workers.lastFailure), /cert\.pem/);
    assert.equal((await fetch(`http://${admin}/ready`)).status, 200, 'still ready: a worker serves');
    // Fixed on disk: the next retry starts, and the flag clears.
    writeFileSync(join(dir, 'cert.pem'), certPem);
    await p.waitForLog((l) => l.msg === 'worker started again; all workers serving', 20_000);
    const fixed = await (await fetch(`http://${admin}/api/state`)).json() as { workers: { degraded: boolean } };
    assert.equal(fixed.workers.degraded, false);
    assert.equal(await p.stop('SIGTERM'), 0);
  });

  it('a second instance on the same port fails with EADDRINUSE and exit 1, with workers as with one process', { timeout: 60_000 }, async () => {
    const b = await startBackend(echo);
    cleanup.push(() => b.close());
    const { p, port } = await start(plain(b.port));
    for (const workers of [2, 1]) {
      const second = new Proxy([writeConfig(plain(b.port, port, workers))], { LOG_LEVEL: 'warn' });
      cleanup.push(() => second.stop('SIGKILL'));
      assert.equal(await deadline(15_000, 'the second instance to exit', second.exited), 1, `workers ${workers}: ${second.stderr}`);
      assert.match(second.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} \\(router sup\\): EADDRINUSE`));
    }
    assert.equal(p.proc.exitCode, null);
  });
});
