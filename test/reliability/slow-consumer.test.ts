// Slow consumers in both directions at once, through the real CLI: clients that stop reading
// while their backend sends, and backends that stop reading while their client sends.
// (test/hostile.test.ts covers one stalled download; this covers several of each direction
// together, the proxy's liveness meanwhile, and every byte's identity after.) Backpressure
// must hold each sender back within the socket buffers, the proxy's memory must stay
// bounded, other connections must be served, and once the readers read again every byte
// arrives, in order, exactly once (sha256 per stream).
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { after, describe, it } from 'node:test';
import { deadline, echo, startBackend, startProxy } from '../support/harness.ts';

/** Stops the proxy and removes the temp dir its config was written to (its last argument). */
async function dispose(proxy: { proc: ChildProcess; stop(signal: NodeJS.Signals): Promise<unknown> }): Promise<void> {
  await proxy.stop('SIGKILL');
  rmSync(dirname(String(proxy.proc.spawnargs.at(-1))), { recursive: true, force: true });
}

const CHUNK = 64 << 10;
const CAP = 256 << 20; // a sender never offers more than this: reaching it means nothing held it back
const STREAMS_EACH_WAY = 8;
const MiB = (n: number): string => `${(n / 2 ** 20).toFixed(1)} MiB`;

const BASE = randomBytes(CHUNK);
/** Chunk `i` of stream `id`: the stream id and chunk index, then random bytes. */
function chunk(id: number, i: number): Buffer {
  const c = Buffer.from(BASE);
  c.writeUInt32BE(id, 0);
  c.writeUInt32BE(i, 4);
  return c;
}

/** Writes chunks with backpressure until stopped (then FIN) or CAP; records what it offered. */
class Sender {
  offered = 0;
  private readonly hash = createHash('sha256');
  private stopRequested = false;
  /** Resolves the first time write() says the buffers are full. */
  readonly blocked: Promise<void>;
  /** Resolves with the byte count and hash of everything written, once ended. */
  readonly done: Promise<{ bytes: number; sha: string }>;

  readonly id: number;
  readonly socket: Socket;

  constructor(id: number, socket: Socket) {
    this.id = id;
    this.socket = socket;
    let blocked!: () => void;
    this.blocked = new Promise((r) => (blocked = r));
    socket.resume(); // nothing comes the other way; reading lets the peer's FIN close it
    this.done = (async () => {
      for (let i = 0; !this.stopRequested && this.offered < CAP; i++) {
        const c = chunk(id, i);
        this.hash.update(c);
        this.offered += c.length;
        if (!socket.write(c)) {
          blocked();
          await once(socket, 'drain');
        }
      }
      socket.end();
      return { bytes: this.offered, sha: this.hash.digest('hex') };
    })();
  }

  /** Bytes that left this process (handed to the kernel), as opposed to queued in it. */
  get flushed(): number {
    return this.socket.bytesWritten - this.socket.writableLength;
  }

  stop(): void {
    this.stopRequested = true;
  }
}

/**
 * Bytes the kernel holds in the queues of established loopback TCP sockets with a local or
 * remote port in `ports` (from /proc/net/tcp: tx_queue is written but not yet acknowledged,
 * rx_queue received but not yet read; on loopback each byte in flight is in exactly one).
 */
function kernelQueued(ports: ReadonlySet<number>): number {
  let n = 0;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5 || f[3] !== '01') continue; // 01: ESTABLISHED
    const local = parseInt(f[1]!.split(':')[1]!, 16), remote = parseInt(f[2]!.split(':')[1]!, 16);
    if (!ports.has(local) && !ports.has(remote)) continue;
    const [tx, rx] = f[4]!.split(':').map((h) => parseInt(h, 16));
    n += tx! + rx!;
  }
  return n;
}

/** Reads nothing until resume(); then counts and hashes to EOF, naming the stream by its first chunk. */
function receiver(s: Socket): { socket: Socket; resume(): void; done: Promise<{ id: number; bytes: number; sha: string }> } {
  s.pause();
  const hash = createHash('sha256');
  let bytes = 0;
  let head = Buffer.alloc(0);
  s.on('data', (d: Buffer) => {
    if (head.length < 4) head = Buffer.concat([head, d.subarray(0, 4)]);
    hash.update(d);
    bytes += d.length;
  });
  const done = once(s, 'end').then(() => {
    s.end(); // our FIN back: the proxy's connection can close
    return { id: head.readUInt32BE(0), bytes, sha: hash.digest('hex') };
  });
  return { socket: s, resume: () => s.resume(), done };
}

describe('slow consumers', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => { for (const c of cleanup.reverse()) await c(); });

  it(`${STREAMS_EACH_WAY} stalled downloads and ${STREAMS_EACH_WAY} stalled uploads: senders held back, proxy memory bounded, others served, every byte intact after`, { timeout: 60_000 }, async (t) => {
    // Downloads: the backend sends, the client does not read.
    const sources: Sender[] = [];
    const source = await startBackend((s) => { sources.push(new Sender(sources.length, s)); });
    // Uploads: the client sends, the backend does not read.
    const sinks: ReturnType<typeof receiver>[] = [];
    let sinkArrived!: () => void;
    const allSinks = new Promise<void>((r) => (sinkArrived = r));
    const sink = await startBackend((s) => {
      sinks.push(receiver(s));
      if (sinks.length === STREAMS_EACH_WAY) sinkArrived();
    });
    const echoer = await startBackend(echo);
    cleanup.push(() => source.close(), () => sink.close(), () => echoer.close());
    const { proxy, ports: [down, up, live] } = await startProxy(`
admin: {port: 0}
routers:
- label: slow
  dtab: |
    /svc/down => /$/inet/127.0.0.1/${source.port};
    /svc/up => /$/inet/127.0.0.1/${sink.port};
    /svc/live => /$/inet/127.0.0.1/${echoer.port};
  servers: [{port: 0, dstName: /svc/down}, {port: 0, dstName: /svc/up}, {port: 0, dstName: /svc/live}]
`, 3);
    cleanup.push(() => dispose(proxy));
    const rss = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${proxy.proc.pid}/status`, 'utf8'))![1]) * 1024;

    const dial = async (port: number): Promise<Socket> => {
      const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      s.on('error', () => {});
      await deadline(5000, 'client connect', once(s, 'connect'));
      return s;
    };
    // A connection that stays busy through it all: proves the proxy keeps serving, and gives
    // its event loop many turns in which it could have read more from the stalled senders.
    const liveConn = await dial(live!);
    const roundTrips = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const got = once(liveConn, 'data');
        liveConn.write(`ping ${i}`);
        assert.equal(String((await deadline(5000, `echo ${i}`, got))[0]), `ping ${i}`);
      }
    };
    await roundTrips(20);
    const before = rss();

    const downloads = await Promise.all(Array.from({ length: STREAMS_EACH_WAY }, async () => receiver(await dial(down!))));
    const uploaders = await Promise.all(Array.from({ length: STREAMS_EACH_WAY }, async (_, i) => new Sender(100 + i, await dial(up!))));
    await deadline(10_000, 'every download source connected', (async () => {
      while (sources.length < STREAMS_EACH_WAY) await once(source.server, 'connection');
    })());
    await deadline(10_000, 'every upload reached the sink', allSinks);
    const senders = [...sources, ...uploaders];
    await deadline(20_000, 'every sender blocked by backpressure', Promise.all(senders.map((s) => s.blocked)));

    // 300 more round trips while every stalled stream is offered more than the proxy may hold.
    await roundTrips(300);
    const flushed = senders.map((s) => s.flushed);
    const held = rss() - before;
    const total = flushed.reduce((a, b) => a + b, 0);
    // Where those bytes are now: in the kernel's socket queues, in the paused readers' own
    // buffers, or else inside the proxy process. Only the last is the proxy's doing.
    const inKernel = kernelQueued(new Set([down!, up!, source.port, sink.port]));
    const inReaders = [...downloads, ...sinks].reduce((a, r) => a + r.socket.readableLength, 0);
    const inProxy = total - inKernel - inReaders;
    t.diagnostic(`bytes out of each sender while its reader was stalled: ${flushed.map(MiB).join(', ')} (total ${MiB(total)}); each offered up to ${MiB(CAP)}`);
    t.diagnostic(`of which ${MiB(inKernel)} in kernel socket queues, ${MiB(inReaders)} in the stalled readers, ${MiB(inProxy)} in the proxy (${senders.length} streams)`);
    t.diagnostic(`proxy RSS ${MiB(before)} → ${MiB(before + held)} with ${senders.length} stalled streams`);
    assert.ok(inProxy < senders.length * (256 << 10), `the proxy holds ${MiB(inProxy)} of stalled streams' bytes (over 256 KiB each)`);
    for (const [i, f] of flushed.entries()) assert.ok(f < CAP / 2, `sender ${i} got ${MiB(f)} out with no reader: backpressure did not hold`);
    assert.ok(senders.every((s) => s.offered < CAP), 'a sender offered everything: nothing held it back');
    assert.ok(held < 128 << 20, `proxy RSS grew ${MiB(held)} while holding ${senders.length} stalled streams`);

    // Readers read again; senders finish what they have queued and FIN.
    for (const s of senders) s.stop();
    for (const r of [...downloads, ...sinks]) r.resume();
    const sent = new Map<number, { bytes: number; sha: string }>();
    for (const s of senders) sent.set(s.id, await deadline(30_000, `sender ${s.id} done`, s.done));
    const got = await deadline(30_000, 'every stream received to EOF', Promise.all([...downloads, ...sinks].map((r) => r.done)));
    assert.deepEqual(got.map((g) => g.id).sort((a, b) => a - b), [...sent.keys()].sort((a, b) => a - b));
    for (const g of got) assert.deepEqual({ bytes: g.bytes, sha: g.sha }, sent.get(g.id), `stream ${g.id}`);
    t.diagnostic(`after resuming: ${MiB(got.reduce((a, g) => a + g.bytes, 0))} delivered, every stream's sha256 equal`);
    await roundTrips(5);
    liveConn.destroy();
    await proxy.waitForCount((l) => l.msg === 'connection closed', senders.length + 1);
    assert.ok(!proxy.logs.some((l) => l.msg === 'connection closed' && l['reason'] !== 'done'), 'a stream closed abnormally');
  });
});
