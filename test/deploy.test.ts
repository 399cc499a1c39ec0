// Running under supervisors: the checked-in systemd unit (systemd-analyze verify, and its
// keys against the drain), the Kubernetes manifest (parsed, its config loaded, probes and
// ports matched to docs/operations.md, the preStop + drain within terminationGracePeriodSeconds; the
// admin token from a Secret, the probes answered without it by the real CLI on the
// manifest's config, watchConfig on),
// `npm start` passing a supervisor's SIGTERM to the proxy itself, and an old Node getting
// one clear line from bin/linkerd-tcp.js and dist/main.js instead of a SyntaxError.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { parseConfig } from '../src/config/load.ts';
import { HARD_EXIT_MARGIN_MS, PRIMARY_EXTRA_MARGIN_MS } from '../src/lifecycle.ts';
import { exportedFamilies } from '../src/metrics/help.ts';
import { loadDashboard, metricNames, panelTargets, substitute } from './support/grafana.ts';
import { deadline, Proxy, writeConfig } from './support/harness.ts';

const ROOT = new URL('../', import.meta.url).pathname;
/** Where running it is documented: docs/operations.md (admin endpoints, systemd, Kubernetes), with README linking it. */
const OPS = readFileSync(join(ROOT, 'docs/operations.md'), 'utf8');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const HARD_EXIT_MARGIN_SECS = (HARD_EXIT_MARGIN_MS + PRIMARY_EXTRA_MARGIN_MS) / 1000; // the larger: the first process of several workers
const cleanup: (() => void)[] = [];

/** The Kubernetes manifest's objects, its config text, and its proxy container. */
function kubernetes(): { objs: unknown[]; configText: string; pod: unknown; container: unknown } {
  const docs = parseAllDocuments(readFileSync(join(ROOT, 'deploy/kubernetes.yml'), 'utf8'));
  for (const d of docs) assert.deepEqual(d.errors, []);
  const objs = docs.map((d) => d.toJS() as unknown);
  const find = (pred: (o: unknown) => boolean, what: string): unknown => { const o = objs.find(pred); assert.ok(o, what); return o; };
  const configText = String(at(find((o) => at(o, 'kind') === 'ConfigMap', 'a ConfigMap'), 'data', 'config.yml'));
  const pod = at(find((o) => at(o, 'kind') === 'Deployment' || at(o, 'kind') === 'DaemonSet', 'a Deployment or DaemonSet'), 'spec', 'template', 'spec');
  return { objs, configText, pod, container: at(pod, 'containers', 0) };
}
after(() => { for (const c of cleanup.reverse()) c(); });

/** A systemd unit file: section → key → values (a key may repeat). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const out = new Map<string, Map<string, string[]>>();
  let section: Map<string, string[]> | undefined;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const head = /^\[([A-Za-z]+)\]$/.exec(line);
    if (head) { out.set(head[1]!, (section = new Map())); return; }
    const kv = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/.exec(line);
    assert.ok(kv && section, `line ${i + 1} is not key=value in a section: ${raw}`);
    section.set(kv[1]!, [...(section.get(kv[1]!) ?? []), kv[2]!]);
  });
  return out;
}

/** `o[k0][k1]…`, undefined where the path breaks off. */
const at = (o: unknown, ...path: (string | number)[]): unknown =>
  path.reduce<unknown>((x, k) => (typeof x === 'object' && x !== null ? (x as Record<string | number, unknown>)[k] : undefined), o);

/** An old Node (the host's) to run the entry points with. */
const OLD_NODE = '/usr/bin/node';

describe('deploy', () => {
  it('deploy/linkerd-tcp.service: execs Node on dist/main.js, SIGTERM, reload by SIGHUP, a stop timeout above the drain; systemd-analyze verify passes', () => {
    const text = readFileSync(join(ROOT, 'deploy/linkerd-tcp.service'), 'utf8');
    const unit = parseUnit(text);
    const svc = unit.get('Service')!;
    const one = (k: string): string => { const v = svc.get(k); assert.equal(v?.length, 1, k); return v![0]!; };
    assert.deepEqual([...unit.keys()], ['Unit', 'Service', 'Install']);
    assert.match(one('ExecStart'), /^\/opt\/linkerd-tcp\/node_modules\/\.bin\/node \/opt\/linkerd-tcp\/dist\/main\.js \S+\.yml$/, 'Node itself, no npm/npx/sh in between');
    assert.equal(one('KillSignal'), 'SIGTERM');
    assert.match(one('KillMode'), /^(mixed|control-group)$/);
    assert.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID');
    assert.ok(Number(one('TimeoutStopSec')) > 10 + HARD_EXIT_MARGIN_SECS, 'longer than the default graceSecs and the hard-exit margin');
    assert.equal(one('Restart'), 'on-failure');
    assert.equal(unit.get('Install')!.get('WantedBy')?.[0], 'multi-user.target');
    // systemd's own check, with the paths pointed at this checkout (it wants ExecStart to exist).
    const dir = mkdtempSync(join(tmpdir(), 'l5d-unit-'));
    const file = join(dir, 'linkerd-tcp.service');
    writeFileSync(file, text.replaceAll('/opt/linkerd-tcp', ROOT.replace(/\/$/, '')).replace('/etc/linkerd-tcp/config.yml', join(ROOT, 'example.yml'))
      .replace(/^User=.*$/m, 'User=root').replace(/^Group=.*$/m, 'Group=root'));
    const verify = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
    assert.equal(verify.error, undefined, 'systemd-analyze is installed (apt-get install systemd)');
    assert.equal(verify.status, 0, verify.stderr);
    assert.equal(verify.stderr.trim(), '', 'no warnings (unknown keys, bad values)');
  });

  it('deploy/kubernetes.yml: its config loads; probes on /ready and /ping at the admin port; preStop + graceSecs + margin within terminationGracePeriodSeconds', () => {
    const { configText, pod, container: c } = kubernetes();
    const config = parseConfig(configText, 'deploy/kubernetes.yml#config.yml');
    const ports = at(c, 'ports') as unknown[];
    const port = (name: unknown): unknown => typeof name === 'number' ? name : at(ports.find((p) => at(p, 'name') === name), 'containerPort');
    assert.equal(config.admin.ip, '0.0.0.0', 'the kubelet reaches the admin port on the pod IP');
    assert.equal(port(at(c, 'readinessProbe', 'httpGet', 'port')), config.admin.port);
    assert.equal(at(c, 'readinessProbe', 'httpGet', 'path'), '/ready');
    assert.equal(port(at(c, 'livenessProbe', 'httpGet', 'port')), config.admin.port);
    assert.equal(at(c, 'livenessProbe', 'httpGet', 'path'), '/ping');
    for (const s of config.routers.flatMap((r) => r.servers)) assert.ok(ports.some((p) => at(p, 'containerPort') === s.port), `server port ${s.port} declared`);
    // docs/operations.md documents these paths and the default admin port.
    for (const path of ['/ready', '/ping']) assert.ok(OPS.includes(`\`GET ${path}\``), `docs/operations.md documents ${path}`);
    assert.ok(OPS.includes(`default 127.0.0.1:${config.admin.port}`));
    const cmd = at(c, 'lifecycle', 'preStop', 'exec', 'command') as string[];
    assert.equal(cmd[0], 'sleep');
    const preStopSecs = Number(cmd[1]);
    assert.ok(preStopSecs >= 1);
    const termSecs = Number(at(pod, 'terminationGracePeriodSeconds'));
    assert.ok(termSecs >= preStopSecs + config.admin.graceSecs + HARD_EXIT_MARGIN_SECS,
      `terminationGracePeriodSeconds ${termSecs} < ${preStopSecs} + ${config.admin.graceSecs} + ${HARD_EXIT_MARGIN_SECS}`);
    assert.equal(at(c, 'command'), undefined, "the image's ENTRYPOINT: Node as PID 1, no shell to swallow SIGTERM");
    assert.ok(OPS.includes('(../deploy/kubernetes.yml)') && OPS.includes('(../deploy/linkerd-tcp.service)'), 'docs/operations.md links both deploy files');
    assert.ok(README.includes('(deploy/kubernetes.yml)') && README.includes('(deploy/linkerd-tcp.service)'), 'README links both deploy files');
  });

  it('deploy/kubernetes.yml: the admin token comes from a Secret (one source only); the probes answer without it and POST /abort does not; watchConfig is on', { timeout: 30_000 }, async () => {
    const { configText, pod, container: c } = kubernetes();
    const config = parseConfig(configText, 'deploy/kubernetes.yml#config.yml');
    assert.equal(config.watchConfig, true, 'an edited ConfigMap applies without a restart');
    // The token: LINKERD_TCP_ADMIN_TOKEN from a secretKeyRef, or admin.tokenFile in a mounted Secret; not both, never a literal.
    const env = (at(c, 'env') ?? []) as unknown[];
    const tokenEnv = env.find((e) => at(e, 'name') === 'LINKERD_TCP_ADMIN_TOKEN');
    assert.equal(at(tokenEnv, 'value'), undefined, 'no token written into the manifest');
    const fromEnv = tokenEnv !== undefined && typeof at(tokenEnv, 'valueFrom', 'secretKeyRef', 'name') === 'string' && typeof at(tokenEnv, 'valueFrom', 'secretKeyRef', 'key') === 'string';
    if (tokenEnv !== undefined) assert.ok(fromEnv, 'LINKERD_TCP_ADMIN_TOKEN comes from a secretKeyRef');
    if (fromEnv) assert.notEqual(at(tokenEnv, 'valueFrom', 'secretKeyRef', 'optional'), true, 'a pod without the Secret must not start tokenless');
    const tokenFile = config.admin.tokenFile;
    const fromFile = tokenFile !== undefined && ((at(c, 'volumeMounts') ?? []) as unknown[]).some((m) => {
      const volume = ((at(pod, 'volumes') ?? []) as unknown[]).find((v) => at(v, 'name') === at(m, 'name'));
      return tokenFile.startsWith(`${String(at(m, 'mountPath')).replace(/\/$/, '')}/`) && typeof at(volume, 'secret', 'secretName') === 'string';
    });
    if (tokenFile !== undefined) assert.ok(fromFile, `admin.tokenFile ${tokenFile} is in a mounted Secret`);
    assert.ok(fromEnv !== fromFile, 'the admin token comes from exactly one Secret source (both set is refused at start)');
    // The probes send no Authorization header: they must be on paths that need none.
    for (const probe of ['readinessProbe', 'livenessProbe']) assert.equal(at(c, probe, 'httpGet', 'httpHeaders'), undefined);

    // The manifest's own config, on free ports, with a token as the Secret would give it.
    const token = 'k8s-secret-token-0123456789abcdef';
    const cfg = JSON.parse(JSON.stringify(parseAllDocuments(configText)[0]!.toJS())) as { admin: { port: number; tokenFile?: string }; routers: { servers: { port: number }[] }[] };
    cfg.admin.port = 0;
    for (const s of cfg.routers.flatMap((r) => r.servers)) s.port = 0;
    if (fromFile) {
      const dir = mkdtempSync(join(tmpdir(), 'l5d-k8s-token-'));
      cfg.admin.tokenFile = join(dir, 'token');
      writeFileSync(cfg.admin.tokenFile, `${token}\n`);
    }
    const p = new Proxy([writeConfig(JSON.stringify(cfg))], { LOG_LEVEL: 'info', ...(fromEnv ? { LINKERD_TCP_ADMIN_TOKEN: token } : {}) });
    cleanup.push(() => { try { p.proc.kill('SIGKILL'); } catch { /* gone */ } });
    const up = await Promise.race([
      p.waitForLog((l) => l.msg === 'admin listening', 20_000, 'admin listening'),
      p.exited.then((code) => { throw new Error(`exited with ${code}: ${p.stderr}`); }),
    ]);
    const admin = `http://127.0.0.1:${String(up['admin']).split(':').pop()}`;
    for (const probe of ['readinessProbe', 'livenessProbe']) {
      const res = await fetch(`${admin}${String(at(c, probe, 'httpGet', 'path'))}`);
      // /ready may be 503 here (the manifest's backend does not resolve outside a cluster), never 401.
      assert.ok(probe === 'livenessProbe' ? res.status === 200 : res.status === 200 || res.status === 503, `${probe}: ${res.status} ${await res.text()}`);
    }
    for (const path of ['/abort', '/shutdown']) {
      const res = await fetch(`${admin}${path}`, { method: 'POST' });
      assert.equal(res.status, 401, `POST ${path} without the token`);
    }
    assert.equal((await fetch(`${admin}/shutdown`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status, 202);
    assert.equal(await deadline(15_000, 'exit after POST /shutdown', p.exited), 0);
    assert.ok(OPS.includes('secretKeyRef') && OPS.includes('watchConfig: true'), 'docs/operations.md says how the manifest gets its token and config edits');
  });

  it('npm start execs the proxy: a supervisor\'s SIGTERM to npm stops the proxy and its workers', { timeout: 60_000 }, async () => {
    const start = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['start']!;
    assert.match(start, /&& exec node dist\/main\.js example\.yml$/);
    // A package with the same start script, a no-op build, this checkout's build and modules, and a config on port 0.
    const dir = mkdtempSync(join(tmpdir(), 'l5d-npm-start-'));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'l5d-start', version: '0.0.0', type: 'module', scripts: { build: 'true', start } }));
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    spawnSync(join(ROOT, 'node_modules/.bin/tsc'), ['-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(dir, 'dist')]);
    writeFileSync(join(dir, 'example.yml'), 'workers: 2\nadmin: {port: 0}\nrouters:\n- label: n\n  dtab: /svc => /$/inet/127.0.0.1/9;\n  servers:\n  - {port: 0, dstName: /svc}\n');
    const npm = spawn('npm', ['start', '--silent'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } });
    const pids = new Set<number>();
    cleanup.push(() => { for (const pid of pids) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } });
    let listening = 0;
    const up = Promise.withResolvers<void>();
    createInterface({ input: npm.stdout }).on('line', (line) => {
      try {
        const l = JSON.parse(line) as { pid: number; msg: string };
        pids.add(l.pid);
        if (l.msg === 'listening' && ++listening === 2) up.resolve();
      } catch { /* npm's own lines */ }
    });
    await deadline(30_000, 'the proxy listening under npm start', up.promise);
    npm.kill('SIGTERM');
    // Every process holding npm's stdout (the proxy and its workers) has exited.
    await deadline(15_000, 'the proxy and its workers to exit after npm got SIGTERM', once(npm.stdout, 'close'));
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `process ${pid} is gone`);
  });

  it('bin/linkerd-tcp.js and dist/main.js on Node < 24 print one line with the exact command that runs Node 24, exit 1; the command works', () => {
    assert.ok(existsSync(OLD_NODE), `${OLD_NODE} (the host's Node 20) is where this test finds an old Node`);
    const v = execFileSync(OLD_NODE, ['--version'], { encoding: 'utf8' }).trim();
    assert.ok(Number(v.slice(1).split('.')[0]) < 24, `${OLD_NODE} is ${v}`);
    const dist = mkdtempSync(join(tmpdir(), 'l5d-dist-'));
    spawnSync(join(ROOT, 'node_modules/.bin/tsc'), ['-p', join(ROOT, 'tsconfig.build.json'), '--outDir', dist]);
    // In this checkout (`npm ci` done): the command with its Node 24, the arguments kept (quoted for a shell).
    const r = spawnSync(OLD_NODE, [join(ROOT, 'bin/linkerd-tcp.js'), '--version', "it's"], { encoding: 'utf8' });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `linkerd-tcp: Node.js >= 24 is needed, this is ${v}; run it with the Node 24 that \`npm ci\` installed: ` +
      `${ROOT}node_modules/.bin/node ${ROOT}bin/linkerd-tcp.js --version 'it'\\''s'\n`);
    const cmd = r.stderr.slice(r.stderr.indexOf('installed: ') + 'installed: '.length).trim();
    const run = spawnSync('sh', ['-c', cmd.replace(" 'it'\\''s'", '')], { encoding: 'utf8', cwd: tmpdir(), env: { ...process.env, PATH: '/usr/bin:/bin' } });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout.trim(), `linkerd-tcp ${(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version}`);
    // dist/main.js of a copy without node_modules (as the compiled entry finds its root): `npm ci` there first.
    const d = spawnSync(OLD_NODE, [join(dist, 'main.js'), 'c.yml'], { encoding: 'utf8' });
    assert.equal(d.status, 1, d.stderr);
    const root = `${dirname(dist)}/`;
    assert.equal(d.stderr, `linkerd-tcp: Node.js >= 24 is needed, this is ${v}; \`npm ci\` in ${root} installs Node 24 there, then run: ${root}node_modules/.bin/node ${root}bin/linkerd-tcp.js c.yml\n`);
  });
});

describe('the Grafana dashboard (deploy/grafana/linkerd-tcp.json)', () => {
  const dash = loadDashboard();
  const targets = panelTargets(dash);

  it('is a dashboard on a Prometheus datasource variable, with rt, srv_addr and dst from label_values', () => {
    assert.ok(Number(dash['schemaVersion']) >= 36, 'a current schema');
    assert.ok(typeof dash['uid'] === 'string' && typeof dash['title'] === 'string');
    const vars = (dash['templating'] as { list: { name: string; type: string; query: unknown; allValue?: string }[] }).list;
    const ds = vars.find((v) => v.type === 'datasource');
    assert.equal(ds?.query, 'prometheus');
    for (const name of ['rt', 'srv_addr', 'dst']) {
      const v = vars.find((x) => x.name === name);
      assert.ok(v, `variable ${name}`);
      const q = typeof v.query === 'string' ? v.query : (v.query as { query: string }).query;
      assert.match(q, new RegExp(`^label_values\\(.+, ${name}\\)$`));
      for (const m of metricNames(q)) assert.ok(exportedFamilies().has(m), `${name}: ${m} is not exported`);
      assert.equal(v.allValue, '.*', `${name}: All is a regex the exprs match with =~`);
    }
    const panels = (dash['panels'] as { datasource?: { uid?: string }; targets?: unknown[] }[]).filter((p) => p.targets);
    for (const p of panels) assert.equal(p.datasource?.uid, '${datasource}', 'every panel on the datasource variable');
  });

  it('names in every expr only metric families the proxy exports (the help table)', () => {
    assert.ok(targets.length >= 20, `${targets.length} targets`);
    const exported = exportedFamilies();
    for (const t of targets) {
      const names = metricNames(t.expr);
      assert.ok(names.length > 0, `${t.panel}/${t.refId}: reads no metric: ${t.expr}`);
      for (const n of names) assert.ok(exported.has(n), `${t.panel}/${t.refId}: ${n} is not a family the proxy exports`);
      // Substitution leaves no variable behind (the interop test sends these to Prometheus).
      assert.doesNotMatch(substitute(t.expr, { rt: '.*', srv_addr: '.*', dst: '.*' }), /\$/);
    }
    // The name check itself can fail: a misspelt family is caught.
    assert.ok(!exported.has(metricNames('rate(l5d:srv:accept[1m])')[0]!));
  });
});
