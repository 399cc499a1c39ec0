// decodeAddr over namerd's Addr shapes (reference §1.1): weights normalised, every bad field
// named, port 0 and overflowing weights refused (so the last good set stays).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Resolution } from '../naming/resolution.ts';
import { decodeAddr } from './namerd-decode.ts';

const show = (r: Resolution | undefined): string =>
  r === undefined ? 'pending' : r.kind === 'bound' ? r.endpoints.map((e) => `${e.host}:${e.port}*${e.weight}`).join(',') || 'none' : r.kind === 'failed' ? `failed: ${r.reason}` : r.kind;

describe('decodeAddr', () => {
  const table: [string, unknown, string | RegExp][] = [
    ['a bound answer', JSON.parse('{"type":"bound","addrs":[{"ip":"127.0.0.1","port":1,"meta":{}}],"meta":{}}'), '127.0.0.1:1*1'],
    ['weights normalised', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: 1, meta: { endpoint_addr_weight: 3 } }, { ip: '::1', port: 2, meta: {} }], meta: {} }, '127.0.0.1:1*0.75,::1:2*0.25'],
    ['no addrs', { type: 'bound', addrs: [], meta: {} }, 'none'],
    ['neg (linkerd-tcp #90)', { type: 'neg' }, 'neg'],
    ['failed with its cause', { type: 'failed', cause: 'boom' }, 'failed: namerd: boom'],
    ['pending is nothing to act on', { type: 'pending' }, 'pending'],
    ['not an object', [1], /expected a JSON object/],
    ['unknown type', { type: 'weird' }, /unexpected type "weird"/],
    ['addrs missing', { type: 'bound' }, /bound without an addrs list/],
    ['not an IP', { type: 'bound', addrs: [{ ip: 'example.com', port: 1 }] }, /addrs\[0\]\.ip is not an IP/],
    ['port 0', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: 80 }, { ip: '127.0.0.1', port: 0 }] }, /addrs\[1\]\.port is not a port \(1-65535\)/],
    ['port 65536', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: 65536 }] }, /addrs\[0\]\.port/],
    ['weight 1e308 twice', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: 1, meta: { endpoint_addr_weight: 1e308 } }, { ip: '127.0.0.1', port: 2, meta: { endpoint_addr_weight: 1e308 } }] }, /endpoint_addr_weight is over the limit of 1000000/],
    ['negative weight', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: 1, meta: { endpoint_addr_weight: -1 } }] }, /endpoint_addr_weight is negative/],
    ['string weight', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: 1, meta: { endpoint_addr_weight: '2' } }] }, /endpoint_addr_weight is not a number/],
  ];
  for (const [name, input, want] of table) {
    it(name, () => {
      const got = show(decodeAddr(input));
      if (typeof want === 'string') assert.equal(got, want);
      else assert.match(got, want);
    });
  }
});
