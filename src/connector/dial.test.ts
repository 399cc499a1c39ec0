// connectFailureCause: which connect errors count as refused (retried elsewhere, towards
// ejection), which as timeouts, and which as other.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { connectFailureCause } from './dial.ts';

it('maps connect errors to linkerd-tcp causes; unreachable and no-route are like refused', () => {
  const err = (code: string): NodeJS.ErrnoException => Object.assign(new Error(code), { code });
  const table: [NodeJS.ErrnoException | undefined, string][] = [
    [undefined, 'timeout'],
    [err('ETIMEDOUT'), 'timeout'],
    [err('ECONNREFUSED'), 'refused'],
    [err('ENETUNREACH'), 'refused'],
    [err('EHOSTUNREACH'), 'refused'],
    [err('ENETDOWN'), 'refused'],
    [err('EHOSTDOWN'), 'refused'],
    [err('ECONNRESET'), 'other'],
    [err('EPROTO'), 'other'],
  ];
  for (const [e, want] of table) assert.equal(connectFailureCause(e), want, e?.code ?? 'no error');
});
