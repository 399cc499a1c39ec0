// The end-to-end files that matter most, again in the default mode: every proxy they start
// runs two worker processes and a supervisor (LINKERD_TCP_TEST_WORKERS=2; the rest of the
// suite runs one process). `LINKERD_TCP_TEST_WORKERS=2 npm test` runs everything that way.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { it } from 'node:test';

const FILES = ['test/proxy.test.ts', 'test/chaos.test.ts'];
const ROOT = new URL('../', import.meta.url).pathname;

it(`${FILES.join(', ')} pass with two workers per proxy`, { timeout: 240_000 }, async (t) => {
  const env: NodeJS.ProcessEnv = { ...process.env, LINKERD_TCP_TEST_WORKERS: '2' };
  delete env['NODE_TEST_CONTEXT']; // a test runner of its own, not a child of this one
  const run = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=60000', '--test-reporter=spec', ...FILES], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  run.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  run.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const [code] = await once(run, 'exit');
  const summary = out.split('\n').filter((l) => /^ℹ (tests|pass|fail|duration_ms)/.test(l)).join('; ');
  t.diagnostic(`two workers: ${summary}`);
  assert.equal(code, 0, `failures with two workers:\n${out.slice(out.indexOf('✖ failing tests') >= 0 ? out.indexOf('✖ failing tests') : -8000)}`);
});
