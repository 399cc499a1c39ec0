// A small decoding toolkit: walks `unknown` input, collects every problem with its key
// path (`routers[0].servers[1].port`), and never throws. schema.ts builds on it.

export interface Problem {
  readonly path: string;
  readonly message: string;
}

/** Where we are in the input, plus the shared problem list. */
export class Cursor {
  readonly path: string;
  readonly problems: Problem[];
  constructor(path = '', problems: Problem[] = []) {
    this.path = path;
    this.problems = problems;
  }
  key(k: string): Cursor {
    return new Cursor(this.path ? `${this.path}.${k}` : k, this.problems);
  }
  index(i: number): Cursor {
    return new Cursor(`${this.path}[${i}]`, this.problems);
  }
  fail(message: string): undefined {
    this.problems.push({ path: this.path || '(top level)', message });
    return undefined;
  }
}

/** How a value is shown in a message: strings quoted, objects named by their type. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'string') return JSON.stringify(v);
  return String(v);
}

export type Fields = Readonly<Record<string, unknown>>;

/** Narrows to a map and reports keys not in `known` (linkerd-tcp rejects unknown keys). */
export function object(c: Cursor, v: unknown, known: readonly string[]): Fields | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    return c.fail(`expected a map, got ${describe(v)}`);
  }
  for (const k of Object.keys(v)) {
    if (!known.includes(k)) c.key(k).fail(`unknown key (expected one of: ${known.join(', ')})`);
  }
  return v as Fields;
}

export function list(c: Cursor, v: unknown): readonly unknown[] | undefined {
  if (!Array.isArray(v)) return c.fail(`expected a list, got ${describe(v)}`);
  return v;
}

export function string(c: Cursor, v: unknown, opts: { nonEmpty?: boolean } = {}): string | undefined {
  if (typeof v !== 'string') return c.fail(`expected a string, got ${describe(v)}`);
  if (opts.nonEmpty && v.trim() === '') return c.fail('expected a non-empty string');
  return v;
}

export function integer(c: Cursor, v: unknown, min: number, max: number): number | undefined {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    const range = max >= Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `${min}–${max}`;
    return c.fail(`expected an integer ${range}, got ${describe(v)}`);
  }
  return v;
}

export function boolean(c: Cursor, v: unknown): boolean | undefined {
  if (typeof v !== 'boolean') return c.fail(`expected true or false, got ${describe(v)}`);
  return v;
}

/** Reads `fields[key]` with `decode` when present; `fallback` when absent or null. */
export function opt<T, D>(
  c: Cursor,
  fields: Fields,
  key: string,
  decode: (c: Cursor, v: unknown) => T | undefined,
  fallback: D,
): T | D {
  const v = fields[key];
  if (v === undefined || v === null) return fallback;
  return decode(c.key(key), v) ?? fallback;
}

/** Reads a required `fields[key]`; reports `missing required key` when absent. */
export function req<T>(
  c: Cursor,
  fields: Fields,
  key: string,
  decode: (c: Cursor, v: unknown) => T | undefined,
): T | undefined {
  const v = fields[key];
  if (v === undefined || v === null) return c.key(key).fail('missing required key');
  return decode(c.key(key), v);
}

/** A list whose elements are decoded one by one (problems at `key[i]`). */
export function listOf<T>(decode: (c: Cursor, v: unknown) => T | undefined) {
  return (c: Cursor, v: unknown): T[] | undefined => {
    const items = list(c, v);
    if (!items) return undefined;
    const out: T[] = [];
    items.forEach((item, i) => {
      const d = decode(c.index(i), item);
      if (d !== undefined) out.push(d);
    });
    return out;
  };
}

export const port = (c: Cursor, v: unknown): number | undefined => integer(c, v, 0, 65535);
export const posInt = (c: Cursor, v: unknown): number | undefined => integer(c, v, 1, Number.MAX_SAFE_INTEGER);
export const nonNegInt = (c: Cursor, v: unknown): number | undefined => integer(c, v, 0, Number.MAX_SAFE_INTEGER);
export const nonEmptyString = (c: Cursor, v: unknown): string | undefined => string(c, v, { nonEmpty: true });
