// `npm run bench`: one run, same backends, eight ways in — direct, linkerd-tcp on one
// process and on every core on each engine (native, node) and on native I/O threads in one
// process (`threads: true`), HAProxy (mode tcp, leastconn) and nginx stream (least_conn) —
// and a table of ratios to direct: throughput, requests/s, new connections/s, TLS
// handshakes/s (terminating with the same ECDSA P-256 certificate), memory and CPU.
// Then the TLS part: TLS terminated by direct (nginx itself), linkerd-tcp (engine auto, i.e.
// LINKERD_TCP_ENGINE unset, and engine node), HAProxy (`bind … ssl crt`, mode tcp) and nginx
// stream (`listen … ssl`) in front of a plain-HTTP nginx, with an ECDSA P-256 certificate made
// for the run: TLS keep-alive req/s, TLS bulk MB/s (10 MiB answers), TLS handshakes/s, CPU ms
// of the SUT's process tree per 1,000 handshakes, KiB per idle TLS connection; each the median
// of interleaved rounds (every SUT gets a short slice, on a freshly started process, in turn).
// Loopback only, bounded in time (about four minutes, then about three for the TLS part).
// Options (after `npm run bench --`, or to `node bench/run.ts`):
//   --write            record the run in BENCHMARKS.md (each part in its own marked section)
//   --only plain|tls   run one part only (or BENCH_ONLY=plain|tls); default: both
// Environment: BENCH_SECS (4: seconds per plain measurement), BENCH_IDLE_CONNS (5000),
// BENCH_TLS_SECS (2: seconds per TLS measurement), BENCH_TLS_ROUNDS (3), BENCH_TLS_IDLE_CONNS (2000), BENCH_TLS_IDLE_SECS (2: how long they idle before the second reading).
// E.g. `npm run build && node bench/run.ts --only tls`.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { cpuSecs, freePort, iperf, median, rssBytes, start, stop, stopAndWait, waitForPort, wrk, type Wrk } from './tools.ts';
import { tlsTable, writeReport, writeSection, type Row, type TlsRow } from './report.ts';

const SECS = Number(process.env['BENCH_SECS'] ?? 4);
const IDLE_CONNS = Number(process.env['BENCH_IDLE_CONNS'] ?? 5000);
const TLS_SECS = Number(process.env['BENCH_TLS_SECS'] ?? 2);
const TLS_ROUNDS = Number(process.env['BENCH_TLS_ROUNDS'] ?? 3);
const TLS_IDLE_CONNS = Number(process.env['BENCH_TLS_IDLE_CONNS'] ?? 2000);
const TLS_IDLE_SECS = Number(process.env['BENCH_TLS_IDLE_SECS'] ?? 2);
const BULK_BYTES = 10 * 2 ** 20;
const STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so'; // Debian's libnginx-mod-stream
const WRITE = process.argv.includes('--write');

/** Which parts run: `--only plain|tls` (or `--only=…`, or BENCH_ONLY); both by default. */
function parts(): { plain: boolean; tls: boolean } {
  const i = process.argv.findIndex((a) => a === '--only' || a.startsWith('--only='));
  const only = i < 0 ? process.env['BENCH_ONLY'] : process.argv[i]!.includes('=') ? process.argv[i]!.slice('--only='.length) : process.argv[i + 1];
  if (only === undefined || only === '') return { plain: true, tls: true };
  if (only !== 'plain' && only !== 'tls') throw new Error(`--only takes plain or tls, not ${JSON.stringify(only)}`);
  return { plain: only === 'plain', tls: only === 'tls' };
}

function ensureTools(need: { plain: boolean; tls: boolean }): void {
  const tools = ['haproxy', 'nginx', 'wrk', ...(need.plain ? ['iperf3'] : []), ...(need.tls ? ['openssl'] : [])];
  const missing = tools.filter((t) => {
    try { execFileSync('sh', ['-c', `command -v ${t}`]); return false; } catch { return true; }
  });
  if (!existsSync(STREAM_MODULE)) missing.push('libnginx-mod-stream');
  if (!missing.length) return;
  process.stderr.write(`bench: installing ${missing.join(' ')} from Debian\n`);
  execFileSync('sh', ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${missing.join(' ')} >/dev/null`], { stdio: 'inherit' });
}

interface Target { name: string; http: number; iperf: number; tls: number; pid: number | undefined;
  /** linkerd-tcp only: nginx's TLS port through a plain TCP server, and through an SNI passthrough server. */
  tcpTls?: number; sniPass?: number }

const PKI = new URL('../test/fixtures/tls/', import.meta.url).pathname;

/** Opens `n` connections through `port` (TLS ones with `secure`: each completes a full
 * handshake, no resumption) and makes one request on each, so every one is established end
 * to end (client → proxy → backend) before memory is read; then they idle. */
async function holdIdle(port: number, n: number, secure = false): Promise<Socket[]> {
  const out: Socket[] = [];
  for (let i = 0; i < n; i += 200) {
    const batch = await Promise.all(Array.from({ length: Math.min(200, n - i) }, async () => {
      const s = secure ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false }) : connect(port, '127.0.0.1');
      s.on('error', () => {});
      await once(s, secure ? 'secureConnect' : 'connect');
      const answered = once(s, 'data');
      s.write('GET / HTTP/1.1\r\nHost: bench\r\n\r\n');
      await answered;
      return s;
    }));
    out.push(...batch);
  }
  return out;
}

/** The start of every HAProxy config here: TCP mode, the same limits and timeouts. */
const HAPROXY_DEFAULTS = `global
  maxconn 9000
defaults
  mode tcp
  timeout connect 5s
  timeout client 300s
  timeout server 300s
`;

function machine(): string {
  return `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${execFileSync('haproxy', ['-v'], { encoding: 'utf8' }).split('\n')[0]!.split(' - ')[0]}, ${execFileSync('sh', ['-c', 'nginx -v 2>&1'], { encoding: 'utf8' }).trim()}`;
}

async function main(): Promise<void> {
  const run = parts();
  ensureTools(run);
  const dir = mkdtempSync(join(tmpdir(), 'l5d-bench-'));
  const procs: ChildProcess[] = [];
  const cleanup = (): void => { procs.forEach(stop); rmSync(dir, { recursive: true, force: true }); };
  process.on('exit', cleanup);
  process.on('SIGINT', () => process.exit(130));
  process.on('SIGTERM', () => process.exit(143)); // `timeout` too leaves nothing running
  if (run.plain) {
    await plainBench(dir, procs);
    await Promise.all(procs.splice(0).map((p) => stopAndWait(p))); // nothing of this part idles through the next
  }
  if (run.tls) await tlsBench(dir, procs);
  cleanup();
  process.exit(0);
}

/** The plain part: every way in started once, measured one after the other. */
async function plainBench(dir: string, procs: ChildProcess[]): Promise<void> {
  const p = { http: await freePort(), iperf: await freePort(), tls: await freePort(),
    haHttp: await freePort(), haIperf: await freePort(), haTls: await freePort(), ngHttp: await freePort(), ngIperf: await freePort(), ngTls: await freePort() };
  // The same certificate everywhere: ECDSA P-256 leaf + intermediate (HAProxy wants key and chain in one file).
  const cert = join(dir, 'cert.pem'), key = join(PKI, 'ec.key'), combined = join(dir, 'combined.pem');
  writeFileSync(cert, readFileSync(join(PKI, 'ec.pem'), 'utf8') + readFileSync(join(PKI, 'chain.pem'), 'utf8'));
  writeFileSync(combined, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'));

  // Backends: nginx serving 1 KiB with keep-alive, and an iperf3 server.
  const body = 'x'.repeat(1024);
  writeFileSync(join(dir, 'backend.conf'), `worker_processes 1; daemon off; pid ${dir}/backend.pid; error_log stderr error;
events { worker_connections 20000; }
http { access_log off; keepalive_requests 10000000; keepalive_timeout 300s;
  server { listen 127.0.0.1:${p.http} backlog=4096; listen 127.0.0.1:${p.tls} ssl backlog=4096;
    ssl_certificate ${cert}; ssl_certificate_key ${key}; ssl_protocols TLSv1.2 TLSv1.3;
    location / { return 200 "${body}"; } } }\n`);
  procs.push(start('nginx', ['-p', dir, '-c', join(dir, 'backend.conf')]));
  // iperf3 takes any connection as a test, so it is not probed: wait for its own word.
  const iperfd = spawn('iperf3', ['-s', '-p', String(p.iperf), '-B', '127.0.0.1', '--forceflush'], { stdio: ['ignore', 'pipe', 'inherit'] });
  procs.push(iperfd);
  const iperfReady = new Promise<void>((resolve, reject) => {
    let out = '';
    iperfd.stdout!.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('Server listening')) resolve(); });
    iperfd.once('exit', (c) => reject(new Error(`iperf3 -s exited ${c}`)));
  });

  // linkerd-tcp, on one process and on every core, on each engine (LINKERD_TCP_ENGINE; TLS
  // servers are always on node): access logs off (LOG_LEVEL=warn), as the peers run without logging.
  // `threads`: one process, plain TCP servers on `workers` native I/O threads (TLS and SNI on its main thread).
  const l5d = async (name: string, workers: number, engine: 'native' | 'node', threads = false): Promise<Target> => {
    const t = { http: await freePort(), iperf: await freePort(), tls: await freePort(), admin: await freePort(), tcpTls: await freePort(), sniPass: await freePort() };
    writeFileSync(join(dir, `${name}.yml`), `workers: ${workers}
threads: ${threads}
admin: {port: ${t.admin}}
routers:
- label: bench
  dtab: |
    /svc/http => /$/inet/127.0.0.1/${p.http};
    /svc/iperf => /$/inet/127.0.0.1/${p.iperf};
    /svc/https => /$/inet/127.0.0.1/${p.tls};
  servers:
  - {port: ${t.http}, dstName: /svc/http}
  - {port: ${t.iperf}, dstName: /svc/iperf}
  - {port: ${t.tls}, dstName: /svc/http, tls: {defaultIdentity: {privateKey: ${key}, certs: [${cert}]}}}
  - {port: ${t.tcpTls}, dstName: /svc/https}
  - {port: ${t.sniPass}, dstName: "/svc/sni/{sni}", defaultDstName: /svc/https}
`);
    const proc = start(process.execPath, [new URL('../dist/main.js', import.meta.url).pathname, join(dir, `${name}.yml`)], { LOG_LEVEL: 'warn', LINKERD_TCP_ENGINE: engine === 'native' ? 'auto' : 'node' }); // auto: plain TCP on native, TLS on node
    procs.push(proc);
    await waitForPort(t.admin);
    return { name, http: t.http, iperf: t.iperf, tls: t.tls, pid: proc.pid, tcpTls: t.tcpTls, sniPass: t.sniPass };
  };
  const l5dOne = await l5d('linkerd-tcp native ×1', 1, 'native');
  const l5dAll = await l5d(`linkerd-tcp native ×${cpus().length}`, cpus().length, 'native');
  const l5dThreads = await l5d(`linkerd-tcp threads ×${cpus().length}`, cpus().length, 'native', true);
  const nodeOne = await l5d('linkerd-tcp node ×1', 1, 'node');
  const nodeAll = await l5d(`linkerd-tcp node ×${cpus().length}`, cpus().length, 'node');
  writeFileSync(join(dir, 'haproxy.cfg'), `${HAPROXY_DEFAULTS}frontend http
  bind 127.0.0.1:${p.haHttp}
  default_backend http
backend http
  balance leastconn
  server s1 127.0.0.1:${p.http}
frontend iperf
  bind 127.0.0.1:${p.haIperf}
  default_backend iperf
frontend tls
  bind 127.0.0.1:${p.haTls} ssl crt ${combined} ssl-min-ver TLSv1.2
  default_backend http
backend iperf
  balance leastconn
  server s1 127.0.0.1:${p.iperf}
`);
  const ha = start('haproxy', ['-f', join(dir, 'haproxy.cfg'), '-db']);
  procs.push(ha);
  writeFileSync(join(dir, 'stream.conf'), `load_module ${STREAM_MODULE};
worker_processes auto; daemon off; pid ${dir}/stream.pid; error_log stderr error;
worker_rlimit_nofile 20000;
events { worker_connections 20000; }
stream {
  upstream http { least_conn; server 127.0.0.1:${p.http}; }
  upstream iperf { least_conn; server 127.0.0.1:${p.iperf}; }
  server { listen 127.0.0.1:${p.ngHttp} backlog=4096; proxy_pass http; }
  server { listen 127.0.0.1:${p.ngIperf}; proxy_pass iperf; }
  server { listen 127.0.0.1:${p.ngTls} ssl backlog=4096; ssl_certificate ${cert}; ssl_certificate_key ${key};
    ssl_protocols TLSv1.2 TLSv1.3; proxy_pass http; }
}\n`);
  const ng = start('nginx', ['-p', dir, '-c', join(dir, 'stream.conf')]);
  procs.push(ng);
  await iperfReady;
  for (const port of [p.http, p.tls, l5dOne.http, l5dOne.tls, l5dAll.http, l5dAll.tls, l5dThreads.http, l5dThreads.tls, nodeOne.http, nodeAll.http, p.haHttp, p.haTls, p.ngHttp, p.ngTls]) await waitForPort(port);

  const targets: Target[] = [
    { name: 'direct', http: p.http, iperf: p.iperf, tls: p.tls, pid: undefined },
    l5dOne, l5dAll, l5dThreads, nodeOne, nodeAll,
    { name: 'haproxy', http: p.haHttp, iperf: p.haIperf, tls: p.haTls, pid: ha.pid },
    { name: 'nginx', http: p.ngHttp, iperf: p.ngIperf, tls: p.ngTls, pid: ng.pid },
  ];
  const rows: Row[] = [];
  for (const t of targets) {
    process.stderr.write(`bench: ${t.name}\n`);
    const r: Row = { name: t.name };
    // Memory first, on a fresh process: later load would leave a grown heap that hides it.
    r.rssIdleMiB = t.pid ? rssBytes(t.pid) / 2 ** 20 : undefined;
    if (t.pid) {
      const held = await holdIdle(t.http, IDLE_CONNS);
      const after = rssBytes(t.pid);
      r.kibPerIdleConn = (after - r.rssIdleMiB! * 2 ** 20) / IDLE_CONNS / 1024;
      r.rssHeldMiB = after / 2 ** 20;
      await Promise.all(held.map((s) => { s.destroy(); return once(s, 'close'); }));
    }
    const cpuT = t.pid ? cpuSecs(t.pid) : 0;
    r.thr1 = (iperf(t.iperf, SECS, 1, false) + iperf(t.iperf, SECS, 1, true)) / 2;
    // CPU seconds per GB moved, over both 1-stream runs (Gbit/s × seconds × 2 runs / 8 = GB).
    if (t.pid) r.cpuPerGB = (cpuSecs(t.pid) - cpuT) / ((r.thr1 * SECS * 2) / 8);
    r.thr4 = (iperf(t.iperf, SECS, 4, false) + iperf(t.iperf, SECS, 4, true)) / 2;
    let cpu0 = t.pid ? cpuSecs(t.pid) : 0;
    const ka = wrk(t.http, SECS, 64, false);
    r.kaRps = ka.rps; r.kaP50 = ka.p50ms; r.kaP99 = ka.p99ms;
    if (t.pid) r.cpuPerReqUs = ((cpuSecs(t.pid) - cpu0) / ka.requests) * 1e6;
    cpu0 = t.pid ? cpuSecs(t.pid) : 0;
    const nc = wrk(t.http, SECS, 32, true);
    r.connRps = nc.rps; r.connP99 = nc.p99ms;
    if (t.pid) r.cpuPerConnUs = ((cpuSecs(t.pid) - cpu0) / nc.requests) * 1e6;
    // A full TLS handshake per request (wrk does not resume sessions), terminated by the proxy.
    r.tlsRps = wrk(t.tls, SECS, 32, true, 'https').rps;
    // SNI passthrough vs a plain TCP server, both to nginx's TLS port: what reading the
    // ClientHello adds to a new connection (wrk sends an IP as SNI, so the default takes it).
    if (t.tcpTls && t.sniPass) {
      r.tcpTlsRps = wrk(t.tcpTls, SECS, 32, true, 'https').rps;
      r.sniPassRps = wrk(t.sniPass, SECS, 32, true, 'https').rps;
    }
    if (t.pid) r.rssAfterMiB = rssBytes(t.pid) / 2 ** 20;
    rows.push(r);
  }
  writeReport(rows, { machine: machine(), secs: SECS, idleConns: IDLE_CONNS, write: WRITE });
}

/** A way in for the TLS part, started afresh for each of its slices: where it listens for
 * TLS, its process (the root of the tree whose CPU and RSS are read), and its name. */
interface TlsSut { id: string; up(): Promise<{ port: number; proc: ChildProcess; name: string }> }
type TlsSample = Omit<TlsRow, 'name' | 'spread'>;

/** The TLS part: each SUT terminates TLS in front of one plain-HTTP nginx; rounds interleave
 * the SUTs, each slice on a fresh process, and the table shows each figure's median. */
async function tlsBench(dir: string, procs: ChildProcess[]): Promise<void> {
  const t = join(dir, 'tls');
  mkdirSync(t, { mode: 0o755 });
  chmodSync(dir, 0o711); // nginx's workers (www-data) read big.bin under it: mkdtemp made it 0700
  // One ECDSA P-256 certificate for every SUT, made for this run (HAProxy wants key and certificate in one file).
  const cert = join(t, 'cert.pem'), key = join(t, 'key.pem'), combined = join(t, 'combined.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
    '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: ['ignore', 'ignore', 'pipe'] });
  writeFileSync(combined, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'));
  writeFileSync(join(t, 'big.bin'), Buffer.alloc(BULK_BYTES, 'x'));
  // nginx serving 1 KiB at / and 10 MiB at /big with keep-alive: the backend (plain HTTP, one
  // worker, as in the plain part) and, terminating TLS itself on every core, direct.
  const body = 'x'.repeat(1024);
  const httpConf = (name: string, workers: string, listen: string): string => {
    const file = join(t, `${name}.conf`);
    writeFileSync(file, `worker_processes ${workers}; daemon off; pid ${t}/${name}.pid; error_log stderr error;
worker_rlimit_nofile 20000;
events { worker_connections 20000; }
http { access_log off; keepalive_requests 10000000; keepalive_timeout 300s; sendfile on; default_type application/octet-stream;
  server { ${listen}
    location = /big { alias ${t}/big.bin; }
    location / { return 200 "${body}"; } } }\n`);
    return file;
  };
  const backend = await freePort();
  procs.push(start('nginx', ['-p', t, '-c', httpConf('backend', '1', `listen 127.0.0.1:${backend} backlog=4096;`)]));
  await waitForPort(backend);

  const up = async (port: number, cmd: string, args: string[], name: string, env: NodeJS.ProcessEnv = {}): Promise<{ port: number; proc: ChildProcess; name: string }> => {
    const proc = start(cmd, args, env);
    procs.push(proc);
    await waitForPort(port);
    return { port, proc, name };
  };
  const tlsListen = (port: number): string => `listen 127.0.0.1:${port} ssl backlog=4096; ssl_certificate ${cert}; ssl_certificate_key ${key}; ssl_protocols TLSv1.2 TLSv1.3;`;
  // linkerd-tcp on every core, access logs off (LOG_LEVEL=warn) as the peers run without
  // logging; engine auto (LINKERD_TCP_ENGINE unset) or node. The name says which engine the
  // TLS server got, from /api/state.
  const l5d = (engine: 'auto' | 'node'): TlsSut => ({ id: `linkerd-tcp ${engine}`, up: async () => {
    const port = await freePort(), admin = await freePort(), file = join(t, `l5d-${engine}.yml`);
    writeFileSync(file, `workers: ${cpus().length}
admin: {port: ${admin}}
routers:
- label: bench
  dtab: |
    /svc/http => /$/inet/127.0.0.1/${backend};
  servers:
  - {port: ${port}, dstName: /svc/http, tls: {defaultIdentity: {privateKey: ${key}, certs: [${cert}]}}}
`);
    const r = await up(port, process.execPath, [new URL('../dist/main.js', import.meta.url).pathname, file], '',
      { LOG_LEVEL: 'warn', LINKERD_TCP_ENGINE: engine === 'auto' ? undefined : 'node' });
    await waitForPort(admin);
    let got = '?';
    try {
      const state = await (await fetch(`http://127.0.0.1:${admin}/api/state`)).json() as { servers?: { srvAddr: string; engine?: string }[] };
      got = state.servers?.find((s) => s.srvAddr.endsWith(`:${port}`))?.engine ?? '?';
    } catch { /* the name says "?" */ }
    return { ...r, name: `linkerd-tcp ${engine} ×${cpus().length} (TLS on ${got})` };
  } });
  const suts: TlsSut[] = [
    { id: 'direct', up: async () => {
      const port = await freePort();
      return up(port, 'nginx', ['-p', t, '-c', httpConf('direct', 'auto', tlsListen(port))], 'direct');
    } },
    l5d('auto'),
    l5d('node'),
    { id: 'haproxy', up: async () => {
      const port = await freePort(), file = join(t, 'haproxy.cfg');
      writeFileSync(file, `${HAPROXY_DEFAULTS}frontend tls
  bind 127.0.0.1:${port} ssl crt ${combined} ssl-min-ver TLSv1.2
  default_backend http
backend http
  balance leastconn
  server s1 127.0.0.1:${backend}
`);
      return up(port, 'haproxy', ['-f', file, '-db'], 'haproxy');
    } },
    { id: 'nginx', up: async () => {
      const port = await freePort(), file = join(t, 'stream.conf');
      writeFileSync(file, `load_module ${STREAM_MODULE};
worker_processes auto; daemon off; pid ${t}/stream.pid; error_log stderr error;
worker_rlimit_nofile 20000;
events { worker_connections 20000; }
stream {
  upstream http { least_conn; server 127.0.0.1:${backend}; }
  server { ${tlsListen(port)} proxy_pass http; }
}\n`);
      return up(port, 'nginx', ['-p', t, '-c', file], 'nginx');
    } },
  ];

  // One slice: memory first, then keep-alive requests, bulk, and new connections (one full
  // handshake each: wrk does not resume). Memory is the RSS growth per connection held, read
  // twice: the moment the last one answered, and after they idled TLS_IDLE_SECS (linkerd-tcp
  // gives its heap back once handshakes quiet: native/heap.c). Before it, a warm-up of 200
  // connections opened and closed, so that what every SUT does once (code paged in, first
  // allocations) is not counted per connection.
  const drop = (held: Socket[]): Promise<unknown> => Promise.all(held.map((s) => { s.destroy(); return once(s, 'close'); }));
  const slice = async (sut: TlsSut): Promise<{ name: string; s: TlsSample }> => {
    const { port, proc, name } = await sut.up();
    try {
      const pid = proc.pid!;
      await drop(await holdIdle(port, 200, true));
      const before = rssBytes(pid);
      const held = await holdIdle(port, TLS_IDLE_CONNS, true);
      const kibPerTlsAtOnce = (rssBytes(pid) - before) / TLS_IDLE_CONNS / 1024;
      await new Promise((r) => setTimeout(r, TLS_IDLE_SECS * 1000));
      const kibPerIdleTls = (rssBytes(pid) - before) / TLS_IDLE_CONNS / 1024;
      await drop(held);
      // A run with wrong answers or none counts as no figure (NaN), and says so.
      const checked = (what: string, w: Wrk): Wrk => {
        if (w.non2xx || !w.requests) process.stderr.write(`\nbench: ${sut.id}: TLS ${what}: ${w.requests} requests, ${w.non2xx} not 2xx/3xx, ${w.errors} socket errors: no figure\n`);
        return w.non2xx || !w.requests ? { ...w, rps: NaN, bytes: NaN } : w;
      };
      const kaRps = checked('keep-alive', wrk(port, TLS_SECS, 64, false, 'https')).rps;
      const bulk = checked('bulk', wrk(port, TLS_SECS, 4, false, 'https', '/big'));
      const cpu0 = cpuSecs(pid);
      const hs = checked('handshakes', wrk(port, TLS_SECS, 32, true, 'https'));
      const cpuMsPerKHs = Number.isNaN(hs.rps) ? NaN : ((cpuSecs(pid) - cpu0) * 1000 / hs.requests) * 1000;
      return { name, s: { kaRps, bulkMBps: bulk.bytes / bulk.secs / 1e6, hsRps: hs.rps, cpuMsPerKHs, kibPerTlsAtOnce, kibPerIdleTls } };
    } finally {
      await stopAndWait(proc);
    }
  };
  const samples = new Map<string, { name: string; s: TlsSample[] }>(suts.map((s) => [s.id, { name: s.id, s: [] }]));
  for (let round = 0; round < TLS_ROUNDS; round++) {
    // Each round starts one SUT later, so none is always first after the previous one's teardown.
    for (const sut of [...suts.slice(round % suts.length), ...suts.slice(0, round % suts.length)]) {
      process.stderr.write(`bench: tls round ${round + 1}/${TLS_ROUNDS}: ${sut.id}`);
      const { name, s } = await slice(sut);
      process.stderr.write(` ${Object.entries(s).map(([k, v]) => `${k}=${(v as number).toFixed(1)}`).join(' ')}\n`);
      const acc = samples.get(sut.id)!;
      acc.name = name;
      acc.s.push(s);
    }
  }
  const keys = ['kaRps', 'bulkMBps', 'hsRps', 'cpuMsPerKHs', 'kibPerTlsAtOnce', 'kibPerIdleTls'] as const;
  const rows: TlsRow[] = suts.map((sut) => {
    const { name, s } = samples.get(sut.id)!;
    const row: TlsRow = { name, spread: {} };
    for (const k of keys) {
      const vs = s.map((x) => x[k]);
      const m = median(vs);
      row[k] = m;
      const ok = vs.filter((v): v is number => v !== undefined && !Number.isNaN(v));
      if (m && ok.length > 1) row.spread![k] = (Math.max(...ok) - Math.min(...ok)) / Math.abs(m);
    }
    return row;
  });
  const text = tlsTable(rows, { rounds: TLS_ROUNDS, idleConns: TLS_IDLE_CONNS, idleSecs: TLS_IDLE_SECS });
  process.stdout.write(`\n${text}\n`);
  if (WRITE) {
    const only = !parts().plain;
    writeSection(text, { marker: 'bench-tls', command: `npm run bench -- ${only ? '--only tls ' : ''}--write`, machine: machine(),
      note: `${TLS_SECS} s per measurement, ${TLS_ROUNDS} rounds; ${TLS_IDLE_CONNS} idle TLS connections for memory, after a warm-up of 200` });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
