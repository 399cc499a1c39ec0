// decodeAddr over namerd's Addr shapes (reference §1.1) and decodeBoundTree over its bound
// trees (§1.5): weights normalised, every bad field named by its place, port 0 and
// overflowing weights refused (so the last good set stays).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Resolution } from '../naming/resolution.ts';
import { showNameTree } from '../naming/name-tree.ts';
import { decodeAddr, decodeBoundTree } from './namerd-decode.ts';

const show = (r: Resolution | undefined): string =>
  r === undefined ? 'pending' : r.kind === 'bound' ? r.endpoints.map((e) => `${e.host}:${e.port}*${e.weight}`).join(',') || 'none' : r.kind === 'failed' ? `failed: ${r.reason}` : r.kind;

describe('decodeAddr', () => {
  const table: [string, unknown, string | RegExp][] = [
    ['a bound answer', JSON.parse('{"type":"bound","addrs":[{"ip":"127.0.0.1","port":1,"meta":{}}],"meta":{}}'), '127.0.0.1:1*1'],
    ['weights normalised', { type: 'bound', addrs: [{ ip: '127.0.0.1', port: 1, meta: { endpoint_addr_weight: 3 } }, { ip: '::1', port: 2, meta: {} }], meta: {} }, '127.0.0.1:1*0.75,::1:2*0.25'],
    ['no addrs', { type: 'bound', addrs: [], meta: {} }, 'none'],
    ['neg (linkerd-tcp #90)', { type: 'neg' }, 'neg'],
    ['failed with its cause', { type: 'failed', cause: 'boom' }, 'failed: namerd: boom'],
    ['a 200 KB cause is cut to 512 characters', { type: 'failed', cause: 'x'.repeat(200_000) }, `failed: namerd: ${'x'.repeat(512)}… (199488 bytes more)`],
    ['pending is nothing to act on', { type: 'pending' }, 'pending'],
    ['not an object', [1], /expected a JSON object/],
    ['unknown type', { type: 'weird' }, /unexpected type "weird"/],
    ['a 1 MB type is cut', { type: 'w'.repeat(1 << 20) }, /unexpected type "w{99}… \(1048478 bytes more\)$/],
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

describe('decodeBoundTree', () => {
  const leaf = (id: string, port: number) => ({ type: 'leaf', bound: { addr: { type: 'bound', addrs: [{ ip: '127.0.0.1', port, meta: {} }], meta: {} }, id, path: '/' } });
  const show = (v: unknown): string => {
    const d = decodeBoundTree(v);
    if (d.kind === 'failed') return `failed: ${d.reason}`;
    return showNameTree(d.tree, (l) => `${l.id}@${l.addr?.kind === 'bound' ? l.addr.endpoints.map((e) => e.port).join('+') : (l.addr?.kind ?? 'pending')}`);
  };
  const table: [string, unknown, string | RegExp][] = [
    ['a leaf (reference §1.5)', JSON.parse('{"type":"leaf","bound":{"addr":{"type":"bound","addrs":[{"ip":"127.0.0.1","port":1,"meta":{}}],"meta":{}},"id":"/#/io.l5d.namer/foo","path":"/"}}'), '/#/io.l5d.namer/foo@1'],
    ['a weighted union', { type: 'union', union: [{ weight: 3.0, tree: leaf('/#/a', 1) }, { weight: 1.0, tree: leaf('/#/b', 2) }] }, '3.00*/#/a@1 & /#/b@2'],
    ['alt, neg, fail, empty', { type: 'alt', alt: [{ type: 'neg' }, { type: 'empty' }, { type: 'fail' }] }, '~ | $ | !'],
    ['a leaf without addr is pending', { type: 'leaf', bound: { id: '/#/a', path: '/' } }, '/#/a@pending'],
    ['a failed addr stays a failed leaf', { type: 'leaf', bound: { id: '/#/a', addr: { type: 'failed', cause: 'x' } } }, '/#/a@failed'],
    ['weight over the bound', { type: 'union', union: [{ weight: 1e308, tree: leaf('/#/a', 1) }, { weight: 1e308, tree: leaf('/#/b', 2) }] }, /tree\.union\[0\]\.weight is over the limit of 1000000/],
    ['weight missing', { type: 'union', union: [{ tree: leaf('/#/a', 1) }] }, /tree\.union\[0\]\.weight is not a number/],
    ['an id that is not a path', { type: 'leaf', bound: { id: 'a', addr: { type: 'neg' } } }, /tree\.bound\.id is not a path/],
    ['port 0 inside a leaf', { type: 'union', union: [{ weight: 1, tree: leaf('/#/a', 0) }] }, /tree\.union\[0\]\.tree\.bound\.addr: .*port is not a port/],
    ['unknown type', { type: 'delegate' }, /tree\.type "delegate" is not one of/],
    ['a 1 MB type is cut', { type: 'alt', alt: [{ type: 'd'.repeat(1 << 20) }] }, /^failed: unexpected namerd bind response: tree\.alt\[0\]\.type "d{99}… \(1048478 bytes more\) is not one of/],
    ['too deep', Array.from({ length: 150 }).reduce<unknown>((t) => ({ type: 'alt', alt: [t] }), { type: 'neg' }), /nested over 100 levels/],
  ];
  for (const [name, input, want] of table) {
    it(name, () => {
      const got = show(input);
      if (typeof want === 'string') assert.equal(got, want);
      else assert.match(got, want);
    });
  }
});
