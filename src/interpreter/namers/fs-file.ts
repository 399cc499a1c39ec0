// One io.l5d.fs endpoint file: reading it safely and parsing its lines. Reading never opens
// anything but a regular file (a FIFO would block the whole process in open() or read()),
// opens non-blocking, checks the opened fd again (the path may be swapped between the checks),
// and reads at most MAX_FILE_BYTES.
import { closeSync, constants, fstatSync, openSync, readSync, type Stats, statSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { badWeight, type WeightedAddr } from '../../naming/resolution.ts';
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
      throw new Error(`line ${i + 1}: expected "<ip> <port 1-65535> [* <weight>]", got ${JSON.stringify(raw.trim())}`);
    }
    const weight = m[3] === undefined ? 1 : Number(m[3]);
    const why = badWeight(weight);
    if (why !== undefined) throw new Error(`line ${i + 1}: the weight ${m[3]} ${why}`);
    out.push({ host, port, weight });
  });
  return out;
}

export type FileRead = { readonly kind: 'file'; readonly text: string; readonly stat: Stats } | { readonly kind: 'dir' };

/** What `file` is (following symlinks): a directory, or a regular file's text; throws (ENOENT, not regular, too big). */
export function readEndpointFile(file: string): FileRead {
  const st = statSync(file);
  if (st.isDirectory()) return { kind: 'dir' };
  if (!st.isFile()) throw new Error('not a regular file (a FIFO, socket or device is never opened)');
  if (st.size > MAX_FILE_BYTES) throw new Error(`file is ${st.size} bytes, over the ${MAX_FILE_BYTES}-byte limit`);
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    const fst = fstatSync(fd);
    if (!fst.isFile()) throw new Error('not a regular file (a FIFO, socket or device is never read)');
    // One byte more than the file holds: reading that byte means it grew under us.
    const buf = Buffer.allocUnsafe(Math.min(fst.size, MAX_FILE_BYTES) + 1);
    let n = 0;
    for (let got = -1; got !== 0 && n < buf.length; n += got) got = readSync(fd, buf, n, buf.length - n, n);
    if (n === buf.length) throw new Error(n > MAX_FILE_BYTES ? `file is over the ${MAX_FILE_BYTES}-byte limit` : 'file grew while being read');
    return { kind: 'file', text: buf.toString('utf8', 0, n), stat: fst };
  } finally {
    closeSync(fd);
  }
}
