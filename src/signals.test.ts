// signals.ts with real signals, each case in its own Node process: a signal held before
// anything takes it is handed over in order, a second one before that exits 1, and a command
// that releases the signals dies by the one it held, as if it had never been held.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { it } from 'node:test';

const MODULE = new URL('./signals.ts', import.meta.url).href;

/** Runs `body` in a fresh process after importing signals.ts; `delivered(sig)` sends one to itself and waits until it arrived. */
function run(body: string): { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string } {
  const script = `
import { holdSignals, releaseSignals, routeHup, routeStops } from ${JSON.stringify(MODULE)};
// The timer keeps the loop alive until the signal arrives (signal handles do not).
const delivered = (sig) => new Promise((resolve) => {
  const alive = setTimeout(() => {}, 10_000);
  process.once(sig, () => { clearTimeout(alive); setImmediate(resolve); });
  process.kill(process.pid, sig);
});
${body}`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.error, undefined);
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

it('stops held before a lifecycle takes them are handed over in order; a held SIGHUP goes to the reload once', () => {
  const r = run(`
holdSignals();
await delivered('SIGTERM');
await delivered('SIGHUP');
await delivered('SIGHUP');
routeStops((s) => console.log('stop', s));
routeHup(() => console.log('hup'));
await delivered('SIGINT');
await delivered('SIGHUP');
`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'stop SIGTERM\nhup\nstop SIGINT\nhup\n');
});

it('a second stop signal before a lifecycle takes them exits 1 at once, saying so', () => {
  const r = run(`
holdSignals();
await delivered('SIGTERM');
process.kill(process.pid, 'SIGINT');
await new Promise((resolve) => setTimeout(resolve, 10_000)); // exits before this
`);
  assert.equal(r.status, 1);
  assert.equal(r.stderr, 'linkerd-tcp: second signal (SIGINT) while starting: exiting now\n');
});

it('releasing (a command that serves nothing) dies by the signal held, and later ones act by default', () => {
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    const r = run(`
holdSignals();
await delivered(${JSON.stringify(sig)});
releaseSignals();
await new Promise((resolve) => setTimeout(resolve, 10_000)); // killed before this
`);
    assert.equal(r.signal, sig, `${sig}: status ${r.status} ${r.stderr}`);
  }
  const later = run(`
holdSignals();
releaseSignals();
process.kill(process.pid, 'SIGTERM');
await new Promise((resolve) => setTimeout(resolve, 10_000));
`);
  assert.equal(later.signal, 'SIGTERM');
});
