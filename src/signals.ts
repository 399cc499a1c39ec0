// SIGINT, SIGTERM and SIGHUP from the process's first moment. main.ts holds them before the
// CLI's modules load (about 200 ms of imports, then the config and the start), so a
// supervisor's SIGTERM during start-up is kept instead of taking the default action (killed,
// exit 143). Held stops go to the lifecycle once it exists, in order, and later ones straight
// to it; a held SIGHUP goes to the reload once the start is done. Until a lifecycle takes
// them, a second stop signal exits 1 at once, as it does afterwards. A command that serves
// nothing (--check, --help) gives the signals their default action back.

export type StopSignal = 'SIGINT' | 'SIGTERM';
const STOPS: readonly StopSignal[] = ['SIGINT', 'SIGTERM'];

let stopTo: ((signal: StopSignal) => void) | undefined;
let hupTo: (() => void) | undefined;
const heldStops: StopSignal[] = [];
let heldHup = false;
let installed = false;

function onStop(signal: NodeJS.Signals): void {
  const s = signal as StopSignal;
  if (stopTo) return stopTo(s);
  heldStops.push(s);
  if (heldStops.length > 1) {
    // Nothing has started that needs stopping (no listener, no worker): no drain to skip.
    process.stderr.write(`linkerd-tcp: second signal (${s}) while starting: exiting now\n`);
    process.exit(1);
  }
}

function onHup(): void {
  if (hupTo) hupTo();
  else heldHup = true; // several before the start is done: one reload reads the latest file anyway
}

/** Installs the handlers; signals are held until `routeStops` / `routeHup`. Idempotent. */
export function holdSignals(): void {
  if (installed) return;
  installed = true;
  for (const s of STOPS) process.on(s, onStop);
  process.on('SIGHUP', onHup);
}

/** From now on SIGINT and SIGTERM go to `to`; the ones held so far go first, in order. */
export function routeStops(to: (signal: StopSignal) => void): void {
  holdSignals();
  stopTo = to;
  for (const s of heldStops.splice(0)) to(s);
}

/** From now on SIGHUP goes to `to`; one held so far goes now. */
export function routeHup(to: () => void): void {
  holdSignals();
  hupTo = to;
  if (heldHup) {
    heldHup = false;
    to();
  }
}

/**
 * For a command that serves nothing: the default actions again (a SIGTERM to a slow --check
 * ends it), and a signal held so far is raised again, so it acts as if it had never been held.
 */
export function releaseSignals(): void {
  for (const s of STOPS) process.off(s, onStop);
  process.off('SIGHUP', onHup);
  installed = false;
  stopTo = hupTo = undefined;
  const pending = heldStops[0] ?? (heldHup ? 'SIGHUP' : undefined);
  heldStops.length = 0;
  heldHup = false;
  if (pending) process.kill(process.pid, pending);
}
