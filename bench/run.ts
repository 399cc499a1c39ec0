// `npm run bench`: one run, same backends, seven ways in — direct, linkerd-tcp on one
// process and on every core on each engine (native, node), HAProxy (mode tcp, leastconn) and nginx stream (least_conn) —
// and a table of ratios to direct: throughput, requests/s, new connections/s, TLS
// handshakes/s (terminating with the same ECDSA P-256 certificate), memory and CPU.
// Loopback only, bounded in time (about four minutes). `--write` records BENCHMARKS.md.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { cpuSecs, freePort, iperf, rssBytes, start, stop, waitForPort, wrk } from './tools.ts';
import { writeReport, type Row } from './report.ts';

const SECS = Number(process.env['BENCH_SECS'] ?? 4);
const IDLE_CONNS = Number(process.env['BENCH_IDLE_CONNS'] ?? 5000);
const STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so'; // Debian's libnginx-mod-stream

function ensureTools(): void {
  const missing = ['haproxy', 'nginx', 'iperf3', 'wrk'].filter((t) => {
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

/** Opens `n` connections through `port` and makes one request on each, so every one is
 * established end to end (client → proxy → backend) before memory is read; then they idle. */
async function holdIdle(port: number, n: number): Promise<Socket[]> {
  const out: Socket[] = [];
  for (let i = 0; i < n; i += 200) {
    const batch = await Promise.all(Array.from({ length: Math.min(200, n - i) }, async () => {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => {});
      await once(s, 'connect');
      const answered = once(s, 'data');
      s.write('GET / HTTP/1.1\r\nHost: bench\r\n\r\n');
      await answered;
      return s;
    }));
    out.push(...batch);
  }
  return out;
}

async function main(): Promise<void> {
  ensureTools();
  const dir = mkdtempSync(join(tmpdir(), 'l5d-bench-'));
  const procs: ChildProcess[] = [];
  const cleanup = (): void => { procs.forEach(stop); rmSync(dir, { recursive: true, force: true }); };
  process.on('exit', cleanup);
  process.on('SIGINT', () => process.exit(130));
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
  const l5d = async (name: string, workers: number, engine: 'native' | 'node'): Promise<Target> => {
    const t = { http: await freePort(), iperf: await freePort(), tls: await freePort(), admin: await freePort(), tcpTls: await freePort(), sniPass: await freePort() };
    writeFileSync(join(dir, `${name}.yml`), `workers: ${workers}
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
  const nodeOne = await l5d('linkerd-tcp node ×1', 1, 'node');
  const nodeAll = await l5d(`linkerd-tcp node ×${cpus().length}`, cpus().length, 'node');
  writeFileSync(join(dir, 'haproxy.cfg'), `global
  maxconn 9000
defaults
  mode tcp
  timeout connect 5s
  timeout client 300s
  timeout server 300s
frontend http
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
  for (const port of [p.http, p.tls, l5dOne.http, l5dOne.tls, l5dAll.http, l5dAll.tls, nodeOne.http, nodeAll.http, p.haHttp, p.haTls, p.ngHttp, p.ngTls]) await waitForPort(port);

  const targets: Target[] = [
    { name: 'direct', http: p.http, iperf: p.iperf, tls: p.tls, pid: undefined },
    l5dOne, l5dAll, nodeOne, nodeAll,
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
  const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${execFileSync('haproxy', ['-v'], { encoding: 'utf8' }).split('\n')[0]!.split(' - ')[0]}, ${execFileSync('sh', ['-c', 'nginx -v 2>&1'], { encoding: 'utf8' }).trim()}`;
  writeReport(rows, { machine, secs: SECS, idleConns: IDLE_CONNS, write: process.argv.includes('--write') });
  cleanup();
  process.exit(0);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
