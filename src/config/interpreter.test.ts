// A router's interpreter block (issue 21): a bad namerd block is reported as itself only.
// It used to fall back to the default interpreter on failing to decode, which then added a
// false `dtab: missing: a router with the default interpreter needs a dtab`.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeConfig } from './schema.ts';

/** The problems of a one-router config whose interpreter block is `interpreter` (no dtab). */
function problems(interpreter: unknown): string[] {
  const r = decodeConfig({ routers: [{ label: 'r', interpreter, servers: [{ port: 1, dstName: '/svc/a' }] }] });
  return 'problems' in r ? r.problems.map((p) => `${p.path}: ${p.message}`) : [];
}

const namerd = { kind: 'io.l5d.namerd.http', baseUrl: 'http://127.0.0.1:4180', namespace: 'ns', periodSecs: 5 };

describe('config: the interpreter block', () => {
  const cases: [what: string, block: unknown, want: RegExp][] = [
    ['periodSecs: 0', { ...namerd, periodSecs: 0 }, /^routers\[0\]\.interpreter\.periodSecs: expected an integer ≥ 1, got 0$/],
    ['namespace missing', { ...namerd, namespace: undefined }, /^routers\[0\]\.interpreter\.namespace: missing required key$/],
    ['baseUrl not a URL', { ...namerd, baseUrl: 'nope' }, /^routers\[0\]\.interpreter\.baseUrl: /],
    ['an unknown key', { ...namerd, bogus: 1 }, /^routers\[0\]\.interpreter\.bogus: unknown key/],
    ['an unknown kind', { kind: 'io.l5d.nope' }, /^routers\[0\]\.interpreter\.kind: expected one of: default, io\.l5d\.namerd\.http/],
    ['not a map', 'namerd', /^routers\[0\]\.interpreter\.kind: expected one of/],
  ];
  for (const [what, block, want] of cases) {
    it(`${what}: that problem only, no dtab problem`, () => {
      const got = problems(block);
      assert.equal(got.length, 1, got.join('\n'));
      assert.match(got[0]!, want);
    });
  }

  it('a good namerd block needs no dtab; no block, or kind default, still does', () => {
    assert.deepEqual(problems(namerd), []);
    for (const block of [undefined, null, { kind: 'default' }]) {
      assert.deepEqual(problems(block), ['routers[0].dtab: missing: a router with the default interpreter needs a dtab (e.g. "/svc => /$/inet/127.0.0.1/8080;")']);
    }
  });
});
