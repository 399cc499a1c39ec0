// TLS churn: many short TLS connections through a terminating server of the real proxy,
// `concurrency` at a time, each a full handshake, a small echo and a close, while the
// proxy's memory is sampled: RSS (and its anonymous part, and the [heap] of the main malloc
// arena) from /proc, the V8 heap from /metrics. Result: RSS at the start, after a warm-up
// (the first `warmup` connections) and at the end, so a soak can hold the growth after
// warm-up under a ceiling. `env` reaches the proxy (MALLOC_ARENA_MAX, LD_PRELOAD) for comparisons.
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { deadline, echo, type Proxy, startBackend, startProxy } from '../support/harness.ts';

const PKI = new URL('../fixtures/tls/', import.meta.url).pathname;
const MiB = 2 ** 20;

export interface ChurnMemory {
  readonly connections: number;
  readonly rssMiB: number;
  /** Anonymous memory (malloc arenas, V8, buffers) from smaps_rollup. */
  readonly anonMiB: number;
  /** The main malloc arena (brk heap) from smaps. */
  readonly brkHeapMiB: number;
  /** glibc's other malloc arenas (one per thread that allocated, up to 8 per core): how many, and their RSS. */
  readonly arenas: number;
  readonly arenasMiB: number;
  readonly v8HeapMiB: number;
}

export interface ChurnResult {
  readonly connections: number;
  readonly failed: number;
  readonly seconds: number;
  readonly samples: readonly ChurnMemory[];
  readonly start: ChurnMemory;
  readonly afterWarmup: ChurnMemory;
  readonly end: ChurnMemory;
  readonly peakRssMiB: number;
  /** Each measured process's command line (node's flags included), at the end. */
  readonly commandLines: readonly (readonly string[])[];
}

const round = (n: number): number => Math.round(n * 10) / 10;

interface Mapping { readonly start: number; readonly end: number; readonly perms: string; readonly name: string; readonly rss: number }

function mappings(smaps: string): Mapping[] {
  const out: Mapping[] = [];
  for (const block of smaps.split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+[ \t]*(.*)$/m.exec(block);
    if (!m) continue;
    out.push({ start: parseInt(m[1]!, 16), end: parseInt(m[2]!, 16), perms: m[3]!, name: m[4]!.trim(), rss: Number(/^Rss:\s+(\d+) kB/m.exec(block)?.[1] ?? 0) * 1024 });
  }
  return out;
}

function procMemory(pid: number): { rss: number; anon: number; brk: number; arenas: number; arenasRss: number } {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? 0) * 1024;
  const maps = mappings(readFileSync(`/proc/${pid}/smaps`, 'utf8'));
  // A glibc thread arena is a 64 MiB-aligned anonymous reservation: a read-write part, then a PROT_NONE rest.
  let arenas = 0, arenasRss = 0;
  maps.forEach((a, i) => {
    const b = maps[i + 1];
    if (a.name === '' && a.perms === 'rw-p' && a.start % (64 * MiB) === 0 && (b ? b.start === a.end && b.perms === '---p' && b.end - a.start === 64 * MiB : a.end - a.start === 64 * MiB)) {
      arenas++;
      arenasRss += a.rss;
    }
  });
  return { rss: kb('Rss'), anon: kb('Anonymous'), brk: maps.find((m) => m.name === '[heap]')?.rss ?? 0, arenas, arenasRss };
}

/** V8's used heap: the process's own, or with workers the sum of theirs. */
async function v8Heap(admin: string, workers: boolean): Promise<number> {
  const text = await deadline(5000, 'metrics', fetch(`http://${admin}/metrics`).then((r) => r.text()));
  const re = workers ? /^process:heap_used_bytes\{worker="\d+"\} (\S+)$/gm : /^process:heap_used_bytes (\S+)$/gm;
  return [...text.matchAll(re)].reduce((sum, m) => sum + Number(m[1]), 0);
}

/** The processes whose parent is `pid` (the workers of a primary). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}

async function sample(proxy: Proxy, admin: string, connections: number, workers: number): Promise<ChurnMemory> {
  const pids = workers > 1 ? childrenOf(proxy.proc.pid!) : [proxy.proc.pid!];
  const m = pids.map(procMemory).reduce((a, b) => ({ rss: a.rss + b.rss, anon: a.anon + b.anon, brk: a.brk + b.brk, arenas: a.arenas + b.arenas, arenasRss: a.arenasRss + b.arenasRss }));
  return {
    connections, rssMiB: round(m.rss / MiB), anonMiB: round(m.anon / MiB), brkHeapMiB: round(m.brk / MiB),
    arenas: m.arenas, arenasMiB: round(m.arenasRss / MiB), v8HeapMiB: round((await v8Heap(admin, workers > 1)) / MiB),
  };
}

/**
 * With `workers` > 1 the proxy runs that many worker processes and the figures are their sums
 * (the primary only supervises and serves the admin).
 */
export async function tlsChurn(opts: {
  connections: number; concurrency: number; warmup: number; sampleEvery?: number; workers?: number;
  env?: NodeJS.ProcessEnv; log?: (m: string) => void;
}): Promise<ChurnResult> {
  const workers = opts.workers ?? 1;
  const be = await startBackend(echo);
  const { proxy, ports: [port] } = await startProxy(`
workers: ${workers}
admin: {port: 0}
routers:
- label: churn
  dtab: /svc/be => /$/inet/127.0.0.1/${be.port};
  servers:
  - port: 0
    dstName: /svc/be
    tls: {defaultIdentity: {privateKey: ${join(PKI, 'rsa.key')}, certs: [${join(PKI, 'rsa.pem')}]}}
`, 1, { LOG_LEVEL: 'info', ...opts.env });
  try {
    const admin = String((await proxy.waitForLog((l) => l.msg === 'admin listening'))['admin']);
    const payload = Buffer.alloc(1024, 'x');
    const one = async (): Promise<boolean> => {
      const c = connect({ port: port!, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false });
      c.on('error', () => {});
      try {
        await deadline(10_000, 'handshake', once(c, 'secureConnect'));
        let got = 0;
        const echoed = new Promise<void>((resolve) => c.on('data', (d: Buffer) => { got += d.length; if (got >= payload.length) resolve(); }));
        c.end(payload);
        await deadline(10_000, 'echo', echoed);
        return true;
      } catch {
        return false;
      } finally {
        c.destroy();
      }
    };
    const samples: ChurnMemory[] = [await sample(proxy, admin, 0, workers)];
    const every = opts.sampleEvery ?? Math.max(500, Math.floor(opts.connections / 20));
    let started = 0, done = 0, failed = 0;
    let afterWarmup: ChurnMemory | undefined;
    const t0 = performance.now();
    const worker = async (): Promise<void> => {
      while (started < opts.connections) {
        started++;
        if (!(await one())) failed++;
        done++;
        const at = done;
        if (at % every === 0 || at === opts.warmup) {
          const s = await sample(proxy, admin, at, workers);
          samples.push(s);
          if (at === opts.warmup) afterWarmup = s;
          opts.log?.(`${at} connections: RSS ${s.rssMiB} MiB (anon ${s.anonMiB}: brk heap ${s.brkHeapMiB}, ${s.arenas} thread arenas ${s.arenasMiB}), V8 heap ${s.v8HeapMiB} MiB`);
        }
      }
    };
    await Promise.all(Array.from({ length: opts.concurrency }, worker));
    const seconds = (performance.now() - t0) / 1000;
    const end = await sample(proxy, admin, done, workers);
    samples.push(end);
    const pids = workers > 1 ? childrenOf(proxy.proc.pid!) : [proxy.proc.pid!];
    const commandLines = pids.map((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean));
    return {
      connections: done, failed, seconds: round(seconds), samples, start: samples[0]!, afterWarmup: afterWarmup ?? samples[0]!, end,
      peakRssMiB: Math.max(...samples.map((s) => s.rssMiB)), commandLines,
    };
  } finally {
    await proxy.stop('SIGKILL');
    await be.close();
  }
}
