// Terminal escape injection and credential leaks, through the real CLI. A TLS client whose SNI
// carries an OSC retitle and an SGR colour, with the proxy's stdout a real terminal (a pty, so
// the readable log format is chosen as an operator would see it): the bytes that reach the
// terminal hold the escapes as visible text and not one control character. `--check` against a
// namerd whose cause carries NUL and U+202E prints them escaped, and namerd's
// `user:password@` as `***@`; CLI errors are escaped and redacted too.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { deadline, echo, MAIN, runCli, startBackend, writeConfig } from './support/harness.ts';
import { NamerdDouble } from './support/namerd-double.ts';

const PKI = new URL('./fixtures/tls/', import.meta.url).pathname;
const EVIL_SNI = 'x\x1b]0;OWNED\x07\x1b[31m.example';
/** Any character a terminal acts on: C0 but \r and \n (the pty adds \r), DEL, C1, bidi controls. */
const CONTROL = /[\u0000-\u0009\u000b\u000c\u000e-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/** Runs `argv` with its stdout and stderr on a pseudo-terminal; the child's pid comes first on stderr. */
const PTY = [
  'import os, pty, sys',
  'pid, fd = pty.fork()',
  'if pid == 0:',
  '    os.execvp(sys.argv[1], sys.argv[1:])',
  'sys.stderr.write(f"{pid}\\n"); sys.stderr.flush()',
  'while True:',
  '    try: data = os.read(fd, 65536)',
  '    except OSError: break',
  '    if not data: break',
  '    os.write(1, data)',
  'sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))',
].join('\n');

it('readable logs on a terminal show a hostile SNI escaped, never its control characters', { timeout: 60_000 }, async (t) => {
  const be = await startBackend(echo);
  t.after(() => be.close());
  const config = writeConfig(`
admin: {port: 0}
routers:
- label: tls
  dtab: /svc/be => /$/inet/127.0.0.1/${be.port};
  servers:
  - port: 0
    dstName: /svc/be
    tls: {defaultIdentity: {privateKey: ${join(PKI, 'rsa.key')}, certs: [${join(PKI, 'rsa.pem')}]}}
`);
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'info', LINKERD_TCP_WORKERS: '1' };
  delete env['LOG_FORMAT'];
  const py = spawn('python3', ['-c', PTY, process.execPath, MAIN, config], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  py.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const [pidLine] = await deadline(10_000, 'the pty child pid', once(py.stderr.setEncoding('utf8'), 'data'));
  const pid = Number(String(pidLine).trim());
  t.after(() => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } });
  const until = async (re: RegExp, what: string): Promise<RegExpExecArray> => deadline(15_000, what, new Promise<RegExpExecArray>((resolve) => {
    const look = (): boolean => { const m = re.exec(out); if (m) resolve(m); return m !== null; };
    if (!look()) py.stdout.on('data', () => void look());
  }));
  const port = Number((await until(/INFO +listening .*srv=127\.0\.0\.1:(\d+)/, 'the readable "listening" line'))[1]);

  const c = tlsConnect({ port, host: '127.0.0.1', servername: EVIL_SNI, rejectUnauthorized: false });
  c.on('error', () => {});
  await deadline(5000, 'handshake', once(c, 'secureConnect'));
  const echoed = once(c, 'data');
  c.write('hi');
  await deadline(5000, 'echo', echoed);
  c.end();
  await until(/connection closed.*sni=/, 'the access-log line');
  process.kill(pid, 'SIGTERM');
  const [code] = await deadline(20_000, 'exit', once(py, 'exit'));
  assert.equal(code, 0);

  const line = out.split('\n').find((l) => l.includes('connection closed'))!;
  t.diagnostic(`terminal line: ${JSON.stringify(line)}`);
  assert.ok(line.includes('sni=x\\x1b]0;OWNED\\x07\\x1b[31m.example'), line);
  const bad = CONTROL.exec(out);
  assert.equal(bad, null, `a control character reached the terminal: ${JSON.stringify(bad?.[0])} in ${JSON.stringify(out.slice(Math.max(0, (bad?.index ?? 0) - 60), (bad?.index ?? 0) + 20))}`);
});

it('--check prints namerd causes escaped (NUL, U+202E) and baseUrl without its credentials', { timeout: 30_000 }, async (t) => {
  const namerd = await NamerdDouble.start();
  t.after(() => namerd.close());
  namerd.set('default', '/svc/web', { type: 'failed', cause: 'cause\u0000with NUL and \u202Eevil\u001b[2J' });
  const file = writeConfig(`
routers:
- label: rt
  interpreter: {kind: io.l5d.namerd.http, baseUrl: "${namerd.baseUrl.replace('http://', 'http://ops:hunter2@')}", namespace: default, periodSecs: 60}
  servers:
  - {port: 7474, dstName: /svc/web}
`);
  const r = await runCli(['--check', file]);
  t.diagnostic(r.stdout);
  assert.equal(CONTROL.exec(r.stdout), null, `a control character reached the terminal: ${JSON.stringify(r.stdout)}`);
  assert.match(r.stdout, /destination \/svc\/web → failed: namerd: cause\\x00with NUL and \\u202eevil\\x1b\[2J/);
  assert.match(r.stdout, /interpreter io\.l5d\.namerd\.http http:\/\/\*\*\*@127\.0\.0\.1:\d+ namespace default/);
  assert.ok(!r.stdout.includes('hunter2') && !r.stderr.includes('hunter2'));
});

it('CLI errors are escaped and redacted', { timeout: 30_000 }, async () => {
  const file = writeConfig(`
routers:
- label: "rt\\e]0;OWNED\\a"
  interpreter: {kind: io.l5d.namerd.http, baseUrl: "ftp://ops:hunter2@namerd:4180", namespace: default, periodSecs: 60}
  "\\e[31mkey\\u202e": 1
  servers:
  - {port: 7474, dstName: /svc/web}
`);
  const r = await runCli([file]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(CONTROL.exec(r.stderr), null, `a control character reached the terminal: ${JSON.stringify(r.stderr)}`);
  assert.match(r.stderr, /routers\[0\]\.\\x1b\[31mkey\\u202e: unknown key/);
  assert.match(r.stderr, /baseUrl: expected an http\(s\) URL, got "ftp:\/\/\*\*\*@namerd:4180"/);
  assert.ok(!r.stderr.includes('hunter2'));
  const arg = await runCli(['--\x1b]0;OWNED\x07']);
  assert.equal(arg.code, 2);
  assert.equal(CONTROL.exec(arg.stderr), null, `a control character reached the terminal: ${JSON.stringify(arg.stderr.slice(0, 200))}`);
});
