// The dashboard in headless Chromium (playwright-core, the system /usr/bin/chromium): served
// by a real admin server whose state changes on every poll, it must show live values,
// rates, sparklines, colour-coded endpoint states, no script errors or CSP violations, and
// treat hostile names as text. Saves test-artifacts/dashboard.png. A second test opens the
// real CLI's dashboard while its own traffic flows. It fails, never skips, when Chromium or
// playwright-core is missing.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { it } from 'node:test';
import { createAdminServer } from '../src/admin/server.ts';
import type { AppState } from '../src/admin/state.ts';
import { createLogger } from '../src/log.ts';
import { Registry } from '../src/metrics/registry.ts';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { deadline, echo, startBackend, startProxy } from './support/harness.ts';
import { browserLauncher } from './support/browser.ts';

const SHOT = new URL('../test-artifacts/dashboard.png', import.meta.url).pathname;

// The few playwright-core calls used here, typed locally so the type check does not need the package.
interface Locator {
  textContent(o?: { timeout?: number }): Promise<string | null>;
  getAttribute(name: string, o?: { timeout?: number }): Promise<string | null>;
  /** Runs `fn` on the element inside the page (a function: a string would be an expression). */
  evaluate<R>(fn: (el: PageElement) => R): Promise<R>;
}
/** The page-side globals the element callbacks use (this project's type check has no DOM library). */
interface PageElement { readonly __element: true }
declare function getComputedStyle(el: PageElement): { color: string };
interface Page {
  goto(url: string, o?: { timeout?: number }): Promise<unknown>;
  waitForSelector(selector: string, o?: { state?: 'attached' | 'visible'; timeout?: number }): Promise<unknown>;
  getByTestId(id: string): Locator;
  evaluate(expr: string): Promise<unknown>;
  screenshot(o: { path: string; fullPage?: boolean }): Promise<unknown>;
  on(event: 'pageerror', fn: (e: Error) => void): void;
  on(event: 'console', fn: (m: { type(): string; text(): string }) => void): void;
}
interface Browser {
  newPage(o?: { viewport?: { width: number; height: number } }): Promise<Page>;
  close(): Promise<void>;
}
const XSS = '/svc/<img src=x onerror="window.__xss=1">';

/** A state that moves on every poll: +5 accepts and +2 KiB rx per (fake) second. */
function changingState(): () => AppState {
  let n = 0;
  return (): AppState => {
    n++;
    return {
      at: 1_700_000_000_000 + n * 1000,
      process: {
        pid: process.pid, nodeVersion: process.version, startedAt: 0, uptimeSecs: 100 + n, rssBytes: 60 << 20,
        heapUsedBytes: 12 << 20, heapTotalBytes: 24 << 20, cpuUserSecs: n * 0.1, cpuSystemSecs: n * 0.05, openFds: 21, eventLoopDelayP99Ms: 1.5,
      },
      routers: [{
        label: 'web', interpreter: { kind: 'default', namespace: null, baseUrl: null },
        destinations: [{
          name: XSS, resolved: true, resolution: { kind: 'bound', endpoints: 3 }, waiters: 0,
          available: 1, failed: 1, retired: 1, open: 4, pending: 0,
          endpoints: [
            { key: '10.0.0.1:80', state: 'available', cause: null, healthy: null, failedUntil: null, weight: 0.5, load: 4, open: 4, pending: 0, connects: 20 + n, failures: 0, consecutiveFailures: 0 },
            { key: '10.0.0.2:80', state: 'failed', cause: 'fail-fast', healthy: null, failedUntil: 1_700_000_060_000, weight: 0.25, load: 0, open: 0, pending: 0, connects: 0, failures: 5, consecutiveFailures: 5 },
            { key: '10.0.0.3:80', state: 'retired', cause: null, healthy: null, failedUntil: null, weight: 0.25, load: 0, open: 0, pending: 0, connects: 3, failures: 0, consecutiveFailures: 0 },
          ],
        }],
      }],
      servers: [{
        router: 'web', srvAddr: '127.0.0.1:7474', listening: true, dstName: XSS, tls: true, tlsIdentities: [{ name: 'default', names: ['localhost'], notAfter: 'Nov 18 00:00:00 2051 GMT' }], active: 4 + (n % 3), waiters: 0,
        accepts: 5 * n, closes: 5 * n - 4, failures: 1, rejected: 0, rxBytes: 2048 * n, txBytes: 8192 * n,
        connectLatencyUs: { count: 5 * n, p50: 350, p99: 1800, windowSecs: 60 }, tlsFailures: { unknown_sni: 2 },
      }],
      processes: [],
      recentErrors: [
        { at: 1_700_000_000_000, level: 'warn', msg: 'endpoint ejected', context: { dst: XSS, endpoint: '10.0.0.2:80' } },
        // A dead endpoint's connect failures: one entry at info (as logged), counted.
        { at: 1_700_000_000_000 + n * 1000, level: 'info', msg: 'connect failed', context: { dst: XSS, endpoint: '10.0.0.2:80', cause: 'refused' }, count: 40 + n, firstAt: 1_700_000_000_000 },
      ],
    };
  };
}

it('dashboard shows live state in headless Chromium', { timeout: 60_000 }, async (t) => {
  const launch = await browserLauncher<Browser>();

  const admin = createAdminServer({
    config: { ip: '127.0.0.1', port: 0, metricsIntervalSecs: 60, graceSecs: 10 }, registry: new Registry(), state: changingState(),
    ready: () => true, shutdown: () => {}, abort: () => {}, log: createLogger('silent'),
  });
  await admin.listen();
  t.after(() => admin.close());
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`); });

  await page.goto(`http://${admin.address}/?interval=250`, { timeout: 10_000 });
  // A CSS wait (Playwright's utility world) rather than waitForFunction, whose in-page eval the dashboard's CSP forbids.
  await page.waitForSelector('body[data-samples]:not([data-samples="0"]):not([data-samples="1"]):not([data-samples="2"]):not([data-samples="3"])', { state: 'attached', timeout: 15_000 });
  const text = (id: string): Promise<string | null> => page.getByTestId(id).textContent({ timeout: 5_000 });

  assert.equal(await text('conn-status'), 'live');
  assert.equal(await text('proc-pid'), String(process.pid));
  assert.match((await text('srv-active-127.0.0.1:7474')) ?? '', /^[456]$/);
  assert.equal(await text('srv-accepts-rate-127.0.0.1:7474'), '5.0/s');
  assert.equal(await text('srv-rx-rate-127.0.0.1:7474'), '2.0 KiB/s');
  assert.equal(await text('srv-tx-rate-127.0.0.1:7474'), '8.0 KiB/s');
  assert.equal(await text('srv-lat-p99-127.0.0.1:7474'), '1.8 ms');
  assert.equal(await text('rt-accepts-rate-web'), '5.0/s');
  assert.equal(await text('ep-state-10.0.0.1:80'), 'available');
  assert.equal(await text('ep-state-10.0.0.2:80'), 'failed');
  assert.equal(await text('ep-state-10.0.0.3:80'), 'retired');
  // The page re-renders every 250 ms: an element found may be replaced before its style is
  // read (a detached element has no computed style), so read until an attached one answers.
  const colorOf = async (id: string): Promise<string> => {
    const until = Date.now() + 5000;
    for (;;) {
      const c = await page.getByTestId(id).evaluate((el) => getComputedStyle(el).color);
      if (c !== '' || Date.now() > until) return c;
    }
  };
  assert.equal(await colorOf('ep-state-10.0.0.1:80'), 'rgb(26, 127, 55)');
  assert.equal(await colorOf('ep-state-10.0.0.2:80'), 'rgb(207, 34, 46)');
  assert.equal(await colorOf('ep-failures-10.0.0.2:80'), 'rgb(207, 34, 46)'); // failures in red, not plain
  assert.equal(await colorOf('srv-tls-failures-127.0.0.1:7474'), 'rgb(207, 34, 46)');
  assert.equal(await text('srv-tls-failures-127.0.0.1:7474'), 'unknown_sni 2');
  // One failure long ago (the count stays 1): no failures per second, nothing red.
  assert.equal(await text('srv-failures-rate-127.0.0.1:7474'), '0.0/s');
  assert.equal(await colorOf('srv-failures-rate-127.0.0.1:7474'), 'rgb(29, 35, 48)', 'the plain ink, not red');
  assert.equal(await colorOf('srv-failures-127.0.0.1:7474'), 'rgb(29, 35, 48)');
  // Recent errors at the log's level: the info line is dim, the warning amber; the repeat counted.
  assert.equal(await text('err-level-0'), 'info ');
  assert.equal(await colorOf('err-level-0'), 'rgb(107, 115, 133)');
  assert.equal(await colorOf('err-level-1'), 'rgb(154, 103, 0)');
  assert.match(await text('err-count-0') ?? '', /^ \u00d7\d+ since \d\d:\d\d:\d\d$/);
  assert.match(await text('scale-proc-rss') ?? '', /^0 \u2013 60\.0 MiB$/);
  assert.equal(await text(`dst-status-web-${XSS}`), 'bound \u00b7 3 endpoints');
  assert.ok(Number(await page.getByTestId('spark-srv-accepts-rate-127.0.0.1:7474').getAttribute('data-points')) >= 2);
  // Hostile names are text: shown verbatim, nothing executed.
  assert.equal(await text('srv-dst-127.0.0.1:7474'), ` \u2192 ${XSS}`);
  assert.equal(await page.evaluate('typeof window.__xss'), 'undefined');
  assert.equal(await page.evaluate('document.querySelectorAll("main img").length'), 0);

  mkdirSync(dirname(SHOT), { recursive: true });
  await page.screenshot({ path: SHOT, fullPage: true });
  assert.deepEqual(problems, [], 'no script errors, console errors or CSP violations');
});

it('dashboard shows the real proxy\'s own traffic', { timeout: 60_000 }, async (t) => {
  const launch = await browserLauncher<Browser>();
  const backend = await startBackend(echo);
  t.after(() => backend.close());
  const { proxy, ports: [port] } = await startProxy(`
admin: {port: 0}
routers:
- label: live
  dtab: /svc/echo => /$/inet/127.0.0.1/${backend.port};
  servers:
  - {port: 0, dstName: /svc/echo}
`);
  t.after(() => proxy.stop('SIGKILL'));
  const admin = String((await proxy.waitForLog((l) => l.msg === 'admin listening'))['admin']);
  // Three connections: one finished, two held open.
  const clients: Socket[] = [];
  for (let i = 0; i < 3; i++) {
    const c = connect({ port: port!, host: '127.0.0.1' });
    c.on('error', () => {});
    await deadline(3000, 'connect', once(c, 'connect'));
    const echoed = once(c, 'data');
    c.write(`hello ${i}`);
    await deadline(3000, 'echo', echoed);
    clients.push(c);
  }
  clients[0]!.end();
  await proxy.waitForLog((l) => l.msg === 'connection closed');
  t.after(() => clients.forEach((c) => c.destroy()));

  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(`http://${admin}/?interval=250`, { timeout: 10_000 });
  const srv = `127.0.0.1:${port}`;
  const shows = (testid: string, text: string) =>
    page.waitForSelector(`[data-testid="${testid}"]:text-is("${text}")`, { state: 'attached', timeout: 10_000 });
  await shows(`srv-accepts-${srv}`, '3');
  await shows(`srv-active-${srv}`, '2');
  await shows(`ep-state-127.0.0.1:${backend.port}`, 'available');
  await page.screenshot({ path: SHOT.replace('dashboard.png', 'dashboard-live.png'), fullPage: true });
});
