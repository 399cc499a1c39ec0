// SNI names become path labels only as lowercase LDH host names: a table of good names,
// hostile ones (path and dtab syntax, escapes, IP literals, overlong) and the expansion.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { expandSni, printable, validateSniName } from './sni-name.ts';

const GOOD: [string, string][] = [
  ['db.example.com', 'db.example.com'],
  ['DB.Example.COM', 'db.example.com'],
  ['db.example.com.', 'db.example.com'],
  ['localhost', 'localhost'],
  ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
  ['a-b.c1', 'a-b.c1'],
  [`${'a'.repeat(63)}.com`, `${'a'.repeat(63)}.com`],
  [Array(4).fill('a'.repeat(61)).join('.') + '.b', Array(4).fill('a'.repeat(61)).join('.') + '.b'], // 251 chars
];
const BAD = [
  '', '.', 'a..b', '/svc/other', 'a/b', '../x', '*.example.com', 'a b', 'a;b', 'a=>b', '#a', '$', 'a\\x2fb', 'a|b', 'a&b',
  '-a.com', 'a-.com', 'a_b.com', 'é.com', 'a\u0000b', '10.0.0.1', '1.2.3.4.', `${'a'.repeat(64)}.com`,
  Array(5).fill('a'.repeat(50)).join('.') + '.abcd', // 255 chars
];

it('valid names are lowercased and lose one trailing dot', () => {
  for (const [raw, want] of GOOD) assert.deepEqual(validateSniName(raw), { kind: 'ok', name: want }, raw);
});
it('anything but an LDH host name is refused', () => {
  for (const raw of BAD) assert.equal(validateSniName(raw).kind, 'error', JSON.stringify(raw));
});
it('expansion replaces every placeholder', () => {
  assert.equal(expandSni('/svc/sni/{sni}', 'db.example.com'), '/svc/sni/db.example.com');
  assert.equal(expandSni('/tls/{sni}/{sni}', 'a'), '/tls/a/a');
});
it('client-chosen text is escaped for logs', () => {
  assert.equal(printable('a\u001b[31mb\\'), 'a\\x1b[31mb\\x5c');
  assert.equal(printable('x'.repeat(400)).length, 301);
});
