import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseInetAton } from './inet.ts';

describe('parseInetAton', () => {
  const table: [string, string | null][] = [
    ['127.0.0.1', '127.0.0.1'],
    ['127.1', '127.0.0.1'],
    ['10.1.2', '10.1.0.2'],
    ['0x7f.1', '127.0.0.1'],
    ['2130706433', '127.0.0.1'],
    ['256.1.1.1', null],
    ['1.2.3.4.5', null],
    ['localhost', null],
    ['', null],
    ['1..2', null],
  ];
  for (const [input, want] of table) it(`${JSON.stringify(input)} → ${want}`, () => assert.equal(parseInetAton(input), want));
});
