// Config fuzzing through `linkerd-tcp --check`, structure-aware (test/hostile.test.ts mutates
// config text line by line; this mutates the parsed tree at a known key path and writes it
// back as YAML or JSON, so each rejection can be held to naming that path), plus hand-made
// hostile documents (deep nesting, binary, NUL, BOM, 20 MiB, duplicate keys, YAML tags and
// merge keys, __proto__, several documents) and stdin. Every run must end within its
// deadline with exit 0 or 1, never a stack trace; an exit 1 must name a key path or a parse
// position.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { MAIN } from '../support/harness.ts';
import { seeded } from '../support/random.ts';

const PKI = new URL('../fixtures/tls/', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'l5d-fuzz-'));
after(() => rmSync(dir, { recursive: true, force: true }));

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const BASES: Json[] = [
  { // the bundled example
    admin: { ip: '127.0.0.1', port: 9989, metricsIntervalSecs: 10, graceSecs: 10 },
    routers: [{
      label: 'default', interpreter: { kind: 'default' }, dtab: '/svc/default => /$/inet/127.0.0.1/8080;\n',
      servers: [{ port: 7474, dstName: '/svc/default', connectTimeoutMs: 500 }],
      client: { kind: 'io.l5d.global', connectTimeoutMs: 400 },
    }],
  },
  { // namerd, polled and watched, with per-prefix clients
    workers: 1, bufferSizeBytes: 65536,
    admin: { port: 0, graceSecs: 1 },
    routers: [
      {
        label: 'poll', interpreter: { kind: 'io.l5d.namerd.http', baseUrl: 'http://127.0.0.1:1', namespace: 'default', periodSecs: 5, requestTimeoutMs: 200 },
        servers: [{ port: 0, ip: '127.0.0.1', dstName: '/svc/web', connectionLifetimeSecs: 60, idleTimeoutMs: 1000, maxConcurrency: 10 }],
        client: { kind: 'io.l5d.static', configs: [
          { prefix: '/svc', connectTimeoutMs: 100, connectAttempts: 2, failFast: { maxConsecutiveFailures: 2, failurePenaltySecs: 1 } },
          { prefix: '/svc/web', maxWaiters: 10, minConnections: 1 },
        ] },
      },
      {
        label: 'watch', interpreter: { kind: 'io.l5d.namerd.http', baseUrl: 'http://127.0.0.1:1', namespace: 'ns', periodSecs: 1, watch: true },
        dtab: '/svc => /#/io.l5d.fs;',
        servers: [{ port: 0, dstName: '/svc/db' }, { port: 0, dstName: '/svc/cache' }],
      },
    ],
  },
  { // namers, weighted unions, and a global client with every key
    admin: { port: 0 },
    namers: [{ kind: 'io.l5d.fs', rootDir: dir, prefix: '/io.l5d.fs' }, { kind: 'io.l5d.dnssrv', refreshIntervalSeconds: 5, dnsHosts: ['127.0.0.1:53'] }],
    routers: [{
      label: 'names', dtab: '/svc => /$/inet/127.0.0.1;\n/svc/web => 3 * /$/inet/127.0.0.1/8080 & 1 * /$/inet/127.1/8081;\n/svc/files => /#/io.l5d.fs;\n',
      servers: [{ port: 0, dstName: '/svc/web' }, { port: 0, dstName: '/svc/files/a' }],
      client: { connectTimeoutMs: 400, connectAttempts: 3, minConnections: 0, maxWaiters: 100, failFast: { maxConsecutiveFailures: 5, failurePenaltySecs: 60 } },
    }],
  },
  { // TLS termination and origination
    admin: { port: 0 },
    routers: [{
      label: 'tls', dtab: '/svc => /$/inet/127.0.0.1;',
      servers: [{ port: 0, dstName: '/svc/8080', tls: {
        defaultIdentity: { privateKey: join(PKI, 'rsa.key'), certs: [join(PKI, 'rsa.pem'), join(PKI, 'chain.pem')] },
        identities: { 'ec.test': { privateKey: join(PKI, 'ec.key'), certs: [join(PKI, 'ec.pem')] } },
        alpnProtocols: ['h2', 'http/1.1'], handshakeTimeoutMs: 1000,
        clientAuth: { trustCerts: [join(PKI, 'client-ca.pem')], required: false },
      } }],
      client: { tls: { dnsName: 'rsa.test', trustCerts: [join(PKI, 'ca.pem')], clientIdentity: { privateKey: join(PKI, 'client.key'), certs: [join(PKI, 'client.pem')] } } },
    }],
  },
];

type Seg = string | number;
const show = (path: readonly Seg[]): string => path.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');

/** Every node below the root, with its path. */
function paths(v: Json, at: Seg[] = []): Seg[][] {
  const out: Seg[][] = [];
  if (Array.isArray(v)) v.forEach((x, i) => out.push([...at, i], ...paths(x, [...at, i])));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push([...at, k], ...paths(x, [...at, k]));
  return out;
}

const REPLACEMENTS: Json[] = [
  'abc', '', ' ', '/bad path', '/$/inet/x', '!', '~', '☃\u0007\u001b[31m', 'x'.repeat(100_000),
  -1, 0, 1.5, 65536, 2 ** 53 + 1, 1e300, true, false, null, [], {}, [[[[[[]]]]]], { kind: 'bogus' }, ['a', 1, null],
];

/** One seeded structural mutation; returns the mutated copy and the key path it touched. */
function mutate(base: Json, rnd: () => number): { doc: Json; path: Seg[]; what: string } {
  const doc = structuredClone(base);
  const all = paths(doc);
  const path = all[Math.floor(rnd() * all.length)]!;
  const parent = path.slice(0, -1).reduce<Json>((n, s) => (n as Record<Seg, Json>)[s]!, doc) as Record<Seg, Json> | Json[];
  const last = path.at(-1)!;
  const current = (parent as Record<Seg, Json>)[last]!;
  switch (Math.floor(rnd() * 4)) {
    case 0:
      if (Array.isArray(parent)) parent.splice(last as number, 1);
      else delete parent[last];
      return { doc, path, what: 'deleted' };
    case 1: {
      const r = REPLACEMENTS[Math.floor(rnd() * REPLACEMENTS.length)]!;
      (parent as Record<Seg, Json>)[last] = r;
      return { doc, path, what: `replaced by ${JSON.stringify(r).slice(0, 40)}` };
    }
    case 2:
      (parent as Record<Seg, Json>)[last] = [current];
      return { doc, path, what: 'wrapped in a list' };
    default:
      if (current !== null && typeof current === 'object' && !Array.isArray(current)) {
        current['zz_unknown'] = 1;
        return { doc, path: [...path, 'zz_unknown'], what: 'unknown key added' };
      }
      (parent as Record<Seg, Json>)[last] = { value: current };
      return { doc, path, what: 'wrapped in a map' };
  }
}

interface Run { code: number | null; signal: string | null; stdout: string; stderr: string; ms: number }

/** `linkerd-tcp --check <file>` (or `-` with `stdin`), killed if it outlives `ms`. */
async function check(file: string, stdin?: string, ms = 15_000): Promise<Run> {
  const t0 = performance.now();
  const p = spawn(process.execPath, [MAIN, '--check', file], {
    // A compile cache (ours, removed after) makes each run's start ~3x cheaper; behaviour is the same.
    env: { ...process.env, NODE_COMPILE_CACHE: join(dir, 'compile-cache') },
    stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  let stdout = '', stderr = '';
  p.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  p.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  if (stdin !== undefined) p.stdin!.end(stdin);
  const timer = setTimeout(() => p.kill('SIGKILL'), ms);
  const [code, signal] = await once(p, 'exit') as [number | null, string | null];
  clearTimeout(timer);
  return { code, signal, stdout, stderr, ms: performance.now() - t0 };
}

let n = 0;
function write(text: string, ext: 'yml' | 'json'): string {
  const f = join(dir, `m${n++}.${ext}`);
  writeFileSync(f, text);
  return f;
}

/** The invariants every verdict must hold; `what` describes the input for messages. */
function judge(r: Run, what: string): void {
  const out = `${what}\n→ exit ${r.code} ${r.signal ?? ''} in ${Math.round(r.ms)} ms\n${r.stdout.slice(0, 2000)}${r.stderr.slice(0, 2000)}`;
  assert.ok(r.code === 0 || r.code === 1, out);
  assert.doesNotMatch(r.stdout + r.stderr, /^\s+at .+[(:]\d+/m, `a stack trace: ${out}`);
  assert.doesNotMatch(r.stderr, /internal error/, out);
  if (r.code === 1) {
    // A key path (`file: a.b[0].c: …`), a parse position (`at line 3, column 4`, JSON's
    // `position 12`), or one of the whole-file verdicts.
    assert.match(r.stdout + r.stderr, /: (\(top level\)|[A-Za-z_$][\w$]*(\[\d+\]|\.[^\s:]+)*): |line \d+, column \d+|position \d+|the config is empty|over the \d+-byte limit|\nerror: /, `no key path or position: ${out}`);
  }
}

describe('config fuzzing', () => {
  it('structural mutants of four valid configs, as YAML and JSON: exit 0 or 1, and a rejection names the mutated path', { timeout: 90_000 }, async (t) => {
    // The bases themselves pass (else the mutants prove nothing).
    const baseRuns = await Promise.all(BASES.map((b) => check(write(stringify(b), 'yml'))));
    for (const [i, r] of baseRuns.entries()) assert.equal(r.code, 0, `base ${i}: ${r.stderr}`);

    const rnd = seeded(20261123);
    const mutants = Array.from({ length: 32 }, (_, i) => {
      const m = mutate(BASES[i % BASES.length]!, rnd);
      const json = rnd() < 0.5;
      return { ...m, json, text: json ? JSON.stringify(m.doc, null, 1) : stringify(m.doc) };
    });
    const verdicts: number[] = [];
    let slowest = 0;
    for (let i = 0; i < mutants.length; i += 8) {
      await Promise.all(mutants.slice(i, i + 8).map(async (m, j) => {
        const r = await check(write(m.text, m.json ? 'json' : 'yml'));
        const what = `mutant ${i + j} (${m.json ? 'JSON' : 'YAML'}): ${show(m.path)} ${m.what}`;
        judge(r, what);
        slowest = Math.max(slowest, r.ms);
        if (r.code === 1) {
          // Some reported path is the mutated one, its ancestor or descendant, or (a kind
          // changed) a sibling within the same top-level entry.
          const reported = [...(r.stderr + r.stdout).matchAll(/: ((?:[A-Za-z_$][\w$]*)(?:\[\d+\]|\.[^\s:]+)*): /g)].map((x) => x[1]!);
          const p = show(m.path);
          const top = show(m.path.slice(0, typeof m.path[1] === 'number' ? 2 : 1));
          const related = (q: string): boolean => q.startsWith(p) || p.startsWith(q) || q.startsWith(top);
          assert.ok(reported.some(related) || /invalid (YAML|JSON)/.test(r.stderr), `${what}: reported ${JSON.stringify(reported)}\n${r.stderr}`);
        }
        verdicts.push(r.code!);
      }));
    }
    const rejected = verdicts.filter((c) => c === 1).length;
    t.diagnostic(`${verdicts.length} structural mutants: ${rejected} rejected naming the path, ${verdicts.length - rejected} still valid; slowest --check ${Math.round(slowest)} ms`);
    assert.ok(rejected >= verdicts.length / 2 && rejected < verdicts.length, `${rejected} of ${verdicts.length} rejected`);
  });

  it('hand-made hostile documents and stdin: exit 0 or 1 with a position or a path, never a crash or a hang', { timeout: 90_000 }, async (t) => {
    const ok = 'routers:\n- label: r\n  dtab: /svc => /$/inet/127.0.0.1/1;\n  servers:\n  - {port: 1, dstName: /svc}\n';
    const okJson = JSON.stringify({ routers: [{ label: 'r', dtab: '/svc => /$/inet/127.0.0.1/1;', servers: [{ port: 1, dstName: '/svc' }] }] });
    const docs: [string, string | Buffer, 'yml' | 'json', 0 | 1][] = [
      ['100,000 nested flow lists', `routers: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`, 'yml', 1],
      ['3,000 nested block maps', `routers:\n${Array.from({ length: 3000 }, (_, i) => `${' '.repeat(2 * i + 2)}a:\n`).join('')}`, 'yml', 1],
      ['100,000 nested JSON lists', `{"routers":${'['.repeat(100_000)}${']'.repeat(100_000)}}`, 'json', 1],
      ['truncated JSON', okJson.slice(0, 40), 'json', 1],
      ['every byte value', Buffer.from(Array.from({ length: 2560 }, (_, i) => i % 256)), 'yml', 1],
      ['a UTF-16 BOM', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(ok, 'utf16le')]), 'yml', 1],
      ['a 20 MiB comment (over the 4 MiB cap of every file the proxy reads)', `${ok}# ${'x'.repeat(20 << 20)}\n`, 'yml', 1],
      ['duplicate keys', `${ok}routers: []\n`, 'yml', 1],
      ['a YAML function tag', `${ok}admin: !!js/function "function () {}"\n`, 'yml', 1],
      ['a binary tag', `${ok}admin: !!binary aGVsbG8=\n`, 'yml', 1],
      ['a merge key', `x: &x {port: 1, dstName: /svc}\nrouters:\n- label: r\n  dtab: /svc => /$/inet/127.0.0.1/1;\n  servers:\n  - <<: *x\n`, 'yml', 1],
      ['a self-referencing anchor', `a: &a [*a]\n${ok}`, 'yml', 1],
      ['__proto__ (YAML)', `__proto__: {admin: {port: 1}}\n${ok}`, 'yml', 1],
      ['__proto__ (JSON)', `{"__proto__":{"admin":{"port":1}},${okJson.slice(1)}`, 'json', 1],
      ['two documents', `${ok}---\n${ok}`, 'yml', 1],
      ['port 1e400', ok.replace('port: 1', 'port: 1e400'), 'yml', 1],
      ['a 20,000-way weighted union', `routers:\n- label: r\n  dtab: "/a => ${'1 * /$/inet/127.0.0.1/1 & '.repeat(20_000)}/b;"\n  servers:\n  - {port: 1, dstName: /a}\n`, 'yml', 0],
      ['a dtab of 5,000 nested parentheses', `routers:\n- label: r\n  dtab: "/a => ${'('.repeat(5000)}/b${')'.repeat(5000)};"\n  servers:\n  - {port: 1, dstName: /a}\n`, 'yml', 1],
    ];
    const results: string[] = [];
    for (let i = 0; i < docs.length; i += 8) {
      await Promise.all(docs.slice(i, i + 8).map(async ([name, text, ext, want]) => {
        const r = await check(write(typeof text === 'string' ? text : text.toString('latin1'), ext));
        judge(r, name);
        assert.equal(r.code, want, `${name}: ${r.stderr.slice(0, 300)}`);
        results.push(`${name}: ${r.code} in ${Math.round(r.ms)} ms`);
      }));
    }
    // stdin ('-'), YAML and JSON, good and bad.
    for (const [text, want] of [[ok, 0], ['{"routers": 5}', 1]] as const) {
      const r = await check('-', text);
      judge(r, `stdin: ${text}`);
      assert.equal(r.code, want, `stdin ${text}: ${r.stderr}`);
      if (want === 1) assert.match(r.stderr, /<stdin>/, 'stdin is named <stdin>');
    }
    t.diagnostic(results.join('; '));
  });

  it('a YAML alias bomb is a config error, not an internal error', async () => {
    const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (const [i, c] of [...'bcdefg'].entries()) levels.push(`${c}: &${c} [${Array(9).fill(`*${'abcdefg'[i]}`).join(',')}]`);
    const r = await check(write(`${levels.join('\n')}\nrouters: []\n`, 'yml'));
    assert.equal(r.code, 1, JSON.stringify(r));
    assert.match(r.stderr, /invalid YAML: Excessive alias count/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  it('a dtab whose alternatives double at every step is refused or bounded, not a hang', async () => {
    const dtab = Array.from({ length: 60 }, (_, i) => `/n${i} => /n${i + 1} | /n${i + 1};`).join('');
    const r = await check(write(`routers:\n- label: r\n  dtab: "${dtab}"\n  servers:\n  - {port: 1, dstName: /n0}\n`, 'yml'), undefined, 2000);
    assert.notEqual(r.signal, 'SIGKILL', `--check still running after ${Math.round(r.ms)} ms`);
    judge(r, 'doubling dtab');
  });
});
