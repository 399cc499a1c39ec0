// The default interpreter's namers with real parts: io.l5d.fs over real files changed
// during the test, io.l5d.dnssrv against a real DNS server on loopback, /$/inet with a
// host name, and weighted unions across namers.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import type { NamerConfig } from '../src/config/types.ts';
import { createDefaultInterpreter } from '../src/interpreter/default.ts';
import { FsNamer } from '../src/interpreter/namers/fs.ts';
import type { LookupAll } from '../src/interpreter/namers/host-lookups.ts';
import { createLogger, silentLogger } from '../src/log.ts';
import { Registry } from '../src/metrics/registry.ts';
import type { Resolution } from '../src/naming/resolution.ts';
import { DnsServer } from './support/dns-server.ts';
import { deadline, runCli, writeConfig } from './support/harness.ts';
import { logSink } from './support/log-sink.ts';

function setup(t: TestContext, dtab: string, namers: NamerConfig[] = []) {
  const interp = createDefaultInterpreter({ dtab, namers, log: silentLogger(), registry: new Registry(), inetRefreshMs: 100 });
  t.after(() => interp.close());
  return (dst: string) => {
    const seen: Resolution[] = [];
    const waiters: { pred: (r: Resolution) => boolean; resolve: () => void }[] = [];
    const w = interp.watch(dst, (r) => {
      seen.push(r);
      for (const x of waiters.splice(0)) if (x.pred(r)) x.resolve(); else waiters.push(x);
    });
    t.after(() => w.close());
    return {
      seen,
      /** Waits until the latest resolution satisfies `pred`. */
      until: (pred: (r: Resolution) => boolean, what: string): Promise<void> => {
        const last = seen.at(-1);
        if (last && pred(last)) return Promise.resolve();
        return deadline(5000, what, new Promise<void>((resolve) => waiters.push({ pred, resolve })));
      },
    };
  };
}

const show = (r: Resolution): string =>
  r.kind === 'bound'
    ? r.endpoints.map((e) => `${e.host}:${e.port}${e.weight === 1 ? '' : '*' + Math.round(e.weight * 1000) / 1000}`).sort().join(',') +
      (r.emptyWeight === undefined ? '' : ` empty*${Math.round(r.emptyWeight * 1000) / 1000}`)
    : r.kind === 'failed' ? `failed` : r.kind;
const is = (want: string) => (r: Resolution): boolean => show(r) === want;

describe('io.l5d.fs', () => {
  function dir(t: TestContext): string {
    const d = mkdtempSync(join(tmpdir(), 'l5d-fs-'));
    t.after(() => rmSync(d, { recursive: true, force: true }));
    return d;
  }

  it('binds files, weights and subdirectories, and follows create/modify/delete', async (t) => {
    const root = dir(t);
    writeFileSync(join(root, 'web'), '# web servers\n127.0.0.1 8080\n127.0.0.1 8081 * 3\n\n');
    mkdirSync(join(root, 'prod'));
    writeFileSync(join(root, 'prod', 'db'), '10.0.0.1 3306');
    const watch = setup(t, '/svc => /#/io.l5d.fs;', [{ kind: 'io.l5d.fs', prefix: '/io.l5d.fs', rootDir: root }]);
    const web = watch('/svc/web');
    await web.until(is('127.0.0.1:8080*0.25,127.0.0.1:8081*0.75'), 'weighted file');
    const db = watch('/svc/prod/db/extra'); // a subdirectory is a deeper segment; the rest is residual
    await db.until(is('10.0.0.1:3306'), 'subdirectory');
    const later = watch('/svc/later');
    await later.until(is('neg'), 'missing file is neg');

    writeFileSync(join(root, 'later'), '127.0.0.1 9000\n');
    await later.until(is('127.0.0.1:9000'), 'created');
    writeFileSync(join(root, 'web'), '127.0.0.1 8082\n');
    await web.until(is('127.0.0.1:8082'), 'modified');
    rmSync(join(root, 'later'));
    await later.until(is('neg'), 'deleted');
  });

  it('keeps the last good set when a file turns bad or oversized, and recovers', async (t) => {
    const root = dir(t);
    writeFileSync(join(root, 'web'), '127.0.0.1 8080\n');
    const watch = setup(t, '/svc => /#/io.l5d.fs;', [{ kind: 'io.l5d.fs', prefix: '/io.l5d.fs', rootDir: root }]);
    const web = watch('/svc/web');
    await web.until(is('127.0.0.1:8080'), 'good');
    // Atomic replace (as editors and config managers do) with a bad file.
    writeFileSync(join(root, '.tmp'), 'this is not an address\n');
    renameSync(join(root, '.tmp'), join(root, 'web'));
    writeFileSync(join(root, 'web2'), '127.0.0.1 1\n'); // a second event proves the first was processed
    const web2 = watch('/svc/web2');
    await web2.until(is('127.0.0.1:1'), 'second file');
    assert.equal(show(web.seen.at(-1)!), '127.0.0.1:8080', 'the bad file kept the last good set');
    writeFileSync(join(root, 'web'), 'x'.repeat(2 << 20));
    writeFileSync(join(root, 'web2'), '127.0.0.1 2\n');
    await web2.until(is('127.0.0.1:2'), 'second file again');
    assert.equal(show(web.seen.at(-1)!), '127.0.0.1:8080', 'the oversized file kept the last good set');
    writeFileSync(join(root, 'web'), '127.0.0.1 8090\n');
    await web.until(is('127.0.0.1:8090'), 'recovered');
  });
});

/** What kubelet does to a mounted ConfigMap: a new timestamped dir, `..data_tmp` → it, renamed over `..data`, the old dir removed. */
function kubeletUpdate(root: string, files: Record<string, string>, seq: number): void {
  const dir = `..2026_11_30_05_00_0${seq}.${1000 + seq}`;
  mkdirSync(join(root, dir));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(root, dir, name), text);
  symlinkSync(dir, join(root, '..data_tmp'));
  renameSync(join(root, '..data_tmp'), join(root, '..data'));
  if (seq > 0) rmSync(join(root, `..2026_11_30_05_00_0${seq - 1}.${1000 + seq - 1}`), { recursive: true });
  for (const name of Object.keys(files)) if (!existsSync(join(root, name))) symlinkSync(`..data/${name}`, join(root, name));
}

describe('io.l5d.fs under hostile file systems', () => {
  function dir(t: TestContext): string {
    const d = mkdtempSync(join(tmpdir(), 'l5d-fs-'));
    t.after(() => rmSync(d, { recursive: true, force: true }));
    return d;
  }
  const fsNamer = (root: string): NamerConfig[] => [{ kind: 'io.l5d.fs', prefix: '/io.l5d.fs', rootDir: root }];

  it('follows a Kubernetes ConfigMap update (the ..data symlink swap)', async (t) => {
    const root = dir(t);
    kubeletUpdate(root, { web: '127.0.0.1 8080\n', db: '127.0.0.1 3306\n' }, 0);
    const watch = setup(t, '/svc => /#/io.l5d.fs;', fsNamer(root));
    const web = watch('/svc/web');
    await web.until(is('127.0.0.1:8080'), 'first version');
    kubeletUpdate(root, { web: '127.0.0.1 8081\n', db: '127.0.0.1 3306\n' }, 1);
    await web.until(is('127.0.0.1:8081'), 'the swapped version');
    kubeletUpdate(root, { web: '127.0.0.1 8082 * 2\n127.0.0.1 8083\n', db: '127.0.0.1 3306\n' }, 2);
    await web.until(is('127.0.0.1:8082*0.667,127.0.0.1:8083*0.333'), 'the third version');
  });

  it('recovers when rootDir is deleted and created again, without a restart', async (t) => {
    const parent = dir(t);
    const root = join(parent, 'disco');
    mkdirSync(root);
    writeFileSync(join(root, 'web'), '127.0.0.1 8080\n');
    const watch = setup(t, '/svc => /#/io.l5d.fs;', fsNamer(root));
    const web = watch('/svc/web');
    await web.until(is('127.0.0.1:8080'), 'first');
    rmSync(root, { recursive: true });
    await web.until(is('neg'), 'rootDir gone: neg');
    mkdirSync(root);
    writeFileSync(join(root, 'web'), '127.0.0.1 9090\n');
    await web.until(is('127.0.0.1:9090'), 'rootDir back');
    writeFileSync(join(root, 'web'), '127.0.0.1 9091\n');
    await web.until(is('127.0.0.1:9091'), 'and watched again');
  });

  it('a file with overflowing weights (1e308 × 2) or port 0 is refused and the last good set stays', async (t) => {
    const root = dir(t);
    writeFileSync(join(root, 'web'), '127.0.0.1 8080\n');
    const watch = setup(t, '/svc => /#/io.l5d.fs;', fsNamer(root));
    const web = watch('/svc/web');
    await web.until(is('127.0.0.1:8080'), 'good');
    writeFileSync(join(root, 'web'), '127.0.0.1 8081 * 1e308\n127.0.0.1 8082 * 1e308\n');
    writeFileSync(join(root, 'marker'), '127.0.0.1 1\n');
    await watch('/svc/marker').until(is('127.0.0.1:1'), 'a later event was processed');
    assert.equal(show(web.seen.at(-1)!), '127.0.0.1:8080', 'overflowing weights kept the last good set');
    writeFileSync(join(root, 'web'), '127.0.0.1 0\n');
    writeFileSync(join(root, 'marker'), '127.0.0.1 2\n');
    await watch('/svc/marker').until(is('127.0.0.1:2'), 'a later event was processed');
    assert.equal(show(web.seen.at(-1)!), '127.0.0.1:8080', 'port 0 kept the last good set');
    writeFileSync(join(root, 'web'), '127.0.0.1 8083 * 1000000\n127.0.0.1 8084 * 1000000\n');
    await web.until(is('127.0.0.1:8083*0.5,127.0.0.1:8084*0.5'), 'maximal weights are fine');
  });
});

describe('io.l5d.dnssrv', () => {
  it('binds SRV records over real DNS, with SRV weights, lowest priority, and refreshes', async (t) => {
    const dns = await DnsServer.start();
    t.after(() => dns.close());
    // Single-label targets: dns2 would otherwise compress them, which RFC 2782 forbids and
    // c-ares rejects (real DNS servers never do it).
    dns.setSrv('_web._tcp.example.test', [
      { priority: 10, weight: 3, port: 8080, target: 'host-a' },
      { priority: 10, weight: 1, port: 8081, target: 'host-b' },
      { priority: 20, weight: 1, port: 9999, target: 'host-backup' },
    ]);
    dns.setA('host-a', ['127.0.0.1']);
    dns.setA('host-b', ['127.0.0.2']);
    dns.setA('host-backup', ['127.0.0.3']);
    const watch = setup(t, '/svc => /#/io.l5d.dnssrv;', [
      { kind: 'io.l5d.dnssrv', prefix: '/io.l5d.dnssrv', refreshIntervalSeconds: 1, dnsHosts: [{ host: '127.0.0.1', port: dns.port }] },
    ]);
    const web = watch('/svc/_web._tcp.example.test');
    await web.until(is('127.0.0.1:8080*0.75,127.0.0.2:8081*0.25'), 'SRV answer');
    dns.setSrv('_web._tcp.example.test', [{ priority: 10, weight: 1, port: 8082, target: 'host-a' }]);
    await web.until(is('127.0.0.1:8082'), 'refreshed');
    const none = watch('/svc/_none._tcp.example.test');
    await none.until(is('neg'), 'NXDOMAIN is neg');
  });
});

describe('/$/inet and weighted unions', () => {
  it('resolves host names and short IPv4 forms, and weights union branches', async (t) => {
    const watch = setup(t, '/svc/a => /$/inet/localhost/1; /svc/b => /$/inet/127.1/2; /svc/c => 3 * /svc/a & 1 * /svc/b; /svc/v6 => /$/inet/::1/3; /svc/lo => /$/inet/4;');
    await watch('/svc/a').until((r) => r.kind === 'bound' && r.endpoints.some((e) => e.port === 1), 'localhost');
    await watch('/svc/b').until(is('127.0.0.1:2'), '127.1');
    await watch('/svc/v6').until(is('::1:3'), 'IPv6');
    await watch('/svc/lo').until(is('127.0.0.1:4'), 'port only is loopback');
    const c = watch('/svc/c');
    await c.until((r) => r.kind === 'bound' && r.endpoints.some((e) => e.host === '127.0.0.1' && e.port === 2 && Math.abs(e.weight - 0.25) < 1e-9), 'weighted union');
  });

  it('binds /$/io.buoyant.rinet/<port>/<host> as linkerd does; an unknown /$/<class> fails with its name', async (t) => {
    const watch = setup(t, '/svc/r => /$/io.buoyant.rinet/7/127.0.0.1; /svc/r6 => /$/io.buoyant.rinet/8/::1; /svc/nope => /$/com.example.Nope/x; /svc/alt => /$/io.l5d.unknown/1 | /$/inet/127.0.0.1/9; /svc/zero => /$/inet/127.0.0.1/0;');
    await watch('/svc/r/residual').until(is('127.0.0.1:7'), 'rinet');
    await watch('/svc/r6').until(is('::1:8'), 'rinet IPv6');
    const nope = watch('/svc/nope');
    await nope.until(is('failed'), 'unknown class fails');
    const r = nope.seen.at(-1)!;
    assert.match(r.kind === 'failed' ? r.reason : '', /unknown namer \/\$\/com\.example\.Nope/);
    await watch('/svc/alt').until(is('failed'), 'a failure is not a neg: the alt does not fall through');
    await watch('/svc/zero').until(is('failed'), 'port 0 is refused');
  });

  it('--check prints IPv6 endpoints as [::1]:port', async () => {
    const file = writeConfig(`
admin: {port: 0}
routers:
- label: v6
  dtab: /svc => /$/inet/::1/24001 & /$/io.buoyant.rinet/24002/127.0.0.1;
  servers:
  - {port: 0, dstName: /svc/x}
`);
    const r = await runCli(['--check', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /destination \/svc\/x → \[::1\]:24001 \*0\.5, 127\.0\.0\.1:24002 \*0\.5/);
  });

  it('reports a bad /$/inet path and a dtab loop as failed, /$/nil as no endpoints, unknown names as neg', async (t) => {
    const watch = setup(t, '/svc/bad => /$/inet/localhost; /svc/loop => /svc/loop/x; /svc/nil => /$/nil; /svc/alt => ~ | /$/inet/127.0.0.1/5;');
    await watch('/svc/bad').until(is('failed'), 'bad inet');
    await watch('/svc/loop').until(is('failed'), 'loop');
    await watch('/svc/nil').until(is(''), 'nil is bound with no endpoints');
    await watch('/nothing').until(is('neg'), 'neg');
    await watch('/svc/alt').until(is('127.0.0.1:5'), 'alt falls through ~');
  });
});

describe('io.l5d.fs host names (issue 21)', () => {
  function dir(t: TestContext): string {
    const d = mkdtempSync(join(tmpdir(), 'l5d-fs-hosts-'));
    t.after(() => rmSync(d, { recursive: true, force: true }));
    return d;
  }

  it('resolves a real host name (localhost) through the system resolver, beside IP lines', async (t) => {
    const root = dir(t);
    writeFileSync(join(root, 'redis'), 'localhost 6379\n127.0.0.1 6380 * 3\n');
    const watch = setup(t, '/svc => /#/io.l5d.fs;', [{ kind: 'io.l5d.fs', prefix: '/io.l5d.fs', rootDir: root }]);
    // localhost may also be ::1 here or there: its line's share (1 of 4) is split among its addresses.
    await watch('/svc/redis').until((r) => {
      if (r.kind !== 'bound') return false;
      const lo = r.endpoints.filter((e) => e.port === 6379);
      const sum = lo.reduce((s, e) => s + e.weight, 0);
      return lo.some((e) => e.host === '127.0.0.1') && lo.every((e) => e.host === '127.0.0.1' || e.host === '::1') && Math.abs(sum - 0.25) < 1e-9 &&
        r.endpoints.some((e) => e.host === '127.0.0.1' && e.port === 6380 && Math.abs(e.weight - 0.75) < 1e-9);
    }, 'localhost resolved');
  });

  /** An FsNamer over `root` with a scripted resolver; `bound()` reads /#/io.l5d.fs/<name> as the interpreter would on every change. */
  function scripted(t: TestContext, root: string, answers: Map<string, readonly string[] | string>, hostRefreshMs: number) {
    const asked: string[] = [];
    const waiters = new Set<() => void>();
    const poke = (): void => { for (const w of [...waiters]) w(); };
    const lookup: LookupAll = async (host) => {
      asked.push(host);
      setImmediate(poke);
      const a = answers.get(host) ?? 'ENOTFOUND';
      if (typeof a === 'string') throw Object.assign(new Error(`getaddrinfo ${a} ${host}`), { code: a });
      return a;
    };
    const sink = logSink();
    const namer = new FsNamer({ prefix: '/io.l5d.fs', rootDir: root, log: createLogger('debug', sink.stream), onChange: () => poke(), hostRefreshMs, restatMs: 50, lookup });
    t.after(() => namer.close());
    const bound = (name: string): string => {
      const a = namer.lookup(['#', 'io.l5d.fs', name])!;
      if (a.kind !== 'ok') return a.kind;
      const addr = a.value.kind === 'leaf' ? a.value.value.addr : undefined;
      return addr?.kind === 'bound' ? addr.endpoints.map((e) => `${e.host}:${e.port}*${e.weight}`).sort().join(',') : addr?.kind ?? a.value.kind;
    };
    // As the interpreter does: every change is followed by a bind, which reads the files again.
    waiters.add(() => bound('web'));
    const until = (pred: () => boolean, what: string): Promise<void> =>
      deadline(5000, what, new Promise<void>((resolve) => {
        const w = (): void => { if (pred()) { waiters.delete(w); resolve(); } };
        waiters.add(w);
        w();
      }));
    const count = (host: string): number => asked.filter((h) => h === host).length;
    return { namer, bound, until, count, sink };
  }

  it('looks names up at read, every refresh and when the file changes; a failed refresh keeps the answer; a name that does not resolve is left out and logged', async (t) => {
    const root = dir(t);
    const answers = new Map<string, readonly string[] | string>([['redis1', ['10.0.0.2', '10.0.0.1']], ['redis2', ['10.0.0.3']], ['nope', 'ENOTFOUND']]);
    writeFileSync(join(root, 'web'), 'redis1 6379\nredis2 6380 * 3\nnope 1\n127.0.0.1 9\n');
    const { bound, until, count, sink } = scripted(t, root, answers, 50);
    assert.equal(bound('web'), 'pending', 'pending until every name has a first answer');
    // Two addresses share their line's weight; the name that does not resolve is left out.
    await until(() => bound('web') === '10.0.0.1:6379*0.5,10.0.0.2:6379*0.5,10.0.0.3:6380*3,127.0.0.1:9*1', 'first answers');
    const warned = (): Record<string, unknown>[] => sink.lines.filter((l) => l['msg'] === 'io.l5d.fs: host lookup failed' && l['host'] === 'nope' && l['level'] === 40);
    assert.match(String(warned()[0]?.['reason']), /cannot resolve nope: ENOTFOUND/);

    answers.set('redis1', ['10.0.0.9']);
    await until(() => bound('web') === '10.0.0.3:6380*3,10.0.0.9:6379*1,127.0.0.1:9*1', 'a periodic refresh');
    answers.set('redis1', 'EAI_AGAIN');
    const n = count('redis1');
    await until(() => count('redis1') >= n + 3, 'three failed refreshes');
    assert.equal(bound('web'), '10.0.0.3:6380*3,10.0.0.9:6379*1,127.0.0.1:9*1', 'a failed refresh keeps the last answer');
    assert.equal(warned().length, 1, 'a failure that repeats is warned about once');

    // A name no file names any more is no longer looked up.
    writeFileSync(join(root, 'web'), 'redis2 6380\n');
    await until(() => bound('web') === '10.0.0.3:6380*1', 'the file without nope');
    const nope = count('nope');
    const m = count('redis2');
    await until(() => count('redis2') >= m + 6, 'six more refreshes of redis2');
    assert.ok(count('nope') <= nope + 2, `nope asked ${count('nope') - nope} more times after the file dropped it`);
  });

  it('a changed file has its names looked up again at once, not at the next refresh', async (t) => {
    const root = dir(t);
    const answers = new Map<string, readonly string[] | string>([['db', ['10.0.0.3']]]);
    writeFileSync(join(root, 'web'), 'db 80\n');
    const { bound, until } = scripted(t, root, answers, 3_600_000);
    await until(() => bound('web') === '10.0.0.3:80*1', 'first answer');
    answers.set('db', ['10.0.0.4']);
    writeFileSync(join(root, 'web'), 'db 81\n');
    await until(() => bound('web') === '10.0.0.4:81*1', 'the name looked up again with the file');
  });

  it('a union branch whose file is emptied keeps its share as empty weight; ~ drops out', async (t) => {
    const root = dir(t);
    writeFileSync(join(root, 'web'), '127.0.0.1 1\n');
    writeFileSync(join(root, 'web-canary'), '127.0.0.1 2\n');
    const watch = setup(t, '/svc => /#/io.l5d.fs; /app => 9 * /svc/web & 1 * /svc/web-canary; /gone => 9 * /svc/missing & 1 * /svc/web-canary;', [{ kind: 'io.l5d.fs', prefix: '/io.l5d.fs', rootDir: root }]);
    const app = watch('/app');
    await app.until(is('127.0.0.1:1*0.9,127.0.0.1:2*0.1'), 'both branches');
    writeFileSync(join(root, 'web'), '# emptied for maintenance\n');
    await app.until(is('127.0.0.1:2*0.1 empty*0.9'), 'the canary keeps 10 %');
    writeFileSync(join(root, 'web'), '127.0.0.1 3\n');
    await app.until(is('127.0.0.1:2*0.1,127.0.0.1:3*0.9'), 'web back');
    await watch('/gone').until(is('127.0.0.1:2'), 'a missing file is neg: its branch drops out, as Finagle drops ~');
  });
});
