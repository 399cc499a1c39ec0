// What `--check` reports (issue 21). `{sni}` servers: the docs' own SNI example, copied
// as written, is checked (it crashed with exit 70: the template was resolved as a name) and
// shown as SNI-routed with the dtab entries its names can reach and its defaultDstName
// resolved; `--check --diff` as well. A bad namerd interpreter block: only its own errors.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { runCli, writeConfig } from './support/harness.ts';

/** The YAML block of docs/configuration.md's "SNI routing and the PROXY protocol" section (README's until issue 24), as written. */
function readmeSniExample(): string {
  const doc = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
  const at = doc.indexOf('## SNI routing and the PROXY protocol');
  assert.ok(at >= 0, 'docs/configuration.md has the SNI section');
  const section = doc.slice(at);
  const m = /```yaml\n([\s\S]*?)```/.exec(section);
  assert.ok(m, 'docs/configuration.md has an SNI example');
  return m[1]!;
}

describe('--check and {sni} servers', () => {
  it("the docs' SNI example (docs/configuration.md): exit 0, SNI-routed, the entries it can reach, the default resolved", async () => {
    const example = readmeSniExample();
    assert.match(example, /dstName: \/svc\/sni\/\{sni\}/);
    const r = await runCli(['--check', writeConfig(example)]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /: config OK\n/);
    assert.match(r.stdout, /server 127\.0\.0\.1:443 → \/svc\/sni\/\{sni\}/);
    assert.match(r.stdout, /\n {4}routed by SNI: \/svc\/sni\/\{sni\}/);
    assert.match(r.stdout, /\n {4}dtab entries it can reach: \/svc\/sni\/db\.example\.com=>\/\$\/inet\/10\.0\.0\.5\/5432; \/svc\/sni\/web\.example\.com=>\/\$\/inet\/10\.0\.0\.6\/443\n/);
    assert.match(r.stdout, /\n {4}default destination \/svc\/default → 10\.0\.0\.7:443\n/);
    assert.equal(r.stderr, '');
  });

  it('--check --diff with an SNI server on either side', async () => {
    const example = writeConfig(readmeSniExample());
    const plain = writeConfig('routers:\n- label: sni\n  dtab: /svc => /$/inet/127.0.0.1/1;\n  servers:\n  - {port: 443, dstName: /svc/a}\n');
    for (const [from, to] of [[plain, example], [example, plain], [example, example]]) {
      const r = await runCli(['--check', '--diff', from!, to!]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /: config OK\n/);
    }
  });

  it('which entries a template can reach: fixed labels agree, the {sni} label is a lowercase host name, never longer than the template', async () => {
    const file = writeConfig(`routers:
- label: a
  dtab: |
    /svc => /$/inet/127.0.0.1/1;
    /tls/*/443 => /$/inet/127.0.0.1/2;
    /tls/DB.example.com => /$/inet/127.0.0.1/3;
    /tls/x-db.example.com/443 => /$/inet/127.0.0.1/4;
    /tls/db.example.com/443/more => /$/inet/127.0.0.1/5;
    /tls/1.2.3.4/443 => /$/inet/127.0.0.1/6;
    /tls/db.example.com/80 => /$/inet/127.0.0.1/7;
    /pre/x-db.example.com => /$/inet/127.0.0.1/8;
    /pre/db.example.com => /$/inet/127.0.0.1/9;
  servers:
  - {port: 1, dstName: "/tls/{sni}/443"}
  - {port: 2, dstName: "/nothing/{sni}"}
  - {port: 3, dstName: "/pre/x-{sni}"}
  - {port: 4, dstName: "/$/inet/{sni}/443"}
`);
    const r = await runCli(['--check', file]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const reach = [...r.stdout.matchAll(/dtab entries it can reach: (.*)\n/g)].map((m) => m[1]);
    assert.deepEqual(reach, [
      '/tls/*/443=>/$/inet/127.0.0.1/2; /tls/x-db.example.com/443=>/$/inet/127.0.0.1/4',
      'none (every name it makes is neg)',
      '/pre/x-db.example.com=>/$/inet/127.0.0.1/8',
      'none (each name goes to the namers as written)',
    ]);
    assert.equal((r.stdout.match(/no defaultDstName: connections without a usable name are closed/g) ?? []).length, 4);
  });

  it('a namerd router: the template goes to namerd, and nothing is asked of it for the template', async () => {
    const file = writeConfig(`routers:
- label: n
  interpreter: {kind: io.l5d.namerd.http, baseUrl: "http://127.0.0.1:1", namespace: ns, periodSecs: 5}
  servers:
  - {port: 4, dstName: "/svc/sni/{sni}"}
`);
    const r = await runCli(['--check', file]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /dtab entries it can reach: namerd's dtab of namespace ns, under \/svc\/sni\n/);
  });
});

describe('--check and a bad namerd interpreter block', () => {
  it('periodSecs: 0 and no namespace: exit 1 with those errors only (no "needs a dtab")', async () => {
    const r = await runCli(['--check', writeConfig(`routers:
- label: r
  interpreter: {kind: io.l5d.namerd.http, baseUrl: "http://127.0.0.1:1", periodSecs: 0}
  servers:
  - {port: 1, dstName: /svc/a}
`)]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /routers\[0\]\.interpreter\.periodSecs: expected an integer ≥ 1, got 0/);
    assert.match(r.stderr, /routers\[0\]\.interpreter\.namespace: missing required key/);
    assert.doesNotMatch(r.stderr, /dtab/);
  });
});
