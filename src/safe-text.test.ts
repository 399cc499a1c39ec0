import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { boundText, escapeLines, escapeTerminal, MAX_SHOWN_CHARS, redactUrl } from './safe-text.ts';

describe('escapeTerminal', () => {
  const table: [string, string, string][] = [
    ['plain text is untouched', 'web.example:443 /svc/web', 'web.example:443 /svc/web'],
    ['OSC retitle and SGR colour', 'x\x1b]0;OWNED\x07\x1b[31m.example', 'x\\x1b]0;OWNED\\x07\\x1b[31m.example'],
    ['NUL, newline, CR, tab', 'a\0b\nc\rd\te', 'a\\x00b\\nc\\rd\\te'],
    ['DEL and C1 (CSI U+009B, NEL U+0085)', 'a\x7fb\u009b31mc\u0085', 'a\\x7fb\\x9b31mc\\x85'],
    ['bidi overrides and isolates', 'evil\u202Etxt.exe \u2066x\u2069 \u200E\u200F\u061C', 'evil\\u202etxt.exe \\u2066x\\u2069 \\u200e\\u200f\\u061c'],
    ['line separators', 'a\u2028b\u2029c', 'a\\u2028b\\u2029c'],
    ['other Unicode stays', 'café → ✓ 名前', 'café → ✓ 名前'],
  ];
  for (const [name, input, want] of table) it(name, () => assert.equal(escapeTerminal(input), want));
  it('is stable across calls (a global regex keeps no state between them)', () => {
    for (let i = 0; i < 3; i++) assert.equal(escapeTerminal('\x1b'), '\\x1b');
  });
  it('escapeLines keeps the line breaks between lines', () => {
    assert.equal(escapeLines('one\x1b[2J\ntwo\u202e'), 'one\\x1b[2J\ntwo\\u202e');
  });
});

describe('redactUrl', () => {
  const table: [string, string][] = [
    ['http://user:secret@namerd:4180', 'http://***@namerd:4180'],
    ['https://tok@namerd.example/api', 'https://***@namerd.example/api'],
    ['http://us@er:p@ss@namerd:4180/x', 'http://***@namerd:4180/x'],
    ['http://namerd:4180', 'http://namerd:4180'],
    ['http://namerd:4180/path?q=a@b', 'http://namerd:4180/path?q=a@b'],
    ['"ftp://u:p@host" and http://a:b@c', '"ftp://***@host" and http://***@c'],
  ];
  for (const [input, want] of table) it(input, () => assert.equal(redactUrl(input), want));
});

describe('boundText', () => {
  const table: [string, string, number, string][] = [
    ['short text is untouched', 'namerd: boom', 20, 'namerd: boom'],
    ['exactly the bound is untouched', 'abcde', 5, 'abcde'],
    ['longer text is cut with a count of the rest', 'abcdefghij', 4, 'abcd… (6 bytes more)'],
    ['the count is in UTF-8 bytes', 'ab' + 'é'.repeat(3), 2, 'ab… (6 bytes more)'],
    ['a surrogate pair is not split', 'a😀bc', 2, 'a… (6 bytes more)'],
  ];
  for (const [name, input, max, want] of table) it(name, () => assert.equal(boundText(input, max), want));
  it('a 200 KB namerd cause shrinks to the default bound plus its marker', () => {
    const got = boundText('x'.repeat(200_000));
    assert.equal(got, `${'x'.repeat(MAX_SHOWN_CHARS)}… (${200_000 - MAX_SHOWN_CHARS} bytes more)`);
    assert.ok(got.length < MAX_SHOWN_CHARS + 40);
  });
});
