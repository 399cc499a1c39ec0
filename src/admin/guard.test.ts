import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LinkerdTcpError } from '../errors.ts';
import { adminToken, bearerMatches, readAdminToken, TOKEN_ENV } from './guard.ts';

const base = { ip: '127.0.0.1', port: 0, metricsIntervalSecs: 60, graceSecs: 10 };

describe('admin token', () => {
  it('matches only "Bearer <token>"', () => {
    const t = adminToken('s3cret-s3cret-s3cret', 'test');
    assert.ok(bearerMatches('Bearer s3cret-s3cret-s3cret', t));
    assert.ok(bearerMatches('bearer s3cret-s3cret-s3cret', t));
    for (const h of [undefined, '', 'Bearer', 'Bearer s3cret', 'Bearer s3cret-s3cret-s3cretX', 'Basic s3cret-s3cret-s3cret', 's3cret-s3cret-s3cret']) {
      assert.ok(!bearerMatches(h, t), String(h));
    }
  });
  it('never serialises the secret', () => {
    const t = adminToken('s3cret-s3cret-s3cret', 'test');
    assert.ok(!JSON.stringify({ t }).includes('s3cret'));
  });
  it('comes from the environment or admin.tokenFile, trimmed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'l5d-token-'));
    const file = join(dir, 'token');
    writeFileSync(file, 'from-a-file-0123456789\n');
    assert.equal(readAdminToken(base, {}), undefined);
    assert.ok(bearerMatches('Bearer from-a-file-0123456789', readAdminToken({ ...base, tokenFile: file }, {})!));
    assert.ok(bearerMatches('Bearer from-env', readAdminToken(base, { [TOKEN_ENV]: ' from-env ' })!));
  });
  it('refuses an unreadable or empty file, an empty variable, both set, or a token no client can send', () => {
    const dir = mkdtempSync(join(tmpdir(), 'l5d-token-'));
    const empty = join(dir, 'empty');
    writeFileSync(empty, '\n');
    const twoLines = join(dir, 'two-lines');
    writeFileSync(twoLines, 'first-line-0123456789\nsecond-line-0123456789\n');
    const cases: [Parameters<typeof readAdminToken>[0], Record<string, string>, RegExp][] = [
      [{ ...base, tokenFile: join(dir, 'missing') }, {}, /^admin\.tokenFile: cannot read .*missing: ENOENT$/],
      [{ ...base, tokenFile: empty }, {}, /^admin\.tokenFile: .*empty is empty$/],
      [base, { [TOKEN_ENV]: '  ' }, /LINKERD_TCP_ADMIN_TOKEN is set but empty/],
      [{ ...base, tokenFile: empty }, { [TOKEN_ENV]: 'x' }, /admin\.tokenFile: both/],
      [base, { [TOKEN_ENV]: 'two words-0123456789' }, /^LINKERD_TCP_ADMIN_TOKEN: the admin token has whitespace/],
      [base, { [TOKEN_ENV]: 'tab\there-0123456789' }, /^LINKERD_TCP_ADMIN_TOKEN: the admin token has whitespace/],
      [{ ...base, tokenFile: twoLines }, {}, /^admin\.tokenFile: the admin token has whitespace/],
    ];
    for (const [config, env, want] of cases) {
      assert.throws(() => readAdminToken(config, env), (e: unknown) => e instanceof LinkerdTcpError && want.test(e.message));
    }
  });
});
