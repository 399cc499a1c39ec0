// Untrusted text made safe to show a person: terminal escaping (control characters C0, DEL
// and C1, bidi overrides, line separators), credential redaction in URLs, and a length bound
// for text a peer supplies (namerd causes, file lines), so it cannot grow logs or
// /api/state. A leaf every human-facing output uses (readable logs, --check, CLI errors,
// /api/state); JSON logs stay JSON-escaped by their encoder. Imports nothing.

/**
 * C0 (U+0000–U+001F), DEL and C1 (U+007F–U+009F), the Arabic letter mark, LRM/RLM, the line
 * and paragraph separators, bidi embeddings and overrides (U+202A–U+202E) and isolates
 * (U+2066–U+2069): what can move a terminal's cursor, retitle it, recolour it, or reorder
 * what the reader sees.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeOne(ch: string): string {
  const named = NAMED[ch];
  if (named) return named;
  const code = ch.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** `s` with every unsafe character written as a visible escape (`\x1b`, `\n`, `\u202e`). */
export function escapeTerminal(s: string): string {
  UNSAFE.lastIndex = 0;
  return UNSAFE.test(s) ? s.replace(UNSAFE, escapeOne) : s;
}

/** Each line of `text` escaped, the line breaks between them kept (a multi-line report). */
export function escapeLines(text: string): string {
  return text.split('\n').map(escapeTerminal).join('\n');
}

/**
 * A URL with its userinfo (`user:password@`) replaced by `***@`, for display and logs. Text
 * that is not a URL is returned with anything that looks like `scheme://userinfo@` redacted.
 */
export function redactUrl(s: string): string {
  return s.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/?#\s]*@/gi, '$1***@');
}

/**
 * How much of a peer's text (a namerd `failed` cause, a bad file line) a log line or
 * /api/state carries: enough to read the error, not enough for a 200 KB answer repeated
 * every poll to fill disks and the dashboard.
 */
export const MAX_SHOWN_CHARS = 512;

/**
 * `s` cut to at most `max` characters plus a marker saying how much was left out
 * (`… (204288 bytes more)`, UTF-8 bytes); `s` itself when it fits. Never splits a
 * surrogate pair.
 */
export function boundText(s: string, max: number = MAX_SHOWN_CHARS): string {
  if (s.length <= max) return s;
  const code = s.charCodeAt(max - 1);
  const end = code >= 0xd800 && code <= 0xdbff ? max - 1 : max; // a high surrogate stays with its pair
  const head = s.slice(0, end);
  return `${head}… (${Buffer.byteLength(s) - Buffer.byteLength(head)} bytes more)`;
}
