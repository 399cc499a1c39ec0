// The end-to-end files that exercise the split between a supervisor and its workers, again in
// the default mode: every proxy they start runs two worker processes and a supervisor
// (LINKERD_TCP_TEST_WORKERS=2; the rest of the suite runs one process). Each file runs in a
// test runner of its own. `LINKERD_TCP_TEST_WORKERS=2 npm test` runs everything that way.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { it } from 'node:test';

// Proxying and chaos (namerd gone while watched, drains); naming and health (run once in the
// supervisor, handed to workers); reload (prepare/commit on every worker); resilience (pools and
// fail-fast per worker); TLS (shared ticket keys, per-worker reload); observability and hostile
// admin clients (metrics and state gathered from the workers).
const FILES = [
  'test/proxy.test.ts', 'test/chaos.test.ts', 'test/reliability/chaos.test.ts', 'test/discovery.test.ts',
  'test/health.test.ts', 'test/reload.test.ts', 'test/resilience.test.ts', 'test/tls.test.ts',
  'test/observability.test.ts', 'test/reliability/admin-hostile.test.ts',
  // Files that block or never end, settings-only reloads and watches (issue 20): the primary and every worker read them.
  'test/reliability/files.test.ts', 'test/reload-hardening.test.ts',
];
const ROOT = new URL('../', import.meta.url).pathname;

for (const file of FILES) {
  it(`${file} passes with two workers per proxy`, { timeout: 480_000 }, async (t) => {
    const env: NodeJS.ProcessEnv = { ...process.env, LINKERD_TCP_TEST_WORKERS: '2' };
    delete env['NODE_TEST_CONTEXT']; // a test runner of its own, not a child of this one
    const run = spawn(process.execPath, ['--test', '--test-timeout=60000', '--test-reporter=spec', file], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    run.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    run.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const [code] = await once(run, 'exit');
    const summary = out.split('\n').filter((l) => /^ℹ (tests|pass|fail|duration_ms)/.test(l)).join('; ');
    t.diagnostic(`two workers: ${summary}`);
    const failing = out.indexOf('✖ failing tests');
    assert.equal(code, 0, `failures with two workers:\n${out.slice(failing >= 0 ? failing : -8000)}`);
  });
}
