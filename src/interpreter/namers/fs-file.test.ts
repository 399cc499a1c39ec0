// parseEndpointFile's grammar: linkerd's fs namer (namer/fs WatchingNamer.txtToAddr and
// txtToAddress: `Commentless` lines, `Whitespace.split`, `host port` or `host port * weight`,
// PortNum = Integer.parseInt in 1-65535, WeightNum = Double.parseDouble, `Address(host, port)`),
// and readEndpointFile's refusal to open anything but a regular file.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MAX_FILE_BYTES, parseEndpointFile, readEndpointFile } from './fs-file.ts';

/** `ip:port*weight`, a name as `name(host):port*weight`. */
const show = (text: string): string => {
  try {
    return parseEndpointFile(text).map((e) => `${e.kind === 'name' ? `name(${e.host})` : e.host}:${e.port}*${e.weight}`).join(',');
  } catch (e) {
    return `error: ${(e as Error).message}`;
  }
};

describe('parseEndpointFile', () => {
  const malformed = /^error: line 1: expected "<host> <port 1-65535>" or "<host> <port> \* <weight>", whitespace-separated/;
  const table: [string, string, string | RegExp][] = [
    ['lines, comments, blanks', '# web\n127.0.0.1 8080\n\n  127.1 8081 # inline\n', '127.0.0.1:8080*1,127.0.0.1:8081*1'],
    ['a comment right after the port', '127.0.0.1 8080# no space', '127.0.0.1:8080*1'],
    ['weights (linkerd FsTest)', '127.0.0.1 8080\n127.0.0.1 8081 * 0.23\n', '127.0.0.1:8080*1,127.0.0.1:8081*0.23'],
    ['tabs and runs of spaces separate tokens', '127.0.0.1\t8080 \t *\t\t2', '127.0.0.1:8080*2'],
    ['CRLF line ends (String.trim drops the \\r)', '127.0.0.1 1\r\n127.0.0.1 2 * 2\r\n', '127.0.0.1:1*1,127.0.0.1:2*2'],
    ['String.trim drops a control char at the ends', '\x01127.0.0.1 1\x1f', '127.0.0.1:1*1'],
    ['but not DEL (above U+0020): the port is "1\\x7f"', '127.0.0.1 1\x7f', malformed],
    ['blank lines of whitespace only', ' \t \n127.0.0.1 1\n\t\n', '127.0.0.1:1*1'],
    ['empty file', '', ''],
    ['comments only', '# a\n   # b\n', ''],
    // Host names (issue 21): linkerd's Address(host, port) resolves them; linkerd-examples' own file is `redis1 6379`.
    ['a host name', 'redis1 6379', 'name(redis1):6379*1'],
    ['a host name with a weight', 'localhost 24101 * 2', 'name(localhost):24101*2'],
    ['a dotted host name', 'web-1.example.com 80', 'name(web-1.example.com):80*1'],
    // IP literals as Java reads them: decimal parts (not inet_aton's octal), short forms, brackets for IPv6.
    ['IPv4 short form', '127.1 80', '127.0.0.1:80*1'],
    ['IPv4 as one 32-bit number', '2130706433 80', '127.0.0.1:80*1'],
    ['leading zeros are decimal, as Java (inet_aton would read 8.0.0.1)', '010.000.000.001 80', '10.0.0.1:80*1'],
    ['hex parts are not a Java literal: the resolver decides', '0x7f.1 80', 'name(0x7f.1):80*1'],
    ['an IPv4 part over 255 is a name', '256.0.0.1 80', 'name(256.0.0.1):80*1'],
    ['IPv6', '::1 9000 * 2', '::1:9000*2'],
    ['IPv6 in brackets (InetAddress.getByName)', '[::1] 9000', '::1:9000*1'],
    ['IPv6 in full', '2001:db8:0:0:0:0:0:1 443', '2001:db8:0:0:0:0:0:1:443*1'],
    // Ports as Integer.parseInt reads them, 1-65535 (PortNum).
    ['port with a plus sign and leading zeros', '127.0.0.1 +080', '127.0.0.1:80*1'],
    ['port 0', '127.0.0.1 0\n', malformed],
    ['port -1', '127.0.0.1 -1\n', malformed],
    ['port too big', '127.0.0.1 80\n127.0.0.1 70000', /^error: line 2: expected/],
    ['port 65535', '127.0.0.1 65535', '127.0.0.1:65535*1'],
    ['port not a number', '127.0.0.1 http', malformed],
    // `*` is a token of its own (Array(host, PortNum(port), "*", WeightNum(weight))).
    ['`*3` glued to the weight is refused (issue 21)', '127.0.0.1 24101 *3', malformed],
    ['`3*` is refused', '127.0.0.1 24101 3* 2', malformed],
    ['`80*3` is not a port', '127.0.0.1 80*3', malformed],
    ['`* 3` with no port', '127.0.0.1 * 3', malformed],
    ['a weight without `*`', '127.0.0.1 80 3', malformed],
    ['`*` without a weight', '127.0.0.1 80 *', malformed],
    ['another separator than `*`', '127.0.0.1 80 x 3', malformed],
    ['an extra token', '127.0.0.1 80 * 3 extra', malformed],
    ['a host alone', '127.0.0.1', malformed],
    ['NBSP is not whitespace to Java', '127.0.0.1\u00a080', malformed],
    // Weights as Double.parseDouble reads them, then our bound (0 to 1,000,000).
    ['weight with exponent, as Java toDouble', '127.0.0.1 1 * 1e3', '127.0.0.1:1*1000'],
    ['weight .5, 5. and a d suffix', '127.0.0.1 1 * .5\n127.0.0.1 2 * 5.\n127.0.0.1 3 * 2d', '127.0.0.1:1*0.5,127.0.0.1:2*5,127.0.0.1:3*2'],
    ['hexadecimal weight', '127.0.0.1 1 * 0x1.8p1', '127.0.0.1:1*3'],
    ['weight 0', '127.0.0.1 1 * 0', '127.0.0.1:1*0'],
    ['weight with a comma', '127.0.0.1 1 * 1,5', malformed],
    ['weight NaN (Java reads it; we refuse it)', '127.0.0.1 1 * NaN', /line 1: the weight NaN is not a number/],
    ['negative weight', '127.0.0.1 1 * -1', /line 1: the weight -1 is negative/],
    ['weight 1e308', '127.0.0.1 1 * 1e308\n127.0.0.1 2 * 1e308', /line 1: the weight 1e308 is over the limit of 1000000/],
    ['a weight of 310 digits', `127.0.0.1 1 * ${'9'.repeat(310)}`, /over the limit/],
    // Comments: linkerd's `^([^#]*)(?:#.*)?` must match the whole line, and Java's `.` stops at \r.
    ['a \\r inside a comment fails the file, as in linkerd', '127.0.0.1 1 # note\r\n', /^error: line 1: a carriage return or line separator inside a # comment/],
    ['garbage', 'not an address', malformed],
    ['one bad line fails the whole file', '127.0.0.1 1\n127.0.0.1 2 *2\n127.0.0.1 3', /^error: line 2:/],
    ['a 100 KB line is quoted cut short', `127.0.0.1 80\n${'z'.repeat(100_000)}`, /^error: line 2: expected .*, got "z{200}… \(99800 bytes more\)"$/],
  ];
  for (const [name, text, want] of table) {
    it(name, () => {
      const got = show(text);
      if (typeof want === 'string') assert.equal(got, want);
      else assert.match(got, want);
    });
  }
});

describe('readEndpointFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'l5d-fsfile-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

  it('reads a regular file through a symlink, and reports a directory', () => {
    writeFileSync(join(dir, 'real'), '127.0.0.1 1\n');
    symlinkSync('real', join(dir, 'link'));
    const r = readEndpointFile(join(dir, 'link'));
    assert.equal(r.kind === 'file' ? r.text : r.kind, '127.0.0.1 1\n');
    assert.equal(readEndpointFile(dir).kind, 'dir');
  });

  it('never opens a FIFO (it would block the process), directly or through a symlink', () => {
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    symlinkSync('fifo', join(dir, 'fifo-link'));
    assert.throws(() => readEndpointFile(join(dir, 'fifo')), /not a regular file/);
    assert.throws(() => readEndpointFile(join(dir, 'fifo-link')), /not a regular file/);
  });

  it('refuses a file over the size bound', () => {
    writeFileSync(join(dir, 'big'), 'x'.repeat(MAX_FILE_BYTES + 1));
    assert.throws(() => readEndpointFile(join(dir, 'big')), /over the 1048576-byte limit/);
    assert.throws(() => readEndpointFile(join(dir, 'absent')), { code: 'ENOENT' });
  });
});
