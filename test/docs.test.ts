// The documents against the code and each other: what `--help` names exists (environment
// variables read by the source, config keys in the schema, the admin routes the token guards)
// and the docs say the same (README is the front door; docs/configuration.md holds every
// config key, docs/operations.md running it, ARCHITECTURE.md the code's map); every relative
// link and section reference resolves; README's contents link every section of docs/ and
// ARCHITECTURE.md, and each of those has its own contents; ARCHITECTURE's dependency table is
// test/architecture.test.ts's; the packed tarball holds every file README links and what its
// `prepare` needs; the hard-exit margin is one number in the code, `--help`, the docs and the
// systemd unit; the unit says what SIGHUP does; and the statements issue 21 found
// contradicting the code or each other (queued connections at close, benchmark tails, log
// format, the data path, engine calls).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, it } from 'node:test';
import { HARD_EXIT_MARGIN_MS, PRIMARY_EXTRA_MARGIN_MS } from '../src/lifecycle.ts';
import { MAIN } from './support/harness.ts';

const ROOT = new URL('../', import.meta.url).pathname;
const read = (f: string): string => readFileSync(join(ROOT, f), 'utf8');
const README = read('README.md');
const CONFIG = read('docs/configuration.md');
const OPS = read('docs/operations.md');
const ARCH = read('ARCHITECTURE.md');
/** The documents beside README that README's contents lead to (docs/*.md, ARCHITECTURE.md). */
const GUIDES = [...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`), 'ARCHITECTURE.md'];
/** Every user-facing document: where a fact may live after issue 24 split README. */
const DOCS = ['README.md', ...GUIDES];
const ALL_DOCS = DOCS.map(read).join('\n\n');
/** Whitespace (line breaks included) as one space, for phrases wrapped across lines. */
const flat = (s: string): string => s.replace(/\s+/g, ' ');

function help(): string {
  const r = spawnSync(process.execPath, [MAIN, '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

/** The non-test TypeScript under src/, concatenated. */
function sources(): string {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) out.push(readFileSync(p, 'utf8'));
    }
  };
  walk(join(ROOT, 'src'));
  return out.join('\n');
}

/** GitHub's anchor for a heading: lowercase, punctuation dropped, spaces as hyphens. */
const slug = (heading: string): string => heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-');

function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  let fence = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fence = !fence;
    const h = !fence && /^#{1,6} (.+)$/.exec(line);
    if (!h) continue;
    let s = slug(h[1]!), n = 0;
    while (out.has(n ? `${s}-${n}` : s)) n++;
    out.add(n ? `${s}-${n}` : s);
  }
  return out;
}

/** Relative links `[x](path#anchor)` of a Markdown text (code spans and fences skipped). */
function links(markdown: string): { target: string; anchor: string | undefined }[] {
  const text = markdown.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((m) => m[1]!)
    .filter((l) => !/^[a-z]+:/i.test(l))
    .map((l) => { const [target, anchor] = l.split('#'); return { target: target ?? '', anchor }; });
}

/**
 * What is broken in `file`'s links and section references (`RELIABILITY.md, "Heading"`):
 * a missing file, or an anchor or heading the target does not have.
 */
function brokenLinks(file: string, text: string, exists: (f: string) => string | undefined): string[] {
  const out: string[] = [];
  for (const { target, anchor } of links(text)) {
    const path = target === '' ? file : normalize(join(dirname(file), target));
    const body = exists(path);
    if (body === undefined) { out.push(`${file}: link to ${target}: no such file`); continue; }
    if (anchor !== undefined && !anchors(body).has(anchor)) out.push(`${file}: link to ${target}#${anchor}: no such heading`);
  }
  for (const m of flat(text).matchAll(/\b([A-Z]+\.md),? "([^"]+)"/g)) {
    const body = exists(m[1]!);
    if (body === undefined || !anchors(body).has(slug(m[2]!))) out.push(`${file}: section reference ${m[1]}, "${m[2]}": no such section`);
  }
  return out;
}

const fromDisk = (f: string): string | undefined => {
  const p = join(ROOT, f);
  if (!existsSync(p)) return undefined;
  return statSync(p).isFile() ? readFileSync(p, 'utf8') : '';
};

/** The admin server's POST routes, from its source. */
function postRoutes(): string[] {
  const src = read('src/admin/server.ts');
  const routes = [...src.matchAll(/\['(\/[a-z]+)', \{ method: 'POST'/g), ...src.matchAll(/routes\.set\('(\/[a-z]+)', \{\s*method: 'POST'/g)].map((m) => m[1]!);
  assert.ok(routes.length >= 3, `found the POST routes in src/admin/server.ts: ${routes.join(', ')}`);
  return routes.sort();
}

const pathsIn = (s: string): string[] => [...new Set([...s.matchAll(/\/(shutdown|abort|reload|[a-z]+)\b/g)].map((m) => `/${m[1]}`))].sort();

describe('docs', () => {
  it('--help names only environment variables the source reads and config keys the schema has, the docs document each, and both say what the admin token guards', () => {
    const h = help();
    const env = h.slice(h.indexOf('ENVIRONMENT:'), h.indexOf('EXIT CODES:'));
    const vars = [...env.matchAll(/^ {4}([A-Z][A-Z0-9_]+)\b/gm)].map((m) => m[1]!);
    assert.ok(vars.length >= 8, vars.join(' '));
    const src = sources();
    const table = OPS.slice(OPS.indexOf('## Environment variables'), OPS.indexOf('## Logs'));
    assert.ok(table.length > 100, "docs/operations.md's environment section");
    for (const v of vars) {
      assert.ok(src.includes(`env['${v}']`) || new RegExp(`= '${v}'`).test(src), `${v}: read by the source (env['${v}'])`);
      assert.ok(table.includes(`| \`${v}\` |`), `${v}: in docs/operations.md's environment table`);
    }
    // Config keys: `workers`, `engine`, admin.graceSecs, admin.tokenFile …
    const schema = read('src/config/schema.ts');
    const example = CONFIG.slice(CONFIG.indexOf('## Annotated reference'));
    assert.ok(example.length > 1000, "docs/configuration.md's annotated reference");
    const keys = [...new Set([...h.matchAll(/`([a-z][A-Za-z]+)`/g), ...h.matchAll(/\badmin\.([a-z][A-Za-z]+)/g)].map((m) => m[1]!))];
    assert.ok(keys.includes('graceSecs') && keys.includes('tokenFile') && keys.includes('workers'), keys.join(' '));
    for (const k of keys) {
      assert.ok(schema.includes(`'${k}'`), `${k}: a key of src/config/schema.ts`);
      assert.ok(new RegExp(`^\\s*${k}:`, 'm').test(example), `${k}: in docs/configuration.md's config example`);
    }
    // The token guards every POST route: --help, the admin table (docs/operations.md) and the tokenFile comment agree with the server.
    const routes = postRoutes();
    const guarded = /the bearer token (POST [^\n]+?) need/.exec(flat(env));
    assert.ok(guarded, 'the token line of --help');
    assert.deepEqual(pathsIn(guarded[1]!), routes, '--help: what the token guards');
    const adminTable = OPS.slice(OPS.indexOf('## Admin server'), OPS.indexOf('**Host check'));
    assert.deepEqual([...adminTable.matchAll(/^\| `POST (\/[a-z]+)`/gm)].map((m) => m[1]!).sort(), routes, "docs/operations.md's admin table");
    const comment = /^\s+tokenFile: .*#(.*)$/m.exec(example);
    assert.ok(comment, "docs/configuration.md's tokenFile example");
    assert.deepEqual(pathsIn(comment[1]!.replace(/\/secrets\/\S+/, '')), routes, `docs/configuration.md's tokenFile comment: ${comment[1]}`);
  });

  it('every relative link and section reference in README, docs/*.md, ARCHITECTURE, RELIABILITY and BENCHMARKS resolves (a file, a heading)', () => {
    // The check itself finds a broken link, anchor and section reference.
    const fake = (f: string): string | undefined => ({ 'A.md': '# Top\n## Known limits\n' } as Record<string, string>)[f];
    assert.deepEqual(brokenLinks('A.md', '[x](B.md) [y](A.md#nope) [z](#known-limits) see A.md, "Nope"', fake), [
      'A.md: link to B.md: no such file', 'A.md: link to A.md#nope: no such heading', 'A.md: section reference A.md, "Nope": no such section',
    ]);
    // A link from docs/ resolves from docs/ (`../README.md`), a section reference from the root.
    assert.deepEqual(brokenLinks('docs/a.md', '[x](../A.md#top) [y](b.md)', fake), ['docs/a.md: link to b.md: no such file']);
    const problems = [...DOCS, 'RELIABILITY.md', 'BENCHMARKS.md'].flatMap((f) => brokenLinks(f, read(f), fromDisk));
    assert.deepEqual(problems, []);
    assert.ok(GUIDES.includes('docs/configuration.md') && GUIDES.includes('docs/operations.md'), GUIDES.join(' '));
    for (const f of DOCS) assert.ok(links(read(f)).length >= 5, `${f} has its links`);
  });

  it('the packed tarball (npm pack --dry-run) holds every file README links (and theirs), and what its prepare script needs', () => {
    // --ignore-scripts: `npm pack`, even --dry-run, runs prepare (tsc into this checkout's dist/) otherwise.
    const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const packed = new Set((JSON.parse(r.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path));
    const linked = new Set<string>();
    const visit = (file: string): void => {
      for (const { target } of links(read(file))) {
        const p = relative('.', normalize(join(dirname(file), target)));
        if (target === '' || linked.has(p)) continue;
        linked.add(p);
        if (p.endsWith('.md')) visit(p);
      }
    };
    visit('README.md');
    assert.ok(linked.has('RELIABILITY.md') && linked.has('deploy/linkerd-tcp.service'), [...linked].join(' '));
    for (const f of GUIDES) assert.ok(linked.has(f), `README links ${f} (directly or through another document)`);
    const missing = [...linked].filter((p) => !packed.has(p) && ![...packed].some((f) => f.startsWith(`${p}/`)));
    assert.deepEqual(missing, [], 'files README links that `npm pack` leaves out (package.json "files")');
    // `npm install` in the unpacked tarball runs prepare: the tsconfig it names, and the one that extends, must be there.
    const prepare = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts['prepare']!;
    const project = /tsc -p ([\w./-]+)/.exec(prepare)?.[1];
    assert.ok(project, prepare);
    const ext = (JSON.parse(read(project)) as { extends?: string }).extends;
    for (const f of [project, ...(ext ? [normalize(ext)] : [])]) assert.ok(packed.has(f), `${f} is packed (prepare runs tsc -p ${project})`);
  });

  it('the hard-exit margin: the code\'s constants, --help, the docs and the systemd unit say the same', () => {
    const single = HARD_EXIT_MARGIN_MS / 1000, workers = (HARD_EXIT_MARGIN_MS + PRIMARY_EXTRA_MARGIN_MS) / 1000;
    const h = flat(help());
    const m = /a drain still running (\d+) s after admin\.graceSecs \((\d+) s with workers/.exec(h);
    assert.ok(m, `--help states the margin: ${h.slice(h.indexOf('EXIT CODES'), h.indexOf('EXIT CODES') + 400)}`);
    assert.deepEqual([Number(m[1]), Number(m[2])], [single, workers], '--help');
    const text = flat(ALL_DOCS);
    const said = [...text.matchAll(/(\d+) s after `(?:admin\.)?graceSecs`(.{0,40})/g)];
    assert.ok(said.length >= 3, 'the docs state the margin');
    assert.ok(flat(OPS).includes('s after `graceSecs`'), 'docs/operations.md states the margin');
    for (const s of said) {
      assert.equal(Number(s[1]), single, `docs: "${s[0]}"`);
      assert.match(s[2]!, new RegExp(`\\b${workers} s with workers`), `docs: "${s[0]}" gives the workers' margin`);
    }
    // Stop timeouts the docs and the unit advise leave at least the larger margin.
    for (const s of text.matchAll(/`graceSecs` \+ (\d+)/g)) assert.ok(Number(s[1]) >= workers, `docs: "${s[0]}"`);
    const unit = flat(read('deploy/linkerd-tcp.service'));
    const u = /running (\d+) s later \((\d+) s with workers\)/.exec(unit);
    assert.ok(u, 'the unit states the margin');
    assert.deepEqual([Number(u[1]), Number(u[2])], [single, workers], 'deploy/linkerd-tcp.service');
  });

  it('deploy/linkerd-tcp.service: its comments say SIGHUP reloads the config (then TLS), and give install steps that work for a tarball', () => {
    const lines = read('deploy/linkerd-tcp.service').split('\n');
    const at = lines.findIndex((l) => l.startsWith('ExecReload='));
    let i = at;
    while (i > 0 && lines[i - 1]!.startsWith('#')) i--;
    const comment = lines.slice(i, at).join(' ');
    assert.match(comment, /SIGHUP reloads the config/, comment);
    assert.match(comment, /TLS/, comment);
    assert.doesNotMatch(comment, /config[^.;]*needs a restart/, comment);
    const header = lines.slice(0, lines.findIndex((l) => !l.startsWith('#'))).join('\n');
    // `npm ci` needs a lock file, which `npm pack` never packs: the tarball's steps use `npm install`.
    const tarball = header.slice(header.indexOf('npm pack'));
    assert.match(tarball, /tar -xzf \S+\.tgz[\s\S]*npm install/, header);
    assert.doesNotMatch(header, /npm pack`? tarball\)? in \S+\s*#?\s*and run `npm ci`/, header);
  });

  it('queued connections at close: docs/configuration.md (Live reload) and RELIABILITY both say native listeners serve them and Node\'s reset them', () => {
    for (const f of ['docs/configuration.md', 'RELIABILITY.md']) {
      const paras = read(f).split(/\n\s*\n|\n(?=- )/).map(flat).filter((p) => /accept queue|queued/.test(p) && /\breset/.test(p));
      assert.ok(paras.length > 0, `${f} says what happens to queued connections`);
      for (const p of paras) {
        assert.match(p, /native engine/, `${f}: "${p.slice(0, 160)}…" names the native engine's listeners`);
        assert.match(p, /Node's listeners/, `${f}: "${p.slice(0, 160)}…" names Node's`);
      }
    }
  });

  it('BENCHMARKS: the latency-tail figures in the prose are the ratio table\'s', () => {
    const b = read('BENCHMARKS.md');
    const table = b.slice(b.indexOf('Ratios to direct'), b.indexOf('<!-- bench:end'));
    const cells = new Set([...table.matchAll(/\| ([\d.]+)(?= )/g)].map((m) => m[1]!));
    const para = flat(b.slice(b.indexOf('**Latency tails.**'), b.indexOf('- **Memory.**')));
    const figures = [...para.matchAll(/([\d.]+)×/g)].map((m) => m[1]!);
    assert.ok(figures.length >= 3, para);
    assert.deepEqual(figures.filter((f) => !cells.has(f)), [], `figures of "${para}" not in the ratio table`);
  });

  it('README and docs: the proxy\'s logs are described as text on a terminal and JSON otherwise, wherever they are called JSON', () => {
    const parts = ALL_DOCS.split(/\n\s*\n/).flatMap((p) => (p.startsWith('```') ? p.split('\n') : [p])).map(flat);
    const json = parts.filter((p) => /JSON (logs|lines)/.test(p));
    assert.ok(json.length >= 2);
    for (const p of json) assert.match(p, /terminal/, `"${p.slice(0, 200)}" says JSON without the terminal's text form (LOG_FORMAT)`);
  });

  it('ARCHITECTURE: the data path names both engines\' folders; the docs say one call into JavaScript per loop turn, not per connection', () => {
    const dev = flat(ARCH.slice(ARCH.indexOf('## Data paths')));
    const path = dev.slice(dev.indexOf('data path:'), dev.indexOf('test/architecture.test.ts'));
    assert.ok(path.length > 100, 'ARCHITECTURE.md, Data paths: the data path');
    for (const d of ['server/', 'router/', 'balancer/', 'connector/', 'proxy/duplex.ts', 'engine/', 'native/', 'interpreter/', 'naming/']) {
      assert.ok(path.includes(`\`${d}`), `the data path names ${d}: ${path}`);
      assert.ok(existsSync(join(ROOT, d.startsWith('native') ? d : `src/${d}`)), d);
    }
    const text = flat(ALL_DOCS);
    assert.doesNotMatch(text, /call into JavaScript per accepted connection/);
    assert.match(text, /one call into JavaScript per loop turn/);
    assert.match(read('native/napi.c'), /one call into JavaScript per loop turn, not one per connection/, 'what the addon does');
  });
  it('docs/configuration.md names every key the config schema accepts (src/config/*.ts)', () => {
    // The schema lists each object's keys in `object(c, v, ['a', 'b', ...SHARED_KEYS])`; shared lists are `const X_KEYS = [...]`.
    const keys = new Set<string>();
    for (const f of readdirSync(join(ROOT, 'src/config')).filter((n) => n.endsWith('.ts') && !n.endsWith('.test.ts'))) {
      const text = read(`src/config/${f}`);
      for (const m of [...text.matchAll(/\bobject\([^,()]+(?:\([^)]*\))?,\s*\w+,\s*\[([^\]]*)\]/g), ...text.matchAll(/\b[A-Z_]+_KEYS = \[([^\]]*)\]/g)]) {
        for (const k of m[1]!.matchAll(/'([A-Za-z][A-Za-z0-9]*)'/g)) keys.add(k[1]!);
      }
    }
    for (const known of ['workers', 'watchConfig', 'graceSecs', 'tokenFile', 'rootDir', 'mode', 'alpnProtocols', 'clientAuth', 'maxSniDestinations', 'proxyProtocol', 'trustedCidrs', 'healthCheck', 'unhealthyThreshold', 'connectAttempts', 'failurePenaltySecs', 'clientIdentity']) {
      assert.ok(keys.has(known), `the scan finds ${known} (it would find nothing if the schema changed shape): ${[...keys].join(' ')}`);
    }
    const missing = [...keys].filter((k) => !new RegExp(`(^|[\\s{,])${k}:`, 'm').test(CONFIG) && !CONFIG.includes(`\`${k}\``));
    assert.deepEqual(missing, [], 'schema keys docs/configuration.md does not name (as `key:` in an example or `key` in the text)');
    // The key index names each one too, so a key is found from the contents in one more click.
    const index = CONFIG.slice(CONFIG.indexOf('### Key index'), CONFIG.indexOf('\n## ', CONFIG.indexOf('### Key index')));
    assert.deepEqual([...keys].filter((k) => !index.includes(`\`${k}\``)), [], "keys missing from docs/configuration.md's key index");
  });

  it("README stays the front door: short, the two commands, and its contents link every section of docs/*.md and ARCHITECTURE.md; each of those has its own contents", () => {
    assert.ok(README.split('\n').length < 300, `README has ${README.split('\n').length} lines`);
    assert.match(README, /^npm ci && npm start +# /m);
    assert.match(README, /^npm test +# /m);
    const contentsOf = (md: string): string => md.slice(md.indexOf('## Contents'), md.indexOf('\n## ', md.indexOf('## Contents') + 1));
    const toc = links(contentsOf(README));
    assert.ok(toc.length >= 20, 'README has its contents');
    /** Level-2 and level-3 headings of a document, as anchors (its own Contents left out). */
    const sections = (md: string, depth: RegExp): string[] => {
      let fence = false;
      return md.split('\n').flatMap((line) => {
        if (line.startsWith('```')) fence = !fence;
        const h = !fence && depth.exec(line);
        return h && h[1] !== 'Contents' ? [slug(h[1]!)] : [];
      });
    };
    for (const f of GUIDES) {
      const md = read(f);
      const top = sections(md, /^## (.+)$/);
      assert.ok(top.length >= 3, `${f} has sections`);
      const linked = new Set(toc.filter((l) => l.target === f).map((l) => l.anchor));
      assert.deepEqual(top.filter((a) => !linked.has(a)), [], `sections of ${f} README's contents does not link`);
      const own = new Set(links(contentsOf(md)).filter((l) => l.target === '').map((l) => l.anchor));
      assert.deepEqual(sections(md, /^#{2,3} (.+)$/).filter((a) => !own.has(a)), [], `sections of ${f} its own contents does not link`);
    }
  });

  it("ARCHITECTURE's dependency table is test/architecture.test.ts's, and names every native/*.c file", () => {
    const test = read('test/architecture.test.ts');
    const block = test.slice(test.indexOf('const ALLOWED'), test.indexOf('};', test.indexOf('const ALLOWED')));
    const fromTest = [...block.matchAll(/^\s+'?([a-z-]+)'?: \[([^\]]*)\]/gm)].map((m) => `${m[1]}: ${[...m[2]!.matchAll(/'([a-z-]+)'/g)].map((x) => x[1]).join(' ')}`);
    assert.ok(fromTest.length >= 20, fromTest.join('\n'));
    const table = ARCH.slice(ARCH.indexOf('## Dependency table'));
    const fromDoc = [...table.matchAll(/^\| `([a-z-]+)` \| ([^|]*) \|/gm)].map((m) => `${m[1]}: ${[...m[2]!.matchAll(/`([a-z-]+)`/g)].map((x) => x[1]).join(' ')}`);
    assert.deepEqual(fromDoc, fromTest, 'ARCHITECTURE.md, Dependency table: copy it again from test/architecture.test.ts');
    const cFiles = readdirSync(join(ROOT, 'native')).filter((f) => /\.[ch]$/.test(f));
    const cTable = ARCH.slice(ARCH.indexOf('## The C files'), ARCH.indexOf('## Process model'));
    assert.deepEqual(cFiles.filter((f) => !cTable.includes(`| \`${f}\` |`)), [], 'native files ARCHITECTURE.md does not describe');
  });
});
