// Decodes a client config's `healthCheck` (issue 16): a TCP connect, or a payload sent and a
// pattern expected in the answer, with its timing. Problems carry their key paths, as in
// schema.ts; timeoutMs may not exceed intervalMs (one check in flight per endpoint).
import { Cursor, describe, type Fields, integer, object, opt, posInt, string } from './decode.ts';
import type { HealthCheckConfig, HealthCheckTiming } from './types.ts';

const TIMING_KEYS = ['intervalMs', 'timeoutMs', 'unhealthyThreshold', 'healthyThreshold'] as const;

export const HEALTH_CHECK_DEFAULTS: HealthCheckTiming = {
  intervalMs: 5000,
  timeoutMs: 2000,
  unhealthyThreshold: 3,
  healthyThreshold: 2,
};

/** A payload: any string, at most 64 KiB (a check is a probe, not a transfer). */
const payload = (c: Cursor, v: unknown): string | undefined => {
  const s = string(c, v);
  if (s === undefined) return undefined;
  return Buffer.byteLength(s) > 65536 ? c.fail('at most 65536 bytes') : s;
};

function timing(c: Cursor, f: Fields): HealthCheckTiming {
  const d = HEALTH_CHECK_DEFAULTS;
  const intervalMs = opt(c, f, 'intervalMs', (cc, v) => integer(cc, v, 10, 3_600_000), d.intervalMs);
  // Without an explicit timeout, a short interval bounds the default one.
  const timeoutMs = opt(c, f, 'timeoutMs', posInt, Math.min(d.timeoutMs, intervalMs));
  if (timeoutMs > intervalMs && f['timeoutMs'] != null) {
    c.key('timeoutMs').fail(`must be at most intervalMs (${intervalMs}): one check per endpoint is in flight at a time`);
  }
  return {
    intervalMs,
    timeoutMs,
    unhealthyThreshold: opt(c, f, 'unhealthyThreshold', (cc, v) => integer(cc, v, 1, 100), d.unhealthyThreshold),
    healthyThreshold: opt(c, f, 'healthyThreshold', (cc, v) => integer(cc, v, 1, 100), d.healthyThreshold),
  };
}

export function healthCheck(c: Cursor, v: unknown): HealthCheckConfig | undefined {
  const kind = typeof v === 'object' && v !== null ? (v as Fields)['kind'] : undefined;
  switch (kind) {
    case 'connect': {
      const f = object(c, v, ['kind', ...TIMING_KEYS]);
      return f && { kind, ...timing(c, f) };
    }
    case 'send-expect': {
      const f = object(c, v, ['kind', 'send', 'expect', ...TIMING_KEYS]);
      if (!f) return undefined;
      const send = opt(c, f, 'send', payload, '');
      const expect = f['expect'] == null ? c.key('expect').fail('missing required key') : payload(c.key('expect'), f['expect']);
      if (expect === '') c.key('expect').fail('expected a non-empty string (the bytes a healthy answer contains)');
      const t = timing(c, f);
      return expect ? { kind, send, expect, ...t } : undefined;
    }
    default:
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return c.fail(`expected a map, got ${describe(v)}`);
      return c.key('kind').fail(`expected one of: connect, send-expect; got ${describe(kind)}`);
  }
}
