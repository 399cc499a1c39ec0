// Builds PROXY protocol headers to send to a backend before the first byte: v1 text
// (TCP4/TCP6, UNKNOWN when the addresses cannot be told) and v2 binary (PROXY over
// TCP4/TCP6 with ALPN and AUTHORITY TLVs where known, LOCAL otherwise). Pure.
import { ipv4Bytes, ipv6Bytes, unmapV4 } from './ip-bytes.ts';
import { PP2_TYPE_ALPN, PP2_TYPE_AUTHORITY, V2_SIGNATURE } from './proxy-protocol.ts';

export interface Endpoints {
  readonly source: { readonly address: string; readonly port: number };
  readonly destination: { readonly address: string; readonly port: number };
}

/** Both addresses in one family: v4 when both are (or map to) v4, else v6 (a v4 one mapped). */
function family(e: Endpoints): { v6: boolean; src: Uint8Array; dst: Uint8Array; srcText: string; dstText: string } | undefined {
  const s = unmapV4(e.source.address), d = unmapV4(e.destination.address);
  const s4 = ipv4Bytes(s), d4 = ipv4Bytes(d);
  if (s4 && d4) return { v6: false, src: s4, dst: d4, srcText: s, dstText: d };
  const s6 = s4 ? ipv6Bytes(`::ffff:${s}`) : ipv6Bytes(s);
  const d6 = d4 ? ipv6Bytes(`::ffff:${d}`) : ipv6Bytes(d);
  if (!s6 || !d6) return undefined;
  return { v6: true, src: s6, dst: d6, srcText: s4 ? `::ffff:${s}` : s, dstText: d4 ? `::ffff:${d}` : d };
}

const validPort = (p: number): boolean => Number.isInteger(p) && p >= 0 && p <= 65535;

/** `PROXY TCP4 src dst sport dport\r\n`, or `PROXY UNKNOWN\r\n` when the endpoints are not both IP. */
export function buildProxyV1(e: Endpoints | undefined): Buffer {
  const f = e && validPort(e.source.port) && validPort(e.destination.port) ? family(e) : undefined;
  if (!e || !f) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  return Buffer.from(`PROXY ${f.v6 ? 'TCP6' : 'TCP4'} ${f.srcText} ${f.dstText} ${e.source.port} ${e.destination.port}\r\n`, 'latin1');
}

export interface V2Tlvs {
  readonly alpn?: string | undefined;
  readonly authority?: string | undefined;
}

/** A v2 PROXY header over TCP, or LOCAL (no addresses) when the endpoints are not both IP. */
export function buildProxyV2(e: Endpoints | undefined, tlvs: V2Tlvs = {}): Buffer {
  const f = e && validPort(e.source.port) && validPort(e.destination.port) ? family(e) : undefined;
  const tlvBytes: Buffer[] = [];
  const tlv = (type: number, value: string | undefined): void => {
    if (value === undefined || value === '') return;
    const v = Buffer.from(value, 'latin1');
    if (v.length > 0xffff) return;
    const h = Buffer.alloc(3);
    h[0] = type;
    h.writeUInt16BE(v.length, 1);
    tlvBytes.push(h, v);
  };
  tlv(PP2_TYPE_ALPN, tlvs.alpn);
  tlv(PP2_TYPE_AUTHORITY, tlvs.authority);
  const addrLen = !f ? 0 : f.v6 ? 36 : 12;
  const tlvLen = tlvBytes.reduce((n, b) => n + b.length, 0);
  const head = Buffer.alloc(16 + addrLen);
  head.set(V2_SIGNATURE, 0);
  head[12] = f ? 0x21 : 0x20; // version 2, PROXY or LOCAL
  head[13] = !f ? 0x00 : f.v6 ? 0x21 : 0x11; // UNSPEC, TCP over IPv6 or IPv4
  head.writeUInt16BE(addrLen + tlvLen, 14);
  if (f && e) {
    const n = f.src.length;
    head.set(f.src, 16);
    head.set(f.dst, 16 + n);
    head.writeUInt16BE(e.source.port, 16 + 2 * n);
    head.writeUInt16BE(e.destination.port, 18 + 2 * n);
  }
  return Buffer.concat([head, ...tlvBytes]);
}
