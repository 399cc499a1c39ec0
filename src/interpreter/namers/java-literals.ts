// How the JVM reads the tokens of an io.l5d.fs endpoint line, so that a file linkerd 1
// accepts means the same here and one it refuses is refused: String.trim, Integer.parseInt,
// Double.parseDouble and InetAddress's IPv4 literal form (IPAddressUtil.textToNumericFormatV4,
// decimal only, unlike inet_aton). Pure. Java also reads non-ASCII decimal digits (`٨٠`) in
// an int and an IPv4 literal; these read ASCII digits only (no real file has the others).

/** Java's `String.trim`: strips every char <= U+0020 (all ASCII controls, not only whitespace) at both ends. */
export function javaTrim(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && s.charCodeAt(a) <= 0x20) a++;
  while (b > a && s.charCodeAt(b - 1) <= 0x20) b--;
  return s.slice(a, b);
}

/** Java's `\s` (ASCII whitespace only; JavaScript's `\s` also matches U+00A0 and other spaces). */
export const JAVA_WHITESPACE = /[ \t\n\x0B\f\r]+/;

/** Java's `Integer.parseInt`: an optional sign and decimal digits (leading zeros are decimal); undefined otherwise. */
export function javaParseInt(s: string): number | undefined {
  if (!/^[+-]?[0-9]+$/.test(s)) return undefined;
  const n = Number(s);
  return n >= -(2 ** 31) && n < 2 ** 31 ? n : undefined;
}

/**
 * Java's `Double.parseDouble`: trims like `String.trim`, then a sign, `NaN`, `Infinity`, a
 * decimal (`5`, `5.`, `.5`, `1e3`) or a hexadecimal (`0x1.8p1`) floating literal, the last
 * two with an optional `f`/`F`/`d`/`D` suffix; undefined when Java throws.
 */
export function javaParseDouble(raw: string): number | undefined {
  const s = javaTrim(raw);
  const special = /^([+-]?)(NaN|Infinity)$/.exec(s);
  if (special) return special[2] === 'NaN' ? NaN : special[1] === '-' ? -Infinity : Infinity;
  const dec = /^([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)[fFdD]?$/.exec(s);
  if (dec) return Number(dec[1]);
  const hex = /^([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?[pP]([+-]?[0-9]+)[fFdD]?$/.exec(s);
  if (!hex || (hex[2] === '' && !hex[3])) return undefined;
  let mantissa = 0;
  for (const d of hex[2]!) mantissa = mantissa * 16 + parseInt(d, 16);
  let scale = 1 / 16;
  for (const d of hex[3] ?? '') {
    mantissa += parseInt(d, 16) * scale;
    scale /= 16;
  }
  const exp = Math.max(-2000, Math.min(2000, Number(hex[4])));
  return (hex[1] === '-' ? -1 : 1) * mantissa * 2 ** exp;
}

/**
 * The IPv4 address Java reads from a literal (1 to 4 dot-separated decimal parts, the last
 * filling the remaining bytes: `127.1`, `10.1.2`, `2130706433`; at most 15 chars), as a
 * dotted quad; undefined when it is not one (Java then asks the resolver).
 */
export function javaIPv4Literal(s: string): string | undefined {
  if (s.length === 0 || s.length > 15 || !/^[0-9]+(?:\.[0-9]+){0,3}$/.test(s)) return undefined;
  const parts = s.split('.').map(Number);
  const last = parts.pop()!;
  if (parts.some((p) => p > 255) || last >= 2 ** (8 * (4 - parts.length))) return undefined;
  let v = 0;
  for (const p of parts) v = v * 256 + p;
  v = v * 2 ** (8 * (4 - parts.length)) + last;
  return [Math.floor(v / 2 ** 24) % 256, Math.floor(v / 2 ** 16) % 256, Math.floor(v / 256) % 256, v % 256].join('.');
}
