// The naming data types, with no behaviour: paths, dtab prefixes and entries, name trees.
// Every other naming module (parser, printing, lookup, binding) imports these and nothing
// imports back, so naming/ has no import cycle (parser.ts needs the types, the printers
// and dtab lookup need the parser, and the types need neither).

/** A name: a sequence of labels (`/svc/web` is ['svc', 'web']). */
export type Path = readonly string[];

/** A `*` prefix element: matches any one label. */
export const WILDCARD: unique symbol = Symbol('*');
export type Prefix = readonly (string | typeof WILDCARD)[];

export type NameTree<T> =
  | { readonly kind: 'leaf'; readonly value: T }
  | { readonly kind: 'alt'; readonly trees: readonly NameTree<T>[] }
  | { readonly kind: 'union'; readonly branches: readonly Weighted<T>[] }
  | { readonly kind: 'fail' }
  | { readonly kind: 'neg' }
  | { readonly kind: 'empty' };

export interface Weighted<T> {
  readonly weight: number;
  readonly tree: NameTree<T>;
}

export const NEG: NameTree<never> = { kind: 'neg' };
export const FAIL: NameTree<never> = { kind: 'fail' };
export const EMPTY: NameTree<never> = { kind: 'empty' };

/** One dtab rule: names starting with `prefix` rewrite to `dst` (plus the rest of the name). */
export interface Dentry {
  readonly prefix: Prefix;
  readonly dst: NameTree<Path>;
}
export type Dtab = readonly Dentry[];
