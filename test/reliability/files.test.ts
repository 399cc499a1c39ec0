// Files that block or never end (issue 20, items 1-2): a FIFO or /dev/zero where the config,
// a TLS key or the admin token file should be. At start and `--check` each is refused at
// once, naming the key path and the file; in a running proxy (a TLS file watch, SIGHUP,
// POST /reload, watchConfig) each is refused while plain TCP and /ping keep answering
// throughout and memory stays flat.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { roundTrip } from '../support/client.ts';
import { echo, runCli, startBackend, startProxy, TEST_WORKERS, writeConfig } from '../support/harness.ts';

const PKI = new URL('../fixtures/tls/', import.meta.url).pathname;
const mkfifo = (path: string): void => void execFileSync('mkfifo', [path]);

function tlsDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'l5d-files-'));
  copyFileSync(join(PKI, 'ec.key'), join(dir, 'key.pem'));
  writeFileSync(join(dir, 'cert.pem'), readFileSync(join(PKI, 'ec.pem'), 'utf8') + readFileSync(join(PKI, 'chain.pem'), 'utf8'));
  return dir;
}

function config(backend: number, key: string, cert: string, extra = ''): string {
  return `
admin: {port: 0, graceSecs: 1}
${extra}
routers:
- label: plain
  dtab: /svc/be => /$/inet/127.0.0.1/${backend};
  servers: [{port: 0, dstName: /svc/be}]
- label: tls
  dtab: /svc/be => /$/inet/127.0.0.1/${backend};
  servers:
  - port: 0
    dstName: /svc/be
    tls: {defaultIdentity: {privateKey: ${key}, certs: [${cert}]}}
`;
}

describe('files that are not regular files', () => {
  const cleanup: (() => Promise<unknown> | void)[] = [];
  after(async () => { for (const c of cleanup.reverse()) await c(); });

  it('start and --check refuse a FIFO or /dev/zero as the config, a TLS key or the token file, at once and naming both', async () => {
    const dir = tlsDir();
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    mkfifo(join(dir, 'fifo'));
    symlinkSync('/dev/zero', join(dir, 'zero.yml'));
    symlinkSync(join(dir, 'fifo'), join(dir, 'fifo.yml'));
    const key = join(dir, 'key.pem'), cert = join(dir, 'cert.pem');
    const cases: [string[], RegExp][] = [
      [[writeConfig(config(1, join(dir, 'fifo'), cert))], /routers\[1\]\.servers\[0\]\.tls\.defaultIdentity\.privateKey: cannot read .*\/fifo: a FIFO, not a regular file/],
      [[writeConfig(config(1, '/dev/zero', cert))], /defaultIdentity\.privateKey: cannot read \/dev\/zero: a character device, not a regular file/],
      [[writeConfig(config(1, key, join(dir, 'fifo')))], /defaultIdentity\.certs\[0\]: cannot read .*\/fifo: a FIFO, not a regular file/],
      [[writeConfig(config(1, key, cert, `\n`).replace('graceSecs: 1}', `graceSecs: 1, tokenFile: ${join(dir, 'fifo')}}`))], /admin\.tokenFile: cannot read .*\/fifo: a FIFO, not a regular file/],
      [[join(dir, 'zero.yml')], /zero\.yml: cannot read config: a character device, not a regular file/],
      [[join(dir, 'fifo.yml')], /fifo\.yml: cannot read config: a FIFO, not a regular file/],
    ];
    for (const [args, want] of cases) {
      // The token file is read at start, not by --check's decoding: start alone covers it.
      const runs = want.source.includes('tokenFile') ? [runCli(args, { LINKERD_TCP_WORKERS: TEST_WORKERS })] : [runCli(args, { LINKERD_TCP_WORKERS: TEST_WORKERS }), runCli(['--check', ...args])];
      for (const r of await Promise.all(runs)) {
        assert.equal(r.code, 1, JSON.stringify(r));
        assert.match(r.stdout + r.stderr, want, JSON.stringify(r));
      }
    }
  });

  it('a running proxy refuses them at a TLS file change, SIGHUP, POST /reload and watchConfig, serving throughout', async () => {
    const dir = tlsDir();
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const be = await startBackend(echo);
    cleanup.push(() => be.close());
    const key = join(dir, 'key.pem'), cert = join(dir, 'cert.pem');
    const { proxy, ports: [plain] } = await startProxy(config(be.port, key, cert, 'watchConfig: true'), 2);
    cleanup.push(() => proxy.stop('SIGKILL'));
    // Every worker started (each reads the key at start): a file made bad before would stop a late one.
    await proxy.waitForCount((l) => l.msg === 'listening', 2 * Number(TEST_WORKERS), 45_000, 'every worker listening');
    const admin = String((await proxy.waitForLog((l) => l.msg === 'admin listening'))['admin']);
    const file = String(proxy.proc.spawnargs.at(-1));

    // Plain TCP and /ping, again and again, while the files below go bad.
    let served = 0;
    const failures: string[] = [];
    let running = true;
    const loop = (async () => {
      while (running) {
        try {
          assert.equal(await roundTrip(plain!, 'hello'), 'hello');
          const ping = await fetch(`http://${admin}/ping`, { signal: AbortSignal.timeout(5000) });
          assert.equal(ping.status, 200);
          served++;
        } catch (e) {
          failures.push((e as Error).message);
          break; // the first failure is the answer; looping on it would only spin
        }
      }
    })();
    const logsFrom = (n: number, msg: string, re: RegExp): Promise<unknown> =>
      proxy.waitForLog((l) => proxy.logs.indexOf(l) >= n && l.msg === msg && re.test(String(l['err'])), 15_000, `${msg} ${re}`)
        .catch((e: Error) => { throw new Error(`${e.message}; logs since: ${JSON.stringify(proxy.logs.slice(n).map((l) => [l.msg, l['pid'], l['err']]))}; stderr: ${proxy.stderr}`); });

    // 1. The key replaced by a FIFO: the TLS watch sees it and refuses it.
    let n = proxy.logs.length;
    renameSync(key, join(dir, 'key.good'));
    mkfifo(key);
    await logsFrom(n, 'tls reload failed; keeping the previous keys and certificates', /privateKey: cannot read .*key\.pem: a FIFO, not a regular file/);

    // 2. SIGHUP with the FIFO still there: the config reload and the TLS reload both refuse it.
    n = proxy.logs.length;
    proxy.proc.kill('SIGHUP');
    await logsFrom(n, 'tls reload failed; keeping the previous keys and certificates', /a FIFO, not a regular file/);
    rmSync(key);
    renameSync(join(dir, 'key.good'), key);

    // 3. POST /reload of a config whose key is /dev/zero: refused, and memory does not grow.
    const rssBefore = rssMiB(proxy.proc.pid!);
    writeFileSync(`${file}.tmp`, config(be.port, '/dev/zero', cert, 'watchConfig: true'));
    renameSync(`${file}.tmp`, file);
    const r = await fetch(`http://${admin}/reload`, { method: 'POST' });
    const body = await r.json() as { result: string; error: string };
    assert.equal(r.status, 422, JSON.stringify(body));
    assert.match(body.error, /defaultIdentity\.privateKey: cannot read \/dev\/zero: a character device, not a regular file/);
    assert.ok(rssMiB(proxy.proc.pid!) < rssBefore + 64, `RSS ${rssBefore} -> ${rssMiB(proxy.proc.pid!)} MiB`);

    // 4. watchConfig: the config itself becomes a symlink to /dev/zero, then a FIFO.
    n = proxy.logs.length;
    rmSync(file);
    symlinkSync('/dev/zero', file);
    await logsFrom(n, 'config reload failed', /cannot read config: a character device, not a regular file/);
    n = proxy.logs.length;
    rmSync(file);
    mkfifo(file);
    await logsFrom(n, 'config reload failed', /cannot read config: a FIFO, not a regular file/);
    assert.ok(rssMiB(proxy.proc.pid!) < rssBefore + 64, `RSS ${rssBefore} -> ${rssMiB(proxy.proc.pid!)} MiB`);

    running = false;
    await loop;
    assert.deepEqual(failures, []);
    assert.ok(served >= 4, `served ${served}`);
    // And it still stops as asked.
    assert.equal(await proxy.stop(), 0);
  });
});

function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) / 1024;
}
