// User-space instructions per proxied connection on the native engine, counted by callgrind
// (no timing: a figure that a loaded machine does not move much). The proxy runs one
// process, logs off, under valgrind; WARM connections, then the counters are zeroed, N
// connections (16 at a time, each writes 16 bytes, reads them back and closes), a dump.
// Prints total Ir / N, the main thread's share and the JavaScript under napi_make_callback.
//   node bench/conn-instructions.ts [N=20000]      (WARM=3000, ROOT=checkout to measure)
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './tools.ts';

const N = Number(process.argv[2] ?? 20_000), WARM = Number(process.env['WARM'] ?? 3000), CONC = 16;
const ROOT = process.env['ROOT'] ?? new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'conn-instructions-'));
let ok = 0;

const be = createServer((s) => s.pipe(s)).listen(0, '127.0.0.1');
await once(be, 'listening');
const port = await freePort();
const cfg = join(dir, 'proxy.yml');
writeFileSync(cfg, `admin: {port: 0}\nrouters:\n- label: r\n  dtab: /svc/be => /$/inet/127.0.0.1/${(be.address() as AddressInfo).port};\n  servers:\n  - {port: ${port}, dstName: /svc/be}\n`);
const out = join(dir, 'callgrind.out');
const proxy = spawn('valgrind', ['--tool=callgrind', '--smc-check=all-non-file', `--callgrind-out-file=${out}`, process.execPath, join(ROOT, 'src/main.ts'), cfg], {
  env: { ...process.env, LOG_LEVEL: 'warn', LINKERD_TCP_ENGINE: 'native', LINKERD_TCP_WORKERS: '1' }, stdio: ['ignore', 'inherit', 'ignore'],
});

/** One connection; retried while the proxy (slow under valgrind) is not listening yet. */
async function one(): Promise<void> {
  for (;;) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => {});
    const up = await new Promise<boolean>((res) => { s.once('connect', () => res(true)); s.once('error', () => res(false)); });
    if (!up) { await new Promise((r) => setTimeout(r, 200)); continue; }
    s.write('0123456789abcdef');
    let got = 0;
    for await (const d of s) if ((got += (d as Buffer).length) >= 16) break;
    s.destroy();
    if (got >= 16) ok++;
    return;
  }
}
async function run(n: number): Promise<void> {
  let left = n;
  await Promise.all(Array.from({ length: CONC }, async () => { while (left-- > 0) await one(); }));
}

await run(WARM);
execFileSync('callgrind_control', ['-z', String(proxy.pid)]);
await run(N);
execFileSync('callgrind_control', ['-d', String(proxy.pid)]);
const ann = execFileSync('callgrind_annotate', ['--inclusive=yes', '--threshold=100', '--auto=no', `${out}.1`], { encoding: 'utf8', maxBuffer: 1 << 28 });
const ir = (re: RegExp): number => Number(re.exec(ann)?.[1]?.replace(/,/g, '') ?? NaN);
const per = (v: number): number => Math.round(v / N);
console.log(JSON.stringify({
  connections: N, echoed: ok, irPerConn: per(ir(/^\s*([\d,]+) \S+\s+PROGRAM TOTALS/m)),
  mainThread: per(ir(/^\s*([\d,]+) .*SpinEventLoopInternal/m)), javascript: per(ir(/^\s*([\d,]+) .*:napi_make_callback /m)),
  otherThreads: per(ir(/^\s*([\d,]+) .*:start_thread /m)), scavenges: per(ir(/^\s*([\d,]+) .*ScavengerCollector::CollectGarbage\(\) /m)),
}));
proxy.kill('SIGKILL');
be.close();
process.exit(0);
