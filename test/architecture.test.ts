// The dependency direction of DESIGN.md, checked from the import lines of src/: each
// module (a top-level file or folder) may import only the modules listed for it, so the
// data path never reaches back into the composition root and the pure layers stay pure.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { it } from 'node:test';

const SRC = new URL('../src/', import.meta.url).pathname;

const ALLOWED: Record<string, readonly string[]> = {
  main: ['cli', 'signals'], // checks the Node.js version, holds the signals, then imports the CLI
  cli: ['app', 'check', 'cluster', 'config', 'errors', 'lifecycle', 'log', 'reload', 'safe-text', 'signals'],
  lifecycle: ['log'],
  signals: [], // SIGINT, SIGTERM and SIGHUP held from the first moment, then routed: a leaf
  check: ['app', 'config', 'connector', 'log', 'metrics', 'naming', 'safe-text', 'server'],
  cluster: ['admin', 'app', 'config', 'engine', 'errors', 'health', 'interpreter', 'lifecycle', 'log', 'metrics', 'naming', 'reload', 'server', 'signals'], // engine: the addon's port holds (ports.ts)
  app: ['admin', 'config', 'connector', 'engine', 'errors', 'health', 'interpreter', 'log', 'metrics', 'reload', 'router', 'server'],
  engine: ['balancer', 'config', 'connector', 'errors', 'log', 'metrics', 'naming', 'router', 'server', 'wire'], // the engine seam: native addon binding, native servers and connections, engine choice
  admin: ['balancer', 'config', 'errors', 'log', 'metrics', 'naming', 'regular-file', 'safe-text'],
  server: ['config', 'connector', 'errors', 'log', 'metrics', 'naming', 'router', 'wire'],
  router: ['balancer', 'config', 'connector', 'health', 'interpreter', 'log', 'metrics', 'naming', 'proxy', 'wire'],
  health: ['config', 'log', 'metrics'], // active health checks: probe, policy, checker, and the workers' IPC seam
  reload: ['config', 'connector', 'errors', 'log', 'metrics'], // config reloads: plan (pure), file and hash, the reloader, live apply
  interpreter: ['config', 'errors', 'log', 'metrics', 'naming', 'regular-file', 'safe-text'], // safe-text: namerd's and files' text bounded
  connector: ['config', 'errors', 'regular-file', 'wire'],
  balancer: ['config', 'naming'],
  proxy: [],
  metrics: [],
  config: ['errors', 'naming', 'regular-file', 'safe-text', 'wire'],
  naming: ['errors'], // the error catalogue is a leaf every layer may use
  wire: [], // pure parsers and builders of network bytes (ClientHello, PROXY protocol)
  log: ['safe-text'],
  'regular-file': [], // the one file reader: regular files only, non-blocking, capped: a leaf
  'safe-text': [], // escaping and redaction for what a person reads: a leaf
  errors: [],
};

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [join(dir, e.name)] : []);
}

/** `server/tls.ts` → `server`; `main.ts` → `main`. */
const moduleOf = (file: string): string => relative(SRC, file).split('/')[0]!.replace(/\.ts$/, '');

it('src/ imports follow the dependency direction of DESIGN.md', () => {
  const bad: string[] = [];
  for (const file of files(SRC)) {
    const from = moduleOf(file);
    assert.ok(ALLOWED[from], `${relative(SRC, file)}: module "${from}" is not in the architecture table`);
    for (const m of readFileSync(file, 'utf8').matchAll(/^(?:import|export)[^'"]*from '(\.[^']+)'/gm)) {
      const to = moduleOf(resolve(dirname(file), m[1]!));
      if (to !== from && !ALLOWED[from]!.includes(to)) bad.push(`${relative(SRC, file)} imports ${m[1]} (${from} → ${to})`);
    }
  }
  assert.deepEqual(bad, []);
});
