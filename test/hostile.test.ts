// Hostile conditions through the real CLI: mutated configs (a clean error, never a stack
// trace or a hang), a client that stops reading while its backend sends (backpressure
// bounds memory), and a flood of connections past the file-descriptor limit (refused and
// logged, no busy loop, normal service afterwards).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { deadline, echo, runCli, startBackend, startProxy, writeConfig } from './support/harness.ts';
import { seeded } from './support/random.ts';

const PKI = new URL('./fixtures/tls/', import.meta.url).pathname;
const EXAMPLE = readFileSync(new URL('../example.yml', import.meta.url), 'utf8');

const BASES = [
  EXAMPLE,
  `admin: {port: 0, graceSecs: 1}
routers:
- label: nd
  interpreter: {kind: io.l5d.namerd.http, baseUrl: "http://127.0.0.1:1", namespace: default, periodSecs: 5, requestTimeoutMs: 200}
  servers:
  - {port: 0, dstName: /svc/web, connectTimeoutMs: 500, idleTimeoutMs: 1000}
  client:
    kind: io.l5d.static
    configs:
    - {prefix: /svc, connectTimeoutMs: 100, connectAttempts: 2, failFast: {maxConsecutiveFailures: 2, failurePenaltySecs: 1}}
`,
  `workers: 1
admin: {port: 0}
routers:
- label: tls
  dtab: |
    /svc => /$/inet/127.0.0.1;
  servers:
  - port: 0
    dstName: /svc/8080
    tls:
      defaultIdentity: {privateKey: ${join(PKI, 'rsa.key')}, certs: [${join(PKI, 'rsa.pem')}, ${join(PKI, 'chain.pem')}]}
      alpnProtocols: [h2]
  client:
    tls: {dnsName: rsa.test, trustCerts: [${join(PKI, 'ca.pem')}]}
`,
];

const TOKENS = ['abc', '-1', '0', '99999999999', '[]', '{}', 'null', 'true', '"/bad path"', '~', '%%%', '/$/inet/x', '*', '1.5', '" "', '&a', '!!binary x'];
const GARBAGE = ':{}[]-#&*!|>\'"%@`\t\\,?';

/** One seeded mutation of `text`: drop, duplicate or re-indent a line, replace a value, insert garbage, or truncate. */
function mutate(text: string, rnd: () => number): string {
  const lines = text.split('\n');
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const i = Math.floor(rnd() * lines.length);
  switch (Math.floor(rnd() * 6)) {
    case 0: lines.splice(i, 1); break;
    case 1: lines.splice(i, 0, lines[i] ?? ''); break;
    case 2: lines[i] = (rnd() < 0.5 ? ' ' : '') + (lines[i] ?? '').replace(/^ {1,2}/, ''); break;
    case 3: lines[i] = (lines[i] ?? '').replace(/:\s*[^\s{[][^,}\]]*/, `: ${pick(TOKENS)}`); break;
    case 4: {
      const at = Math.floor(rnd() * text.length);
      return text.slice(0, at) + pick([...GARBAGE]) + text.slice(at);
    }
    default: return text.slice(0, Math.floor(rnd() * text.length));
  }
  return lines.join('\n');
}

describe('hostile input', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => { for (const c of cleanup.reverse()) await c(); });

  it('mutated configs get a clean verdict: exit 0 or 1, a message naming the problem, never a stack trace or a hang', { timeout: 120_000 }, async (t) => {
    const rnd = seeded(20261123);
    const mutants: string[] = [];
    for (let n = 0; n < 48; n++) {
      let t = BASES[n % BASES.length]!;
      for (let k = 1 + Math.floor(rnd() * 3); k > 0; k--) t = mutate(t, rnd);
      mutants.push(t);
    }
    const verdicts: number[] = [];
    for (let i = 0; i < mutants.length; i += 6) {
      await Promise.all(mutants.slice(i, i + 6).map(async (text, j) => {
        const r = await runCli(['--check', writeConfig(text)]);
        const out = r.stdout + r.stderr;
        const what = `mutant ${i + j}:\n${text}\n→ exit ${r.code}\n${out}`;
        assert.ok(r.code === 0 || r.code === 1, what);
        assert.doesNotMatch(out, /\n\s+at |internal error/, what);
        if (r.code === 1) assert.match(out, /^linkerd-tcp: .+: .+|\nerror: .+/m, what);
        verdicts.push(r.code);
      }));
    }
    // The mutations must actually break things (else the test proves nothing), and not all of them.
    const bad = verdicts.filter((c) => c === 1).length;
    t.diagnostic(`${verdicts.length} mutants: ${bad} rejected with a message, ${verdicts.length - bad} still valid`);
    assert.ok(bad >= 20 && bad < verdicts.length, `${bad} of ${verdicts.length} mutants rejected`);
  });

  it('a client that stops reading while its backend sends: backpressure stops the backend, the proxy stays small, and every byte arrives once it reads again', async (t) => {
    const TOTAL = 256 << 20;
    let written = 0;
    let waiting = false; // the backend is waiting for 'drain'
    const be = await startBackend((s) => {
      const chunk = Buffer.alloc(1 << 20, 0x5a);
      const more = (): void => {
        while (written < TOTAL) {
          written += chunk.length;
          if (!s.write(chunk)) {
            waiting = true;
            s.once('drain', () => { waiting = false; more(); });
            return;
          }
        }
        s.end();
      };
      more();
    });
    cleanup.push(() => be.close());
    const { proxy, ports: [port] } = await startProxy(`
admin: {port: 0}
routers:
- label: slow
  dtab: /svc/be => /$/inet/127.0.0.1/${be.port};
  servers: [{port: 0, dstName: /svc/be}]
`);
    cleanup.push(() => proxy.stop());
    const rss = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${proxy.proc.pid}/status`, 'utf8'))![1]) * 1024;
    const before = rss();
    const client = connect(port!, '127.0.0.1');
    client.on('error', () => {});
    client.pause(); // reads nothing
    // Wait until the backend is held back for good: waiting for 'drain' through a whole second.
    const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    await deadline(20_000, 'backend backpressure', (async () => {
      for (;;) {
        while (!waiting) await tick(20);
        const at = written;
        await tick(1000); // a measurement window, not a settle: it must show no progress
        if (waiting && written === at) return;
      }
    })());
    const held = written;
    const grown = rss() - before;
    t.diagnostic(`backend held at ${(held / 2 ** 20).toFixed(0)} MiB of ${TOTAL >> 20} MiB; proxy RSS ${(before / 2 ** 20).toFixed(0)} → ${((before + grown) / 2 ** 20).toFixed(0)} MiB`);
    assert.ok(held < 64 << 20, `the backend got ${held >> 20} MiB out while nobody read: backpressure did not hold`);
    assert.ok(grown < 48 << 20, `proxy RSS grew ${grown >> 20} MiB while holding a stalled stream`);
    let got = 0;
    client.on('data', (d: Buffer) => (got += d.length));
    client.resume();
    await deadline(30_000, 'all bytes', once(client, 'end'));
    assert.equal(got, TOTAL);
    client.destroy();
  });

  it('a flood past the fd limit is refused and logged, without a busy loop, and service resumes after it', { timeout: 60_000 }, async (t) => {
    const be = await startBackend(echo);
    cleanup.push(() => be.close());
    const { proxy, ports: [port] } = await startProxy(`
admin: {port: 0}
routers:
- label: flood
  dtab: /svc/be => /$/inet/127.0.0.1/${be.port};
  servers: [{port: 0, dstName: /svc/be}]
`, 1, { LINKERD_TCP_WORKERS: '1' }); // one process: prlimit and /proc/PID/fd watch one pid (the fd limit is per process)
    cleanup.push(() => proxy.stop('SIGKILL'));
    const pid = proxy.proc.pid!;
    const fds = (): number => readdirSync(`/proc/${pid}/fd`).length;
    const LIMIT = fds() + 40; // room for about 20 proxied connections (two fds each)
    execFileSync('prlimit', [`--pid=${pid}`, `--nofile=${LIMIT}:${LIMIT}`]);
    const cpu = (): number => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' '); return Number(f[11]) + Number(f[12]); };

    const flood: Socket[] = [];
    const outcomes = await Promise.all(Array.from({ length: 150 }, () => new Promise<'echoed' | 'closed'>((resolve) => {
      const s = connect(port!, '127.0.0.1');
      flood.push(s);
      s.on('error', () => resolve('closed'));
      s.on('close', () => resolve('closed'));
      s.once('data', () => resolve('echoed'));
      s.write('x');
      setTimeout(resolve, 5000, 'closed'); // held in the accept queue: counts as not served
    })));
    const served = outcomes.filter((o) => o === 'echoed').length;
    t.diagnostic(`fd limit ${LIMIT}: ${served} of 150 flood connections served, ${150 - served} refused`);
    assert.ok(served > 0 && served < 150, `${served} of 150 served under a limit of ${LIMIT} fds`);
    assert.equal(proxy.proc.exitCode, null, 'still running');
    const warned = await proxy.waitForLog((l) => l.msg?.startsWith('open files at the limit') === true, 10_000, 'the fd-limit warning');
    assert.equal(typeof warned['limit'], 'number'); // the limit last read (at the limit, even reading it fails)
    // No busy loop while the flood holds every fd: under a fifth of a core over one second.
    const c0 = cpu();
    await new Promise((r) => setTimeout(r, 1000));
    t.diagnostic(`${cpu() - c0} CPU ticks (1/100 s) in the saturated second`);
    assert.ok(cpu() - c0 < 20, `${cpu() - c0} CPU ticks in 1 s while saturated`);
    for (const s of flood) s.destroy();
    await deadline(10_000, 'fds released', (async () => { while (fds() > LIMIT - 30) await new Promise((r) => setTimeout(r, 50)); })());
    const s = connect(port!, '127.0.0.1');
    s.on('error', () => {});
    s.end('after the flood');
    let back = '';
    s.on('data', (d: Buffer) => (back += d.toString()));
    await deadline(5000, 'echo after the flood', once(s, 'end'));
    assert.equal(back, 'after the flood');
    await proxy.waitForLog((l) => l.msg === 'open files back under the limit', 10_000, 'the all-clear');
  });
});
