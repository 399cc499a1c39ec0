// parseEndpointFile's grammar (linkerd's fs namer: `host port [* weight]`, `#` comments),
// and readEndpointFile's refusal to open anything but a regular file.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MAX_FILE_BYTES, parseEndpointFile, readEndpointFile } from './fs-file.ts';

const show = (text: string): string => {
  try {
    return parseEndpointFile(text).map((e) => `${e.host}:${e.port}*${e.weight}`).join(',');
  } catch (e) {
    return `error: ${(e as Error).message}`;
  }
};

describe('parseEndpointFile', () => {
  const table: [string, string, string | RegExp][] = [
    ['lines, comments, blanks', '# web\n127.0.0.1 8080\n\n  127.1 8081 # inline\n', '127.0.0.1:8080*1,127.0.0.1:8081*1'],
    ['weights (linkerd FsTest)', '127.0.0.1 8080\n127.0.0.1 8081 * 0.23\n', '127.0.0.1:8080*1,127.0.0.1:8081*0.23'],
    ['weight with exponent, as Java toDouble', '127.0.0.1 1 * 1e3', '127.0.0.1:1*1000'],
    ['IPv6', '::1 9000 *2', '::1:9000*2'],
    ['empty file', '', ''],
    ['port 0', '127.0.0.1 0\n', /line 1: expected "<ip> <port 1-65535>/],
    ['port too big', '127.0.0.1 80\n127.0.0.1 70000', /line 2:/],
    ['host name', 'example.com 80', /line 1:/],
    ['weight 1e308', '127.0.0.1 1 * 1e308\n127.0.0.1 2 * 1e308', /line 1: the weight 1e308 is over the limit of 1000000/],
    ['a weight of 310 digits', `127.0.0.1 1 * ${'9'.repeat(310)}`, /over the limit/],
    ['garbage', 'not an address', /line 1:/],
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
