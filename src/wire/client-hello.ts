// Reads a TLS ClientHello from the bytes a client has sent so far, without I/O: reassembles
// the handshake message across TLS records (a hello split over several records or TCP
// segments), then decodes SNI, ALPN, supported_versions and notes ECH. Never throws: every
// outcome is a result, and `need-more` says how many more bytes are needed at least.
// Bounds: a handshake message of at most MAX_HELLO_BYTES, and at most MAX_INPUT_BYTES of
// records (headers included) to carry it, so a trickle of tiny records cannot grow a buffer.
import { latin1, Reader, WireError } from './reader.ts';

/** Largest ClientHello accepted (handshake body + its 4-byte header): one full TLS record. */
export const MAX_HELLO_BYTES = 16384 + 4;
/** Most bytes read (record headers included) to assemble one ClientHello. */
export const MAX_INPUT_BYTES = 2 * 16384 + 64;
const MAX_RECORD = 16384; // TLSPlaintext.length limit (RFC 8446 §5.1)

export type HelloFailure = 'not_tls' | 'malformed' | 'too_large';

export interface ClientHello {
  readonly kind: 'ok';
  /** The server_name host_name as sent (not yet validated), or undefined when absent. */
  readonly sni: string | undefined;
  readonly alpn: readonly string[];
  /** supported_versions (TLS 1.3 clients), else [legacy_version]. */
  readonly versions: readonly number[];
  /** An encrypted_client_hello extension was present (real or GREASE: the outer hello's SNI is what routes). */
  readonly ech: boolean;
  readonly extensions: readonly number[];
  /** Input bytes that carried the hello (records included). */
  readonly bytes: number;
}

export type HelloResult =
  | { readonly kind: 'need-more'; readonly needed: number }
  | ClientHello
  | { readonly kind: 'error'; readonly cause: HelloFailure; readonly detail: string };

export const EXT_SERVER_NAME = 0;
export const EXT_PADDING = 21;
export const EXT_ALPN = 16;
export const EXT_SUPPORTED_VERSIONS = 43;
export const EXT_ECH = 0xfe0d;

/** Parses the ClientHello at the start of `buf` (bytes received so far). */
export function parseClientHello(buf: Uint8Array): HelloResult {
  try {
    const got = reassemble(buf);
    if (got.kind !== 'ok') return got;
    return decodeHello(got.msg, got.bytes);
  } catch (e) {
    if (e instanceof WireError) return { kind: 'error', cause: e.code as HelloFailure, detail: e.message };
    throw e; // a bug of ours, not a hostile input: let the tests see it
  }
}

/** Concatenates handshake fragments from consecutive records until one whole message is there. */
function reassemble(buf: Uint8Array): { kind: 'ok'; msg: Uint8Array; bytes: number } | { kind: 'need-more'; needed: number } {
  const parts: Uint8Array[] = [];
  let have = 0, pos = 0, msgLen = -1;
  for (;;) {
    if (pos + 5 > buf.length) {
      // Decide "not TLS" from the first bytes, before waiting for a whole header.
      if (pos < buf.length) checkHeader(buf, pos, buf.length - pos);
      return { kind: 'need-more', needed: pos + 5 - buf.length };
    }
    checkHeader(buf, pos, 5);
    const len = (buf[pos + 3]! << 8) | buf[pos + 4]!;
    if (len === 0) throw new WireError('malformed', 'zero-length handshake record');
    if (len > MAX_RECORD) throw new WireError('malformed', `record of ${len} bytes exceeds ${MAX_RECORD}`);
    if (pos + 5 + len > MAX_INPUT_BYTES) throw new WireError('too_large', `ClientHello records exceed ${MAX_INPUT_BYTES} bytes`);
    const avail = Math.min(len, buf.length - pos - 5);
    parts.push(buf.subarray(pos + 5, pos + 5 + avail));
    have += avail;
    if (msgLen < 0 && have >= 4) {
      const head = concat(parts, 4);
      if (head[0] !== 1) throw new WireError('malformed', `first handshake message is type ${head[0]}, not ClientHello (1)`);
      msgLen = ((head[1]! << 16) | (head[2]! << 8) | head[3]!) + 4;
      if (msgLen > MAX_HELLO_BYTES) throw new WireError('too_large', `ClientHello of ${msgLen} bytes exceeds ${MAX_HELLO_BYTES}`);
    }
    if (msgLen >= 0 && have >= msgLen) return { kind: 'ok', msg: concat(parts, msgLen), bytes: pos + 5 + avail };
    if (avail < len) return { kind: 'need-more', needed: msgLen >= 0 ? Math.min(len - avail, msgLen - have) : len - avail };
    pos += 5 + len;
  }
}

/** Validates a record header (or as much of one as there is). */
function checkHeader(buf: Uint8Array, pos: number, n: number): void {
  if (buf[pos] !== 0x16) throw new WireError('not_tls', `first byte 0x${buf[pos]!.toString(16).padStart(2, '0')} is not a TLS handshake record (0x16)`);
  if (n >= 2 && buf[pos + 1] !== 3) throw new WireError('not_tls', `record version major ${buf[pos + 1]} is not 3`);
}

function concat(parts: readonly Uint8Array[], n: number): Uint8Array {
  if (parts[0]!.length >= n) return parts[0]!.subarray(0, n); // the common case: one record, no copy
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    if (o >= n) break;
    const take = Math.min(p.length, n - o);
    out.set(p.subarray(0, take), o);
    o += take;
  }
  return out;
}

function decodeHello(msg: Uint8Array, bytes: number): ClientHello {
  const r = new Reader(msg, 4);
  const legacyVersion = r.u16('legacy_version');
  r.skip(32, 'random');
  const sid = r.u8('session_id length');
  if (sid > 32) throw new WireError('malformed', `session_id of ${sid} bytes exceeds 32`);
  r.skip(sid, 'session_id');
  const suites = r.u16('cipher_suites length');
  if (suites < 2 || suites % 2) throw new WireError('malformed', `cipher_suites length ${suites} is not a positive even number`);
  r.skip(suites, 'cipher_suites');
  const comp = r.u8('compression_methods length');
  if (comp < 1) throw new WireError('malformed', 'no compression method');
  r.skip(comp, 'compression_methods');
  let sni: string | undefined, alpn: string[] = [], versions = [legacyVersion], ech = false;
  const types: number[] = [];
  if (r.left > 0) {
    const ext = r.sub(r.u16('extensions length'), 'extensions');
    if (r.left !== 0) throw new WireError('malformed', `${r.left} bytes after the extensions`);
    const seen = new Set<number>();
    while (ext.left > 0) {
      const type = ext.u16('extension type');
      const body = ext.sub(ext.u16('extension length'), `extension ${type}`);
      if (seen.has(type)) throw new WireError('malformed', `extension ${type} appears twice`);
      seen.add(type);
      types.push(type);
      if (type === EXT_SERVER_NAME) sni = serverName(body);
      else if (type === EXT_ALPN) alpn = alpnList(body);
      else if (type === EXT_SUPPORTED_VERSIONS) versions = supportedVersions(body);
      else if (type === EXT_ECH) ech = true;
    }
  }
  return { kind: 'ok', sni, alpn, versions, ech, extensions: types, bytes };
}

/** RFC 6066 §3: a list with at most one host_name (type 0); other name types are skipped. */
function serverName(body: Reader): string | undefined {
  const list = body.sub(body.u16('server_name_list length'), 'server_name_list');
  if (body.left !== 0) throw new WireError('malformed', 'bytes after server_name_list');
  if (list.left === 0) return undefined; // a server's empty acknowledgement; never from a client, read as no name
  let name: string | undefined;
  while (list.left > 0) {
    const type = list.u8('name_type');
    const len = list.u16('host_name length');
    if (len === 0) throw new WireError('malformed', 'zero-length server name');
    const bytes = list.bytes(len, 'host_name');
    if (type !== 0) continue;
    if (name !== undefined) throw new WireError('malformed', 'more than one host_name');
    name = latin1(bytes);
  }
  return name;
}

/** RFC 7301 §3.1: non-empty protocol names, each 1..255 bytes. */
function alpnList(body: Reader): string[] {
  const list = body.sub(body.u16('protocol_name_list length'), 'protocol_name_list');
  if (body.left !== 0 || list.left === 0) throw new WireError('malformed', 'bad ALPN protocol_name_list');
  const out: string[] = [];
  while (list.left > 0) {
    const len = list.u8('protocol name length');
    if (len === 0) throw new WireError('malformed', 'empty ALPN protocol name');
    out.push(latin1(list.bytes(len, 'protocol name')));
  }
  return out;
}

function supportedVersions(body: Reader): number[] {
  const len = body.u8('supported_versions length');
  if (len < 2 || len % 2 || body.left !== len) throw new WireError('malformed', 'bad supported_versions');
  const out: number[] = [];
  while (body.left > 0) out.push(body.u16('version'));
  return out;
}
