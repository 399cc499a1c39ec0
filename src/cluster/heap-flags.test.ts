import assert from 'node:assert/strict';
import { it } from 'node:test';
import { MAX_SEMI_SPACE_MIB, workerExecArgv } from './heap-flags.ts';

it('workers get the young-generation cap unless the operator set their own', () => {
  const cap = `--max-semi-space-size=${MAX_SEMI_SPACE_MIB}`;
  assert.deepEqual(workerExecArgv([], undefined), [cap]);
  assert.deepEqual(workerExecArgv(['--enable-source-maps'], '--trace-warnings'), ['--enable-source-maps', cap]);
  assert.deepEqual(workerExecArgv(['--max-semi-space-size=16'], undefined), ['--max-semi-space-size=16']);
  assert.deepEqual(workerExecArgv([], '--max-old-space-size=512 --max-semi-space-size=32'), []);
  assert.deepEqual(workerExecArgv([], '--max-semi-space-size-ish=3'), [cap]);
});
