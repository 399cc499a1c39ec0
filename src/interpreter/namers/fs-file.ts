// One io.l5d.fs endpoint file: reading it (through the proxy's one file reader, which never
// opens anything but a regular file and reads at most MAX_FILE_BYTES) and parsing its lines
// with linkerd's grammar (WatchingNamer.txtToAddr / txtToAddress in linkerd's namer/fs).
import { type Stats, statSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { badWeight } from '../../naming/resolution.ts';
import { readRegularFile } from '../../regular-file.ts';
import { boundText } from '../../safe-text.ts';
import { JAVA_WHITESPACE, javaIPv4Literal, javaParseDouble, javaParseInt, javaTrim } from './java-literals.ts';

export const MAX_FILE_BYTES = 1 << 20;

/** One line of an endpoint file: an IP literal, or a host name the system resolver turns into addresses. */
export interface FileEndpoint {
  readonly kind: 'ip' | 'name';
  /** The IP (v4 dotted quad, or v6 without brackets), or the name as written. */
  readonly host: string;
  readonly port: number;
  readonly weight: number;
}

/** Java regex `.` stops at these, so linkerd's `Commentless` pattern cannot match a comment holding one. */
const JAVA_LINE_TERMINATOR = /[\r\u0085\u2028\u2029]/;

/** What linkerd's `Address(host, port)` (`new InetSocketAddress`, `InetAddress.getByName`) takes as a literal; else a name. */
function hostOf(token: string): Pick<FileEndpoint, 'kind' | 'host'> {
  const v4 = javaIPv4Literal(token);
  if (v4 !== undefined) return { kind: 'ip', host: v4 };
  const v6 = token.startsWith('[') && token.endsWith(']') && token.length > 2 ? token.slice(1, -1) : token;
  if (isIPv6(v6)) return { kind: 'ip', host: v6 };
  return { kind: 'name', host: token };
}

/**
 * Parses an endpoint file as linkerd does; throws with the line number on the first bad line
 * (linkerd fails the whole file too). Lines split on `\n`; from the first `#` on is a comment;
 * the rest is trimmed as Java's `String.trim` does and skipped when empty; then exactly
 * `host port` or `host port * weight`, split on runs of whitespace (so `*` is a token of its
 * own: `… 80 *3` is refused). The port is 1–65535 as `Integer.parseInt` reads it (`+80`,
 * `080`), the weight any `Double.parseDouble` form (`0.5`, `1e3`, `2d`) within our bounds.
 */
export function parseEndpointFile(text: string): FileEndpoint[] {
  const out: FileEndpoint[] = [];
  text.split('\n').forEach((raw, i) => {
    const hash = raw.indexOf('#');
    // The line is quoted cut short: the error is logged and kept as the name's failure reason.
    const quoted = (): string => JSON.stringify(boundText(raw.trim(), 200));
    if (hash >= 0 && JAVA_LINE_TERMINATOR.test(raw.slice(hash))) {
      throw new Error(`line ${i + 1}: a carriage return or line separator inside a # comment, which linkerd cannot read either (Java's "." stops there), got ${quoted()}`);
    }
    const line = javaTrim(hash >= 0 ? raw.slice(0, hash) : raw);
    if (!line) return;
    const tokens = line.split(JAVA_WHITESPACE);
    const port = javaParseInt(tokens[1] ?? '');
    const weight = tokens.length === 4 && tokens[2] === '*' ? javaParseDouble(tokens[3]!) : tokens.length === 2 ? 1 : undefined;
    if (port === undefined || !(port >= 1 && port <= 65535) || weight === undefined) {
      throw new Error(`line ${i + 1}: expected "<host> <port 1-65535>" or "<host> <port> * <weight>", whitespace-separated, got ${quoted()}`);
    }
    const why = badWeight(weight);
    if (why !== undefined) throw new Error(`line ${i + 1}: the weight ${boundText(tokens[3]!, 40)} ${why}`);
    out.push({ ...hostOf(tokens[0]!), port, weight });
  });
  return out;
}

export type FileRead = { readonly kind: 'file'; readonly text: string; readonly stat: Stats } | { readonly kind: 'dir' };

/** What `file` is (following symlinks): a directory, or a regular file's text; throws (ENOENT, not regular, too big). */
export function readEndpointFile(file: string): FileRead {
  if (statSync(file).isDirectory()) return { kind: 'dir' };
  const { text, stat } = readRegularFile(file, MAX_FILE_BYTES);
  return { kind: 'file', text, stat };
}
