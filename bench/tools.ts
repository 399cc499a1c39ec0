// Bench plumbing: free ports, waiting for listeners, running load tools and parsing their
// output, reading a process tree's RSS and CPU from /proc. Loopback only.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';

const handedOut = new Set<number>();

/** A port nothing listens on, below the kernel's ephemeral range: a port from that range,
 * free when probed, can be taken as the source port of anyone's outbound connection before
 * the server meant for it binds (EADDRINUSE on a busy machine). Never the same one twice. */
export async function freePort(): Promise<number> {
  const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  for (let i = 0; i < 1000 && low > 10_001; i++) {
    const port = 10_000 + Math.floor(Math.random() * (low - 10_000));
    if (handedOut.has(port)) continue;
    const s = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (!ok) continue;
    await new Promise<void>((r) => s.close(() => r()));
    handedOut.add(port);
    return port;
  }
  const s = createServer().listen(0, '127.0.0.1'); // no room below the range: any port, as before
  await once(s, 'listening');
  const p = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  handedOut.add(p);
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

/** Kills `p`'s tree as stop() does and resolves once `p` itself has exited (bounded), so the
 * next process started in its place does not share the machine with it. */
export async function stopAndWait(p: ChildProcess | undefined, ms = 5_000): Promise<void> {
  if (!p?.pid || p.exitCode !== null || p.signalCode !== null) return;
  const exited = once(p, 'exit');
  stop(p);
  await Promise.race([exited, new Promise((r) => setTimeout(r, ms))]);
}

/** Kills `p` and its whole process tree (nginx workers outlive a killed master otherwise).
 * Root first: a supervisor (nginx's master, linkerd-tcp's primary) that saw a worker die
 * before it did would fork a new one, which no list taken before would name. */
export function stop(p: ChildProcess | undefined): void {
  if (!p?.pid || p.exitCode !== null || p.signalCode !== null) return;
  for (const pid of tree(p.pid)) {
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

export interface Wrk { rps: number; p50ms: number; p99ms: number; requests: number;
  /** bytes read (partial responses included) and the run's own duration, for a throughput */
  bytes: number; secs: number;
  /** answers that were not 2xx or 3xx, and socket errors (connect, read, write, timeout) */
  non2xx: number; errors: number }

const UNIT: Record<string, number> = { B: 1, KB: 2 ** 10, MB: 2 ** 20, GB: 2 ** 30, TB: 2 ** 40 }; // wrk's units are binary

export function wrk(port: number, secs: number, conns: number, close: boolean, scheme: 'http' | 'https' = 'http', path = '/'): Wrk {
  const args = ['-t2', `-c${conns}`, `-d${secs}s`, '--latency', '--timeout', '5s'];
  if (close) args.push('-H', 'Connection: close');
  const out = execFileSync('wrk', [...args, `${scheme}://127.0.0.1:${port}${path}`], { encoding: 'utf8', timeout: (secs + 30) * 1000 });
  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? NaN);
  const read = /requests in ([\d.]+)(ms|s|m), ([\d.]+)([KMGT]?B) read/.exec(out);
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
    bytes: read ? Number(read[3]) * UNIT[read[4]!]! : NaN,
    secs: read ? Number(read[1]) * (read[2] === 'ms' ? 1e-3 : read[2] === 'm' ? 60 : 1) : NaN,
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    errors: (/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)?.slice(1) ?? []).reduce((a, b) => a + Number(b), 0),
  };
}

/** The median of `xs` (NaN and undefined left out); undefined when none is left. */
export function median(xs: readonly (number | undefined)[]): number | undefined {
  const v = xs.filter((x): x is number => x !== undefined && !Number.isNaN(x)).sort((a, b) => a - b);
  if (!v.length) return undefined;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1]! + v[m]!) / 2;
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
