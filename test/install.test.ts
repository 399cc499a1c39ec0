// Installing and running from a checkout: native/build.sh names a missing compiler (g++,
// which node-gyp links with) and fails the install when the addon is required (the Docker
// build), and `npx linkerd-tcp` in a checkout (npx installs the checkout into its cache as
// a link, which re-runs `install` and `prepare` here) keeps the addon and dist/ already
// built instead of deleting and rebuilding them under running proxies. Each runs in a copy
// under the temp directory with stand-ins for node-gyp and tsc: nothing here builds anything.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';

const ROOT = new URL('../', import.meta.url).pathname;
const ADDON = 'build/Release/linkerd_tcp_engine.node';
const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

function write(path: string, text: string, mode?: number): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  if (mode !== undefined) chmodSync(path, mode);
}

/** A directory of commands: real ones linked from PATH, stand-ins that exit 1, none other. */
function binDir(real: readonly string[], fake: readonly string[]): string {
  const bin = tempDir('l5d-bin-');
  for (const c of real) {
    const w = spawnSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' }).stdout.trim();
    assert.ok(w.startsWith('/'), `${c} is installed`);
    symlinkSync(w, join(bin, c));
  }
  symlinkSync(process.execPath, join(bin, 'node'));
  for (const c of fake) write(join(bin, c), '#!/bin/sh\nexit 1\n', 0o755);
  return bin;
}

/** A copy of native/build.sh (it works in its parent directory) and a node-gyp stand-in that fails. */
function buildCopy(): { dir: string; gyp: string } {
  const dir = tempDir('l5d-build-');
  mkdirSync(join(dir, 'native'));
  copyFileSync(join(ROOT, 'native/build.sh'), join(dir, 'native/build.sh'));
  const gyp = join(dir, 'fake-gyp.cjs');
  write(gyp, 'console.error("make: *** [linkerd_tcp_engine.target.mk] Error 1"); process.exit(1);\n');
  return { dir, gyp };
}

const TOOLS = ['dirname', 'uname', 'tail', 'rm'];

/** This process's environment without what an outer `npm test` put there (its config and package). */
function outsideNpm(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && k !== 'INIT_CWD'));
}

describe('install', () => {
  it('native/build.sh names a missing g++ (node-gyp links with it); falls back to the node engine, or fails with LINKERD_TCP_REQUIRE_NATIVE=1', () => {
    const { dir, gyp } = buildCopy();
    const PATH = binDir(TOOLS, ['make', 'python3', 'cc']); // everything but g++
    for (const [require, status] of [['', 0], ['1', 1]] as const) {
      const r = spawnSync('/bin/sh', [join(dir, 'native/build.sh')], {
        encoding: 'utf8', env: { PATH, npm_config_node_gyp: gyp, LINKERD_TCP_REQUIRE_NATIVE: require, CC: '', CXX: '' },
      });
      assert.equal(r.status, status, `LINKERD_TCP_REQUIRE_NATIVE=${require}: ${r.stderr}`);
      assert.match(r.stderr, /native engine NOT built: missing g\+\+ \(.*links with g\+\+.*apt-get install [^)]*g\+\+/, r.stderr);
      assert.match(r.stderr, require ? /the install fails/ : /the node engine will be used/);
      assert.equal(existsSync(join(dir, 'build-native.log')), false, 'stopped before node-gyp');
    }
  });

  it('native/build.sh: a node-gyp that fails fails the install when the addon is required, with its output', () => {
    const { dir, gyp } = buildCopy();
    const PATH = binDir(TOOLS, ['make', 'python3', 'cc', 'g++']);
    const r = spawnSync('/bin/sh', [join(dir, 'native/build.sh')], { encoding: 'utf8', env: { PATH, npm_config_node_gyp: gyp, LINKERD_TCP_REQUIRE_NATIVE: '1' } });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /Error 1[\s\S]*native engine NOT built: node-gyp failed/);
  });

  it('the Docker build installs g++ and requires the addon at `npm ci`', () => {
    const docker = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const first = docker.indexOf('\nFROM ');
    const build = docker.slice(first, docker.indexOf('\nFROM ', first + 1)); // the build stage
    assert.match(build, /apt-get install [^\n]*\bgcc\b[^\n]*\bg\+\+/);
    assert.match(build, /RUN LINKERD_TCP_REQUIRE_NATIVE=1 npm ci\b/);
  });

  it('npx linkerd-tcp in a checkout keeps the built addon and dist/ (npx re-runs install and prepare there)', { timeout: 120_000 }, () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; bin: unknown; scripts: Record<string, string> };
    const dir = tempDir('l5d-npx-');
    // The checkout's name, bin and install/prepare scripts; no dependencies (nothing to fetch).
    write(join(dir, 'package.json'), JSON.stringify({ name: pkg.name, version: pkg.version, type: 'module', bin: pkg.bin,
      scripts: { install: pkg.scripts['install'], prepare: pkg.scripts['prepare'] } }));
    mkdirSync(join(dir, 'native'));
    copyFileSync(join(ROOT, 'native/build.sh'), join(dir, 'native/build.sh'));
    mkdirSync(join(dir, 'bin'));
    copyFileSync(join(ROOT, 'bin/linkerd-tcp.js'), join(dir, 'bin/linkerd-tcp.js'));
    write(join(dir, ADDON), 'the addon as built');
    write(join(dir, 'dist/main.js'), 'console.log("dist ran " + process.argv.slice(2).join(" "));\n');
    // Stand-ins that record a rebuild: node-gyp (`rebuild` deletes build/ first) and tsc.
    const marks = join(dir, 'rebuilt');
    const gyp = join(dir, 'fake-gyp.cjs');
    write(gyp, `require('fs').rmSync(${JSON.stringify(join(dir, 'build'))}, { recursive: true, force: true }); require('fs').appendFileSync(${JSON.stringify(marks)}, 'node-gyp\\n');\n`);
    const stubs = tempDir('l5d-stubs-');
    write(join(stubs, 'tsc'), `#!/bin/sh\necho tsc >> ${JSON.stringify(marks)}\n`, 0o755);
    const r = spawnSync('npx', ['linkerd-tcp', 'a.yml'], {
      cwd: dir, encoding: 'utf8', timeout: 100_000,
      env: { ...outsideNpm(), PATH: `${stubs}:${dirname(process.execPath)}:${process.env['PATH']}`, npm_config_cache: join(dir, '.npm'),
        npm_config_node_gyp: gyp, npm_config_update_notifier: 'false', npm_config_foreground_scripts: 'true', npm_config_yes: 'true' },
    });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^dist ran a\.yml$/m, 'the command ran');
    assert.equal(existsSync(marks) ? readFileSync(marks, 'utf8') : '', '', 'nothing was rebuilt');
    assert.equal(readFileSync(join(dir, ADDON), 'utf8'), 'the addon as built');
    assert.match(r.stdout + r.stderr, /npx: keeping the native engine already built/, 'install ran, and kept the addon');
    assert.match(r.stdout + r.stderr, /npx: keeping dist\/ as built/, 'prepare ran, and kept dist/');
  });
});
