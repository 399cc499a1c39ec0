// Parses a PROXY protocol header (haproxy's proxy-protocol.txt, v1 text and v2 binary) from
// the bytes a peer has sent so far, without I/O. `accept` limits the versions; anything
// else at the start of the stream is an error (a PROXY-expecting listener must not guess).
// v2 TLVs are walked with bounds checks: ALPN (0x01) and AUTHORITY (0x02) are kept, the
// rest skipped. Never throws; `need-more` says how many more bytes are needed at least.
import { ipv4Bytes, ipv4Text, ipv6Bytes, ipv6Text } from './ip-bytes.ts';
import { latin1, Reader, WireError } from './reader.ts';

export const V2_SIGNATURE = Uint8Array.of(0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a);
const V1_PREFIX = 'PROXY ';
/** A v1 line is at most 107 bytes, CRLF included (spec §2.1). */
export const V1_MAX_BYTES = 107;
export const PP2_TYPE_ALPN = 0x01;
export const PP2_TYPE_AUTHORITY = 0x02;

export type ProxyAccept = 'v1' | 'v2' | 'any';
export type ProxyFailure = 'missing' | 'malformed' | 'version';

export type ProxyAddress =
  | { readonly kind: 'inet'; readonly address: string; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string };

export interface ProxyHeader {
  readonly kind: 'ok';
  readonly version: 1 | 2;
  /** `local`: the proxy's own connection (health check); addresses are to be ignored. */
  readonly command: 'proxy' | 'local';
  /** tcp4/tcp6/unix (stream), udp4/udp6/unix_dgram, or unknown (v1 UNKNOWN, v2 UNSPEC). */
  readonly family: 'tcp4' | 'tcp6' | 'udp4' | 'udp6' | 'unix' | 'unix_dgram' | 'unknown';
  readonly source: ProxyAddress | undefined;
  readonly destination: ProxyAddress | undefined;
  readonly alpn: string | undefined;
  readonly authority: string | undefined;
  /** Header bytes, to be dropped from the stream. */
  readonly length: number;
}

export type ProxyResult =
  | { readonly kind: 'need-more'; readonly needed: number }
  | ProxyHeader
  | { readonly kind: 'error'; readonly cause: ProxyFailure; readonly detail: string };

export function parseProxyHeader(buf: Uint8Array, accept: ProxyAccept = 'any'): ProxyResult {
  try {
    const n = Math.min(buf.length, V2_SIGNATURE.length);
    const isV2 = prefixOf(buf, V2_SIGNATURE, n);
    const isV1 = prefixOf(buf, V1_BYTES, Math.min(buf.length, V1_BYTES.length));
    if (!isV1 && !isV2) throw new WireError('missing', 'the stream does not start with a PROXY protocol header');
    if (buf.length < V1_BYTES.length && isV1 && isV2) return { kind: 'need-more', needed: V1_BYTES.length - buf.length };
    if (isV2 && buf.length < V2_SIGNATURE.length) return { kind: 'need-more', needed: V2_SIGNATURE.length - buf.length };
    if (isV2) {
      if (accept === 'v1') throw new WireError('version', 'PROXY v2 header where only v1 is accepted');
      return parseV2(buf);
    }
    if (accept === 'v2') throw new WireError('version', 'PROXY v1 header where only v2 is accepted');
    return parseV1(buf);
  } catch (e) {
    if (e instanceof WireError) return { kind: 'error', cause: e.code as ProxyFailure, detail: e.message };
    throw e;
  }
}

const V1_BYTES = Uint8Array.from(V1_PREFIX, (c) => c.charCodeAt(0));

function prefixOf(buf: Uint8Array, sig: Uint8Array, n: number): boolean {
  for (let i = 0; i < n; i++) if (buf[i] !== sig[i]) return false;
  return true;
}

function parseV1(buf: Uint8Array): ProxyResult {
  const lim = Math.min(buf.length, V1_MAX_BYTES - 1); // CR LF must end by byte 107
  let cr = -1;
  for (let i = 0; i < lim; i++) if (buf[i] === 0x0d || buf[i] === 0x0a) { cr = i; break; }
  if (cr < 0) {
    if (buf.length >= V1_MAX_BYTES - 1) throw new WireError('malformed', `PROXY v1 line longer than ${V1_MAX_BYTES} bytes`);
    return { kind: 'need-more', needed: 1 };
  }
  if (buf[cr] !== 0x0d) throw new WireError('malformed', 'PROXY v1 line ends without CR LF');
  if (cr + 1 >= buf.length) return { kind: 'need-more', needed: 1 };
  if (buf[cr + 1] !== 0x0a) throw new WireError('malformed', 'PROXY v1 line: CR not followed by LF');
  const line = latin1(buf.subarray(0, cr));
  const f = line.split(' ');
  const base = { kind: 'ok', version: 1, command: 'proxy', alpn: undefined, authority: undefined, length: cr + 2 } as const;
  if (f[1] === 'UNKNOWN') return { ...base, family: 'unknown', source: undefined, destination: undefined };
  if (f.length !== 6 || (f[1] !== 'TCP4' && f[1] !== 'TCP6')) throw new WireError('malformed', `bad PROXY v1 line ${JSON.stringify(line.slice(0, 60))}`);
  const v6 = f[1] === 'TCP6';
  const ip = (s: string): string => {
    const b = v6 ? ipv6BytesOf(s) : ipv4Of(s);
    if (b === undefined) throw new WireError('malformed', `bad ${f[1]} address ${JSON.stringify(s)}`);
    return b;
  };
  return {
    ...base, family: v6 ? 'tcp6' : 'tcp4',
    source: { kind: 'inet', address: ip(f[2]!), port: portOf(f[4]!) },
    destination: { kind: 'inet', address: ip(f[3]!), port: portOf(f[5]!) },
  };
}

function ipv4Of(s: string): string | undefined {
  const b = ipv4Bytes(s);
  return b && ipv4Text(b);
}
function ipv6BytesOf(s: string): string | undefined {
  const b = ipv6Bytes(s);
  return b && ipv6Text(b);
}

function portOf(s: string): number {
  if (!/^(0|[1-9]\d{0,4})$/.test(s) || Number(s) > 65535) throw new WireError('malformed', `bad port ${JSON.stringify(s.slice(0, 8))}`);
  return Number(s);
}

const FAMILIES = {
  0x00: 'unknown', 0x11: 'tcp4', 0x12: 'udp4', 0x21: 'tcp6', 0x22: 'udp6', 0x31: 'unix', 0x32: 'unix_dgram',
} as const;
const ADDR_LEN = { unknown: 0, tcp4: 12, udp4: 12, tcp6: 36, udp6: 36, unix: 216, unix_dgram: 216 } as const;

function parseV2(buf: Uint8Array): ProxyResult {
  if (buf.length < 16) return { kind: 'need-more', needed: 16 - buf.length };
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) throw new WireError('malformed', `PROXY v2 version nibble ${verCmd >> 4} is not 2`);
  const cmd = verCmd & 0x0f;
  if (cmd > 1) throw new WireError('malformed', `PROXY v2 command ${cmd} is neither LOCAL (0) nor PROXY (1)`);
  const family = FAMILIES[buf[13]! as keyof typeof FAMILIES];
  if (family === undefined) throw new WireError('malformed', `PROXY v2 address family 0x${buf[13]!.toString(16)}`);
  const len = (buf[14]! << 8) | buf[15]!;
  if (buf.length < 16 + len) return { kind: 'need-more', needed: 16 + len - buf.length };
  const r = new Reader(buf, 16, 16 + len);
  const need = ADDR_LEN[family];
  // LOCAL may carry any address block (or none); for PROXY it must fit the family.
  if (len < need && cmd === 1) throw new WireError('malformed', `PROXY v2 ${family} needs ${need} address bytes, header has ${len}`);
  let source: ProxyAddress | undefined, destination: ProxyAddress | undefined;
  if (len >= need && need > 0) {
    if (family === 'tcp4' || family === 'udp4') {
      const s = r.bytes(4, 'src'), d = r.bytes(4, 'dst');
      source = { kind: 'inet', address: ipv4Text(s), port: r.u16('src port') };
      destination = { kind: 'inet', address: ipv4Text(d), port: r.u16('dst port') };
    } else if (family === 'tcp6' || family === 'udp6') {
      const s = r.bytes(16, 'src'), d = r.bytes(16, 'dst');
      source = { kind: 'inet', address: ipv6Text(s), port: r.u16('src port') };
      destination = { kind: 'inet', address: ipv6Text(d), port: r.u16('dst port') };
    } else {
      source = { kind: 'unix', path: cString(r.bytes(108, 'src path')) };
      destination = { kind: 'unix', path: cString(r.bytes(108, 'dst path')) };
    }
  }
  let alpn: string | undefined, authority: string | undefined;
  // TLVs follow a known address block; after LOCAL or UNSPEC the rest is ignored (spec §2.2).
  if (cmd === 1 && need > 0) {
    while (r.left > 0) {
      const type = r.u8('TLV type');
      const value = r.bytes(r.u16('TLV length'), `TLV 0x${type.toString(16)}`);
      if (type === PP2_TYPE_ALPN) alpn = latin1(value);
      else if (type === PP2_TYPE_AUTHORITY) authority = latin1(value);
    }
  }
  const local = cmd === 0;
  return {
    kind: 'ok', version: 2, command: local ? 'local' : 'proxy', family,
    source: local ? undefined : source, destination: local ? undefined : destination,
    alpn, authority, length: 16 + len,
  };
}

function cString(b: Uint8Array): string {
  const z = b.indexOf(0);
  return latin1(z < 0 ? b : b.subarray(0, z));
}
