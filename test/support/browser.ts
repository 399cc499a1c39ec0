// Headless Chromium for the admin pages' browser tests: Debian's /usr/bin/chromium driven by
// playwright-core. Each test types the few page and browser calls it uses (the type check
// does not need the package); this loads the package and launches. A missing Chromium or
// playwright-core fails the test: it never skips.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';

export const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

interface Chromium<B> {
  launch(o: { executablePath: string; args: string[]; timeout?: number }): Promise<B>;
}

/**
 * Checks Chromium and loads playwright-core now (before a test starts its servers), and
 * returns what launches a browser (`B`: the calls the test uses), with extra arguments.
 */
export async function browserLauncher<B>(): Promise<(extraArgs?: string[]) => Promise<B>> {
  assert.ok(existsSync(CHROMIUM), `Chromium is not installed at ${CHROMIUM} (apt-get install -y chromium); this test does not skip`);
  const name = 'playwright-core'; // a variable: resolved at run time only
  let mod: unknown;
  try {
    mod = await import(name);
  } catch (e) {
    throw new Error(`playwright-core is not installed (npm install --save-dev playwright-core); this test does not skip: ${(e as Error).message}`);
  }
  const chromium = (mod as { chromium?: Chromium<B> }).chromium;
  if (typeof chromium?.launch !== 'function') throw new Error('playwright-core loaded but has no chromium.launch');
  return (extraArgs = []) => chromium.launch({ executablePath: CHROMIUM, args: [...ARGS, ...extraArgs], timeout: 30_000 });
}
