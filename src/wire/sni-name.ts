// Turns the SNI name a client sent into a path label it may choose: lowercased, one
// trailing dot dropped, and only a DNS host name of LDH labels (letters, digits, hyphens;
// 1..63 chars, no hyphen at either end; 253 chars in all). Nothing else passes, so no
// `/`, `*`, `#`, `=>`, `;`, spaces, `\x..` escapes or other dtab syntax reaches a path.

export type SniNameResult = { readonly kind: 'ok'; readonly name: string } | { readonly kind: 'error'; readonly detail: string };

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function validateSniName(raw: string): SniNameResult {
  let name = raw.toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name.length === 0) return { kind: 'error', detail: 'empty name' };
  if (name.length > 253) return { kind: 'error', detail: `name of ${name.length} chars exceeds 253` };
  const labels = name.split('.');
  for (const l of labels) if (!LABEL.test(l)) return { kind: 'error', detail: `label ${JSON.stringify(l.slice(0, 70))} is not a DNS label` };
  // An all-numeric last label makes it an IP literal, which SNI must not carry (RFC 6066 §3).
  if (/^\d+$/.test(labels[labels.length - 1]!)) return { kind: 'error', detail: 'an IP address is not a host name' };
  return { kind: 'ok', name };
}

/** The `{sni}` placeholder of a server's dstName. */
export const SNI_PLACEHOLDER = '{sni}';

export function hasSniPlaceholder(dstName: string): boolean {
  return dstName.includes(SNI_PLACEHOLDER);
}

/** The dstName with every `{sni}` replaced by an already-validated name. */
export function expandSni(dstName: string, name: string): string {
  return dstName.split(SNI_PLACEHOLDER).join(name);
}

/** Escapes a client-chosen string for a log line or terminal: printable ASCII kept, the rest `\xHH`, cut at 300. */
export function printable(raw: string): string {
  let out = '';
  for (let i = 0; i < raw.length && i < 300; i++) {
    const c = raw.charCodeAt(i);
    out += c >= 0x20 && c < 0x7f && c !== 0x5c ? raw[i] : '\\x' + (c & 0xff).toString(16).padStart(2, '0');
  }
  return raw.length > 300 ? out + '…' : out;
}
