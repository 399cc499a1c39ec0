// DNS rebinding, played by a real browser: headless Chromium (playwright-core, Debian's
// /usr/bin/chromium) resolves evil.example to 127.0.0.1 (--host-resolver-rules), opens
// http://evil.example:<admin port>/ and, from that page's origin, reads /api/state and POSTs
// /shutdown and /abort as same-origin requests. All are refused (421); the real
// proxy keeps running and proxying, and its dashboard still works under its own names without
// showing namerd's credentials. It fails, never skips, when Chromium or playwright-core is missing.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { it } from 'node:test';
import { deadline, echo, startBackend, startProxy } from './support/harness.ts';
import { NamerdDouble } from './support/namerd-double.ts';
import { browserLauncher } from './support/browser.ts';


// The few playwright-core calls used here, typed locally (as in dashboard.test.ts).
interface Page {
  goto(url: string, o?: { timeout?: number }): Promise<{ status(): number } | null>;
  waitForSelector(selector: string, o?: { state?: 'attached' | 'visible'; timeout?: number }): Promise<unknown>;
  evaluate(expr: string): Promise<unknown>;
  content(): Promise<string>;
}
interface Browser {
  newPage(): Promise<Page>;
  close(): Promise<void>;
}
/** What the attacker's script does once its name resolves to 127.0.0.1: same-origin requests. */
const ATTACK = `(async () => {
  const out = {};
  const attempt = async (name, path, init) => {
    try {
      const r = await fetch(path, init);
      out[name] = { status: r.status, body: (await r.text()).slice(0, 300) };
    } catch (e) { out[name] = { error: String(e) }; }
  };
  await attempt('state', '/api/state');
  await attempt('metrics', '/metrics');
  await attempt('shutdown', '/shutdown', { method: 'POST' });
  await attempt('abort', '/abort', { method: 'POST', body: 'x' });
  return JSON.stringify(out);
})()`;

it('a DNS-rebinding page in Chromium can neither read /api/state nor POST /shutdown; the proxy stays up', { timeout: 90_000 }, async (t) => {
  const launch = await browserLauncher<Browser>();
  const backend = await startBackend(echo);
  t.after(() => backend.close());
  const namerd = await NamerdDouble.start();
  t.after(() => namerd.close());
  namerd.set('default', '/svc/echo', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: backend.port }] });
  const credentialed = namerd.baseUrl.replace('http://', 'http://admin:hunter2@');
  const { proxy, ports: [port] } = await startProxy(`
admin: {port: 0}
routers:
- label: rb
  interpreter: {kind: io.l5d.namerd.http, baseUrl: "${credentialed}", namespace: default, periodSecs: 60}
  servers:
  - {port: 0, dstName: /svc/echo}
`);
  t.after(() => proxy.stop('SIGKILL'));
  const adminPort = Number(String((await proxy.waitForLog((l) => l.msg === 'admin listening'))['admin']).split(':').pop());

  const browser = await launch(['--host-resolver-rules=MAP evil.example 127.0.0.1']);
  t.after(() => browser.close());
  const page = await browser.newPage();
  const nav = await page.goto(`http://evil.example:${adminPort}/`, { timeout: 10_000 });
  // Whatever the page got, its origin is evil.example:<port>, now 127.0.0.1: run the attack there.
  const out = JSON.parse(String(await deadline(15_000, 'the attack script', page.evaluate(ATTACK)))) as Record<string, { status?: number; body?: string; error?: string }>;
  t.diagnostic(`navigation: ${nav?.status()}; from the rebinding page: ${JSON.stringify(out)}`);
  assert.equal(nav?.status(), 421, 'the page itself is refused');
  for (const name of ['state', 'metrics', 'shutdown', 'abort']) assert.equal(out[name]?.status, 421, `${name}: ${JSON.stringify(out[name])}`);
  assert.ok(!JSON.stringify(out).includes('hunter2'));

  // Still alive, still proxying, never asked to stop.
  assert.equal(proxy.proc.exitCode, null);
  assert.ok(!proxy.logs.some((l) => l.msg === 'shutting down' || l.msg === 'abort requested: exiting now'));
  const c = connect(port!, '127.0.0.1');
  c.on('error', () => {});
  const echoed = once(c, 'data');
  c.write('still here');
  assert.equal(String((await deadline(5000, 'echo through the proxy', echoed))[0]), 'still here');
  c.destroy();

  // Under its own names the dashboard works, and shows no credentials.
  for (const host of [`127.0.0.1:${adminPort}`, `localhost:${adminPort}`]) {
    const own = await browser.newPage();
    assert.equal((await own.goto(`http://${host}/?interval=250`, { timeout: 10_000 }))?.status(), 200, host);
    await own.waitForSelector('[data-testid="conn-status"]:text-is("live")', { state: 'attached', timeout: 10_000 });
    assert.ok(!(await own.content()).includes('hunter2'), `dashboard at ${host}`);
    const state = await own.goto(`http://${host}/api/state`, { timeout: 10_000 });
    assert.equal(state?.status(), 200);
    const text = await own.content();
    assert.ok(text.includes('http://***@127.0.0.1:') && !text.includes('hunter2'), 'baseUrl redacted in /api/state');
  }
  assert.ok(!proxy.logs.some((l) => JSON.stringify(l).includes('hunter2')), 'no log line carries the password');
  assert.equal(await proxy.stop(), 0);
});
