// The one gate every admin mutation (POST /shutdown, /abort, and any later one) goes through:
// no cross-site browser request, and the bearer token when one is set. The token comes from
// LINKERD_TCP_ADMIN_TOKEN or the file admin.tokenFile, is kept only as its SHA-256 digest,
// and is compared in constant time (timingSafeEqual on digests of equal length).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AdminConfig } from '../config/types.ts';
import { LinkerdTcpError } from '../errors.ts';
import { readRegularFile } from '../regular-file.ts';

export const TOKEN_ENV = 'LINKERD_TCP_ADMIN_TOKEN';
/** Shorter tokens are accepted but warned about. */
export const MIN_TOKEN_CHARS = 16;
/** A token file is one word: anything bigger is not one. */
const TOKEN_FILE_MAX_BYTES = 64 * 1024;
const REALM = 'Bearer realm="linkerd-tcp admin"';

export interface AdminToken {
  readonly digest: Buffer;
  /** Where it came from, for logs: the env variable's name or `admin.tokenFile`. */
  readonly source: string;
  readonly chars: number;
  toJSON(): string;
}

const sha256 = (s: string | Buffer): Buffer => createHash('sha256').update(s).digest();

/**
 * The token from `source`. One that a client cannot send (whitespace or control characters
 * inside: `Authorization: Bearer` carries a single word) is a start error, not a token that
 * never matches.
 */
export function adminToken(secret: string, source: string): AdminToken {
  if (/[\s\x00-\x1f\x7f]/.test(secret)) {
    throw new LinkerdTcpError('CONFIG_INVALID', `${source}: the admin token has whitespace or control characters inside; a client sends it as one word after "Authorization: Bearer"`);
  }
  return { digest: sha256(secret), source, chars: secret.length, toJSON: () => '[redacted]' };
}

/**
 * The configured token, if any: the environment variable or admin.tokenFile (its content,
 * surrounding whitespace and the final newline trimmed). Both set, an unreadable or empty
 * file, an empty variable, or whitespace inside the token are start errors naming where.
 */
export function readAdminToken(config: AdminConfig, env: Readonly<Record<string, string | undefined>>): AdminToken | undefined {
  const fromEnv = env[TOKEN_ENV];
  const file = config.tokenFile;
  if (fromEnv !== undefined && file !== undefined) {
    throw new LinkerdTcpError('CONFIG_INVALID', `admin.tokenFile: both it (${file}) and ${TOKEN_ENV} are set; use one`);
  }
  if (fromEnv !== undefined) {
    if (fromEnv.trim() === '') throw new LinkerdTcpError('CONFIG_INVALID', `${TOKEN_ENV} is set but empty`);
    return adminToken(fromEnv.trim(), TOKEN_ENV);
  }
  if (file === undefined) return undefined;
  let text: string;
  try {
    text = readRegularFile(file, TOKEN_FILE_MAX_BYTES).text;
  } catch (e) {
    throw new LinkerdTcpError('CONFIG_UNREADABLE', `admin.tokenFile: cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  if (text.trim() === '') throw new LinkerdTcpError('CONFIG_INVALID', `admin.tokenFile: ${file} is empty`);
  return adminToken(text.trim(), 'admin.tokenFile');
}

/** Whether `authorization` carries `Bearer <the token>`; constant time in the token's content. */
export function bearerMatches(authorization: string | undefined, token: AdminToken): boolean {
  const m = /^Bearer +(\S+) *$/i.exec(authorization ?? '');
  // Hash even when absent, so a missing header costs the same as a wrong one.
  const given = sha256(m?.[1] ?? '');
  return timingSafeEqual(given, token.digest) && m !== null;
}

export interface Refusal {
  readonly status: number;
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
  /** For the log line. */
  readonly why: string;
}

/**
 * A browser page on another site must not be able to POST /shutdown (a plain form POST
 * needs no CORS preflight). Browsers send Origin / Sec-Fetch-Site on POST; curl does not.
 */
export function crossSite(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return true;
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== req.headers.host?.toLowerCase();
  } catch {
    return true;
  }
}

/** Why a mutation request must be refused, or undefined when it may proceed (body still to read). */
export function refuseMutation(req: IncomingMessage, token: AdminToken | undefined): Refusal | undefined {
  if (crossSite(req)) return { status: 403, body: 'forbidden: cross-site request', headers: {}, why: 'cross-site' };
  if (!token) return undefined;
  const auth = req.headers.authorization;
  if (bearerMatches(auth, token)) return undefined;
  return auth === undefined
    ? { status: 401, body: 'unauthorized: this admin server needs a bearer token', headers: { 'WWW-Authenticate': REALM }, why: 'no token' }
    : { status: 401, body: 'unauthorized: wrong token', headers: { 'WWW-Authenticate': `${REALM}, error="invalid_token"` }, why: 'wrong token' };
}
