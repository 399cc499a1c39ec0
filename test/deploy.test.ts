// Running under supervisors: the checked-in systemd unit (systemd-analyze verify, and its
// keys against the drain), the Kubernetes manifest (parsed, its config loaded, probes and
// ports matched to README, the preStop + drain within terminationGracePeriodSeconds),
// `npm start` passing a supervisor's SIGTERM to the proxy itself, and an old Node getting
// one clear line from bin/linkerd-tcp.js and dist/main.js instead of a SyntaxError.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { parseConfig } from '../src/config/load.ts';
import { deadline } from './support/harness.ts';

const ROOT = new URL('../', import.meta.url).pathname;
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const HARD_EXIT_MARGIN_SECS = 3; // lifecycle: a worker's 2 s, the primary's 1 s more
const cleanup: (() => void)[] = [];
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
    const docs = parseAllDocuments(readFileSync(join(ROOT, 'deploy/kubernetes.yml'), 'utf8'));
    for (const d of docs) assert.deepEqual(d.errors, []);
    const objs = docs.map((d) => d.toJS() as unknown);
    const find = (pred: (o: unknown) => boolean, what: string): unknown => { const o = objs.find(pred); assert.ok(o, what); return o; };
    const config = parseConfig(String(at(find((o) => at(o, 'kind') === 'ConfigMap', 'a ConfigMap'), 'data', 'config.yml')), 'deploy/kubernetes.yml#config.yml');
    const workload = find((o) => at(o, 'kind') === 'Deployment' || at(o, 'kind') === 'DaemonSet', 'a Deployment or DaemonSet');
    const pod = at(workload, 'spec', 'template', 'spec');
    const c = at(pod, 'containers', 0);
    const ports = at(c, 'ports') as unknown[];
    const port = (name: unknown): unknown => typeof name === 'number' ? name : at(ports.find((p) => at(p, 'name') === name), 'containerPort');
    assert.equal(config.admin.ip, '0.0.0.0', 'the kubelet reaches the admin port on the pod IP');
    assert.equal(port(at(c, 'readinessProbe', 'httpGet', 'port')), config.admin.port);
    assert.equal(at(c, 'readinessProbe', 'httpGet', 'path'), '/ready');
    assert.equal(port(at(c, 'livenessProbe', 'httpGet', 'port')), config.admin.port);
    assert.equal(at(c, 'livenessProbe', 'httpGet', 'path'), '/ping');
    for (const s of config.routers.flatMap((r) => r.servers)) assert.ok(ports.some((p) => at(p, 'containerPort') === s.port), `server port ${s.port} declared`);
    // README documents these paths and the default admin port.
    for (const path of ['/ready', '/ping']) assert.ok(README.includes(`\`GET ${path}\``), `README documents ${path}`);
    assert.ok(README.includes(`default 127.0.0.1:${config.admin.port}`));
    const cmd = at(c, 'lifecycle', 'preStop', 'exec', 'command') as string[];
    assert.equal(cmd[0], 'sleep');
    const preStopSecs = Number(cmd[1]);
    assert.ok(preStopSecs >= 1);
    const termSecs = Number(at(pod, 'terminationGracePeriodSeconds'));
    assert.ok(termSecs >= preStopSecs + config.admin.graceSecs + HARD_EXIT_MARGIN_SECS,
      `terminationGracePeriodSeconds ${termSecs} < ${preStopSecs} + ${config.admin.graceSecs} + ${HARD_EXIT_MARGIN_SECS}`);
    assert.equal(at(c, 'command'), undefined, "the image's ENTRYPOINT: Node as PID 1, no shell to swallow SIGTERM");
    assert.ok(README.includes('deploy/kubernetes.yml') && README.includes('deploy/linkerd-tcp.service'));
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

  it('bin/linkerd-tcp.js and dist/main.js on Node < 24 print one line saying how to get Node 24, exit 1', () => {
    assert.ok(existsSync(OLD_NODE), `${OLD_NODE} (the host's Node 20) is where this test finds an old Node`);
    const v = execFileSync(OLD_NODE, ['--version'], { encoding: 'utf8' }).trim();
    assert.ok(Number(v.slice(1).split('.')[0]) < 24, `${OLD_NODE} is ${v}`);
    const dist = mkdtempSync(join(tmpdir(), 'l5d-dist-'));
    spawnSync(join(ROOT, 'node_modules/.bin/tsc'), ['-p', join(ROOT, 'tsconfig.build.json'), '--outDir', dist]);
    for (const entry of [join(ROOT, 'bin/linkerd-tcp.js'), join(dist, 'main.js')]) {
      const r = spawnSync(OLD_NODE, [entry, '--version'], { encoding: 'utf8' });
      assert.equal(r.status, 1, `${entry}: ${r.stderr}`);
      assert.equal(r.stderr, `linkerd-tcp: Node.js >= 24 is needed, this is ${v}; \`npm ci\` in the linkerd-tcp checkout installs it (then \`npm start\` or \`npx linkerd-tcp <config>\`)\n`);
      assert.equal(r.stdout, '');
    }
  });
});
