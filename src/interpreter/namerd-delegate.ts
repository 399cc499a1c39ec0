// The delegator for a router whose names come from namerd: namerd holds the namespace's dtab
// and the namers, so the answer is namerd's own GET /api/1/delegate/<ns>?path=…&dtab=…
// (reference §1.6), with the router's dtab and the operator's extra entries as the local
// dtab (appended by namerd: they take precedence). One request, bounded in time and size;
// namerd's JSON is parsed (as unknown) and passed on, its errors with their status.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { type Dtab, showDtab } from '../naming/dtab.ts';
import { type Path, showPath } from '../naming/path.ts';
import { boundText, redactUrl } from '../safe-text.ts';
import type { DelegateAnswer } from './interpreter.ts';
import { MAX_BODY_BYTES } from './namerd-feed.ts';

export function namerdDelegate(opts: { baseUrl: string; namespace: string; dtab: string }, path: Path, extra: Dtab, waitMs: number): Promise<DelegateAnswer> {
  const url = new URL(`${opts.baseUrl}/api/1/delegate/${encodeURIComponent(opts.namespace)}`);
  url.searchParams.set('path', showPath(path));
  const local = [opts.dtab, showDtab(extra)].filter((d) => d !== '').join(';');
  if (local) url.searchParams.set('dtab', local);
  const where = redactUrl(opts.baseUrl);
  return new Promise((done) => {
    let settled = false;
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, { headers: { accept: 'application/json' }, agent: false });
    const finish = (a: DelegateAnswer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      done(a);
    };
    const timer = setTimeout(() => finish({ status: 504, message: `namerd (${where}) did not answer the delegation within ${waitMs}ms` }), waitMs);
    req.on('error', (e: NodeJS.ErrnoException) => finish({ status: 502, message: `namerd (${where}) delegate request failed: ${e.code ?? e.message}` }));
    req.on('response', (res: IncomingMessage) => {
      res.on('error', (e) => finish({ status: 502, message: `namerd (${where}) delegate response failed: ${e.message}` }));
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY_BYTES) finish({ status: 502, message: `namerd (${where}) delegate answer over ${MAX_BODY_BYTES} bytes` });
        else chunks.push(c);
      });
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) {
          // namerd's own errors (400 Invalid path/dtab, 501 cannot show delegations, 503 timed out) pass through.
          const status = res.statusCode !== undefined && res.statusCode >= 400 && res.statusCode <= 599 ? res.statusCode : 502;
          finish({ status, message: `namerd (${where}) answered HTTP ${res.statusCode}: ${boundText(text.trim(), 500)}` });
          return;
        }
        try {
          const tree: unknown = JSON.parse(text);
          finish({ status: 200, tree });
        } catch {
          finish({ status: 502, message: `namerd (${where}) answered something that is not JSON: ${JSON.stringify(boundText(text.trim(), 200))}` });
        }
      });
    });
    req.end();
  });
}
