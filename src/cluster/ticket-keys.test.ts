import assert from 'node:assert/strict';
import { it } from 'node:test';
import { TICKET_KEY_BYTES, TicketKeys } from './ticket-keys.ts';

it('ticket keys: 48 bytes from the injected source, new ones at each rotation', () => {
  let n = 0;
  const t = new TicketKeys((len) => Buffer.alloc(len, ++n));
  assert.equal(t.current.length, TICKET_KEY_BYTES);
  assert.equal(t.current[0], 1);
  const next = t.rotate();
  assert.equal(next[0], 2);
  assert.equal(t.current, next);
  t.close();
});
