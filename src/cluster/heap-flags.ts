// V8 flags for the worker processes the primary forks. The young generation is capped: on a
// large machine V8 lets it grow to 128 MiB (two 64 MiB semi-spaces), which TLS churn fills
// and which then stays resident, so an idle proxy's RSS only ever grew (issue 17: RSS
// 77 → 400 MB with 20–38 MB of live heap; RELIABILITY.md has the figures). An operator's own
// --max-semi-space-size (in execArgv or NODE_OPTIONS) wins.

/** MiB per semi-space: the young generation stays at most 8 MiB (V8 reports new_space at 2 × this). */
export const MAX_SEMI_SPACE_MIB = 4;

/** `execArgv` for a forked worker: the parent's own flags, plus the young-generation cap unless one is set. */
export function workerExecArgv(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const set = (s: string): boolean => /(^|\s)--max-semi-space-size[=\s]/.test(s);
  if (execArgv.some((a) => set(`${a} `)) || set(`${nodeOptions ?? ''} `)) return [...execArgv];
  return [...execArgv, `--max-semi-space-size=${MAX_SEMI_SPACE_MIB}`];
}
