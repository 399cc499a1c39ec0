// IP address text ⇄ bytes for the PROXY protocol v2 address block (4 or 16 bytes,
// network order). Pure; accepts what node:net's isIP accepts for v4 and v6 (incl. `::`
// compression and a trailing dotted quad), returns undefined for anything else.

export function ipv4Bytes(s: string): Uint8Array | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = m[i + 1]!;
    const v = Number(part);
    if (v > 255 || (part.length > 1 && part[0] === '0')) return undefined;
    out[i] = v;
  }
  return out;
}

export function ipv6Bytes(s: string): Uint8Array | undefined {
  if (s.includes('%')) return undefined; // zone ids have no place on the wire
  let groups: string[];
  const dbl = s.indexOf('::');
  if (dbl !== s.lastIndexOf('::')) return undefined;
  const words = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const out = new Uint8Array(16);
  let tail: Uint8Array | undefined;
  const last = s.lastIndexOf(':');
  let body = s;
  if (s.slice(last + 1).includes('.')) {
    tail = ipv4Bytes(s.slice(last + 1));
    if (!tail) return undefined;
    body = s.slice(0, last + 1) + '0:0'; // the dotted quad stands for two words
  }
  if (dbl >= 0) {
    const [a, b] = body.split('::') as [string, string];
    const left = words(a), right = words(b);
    const fill = 8 - left.length - right.length;
    if (fill < 1) return undefined;
    groups = [...left, ...Array<string>(fill).fill('0'), ...right];
  } else groups = words(body);
  if (groups.length !== 8) return undefined;
  for (let i = 0; i < 8; i++) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(groups[i]!)) return undefined;
    const v = parseInt(groups[i]!, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  }
  if (tail) out.set(tail, 12);
  return out;
}

export function ipv4Text(b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

/** RFC 5952 text: lowercase, the longest run (≥2) of zero words compressed to `::`. */
export function ipv6Text(b: Uint8Array): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((b[2 * i]! << 8) | b[2 * i + 1]!);
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = (ws: number[]): string => ws.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(w);
  return `${hex(w.slice(0, best))}::${hex(w.slice(best + bestLen))}`;
}

/** `::ffff:a.b.c.d` → `a.b.c.d`; anything else unchanged (sockets report v4 peers this way on dual-stack listeners). */
export function unmapV4(addr: string): string {
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(addr) ? addr.slice(7) : addr;
}
