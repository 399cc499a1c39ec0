// The documents against the code and each other: what `--help` names exists (environment
// variables read by the source, config keys in the schema, the admin routes the token guards)
// and README says the same; every relative link and section reference resolves; the packed
// tarball holds every file README links and what its `prepare` needs; the hard-exit margin
// is one number in the code, `--help`, README and the systemd unit; the unit says what
// SIGHUP does; and the statements issue 21 found contradicting the code or each other
// (queued connections at close, benchmark tails, log format, the data path, engine calls).
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
  it('--help names only environment variables the source reads and config keys the schema has, README documents each, and both say what the admin token guards', () => {
    const h = help();
    const env = h.slice(h.indexOf('ENVIRONMENT:'), h.indexOf('EXIT CODES:'));
    const vars = [...env.matchAll(/^ {4}([A-Z][A-Z0-9_]+)\b/gm)].map((m) => m[1]!);
    assert.ok(vars.length >= 8, vars.join(' '));
    const src = sources();
    const table = README.slice(README.indexOf('**Environment.**'), README.indexOf('**Logs**'));
    for (const v of vars) {
      assert.ok(src.includes(`env['${v}']`) || new RegExp(`= '${v}'`).test(src), `${v}: read by the source (env['${v}'])`);
      assert.ok(table.includes(`| \`${v}\` |`), `${v}: in README's environment table`);
    }
    // Config keys: `workers`, `engine`, admin.graceSecs, admin.tokenFile …
    const schema = read('src/config/schema.ts');
    const example = README.slice(README.indexOf('## Configuration'));
    const keys = [...new Set([...h.matchAll(/`([a-z][A-Za-z]+)`/g), ...h.matchAll(/\badmin\.([a-z][A-Za-z]+)/g)].map((m) => m[1]!))];
    assert.ok(keys.includes('graceSecs') && keys.includes('tokenFile') && keys.includes('workers'), keys.join(' '));
    for (const k of keys) {
      assert.ok(schema.includes(`'${k}'`), `${k}: a key of src/config/schema.ts`);
      assert.ok(new RegExp(`^\\s*${k}:`, 'm').test(example), `${k}: in README's config example`);
    }
    // The token guards every POST route: --help, README's admin table and the tokenFile comment agree with the server.
    const routes = postRoutes();
    const guarded = /the bearer token (POST [^\n]+?) need/.exec(flat(env));
    assert.ok(guarded, 'the token line of --help');
    assert.deepEqual(pathsIn(guarded[1]!), routes, '--help: what the token guards');
    const adminTable = README.slice(README.indexOf('## Admin server'), README.indexOf('**Host check'));
    assert.deepEqual([...adminTable.matchAll(/^\| `POST (\/[a-z]+)`/gm)].map((m) => m[1]!).sort(), routes, "README's admin table");
    const comment = /^\s+tokenFile: .*#(.*)$/m.exec(example);
    assert.ok(comment, "README's tokenFile example");
    assert.deepEqual(pathsIn(comment[1]!.replace(/\/secrets\/\S+/, '')), routes, `README's tokenFile comment: ${comment[1]}`);
  });

  it('every relative link and section reference in README, RELIABILITY and BENCHMARKS resolves (a file, a heading)', () => {
    // The check itself finds a broken link, anchor and section reference.
    const fake = (f: string): string | undefined => ({ 'A.md': '# Top\n## Known limits\n' } as Record<string, string>)[f];
    assert.deepEqual(brokenLinks('A.md', '[x](B.md) [y](A.md#nope) [z](#known-limits) see A.md, "Nope"', fake), [
      'A.md: link to B.md: no such file', 'A.md: link to A.md#nope: no such heading', 'A.md: section reference A.md, "Nope": no such section',
    ]);
    const problems = ['README.md', 'RELIABILITY.md', 'BENCHMARKS.md'].flatMap((f) => brokenLinks(f, read(f), fromDisk));
    assert.deepEqual(problems, []);
    assert.ok(links(README).length >= 10, 'README has its links');
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
    const missing = [...linked].filter((p) => !packed.has(p) && ![...packed].some((f) => f.startsWith(`${p}/`)));
    assert.deepEqual(missing, [], 'files README links that `npm pack` leaves out (package.json "files")');
    // `npm install` in the unpacked tarball runs prepare: the tsconfig it names, and the one that extends, must be there.
    const prepare = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts['prepare']!;
    const project = /tsc -p ([\w./-]+)/.exec(prepare)?.[1];
    assert.ok(project, prepare);
    const ext = (JSON.parse(read(project)) as { extends?: string }).extends;
    for (const f of [project, ...(ext ? [normalize(ext)] : [])]) assert.ok(packed.has(f), `${f} is packed (prepare runs tsc -p ${project})`);
  });

  it('the hard-exit margin: the code\'s constants, --help, README and the systemd unit say the same', () => {
    const single = HARD_EXIT_MARGIN_MS / 1000, workers = (HARD_EXIT_MARGIN_MS + PRIMARY_EXTRA_MARGIN_MS) / 1000;
    const h = flat(help());
    const m = /a drain still running (\d+) s after admin\.graceSecs \((\d+) s with workers/.exec(h);
    assert.ok(m, `--help states the margin: ${h.slice(h.indexOf('EXIT CODES'), h.indexOf('EXIT CODES') + 400)}`);
    assert.deepEqual([Number(m[1]), Number(m[2])], [single, workers], '--help');
    const text = flat(README);
    const said = [...text.matchAll(/(\d+) s after `(?:admin\.)?graceSecs`(.{0,40})/g)];
    assert.ok(said.length >= 3, 'README states the margin');
    for (const s of said) {
      assert.equal(Number(s[1]), single, `README: "${s[0]}"`);
      assert.match(s[2]!, new RegExp(`\\b${workers} s with workers`), `README: "${s[0]}" gives the workers' margin`);
    }
    // Stop timeouts README and the unit advise leave at least the larger margin.
    for (const s of text.matchAll(/`graceSecs` \+ (\d+)/g)) assert.ok(Number(s[1]) >= workers, `README: "${s[0]}"`);
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

  it('queued connections at close: README and RELIABILITY both say native listeners serve them and Node\'s reset them', () => {
    for (const f of ['README.md', 'RELIABILITY.md']) {
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

  it('README: the proxy\'s logs are described as text on a terminal and JSON otherwise, wherever they are called JSON', () => {
    const parts = README.split(/\n\s*\n/).flatMap((p) => (p.startsWith('```') ? p.split('\n') : [p])).map(flat);
    const json = parts.filter((p) => /JSON (logs|lines)/.test(p));
    assert.ok(json.length >= 2);
    for (const p of json) assert.match(p, /terminal/, `"${p.slice(0, 200)}" says JSON without the terminal's text form (LOG_FORMAT)`);
  });

  it('README: the Development data path names both engines\' folders; Engines says one call into JavaScript per loop turn, not per connection', () => {
    const dev = flat(README.slice(README.indexOf('## Development')));
    const path = dev.slice(dev.indexOf('data path:'), dev.indexOf('test/architecture.test.ts'));
    for (const d of ['server/', 'router/', 'balancer/', 'connector/', 'proxy/duplex.ts', 'engine/', 'native/', 'interpreter/', 'naming/']) {
      assert.ok(path.includes(`\`${d}`), `the data path names ${d}: ${path}`);
      assert.ok(existsSync(join(ROOT, d.startsWith('native') ? d : `src/${d}`)), d);
    }
    const text = flat(README);
    assert.doesNotMatch(text, /call into JavaScript per accepted connection/);
    assert.match(text, /one call into JavaScript per loop turn/);
    assert.match(read('native/napi.c'), /one call into JavaScript per loop turn, not one per connection/, 'what the addon does');
  });
});
