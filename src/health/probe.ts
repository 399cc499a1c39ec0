// One health check of one endpoint: a TCP connect, or a connect, a payload sent and the
// answer searched for the expected bytes, all within timeoutMs. Plain TCP (no TLS), one
// socket, destroyed when the result is known. Never throws; every outcome is a result.
import { connect } from 'node:net';
import type { HealthCheckConfig } from '../config/types.ts';

/** Bounded set: these are the `result` label of l5d:healthcheck:checks. */
export type ProbeResult =
  | 'ok'
  | 'timeout' // no connect, or no answer at all, within timeoutMs
  | 'refused'
  | 'closed' // the backend closed before answering
  | 'mismatch' // it answered, but not with the expected bytes (by timeout, close, or 64 KiB)
  | 'error'; // any other socket error (reset, unreachable)

export const PROBE_RESULTS: readonly ProbeResult[] = ['ok', 'timeout', 'refused', 'closed', 'mismatch', 'error'];

/** An answer this long that still lacks the expected bytes is a mismatch. */
const MAX_ANSWER_BYTES = 64 * 1024;

export interface ProbeOutcome {
  readonly result: ProbeResult;
  /** A short reason for the logs (an errno code, or what arrived instead), never the payload at length. */
  readonly detail: string | undefined;
}

export function probe(host: string, port: number, check: HealthCheckConfig): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const expect = check.kind === 'send-expect' ? Buffer.from(check.expect) : undefined;
    let got: Buffer = Buffer.alloc(0);
    let connected = false;
    let settled = false;
    const s = connect({ host, port });
    const end = (result: ProbeResult, detail?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ result, detail });
    };
    const answered = (): string => `answered ${got.length} bytes: ${JSON.stringify(got.subarray(0, 32).toString('latin1'))}`;
    const timer = setTimeout(() => {
      if (!connected) end('timeout', `no connect in ${check.timeoutMs}ms`);
      else if (got.length === 0) end('timeout', `no answer in ${check.timeoutMs}ms`);
      else end('mismatch', answered());
    }, check.timeoutMs);
    s.on('error', (e: NodeJS.ErrnoException) => end(e.code === 'ECONNREFUSED' ? 'refused' : 'error', e.code ?? e.message));
    s.on('connect', () => {
      connected = true;
      if (!expect) return end('ok');
      if (check.kind === 'send-expect' && check.send !== '') s.write(check.send);
    });
    s.on('data', (d: Buffer) => {
      got = got.length === 0 ? d : Buffer.concat([got, d]);
      if (expect && got.includes(expect)) end('ok');
      else if (got.length >= MAX_ANSWER_BYTES) end('mismatch', answered());
    });
    s.on('end', () => end(got.length === 0 ? 'closed' : 'mismatch', got.length === 0 ? 'closed without answering' : answered()));
    s.on('close', () => end('closed', 'closed'));
  });
}
