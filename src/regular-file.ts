// The one way the proxy reads a file it is told about (the config, TLS keys, certificates
// and trust files, the admin token file, io.l5d.fs endpoint files): regular files only, so
// a FIFO, socket or device (a FIFO blocks open() and read(), /dev/zero never ends) is
// refused before it is opened; opened non-blocking all the same, and checked again on the
// opened descriptor (the path may be swapped between the two checks); read up to a size cap.
// Synchronous on purpose: a regular file of at most `maxBytes` costs microseconds, and
// callers (config decoding, TLS contexts) need its text before they go on.
import { closeSync, constants, fstatSync, openSync, readSync, type Stats, statSync } from 'node:fs';

/** The default cap: far above any config, key, certificate bundle or endpoint list. */
export const MAX_FILE_BYTES = 4 << 20;

/** Why a file was refused: `code` is the errno name (ENOENT, EACCES, …) or one of ours. */
export class FileRefused extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** What a stat says the path is, in words, for a refusal. */
function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isDirectory()) return 'a directory';
  return 'not a regular file';
}

/** An errno failure: its message is the code (ENOENT, EACCES, …), as Node's own errors name it. */
function errno(e: unknown): FileRefused {
  const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
  return new FileRefused(code, code);
}

export interface RegularFile {
  readonly text: string;
  /** The opened descriptor's stat (what was read). */
  readonly stat: Stats;
}

/**
 * Reads `file` (symlinks followed) as UTF-8; throws FileRefused whose message says why in
 * a few words (the caller adds the key path and the file name): an errno code (ENOENT,
 * EACCES, …), not a regular file (and what it is), over `maxBytes`, or grown while read.
 */
export function readRegularFile(file: string, maxBytes: number = MAX_FILE_BYTES): RegularFile {
  let st: Stats;
  try {
    st = statSync(file);
  } catch (e) {
    throw errno(e);
  }
  if (!st.isFile()) throw new FileRefused('ENOTREG', `${kindOf(st)}, not a regular file: never opened`);
  if (st.size > maxBytes) throw new FileRefused('EFBIG', `${st.size} bytes, over the ${maxBytes}-byte limit`);
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    throw errno(e);
  }
  try {
    const fst = fstatSync(fd);
    if (!fst.isFile()) throw new FileRefused('ENOTREG', `${kindOf(fst)}, not a regular file: never read`);
    // One byte more than the file holds: reading that byte means it grew under us.
    const buf = Buffer.allocUnsafe(Math.min(fst.size, maxBytes) + 1);
    let n = 0;
    for (let got = -1; got !== 0 && n < buf.length; n += got) {
      try {
        got = readSync(fd, buf, n, buf.length - n, n);
      } catch (e) {
        throw errno(e);
      }
    }
    if (n === buf.length) throw new FileRefused('EFBIG', n > maxBytes ? `over the ${maxBytes}-byte limit` : 'it grew while being read');
    return { text: buf.toString('utf8', 0, n), stat: fst };
  } finally {
    closeSync(fd);
  }
}

/**
 * Standard input's text (`linkerd-tcp -`), up to `maxBytes`: a pipe or a terminal is read
 * to its end (at start, nothing else runs yet); a device like /dev/zero is cut at the cap.
 */
export function readStdin(maxBytes: number = MAX_FILE_BYTES): string {
  const chunks: Buffer[] = [];
  let total = 0;
  const buf = Buffer.allocUnsafe(64 * 1024);
  for (;;) {
    let got: number;
    try {
      got = readSync(0, buf, 0, buf.length, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') {
        // A non-blocking pipe with nothing yet: wait a little without spinning.
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
        continue;
      }
      if (code === 'EOF') break;
      throw errno(e);
    }
    if (got === 0) break;
    total += got;
    if (total > maxBytes) throw new FileRefused('EFBIG', `standard input is over the ${maxBytes}-byte limit`);
    chunks.push(Buffer.from(buf.subarray(0, got)));
  }
  return Buffer.concat(chunks).toString('utf8');
}
