// One io.l5d.fs endpoint file: reading it (through the proxy's one file reader, which never
// opens anything but a regular file and reads at most MAX_FILE_BYTES) and parsing its lines.
import { type Stats, statSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { badWeight, type WeightedAddr } from '../../naming/resolution.ts';
import { readRegularFile } from '../../regular-file.ts';
import { boundText } from '../../safe-text.ts';
import { parseInetAton } from './inet.ts';

export const MAX_FILE_BYTES = 1 << 20;

/** Parses an endpoint file (`host port [* weight]` lines, `#` comments); throws with the line number on the first bad line. */
export function parseEndpointFile(text: string): WeightedAddr[] {
  const out: WeightedAddr[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) return;
    const m = /^(\S+)\s+(\d+)(?:\s*\*\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?))?$/.exec(line);
    const host = m ? (parseInetAton(m[1]!) ?? (isIPv6(m[1]!) ? m[1]! : null)) : null;
    const port = m ? Number(m[2]) : NaN;
    if (!m || host === null || !(port >= 1 && port <= 65535)) {
      // The line is quoted cut short: the error is logged and kept as the name's failure reason.
      throw new Error(`line ${i + 1}: expected "<ip> <port 1-65535> [* <weight>]", got ${JSON.stringify(boundText(raw.trim(), 200))}`);
    }
    const weight = m[3] === undefined ? 1 : Number(m[3]);
    const why = badWeight(weight);
    if (why !== undefined) throw new Error(`line ${i + 1}: the weight ${boundText(m[3]!, 40)} ${why}`);
    out.push({ host, port, weight });
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
