// A bounds-checked cursor over a byte buffer for the wire parsers: every read past the end
// or past a declared length throws WireError, which the parsers catch and return as a
// result. Pure: no I/O, no allocation beyond the slices asked for.

/** The only thing a wire reader throws; parsers turn it into `{ kind: 'error' }`. */
export class WireError extends Error {
  /** The failure cause a parser reports (`malformed`, `too_large`, ...). */
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'WireError';
    this.code = code;
  }
}

export class Reader {
  private readonly buf: Uint8Array;
  pos: number;
  readonly end: number;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  get left(): number {
    return this.end - this.pos;
  }

  private need(n: number, what: string): void {
    if (n > this.end - this.pos) throw new WireError('malformed', `${what}: ${n} bytes declared, ${this.end - this.pos} left`);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++]!;
  }

  u16(what: string): number {
    this.need(2, what);
    const v = (this.buf[this.pos]! << 8) | this.buf[this.pos + 1]!;
    this.pos += 2;
    return v;
  }

  u24(what: string): number {
    this.need(3, what);
    const v = (this.buf[this.pos]! << 16) | (this.buf[this.pos + 1]! << 8) | this.buf[this.pos + 2]!;
    this.pos += 3;
    return v;
  }

  bytes(n: number, what: string): Uint8Array {
    this.need(n, what);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  /** A sub-reader over the next `n` bytes (a length-prefixed vector); this one skips them. */
  sub(n: number, what: string): Reader {
    this.need(n, what);
    const r = new Reader(this.buf, this.pos, this.pos + n);
    this.pos += n;
    return r;
  }

  skip(n: number, what: string): void {
    this.need(n, what);
    this.pos += n;
  }
}

/** Bytes as text, one char per byte (names and ALPN ids are ASCII; anything else stays visible to validation). */
export function latin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!);
  return s;
}
