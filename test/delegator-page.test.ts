// The dashboard's dtab page (/delegator) in headless Chromium (playwright-core, the system
// /usr/bin/chromium), over a real admin server and a real default interpreter (io.l5d.fs
// files): the operator picks a router, types a name and sees the tree live, with a union's
// weights and a leaf's addresses and their states from /api/state; hostile input stays text.
// It fails, never skips, when Chromium or playwright-core is missing.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createAdminServer } from '../src/admin/server.ts';
import type { AppState } from '../src/admin/state.ts';
import { delegateOf } from '../src/interpreter/interpreter.ts';
import { createLogger } from '../src/log.ts';
import { Registry } from '../src/metrics/registry.ts';
import { EMPTY_STATE, fsRouter } from './support/delegator.ts';
import { browserLauncher } from './support/browser.ts';


// The few playwright-core calls used here, typed locally so the type check does not need the package.
interface Locator {
  textContent(o?: { timeout?: number }): Promise<string | null>;
  allTextContents(): Promise<string[]>;
  pressSequentially(text: string, o?: { delay?: number }): Promise<void>;
  fill(text: string): Promise<void>;
  selectOption(value: string): Promise<unknown>;
  first(): Locator;
  count(): Promise<number>;
}
interface Page {
  goto(url: string, o?: { timeout?: number }): Promise<unknown>;
  waitForSelector(selector: string, o?: { state?: 'attached' | 'visible'; timeout?: number }): Promise<unknown>;
  getByTestId(id: string): Locator;
  evaluate(expr: string): Promise<unknown>;
  on(event: 'pageerror', fn: (e: Error) => void): void;
  on(event: 'console', fn: (m: { type(): string; text(): string }) => void): void;
}
interface Browser {
  newPage(o?: { viewport?: { width: number; height: number } }): Promise<Page>;
  close(): Promise<void>;
}
const ep = (key: string, state: 'available' | 'failed', healthy: boolean | null) => ({
  key, state, cause: null, healthy, failedUntil: null, weight: 0.3, load: 0, open: 0, pending: 0, connects: 0, failures: 0, consecutiveFailures: 0,
});

/** Router `web` (and `other`): its /svc/web destination's endpoints, one of each state. */
const STATE: AppState = {
  ...EMPTY_STATE,
  routers: [
    {
      label: 'other', interpreter: { kind: 'default', namespace: null, baseUrl: null }, destinations: [],
    },
    {
      label: 'web', interpreter: { kind: 'default', namespace: null, baseUrl: null },
      destinations: [{
        name: '/svc/web', resolved: true, resolution: { kind: 'bound', endpoints: 3 }, waiters: 0, available: 2, failed: 1, retired: 0, open: 0, pending: 0,
        endpoints: [ep('127.0.0.1:8001', 'available', null), ep('127.0.0.1:8002', 'failed', null), ep('127.0.0.1:9001', 'available', false)],
      }],
    },
  ],
} as AppState;

it('dtab page: type a name, see the tree with a union\'s weights and a leaf\'s addresses and states', { timeout: 60_000 }, async (t) => {
  const launch = await browserLauncher<Browser>();
  const { interpreter } = fsRouter();
  t.after(() => interpreter.close());
  const other = fsRouter().interpreter;
  t.after(() => other.close());
  const admin = createAdminServer({
    config: { ip: '127.0.0.1', port: 0, metricsIntervalSecs: 60, graceSecs: 10 }, registry: new Registry(), state: () => STATE,
    ready: () => true, shutdown: () => {}, abort: () => {}, log: createLogger('silent'),
    delegators: { labels: () => ['other', 'web'], delegate: (l) => (l === 'web' ? delegateOf(interpreter) : l === 'other' ? delegateOf(other) : undefined) },
  });
  await admin.listen();
  t.after(() => admin.close());
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`); });

  await page.goto(`http://${admin.address}/delegator?interval=200`, { timeout: 10_000 });
  await page.waitForSelector('[data-testid="dtab-router"] option[value="web"]', { state: 'attached', timeout: 10_000 });
  await page.getByTestId('dtab-router').selectOption('web');
  // Typed key by key: the page asks again on every edit, and shows the last answer.
  await page.getByTestId('dtab-path').pressSequentially('/svc/web');
  await page.waitForSelector('[data-testid="union-weight"]', { state: 'attached', timeout: 10_000 });
  const text = (id: string): Promise<string | null> => page.getByTestId(id).first().textContent({ timeout: 5_000 });

  assert.deepEqual(await page.getByTestId('union-weight').allTextContents(), ['weight 3', 'weight 1']);
  assert.equal(await text('leaf-addr-127.0.0.1:8001'), '127.0.0.1:80011available'); // address, weight, state cells
  assert.equal(await text('leaf-addr-state-127.0.0.1:8001'), 'available');
  assert.equal(await text('leaf-addr-state-127.0.0.1:8002'), 'ejected');
  assert.equal(await text('leaf-addr-state-127.0.0.1:9001'), 'unhealthy (health check)');
  assert.deepEqual((await page.getByTestId('leaf-id').allTextContents())[0], 'bound id /#/io.l5d.fs/web, residual /');

  // Extra entries re-ask at once: the canary alone now, its leaf in front.
  await page.getByTestId('dtab-extra').fill('/svc/web => /#/io.l5d.fs/web-canary');
  await page.waitForSelector('[data-testid="node-alt"] > .line', { state: 'attached', timeout: 10_000 });
  await page.waitForSelector('[data-testid="node-alt"] > ul > [data-testid="node-leaf"]:first-child', { state: 'attached', timeout: 10_000 });
  assert.match((await page.getByTestId('leaf-id').allTextContents())[0] ?? '', /web-canary/);

  // Hostile input is shown as text: a bad dtab's error echoes it, nothing is parsed as HTML.
  await page.getByTestId('dtab-extra').fill('<img src=x onerror="window.__xss=1">');
  await page.waitForSelector('[data-testid="dtab-message"].bad', { state: 'attached', timeout: 10_000 });
  assert.match((await text('dtab-message')) ?? '', /^HTTP 400: Invalid dtab: .*\[<\]img src=x onerror="window.__xss=1">/);
  await page.getByTestId('dtab-extra').fill('');
  // A label may hold any byte as \\xHH: the tree shows it escaped, as linkerd prints it.
  await page.getByTestId('dtab-path').fill('/svc/\\x3cimg\\x20src\\x3dx\\x20onerror\\x3dwindow.__xss\\x3d1\\x3e');
  await page.waitForSelector('[data-testid="node-path"]', { state: 'attached', timeout: 10_000 });
  assert.match((await text('node-path')) ?? '', /^ \/svc\/\\x3c/);
  assert.equal(await page.evaluate('typeof window.__xss'), 'undefined');
  assert.equal(await page.evaluate('document.querySelectorAll("main img").length'), 0);
  assert.deepEqual(problems.filter((p) => !/status of 400/.test(p)), [], 'no script errors, console errors or CSP violations');
});
