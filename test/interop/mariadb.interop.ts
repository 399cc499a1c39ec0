// MariaDB through the proxy: a throwaway mariadbd in a temp datadir; the mariadb client
// creates a database and table, inserts 100k rows and reads them all back through the
// proxy; counts, sums and hashes must equal the same queries run directly.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Proxy } from '../support/harness.ts';
import { Cleanup, type Daemon, freePort, proxyConfig, report, run, runOk } from './support.ts';

const ROWS = 100_000;
// mariadbd and mariadb-install-db live in /usr/sbin, not always on a user's PATH.
const env = { PATH: `${process.env['PATH'] ?? ''}:/usr/sbin:/sbin` };
// Run as whoever runs the tests (root in CI containers).
const USER = `--user=${userInfo().username}`;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('MariaDB through the proxy', () => {
  const c = new Cleanup();
  let dbPort: number;
  let port: number;
  let proxy: Proxy;
  let db: Daemon;
  const sql = (p: number, query: string, extra: string[] = []): ReturnType<typeof runOk> =>
    runOk('mariadb', ['--no-defaults', '-h', '127.0.0.1', '-P', String(p), '-u', 'root', '-N', '-B', ...extra, '-e', query], { timeoutMs: 30_000 });

  before(async (t) => {
    const t0 = performance.now();
    const dir = c.tmpDir('mariadb');
    const data = join(dir, 'data');
    await runOk('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, USER, '--auth-root-authentication-method=normal', '--skip-test-db'], { timeoutMs: 60_000, env });
    dbPort = await freePort();
    db = c.daemon('mariadbd', 'mariadbd', [
      '--no-defaults', `--datadir=${data}`, `--socket=${join(dir, 'sock')}`, `--pid-file=${join(dir, 'pid')}`, `--port=${dbPort}`,
      '--bind-address=127.0.0.1', '--skip-grant-tables', '--skip-log-bin', USER,
      '--innodb-buffer-pool-size=64M', '--innodb-log-file-size=48M', '--innodb-flush-log-at-trx-commit=0', '--max-allowed-packet=64M',
    ], { env: { ...process.env, ...env } });
    await db.waitFor(/ready for connections/, 30_000);
    // Accepting is not always serving yet: ask until it answers.
    for (let i = 0; ; i++) {
      const r = await run('mariadb', ['--no-defaults', '-h', '127.0.0.1', '-P', String(dbPort), '-u', 'root', '-N', '-e', 'SELECT 1'], { timeoutMs: 10_000 });
      if (r.code === 0 && r.stdout.trim() === '1') break;
      if (i > 50 || !db.running) throw new Error(`mariadbd does not answer: ${r.stderr}\n${db.output}`);
      await new Promise((res) => setTimeout(res, 200));
    }
    ({ proxy, port } = await c.proxy(proxyConfig(dbPort)));
    report(t, `mariadbd ready and proxied in ${Math.round(performance.now() - t0)} ms`);
  });
  after(() => c.run());

  it(`creates a database and table and inserts ${ROWS} rows through the proxy`, async (t) => {
    const t0 = performance.now();
    await sql(port, `CREATE DATABASE interop; CREATE TABLE interop.t (id INT PRIMARY KEY, v CHAR(32) NOT NULL, n BIGINT NOT NULL) ENGINE=InnoDB;
      USE interop; INSERT INTO t SELECT seq, MD5(seq), seq * seq FROM seq_1_to_${ROWS};`);
    report(t, `mariadb: ${ROWS} rows inserted through the proxy in ${Math.round(performance.now() - t0)} ms`);
    assert.equal((await sql(dbPort, 'SELECT COUNT(*) FROM interop.t')).stdout.trim(), String(ROWS), 'the rows are in the server');
  });

  it('aggregates (COUNT, SUM, MD5 of GROUP_CONCAT) agree through the proxy and directly', async () => {
    const q = `SET SESSION group_concat_max_len = 67108864;
      SELECT COUNT(*), SUM(id), SUM(n), MD5(GROUP_CONCAT(v ORDER BY id SEPARATOR '')) FROM interop.t;
      SELECT MD5(GROUP_CONCAT(id, ':', v ORDER BY id)) FROM interop.t WHERE id % 7 = 3;`;
    const via = (await sql(port, q)).stdout;
    const direct = (await sql(dbPort, q)).stdout;
    assert.equal(via, direct);
    const [count, sumId, sumN] = via.split('\n')[0]!.split('\t');
    assert.equal(count, String(ROWS));
    assert.equal(sumId, String((ROWS * (ROWS + 1)) / 2));
    assert.equal(BigInt(sumN!), (BigInt(ROWS) * BigInt(ROWS + 1) * BigInt(2 * ROWS + 1)) / 6n);
  });

  it(`SELECT of all ${ROWS} rows: identical bytes through the proxy and directly`, async (t) => {
    const q = 'SELECT id, v, n FROM interop.t ORDER BY id';
    const t0 = performance.now();
    const via = await sql(port, q, ['--quick']);
    const viaMs = performance.now() - t0;
    const direct = await sql(dbPort, q, ['--quick']);
    const lines = via.stdout.split('\n').filter(Boolean);
    assert.equal(lines.length, ROWS);
    assert.equal(lines[ROWS - 1], `${ROWS}\t${createHash('md5').update(String(ROWS)).digest('hex')}\t${ROWS * ROWS}`);
    assert.equal(via.out.length, direct.out.length);
    assert.equal(sha(via.out), sha(direct.out));
    report(t, `mariadb: ${lines.length} rows (${(via.out.length / 1e6).toFixed(1)} MB) selected through the proxy in ${Math.round(viaMs)} ms, direct ${Math.round(direct.ms)} ms`);
  });

  it('a 32 MB single-row result and a 16 MB INSERT come through intact', async () => {
    const big = await sql(port, "SELECT LENGTH(x), MD5(x) FROM (SELECT REPEAT(MD5('interop'), 1000000) AS x) s");
    const expected = createHash('md5').update(createHash('md5').update('interop').digest('hex').repeat(1_000_000)).digest('hex');
    assert.equal(big.stdout.trim(), `32000000\t${expected}`);
    const blob = await sql(port, "SELECT REPEAT('ab', 8000000)", ['--max-allowed-packet=64M']);
    assert.equal(blob.stdout.length, 16_000_001);
    await sql(port, `CREATE TABLE interop.b (id INT PRIMARY KEY, b LONGBLOB) ENGINE=InnoDB; INSERT INTO interop.b VALUES (1, REPEAT('xy', 8000000));`, ['--max-allowed-packet=64M']);
    const payload = 'Z'.repeat(16_000_000);
    await runOk('mariadb', ['--no-defaults', '-h', '127.0.0.1', '-P', String(port), '-u', 'root', '--max-allowed-packet=64M', 'interop'],
      { input: `INSERT INTO b VALUES (2, '${payload}');\n`, timeoutMs: 30_000 });
    const check = await sql(dbPort, 'SELECT id, LENGTH(b), MD5(b) FROM interop.b ORDER BY id');
    assert.equal(check.stdout,
      `1\t16000000\t${createHash('md5').update('xy'.repeat(8_000_000)).digest('hex')}\n2\t16000000\t${createHash('md5').update(payload).digest('hex')}\n`);
    const closed = proxy.logs.filter((l) => l.msg === 'connection closed');
    assert.ok(closed.length > 0 && closed.every((l) => l['reason'] === 'done'), JSON.stringify(closed.map((l) => l['reason'])));
  });
});
