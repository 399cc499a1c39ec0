// Out-of-descriptor events this process has seen (EMFILE/ENFILE at an accept or a connect),
// counted where they happen. The open-files watch (admin/process-metrics.ts) samples the fd
// table once a second, and a flood that fills it only for moments between two samples was
// never reported (a loaded machine showed it); this count makes such a moment stick until the
// next sample. One count per process, as the fd table is.
let exhaustions = 0;

/** An accept or connect failed with EMFILE or ENFILE. */
export function noteFdExhaustion(): void {
  exhaustions++;
}

/** How many such failures so far (only its changes mean anything). */
export function fdExhaustions(): number {
  return exhaustions;
}
