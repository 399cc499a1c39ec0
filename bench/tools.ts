// Bench plumbing: free ports, waiting for listeners, running load tools and parsing their
// output, reading a process tree's RSS and CPU from /proc. Loopback only.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';

export async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const p = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

/** Waits until something accepts on 127.0.0.1:port (bounded). */
export async function waitForPort(port: number, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`nothing listening on ${port} after ${ms}ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function start(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let err = '';
  p.stderr!.on('data', (d: Buffer) => { if (err.length < 4000) err += d.toString(); });
  p.on('exit', (code, sig) => { if (code && code !== 0 && !sig) process.stderr.write(`bench: ${cmd} exited ${code}: ${err}\n`); });
  return p;
}

/** Kills `p` and its whole process tree (nginx workers outlive a killed master otherwise). */
export function stop(p: ChildProcess | undefined): void {
  if (!p?.pid || p.exitCode !== null || p.signalCode !== null) return;
  for (const pid of tree(p.pid).reverse()) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  }
}

/** Every pid in the tree rooted at `pid` (nginx and HAProxy have workers). */
function tree(pid: number): number[] {
  const out = [pid];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const ppid = Number(readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
      if (ppid === pid) out.push(...tree(Number(d)));
    } catch { /* gone */ }
  }
  return out;
}

export function rssBytes(pid: number): number {
  let kb = 0;
  for (const p of tree(pid)) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      kb += Number(m?.[1] ?? 0);
    } catch { /* gone */ }
  }
  return kb * 1024;
}

/** CPU seconds (user + system) used so far by the tree. */
export function cpuSecs(pid: number): number {
  const hz = 100;
  let ticks = 0;
  for (const p of tree(pid)) {
    try {
      const f = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch { /* gone */ }
  }
  return ticks / hz;
}

export interface Wrk { rps: number; p50ms: number; p99ms: number; requests: number }

export function wrk(port: number, secs: number, conns: number, close: boolean, scheme: 'http' | 'https' = 'http'): Wrk {
  const args = ['-t2', `-c${conns}`, `-d${secs}s`, '--latency', '--timeout', '5s'];
  if (close) args.push('-H', 'Connection: close');
  const out = execFileSync('wrk', [...args, `${scheme}://127.0.0.1:${port}/`], { encoding: 'utf8', timeout: (secs + 30) * 1000 });
  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? NaN);
  const ms = (re: RegExp): number => {
    const m = re.exec(out);
    if (!m) return NaN;
    const v = Number(m[1]);
    return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
  };
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    requests: num(/(\d+) requests in/),
    p50ms: ms(/50%\s+([\d.]+)(us|ms|s)/),
    p99ms: ms(/99%\s+([\d.]+)(us|ms|s)/),
  };
}

/** iperf3 throughput in Gbit/s (receiver side). */
export function iperf(port: number, secs: number, streams: number, reverse: boolean): number {
  const args = ['-c', '127.0.0.1', '-p', String(port), '-t', String(secs), '-P', String(streams), '-J'];
  if (reverse) args.push('-R');
  // iperf3's server takes one test at a time and needs a moment after the last one ends:
  // "busy" is retried (a bounded number of times), anything else is an error.
  for (let attempt = 0; ; attempt++) {
    let out: string;
    try {
      out = execFileSync('iperf3', args, { encoding: 'utf8', timeout: (secs + 30) * 1000 });
    } catch (e) {
      out = String((e as { stdout?: unknown }).stdout ?? '');
      if (!out.includes('{')) throw e;
    }
    const j = JSON.parse(out) as { end?: { sum_received?: { bits_per_second?: number } }; error?: string };
    if (j.error?.includes('busy') && attempt < 20) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 250);
      continue;
    }
    if (j.error) throw new Error(`iperf3: ${j.error}`);
    return (j.end?.sum_received?.bits_per_second ?? NaN) / 1e9;
  }
}
