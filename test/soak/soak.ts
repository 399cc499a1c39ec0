// Integrity soak: many concurrent connections through the real proxy, random sizes and
// half-close patterns, every byte checked by hash both ways, while discovery (an io.l5d.fs
// file) adds and removes endpoints and one backend is restarted (its connections reset).
// Result: zero connections lost or corrupted except those deliberately cut, and every
// connection accounted for in the access log and /metrics.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deadline, type Proxy, startProxy } from '../support/harness.ts';

const HEADER = 13; // id u32 | mode u8 | reply length u32 | payload length u32

export interface SoakResult {
  connections: number; verified: number; cut: number; corrupted: string[]; accessRecords: number;
  reasons: Record<string, number>;
  accepts: number; closesPlusFailures: number; bytes: number; seconds: number;
}

interface BackendState { server: Server; port: number; sockets: Map<Socket, number> }

/** A backend speaking the soak protocol: mode E echoes; mode G sends its own reply and FINs
 * first while still reading (half-close the other way), recording what it received. */
const receivedLen = new Map<number, number>();
/** What each backend received, by connection id: the sha256 of the payload after the header. */
const received = new Map<number, string>();
/** Connections a restart reset inside the backend (by id), whatever the proxy saw. */
const killedAtBackend = new Set<number>();
/** Backend sockets that closed before the client's FIN arrived, and why (diagnostics). */
const closedWithoutEnd = new Map<number, string>();
/** Waiters for a backend to be done with connection `id` (its 'end' or its close). */
const backendWaiters = new Map<number, () => void>();
const backendDone = (id: number): void => { backendWaiters.get(id)?.(); backendWaiters.delete(id); };
/** Resolves once the backend has seen the end of connection `id` (or closed it), or after `ms`. */
function backendFinished(id: number, ms: number): Promise<void> {
  if (received.has(id) || closedWithoutEnd.has(id)) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    backendWaiters.set(id, () => { clearTimeout(t); resolve(); });
  });
}
function startSoakBackend(port: number): Promise<BackendState> {
  const sockets = new Map<Socket, number>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    let head = Buffer.alloc(0);
    let lastError = '';
    s.on('error', (e: NodeJS.ErrnoException) => { lastError = e.code ?? e.message; });
    let id = -1;
    const hash = createHash('sha256');
    let n = 0;
    const onData = (d: Buffer): void => {
      if (id < 0) {
        head = Buffer.concat([head, d]);
        if (head.length < HEADER) return;
        id = head.readUInt32BE(0);
        sockets.set(s, id);
        const mode = head[4];
        const replyLen = head.readUInt32BE(5);
        d = head.subarray(HEADER);
        if (mode === 0x47 /* G */) s.end(reply(id, replyLen));
      }
      if (head[4] === 0x45 /* E */) s.write(d);
      hash.update(d);
      n += d.length;
    };
    s.on('data', onData);
    s.on('end', () => {
      received.set(id, hash.digest('hex'));
      receivedLen.set(id, n);
      backendDone(id);
      if (head[4] === 0x45) s.end();
    });
    s.on('close', () => {
      sockets.delete(s);
      if (id >= 0 && !received.has(id)) closedWithoutEnd.set(id, `${lastError || 'no error'}; read ${n}B; killed ${killedAtBackend.has(id)}`);
      backendDone(id);
    });
  });
  server.listen(port, '127.0.0.1');
  return once(server, 'listening').then(() => ({ server, port: (server.address() as { port: number }).port, sockets }));
}

/** The deterministic reply for connection `id`. */
function reply(id: number, len: number): Buffer {
  const out = Buffer.alloc(len);
  let x = id * 2654435761 >>> 0;
  for (let i = 0; i < len; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

export async function soak(opts: { seconds: number; concurrency: number; maxBytes: number; log?: (m: string) => void }): Promise<SoakResult> {
  const say = opts.log ?? (() => {});
  const backends: BackendState[] = [];
  for (let i = 0; i < 3; i++) backends.push(await startSoakBackend(0));
  const dir = mkdtempSync(join(tmpdir(), 'l5d-soak-'));
  const endpoints = (list: BackendState[]) => list.map((b) => `127.0.0.1 ${b.port}`).join('\n') + '\n';
  writeFileSync(join(dir, 'soak'), endpoints(backends));
  const { proxy, ports: [port] } = await startProxy(`
admin: {port: 0}
namers:
- {kind: io.l5d.fs, rootDir: ${JSON.stringify(dir)}}
routers:
- label: soak
  dtab: /svc => /#/io.l5d.fs;
  servers:
  - {port: 0, dstName: /svc/soak, connectTimeoutMs: 10000}
  client: {failFast: {maxConsecutiveFailures: 3, failurePenaltySecs: 1}}
`, 1, { LOG_LEVEL: 'info' });
  const restarted = new Set<string>();
  const failures: { desc: string; port: number; id: number; sent: number }[] = [];
  const corrupted: string[] = [];
  let cut = 0;
  let nextId = 1, verified = 0, bytes = 0;
  const started = Date.now();
  const end = started + opts.seconds * 1000;

  // Chaos: every second, one discovery change or one backend restart.
  let chaosStep = 0;
  const chaos = setInterval(() => {
    chaosStep++;
    if (chaosStep % 3 === 1) writeFileSync(join(dir, 'soak'), endpoints(backends.slice(0, 2))); // remove one
    else if (chaosStep % 3 === 2) writeFileSync(join(dir, 'soak'), endpoints(backends)); // add it back
    else {
      const b = backends[Math.floor(chaosStep / 3) % backends.length]!; // each backend in turn
      say(`restarting backend ${b.port}`);
      restarted.add(`127.0.0.1:${b.port}`);
      // Resets its connections, and the kernel resets those still in its accept queue.
      for (const [s, id] of b.sockets) { killedAtBackend.add(id); s.resetAndDestroy(); }
      b.server.close();
      void startSoakBackend(b.port).then((nb) => { backends[backends.indexOf(b)] = nb; }, () => {});
    }
  }, 1000);

  const one = async (): Promise<void> => {
    const id = nextId++;
    const mode = Math.random() < 0.5 ? 0x45 : 0x47;
    const payload = randomBytes(Math.floor(Math.random() * opts.maxBytes));
    const replyLen = Math.floor(Math.random() * opts.maxBytes);
    const s = connect({ port: port!, host: '127.0.0.1', allowHalfOpen: true });
    const got = createHash('sha256');
    let errored = false;
    s.on('error', () => (errored = true));
    let gotLen = 0;
    s.on('data', (d: Buffer) => { got.update(d); gotLen += d.length; bytes += d.length; });
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    const ended = new Promise<void>((resolve) => s.once('end', () => resolve()));
    await once(s, 'connect').catch(() => undefined);
    const localPort = s.localPort ?? 0;
    const head = Buffer.alloc(HEADER);
    head.writeUInt32BE(id, 0); head[4] = mode; head.writeUInt32BE(replyLen, 5); head.writeUInt32BE(payload.length, 9);
    s.write(head);
    // Half-close patterns: all then FIN, or in pieces with FIN at the end.
    if (Math.random() < 0.5) s.end(payload);
    else {
      for (let off = 0; off < payload.length; off += 16384) {
        if (!s.write(payload.subarray(off, off + 16384))) await once(s, 'drain').catch(() => undefined);
        if (errored) break;
      }
      s.end();
    }
    // Done when both directions are: our FIN flushed and theirs received (then the socket closes).
    await Promise.race([Promise.all([ended, once(s, 'finish').catch(() => undefined)]), closed]);
    await Promise.race([closed, new Promise<void>((r) => setTimeout(r, 5000))]);
    s.destroy();
    await closed;
    bytes += payload.length;
    const want = mode === 0x45 ? createHash('sha256').update(payload).digest('hex') : createHash('sha256').update(reply(id, replyLen)).digest('hex');
    const gotHex = got.digest('hex');
    // The client can be done before the backend: the proxy may still be delivering the last
    // bytes and FIN to it. Wait (bounded) for the backend's side before judging.
    await backendFinished(id, 10_000);
    const sentOk = received.get(id) === createHash('sha256').update(payload).digest('hex');
    if (gotHex === want && sentOk && !errored) verified++;
    else failures.push({ port: localPort, id, sent: HEADER + payload.length, desc: `#${id} mode ${String.fromCharCode(mode)} ${payload.length}B→${replyLen}B: reply ${gotHex === want ? 'ok' : 'BAD'}, backend got ${sentOk ? 'ok' : 'BAD'}${errored ? ', client error' : ''} (got ${gotLen}, backend got ${receivedLen.get(id)}${closedWithoutEnd.has(id) ? `, backend socket closed early: ${closedWithoutEnd.get(id)}` : ''})` });
  };
  const worker = async (): Promise<void> => {
    while (Date.now() < end) await one();
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  clearInterval(chaos);
  const total = nextId - 1;
  const access = await proxy.waitForCount((l) => l.msg === 'connection closed', total, 30_000);
  const metrics = await scrape(proxy);
  // A failed connection is a deliberate cut only if the proxy's access log says its backend
  // connection was reset by a restarted backend; anything else is data loss.
  const byClient = new Map<string, Record<string, unknown>[]>();
  for (const l of access) byClient.set(String(l['client']), [...(byClient.get(String(l['client'])) ?? []), l]);
  for (const f of failures) {
    const recs = byClient.get(`127.0.0.1:${f.port}`) ?? [];
    if (recs.some((r) => r['reason'] === 'backend_error' && restarted.has(String(r['endpoint'])))) cut++;
    // The restart can also reset a backend socket after the proxy delivered every byte and
    // both FINs (the bytes sat unread in the backend's receive buffer): the proxy rightly
    // logs `done` with all bytes forwarded, and the cut happened behind it.
    // (Client ports are reused over a long run, so match the record by its byte count too.)
    else if (killedAtBackend.has(f.id) && recs.some((r) => r['reason'] === 'done' && r['rxBytes'] === f.sent && restarted.has(String(r['endpoint'])))) cut++;
    else corrupted.push(`${f.desc}; access log: ${JSON.stringify(recs.map((r) => [r['reason'], r['endpoint'], r['rxBytes'], r['txBytes']]))}`);
  }
  const value = (name: string): number => Number(new RegExp(`^${name}\\{[^}]*\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? NaN);
  await proxy.stop('SIGTERM');
  for (const b of backends) b.server.close();
  rmSync(dir, { recursive: true, force: true });
  return {
    connections: total, verified, cut, corrupted, accessRecords: access.length,
    reasons: access.reduce<Record<string, number>>((m, l) => { const k = `${String(l['reason'])}${l['error'] ? ':' + String(l['error']) : ''}`; m[k] = (m[k] ?? 0) + 1; return m; }, {}),
    accepts: value('l5d:srv:accepts'), closesPlusFailures: value('l5d:srv:closes') + value('l5d:srv:failures'),
    bytes, seconds: (Date.now() - started) / 1000,
  };
}

async function scrape(p: Proxy): Promise<string> {
  const admin = String((await p.waitForLog((l) => l.msg === 'admin listening'))['admin']);
  return deadline(5000, 'metrics', fetch(`http://${admin}/metrics`).then((r) => r.text()));
}
