// A drain's wait, for every kind of server: until its connections have closed, or its deadline.

/** Resolves when `idle` does or at `deadlineMs` (epoch ms), whichever is first; leaves no timer behind. */
export async function idleOrDeadline(idle: Promise<void>, deadlineMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadlineMs - Date.now()))));
  await Promise.race([idle, expired]);
  clearTimeout(timer);
}
