// Recursive-descent parser for paths, name trees and dtabs, over finagle's grammar
// (NameTreeParsers @ 21.4.0): `#` comments where whitespace may occur, `\xHH` escapes,
// `*` only as a whole prefix element, weights `[0-9.]+`. Errors name the character:
// `'/' expected but 'i' found at '[i]nvalid'`.
import { LinkerdTcpError } from '../errors.ts';
import { MAX_WEIGHT } from './resolution.ts';
import { type Dentry, type NameTree, type Path, type Prefix, WILDCARD } from './types.ts';

const isShowable = (c: string): boolean => /[0-9A-Za-z_:.#$%-]/.test(c);
const isHex = (c: string): boolean => /[0-9A-Fa-f]/.test(c);
const isDigit = (c: string): boolean => c >= '0' && c <= '9';
const isWs = (c: string): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v';

export class Parser {
  private readonly s: string;
  private i = 0;
  constructor(s: string) {
    this.s = s;
  }

  /** The current character, '' at the end (a method, so that comparisons don't narrow it). */
  private c(): string {
    return this.s[this.i] ?? '';
  }

  private illegal(expected: string): never {
    const found = this.i >= this.s.length ? 'end of input' : `'${this.c()}'`;
    const at = this.s.slice(0, this.i) + '[' + this.s.slice(this.i, this.i + 1) + ']' + this.s.slice(this.i + 1);
    throw new LinkerdTcpError('DTAB_PARSE', `${expected} expected but ${found} found at '${at}'`);
  }

  private ws(): void {
    for (;;) {
      if (isWs(this.c())) this.i++;
      else if (this.c() === '#') {
        while (this.i < this.s.length && this.c() !== '\n') this.i++;
      } else return;
    }
  }

  private eat(ch: string): void {
    if (this.c() !== ch) this.illegal(`'${ch}'`);
    this.i++;
  }

  end(): void {
    this.ws();
    if (this.i < this.s.length) this.illegal('end of input');
  }

  private label(): string {
    let out = '';
    while (this.i < this.s.length) {
      const c = this.c();
      if (c === '\\') {
        this.i++;
        this.eat('x');
        const h1 = this.c();
        if (!isHex(h1)) this.illegal('hex char');
        this.i++;
        const h2 = this.c();
        if (!isHex(h2)) this.illegal('hex char');
        this.i++;
        out += String.fromCharCode(parseInt(h1 + h2, 16));
      } else if (isShowable(c)) {
        out += c;
        this.i++;
      } else break;
    }
    if (out === '') this.illegal('label char');
    return out;
  }

  path(): Path {
    this.ws();
    this.eat('/');
    const labels: string[] = [];
    if (!(isShowable(this.c()) || this.c() === '\\')) return labels;
    labels.push(this.label());
    while (this.c() === '/') {
      this.i++;
      labels.push(this.label());
    }
    return labels;
  }

  private prefix(): Prefix {
    this.ws();
    this.eat('/');
    const out: (string | typeof WILDCARD)[] = [];
    const elem = (): void => {
      if (this.c() === '*') {
        this.i++;
        if (isShowable(this.c()) || this.c() === '\\') this.illegal("'/'");
        out.push(WILDCARD);
      } else out.push(this.label());
    };
    if (!(isShowable(this.c()) || this.c() === '\\' || this.c() === '*')) return out;
    elem();
    while (this.c() === '/') {
      this.i++;
      elem();
    }
    return out;
  }

  tree(): NameTree<Path> {
    const first = this.tree1();
    const alts = [first];
    for (;;) {
      this.ws();
      if (this.c() !== '|') break;
      this.i++;
      alts.push(this.tree1());
    }
    return alts.length === 1 ? first : { kind: 'alt', trees: alts };
  }

  private tree1(): NameTree<Path> {
    const branches = [this.weighted()];
    for (;;) {
      this.ws();
      if (this.c() !== '&') break;
      this.i++;
      branches.push(this.weighted());
    }
    if (branches.length === 1 && branches[0]!.weight === 1) return branches[0]!.tree;
    return { kind: 'union', branches: branches.map((b) => ({ weight: b.weight, tree: b.tree })) };
  }

  private weighted(): { weight: number; tree: NameTree<Path>; explicit: boolean } {
    this.ws();
    if (isDigit(this.c()) || this.c() === '.') {
      const start = this.i;
      let dots = 0;
      while (isDigit(this.c()) || this.c() === '.') {
        if (this.c() === '.' && ++dots > 1) this.illegal("'*'"); // number with two dots
        this.i++;
      }
      const text = this.s.slice(start, this.i);
      if (text === '.') {
        this.i = start + 1;
        this.illegal('number');
      }
      // linkerd-tcp: finagle takes any double; a huge one (`1000…0 * /a`) would make the
      // union's total Infinity and every share 0, so weights are bounded.
      const weight = Number(text);
      if (!(weight <= MAX_WEIGHT)) {
        this.i = start;
        this.illegal(`a weight of at most ${MAX_WEIGHT}`);
      }
      this.ws();
      this.eat('*');
      return { weight, tree: this.simple(), explicit: true };
    }
    return { weight: 1, tree: this.simple(), explicit: false };
  }

  private simple(): NameTree<Path> {
    this.ws();
    switch (this.c()) {
      case '(': {
        this.i++;
        const t = this.tree();
        this.ws();
        this.eat(')');
        return t;
      }
      case '!':
        this.i++;
        return { kind: 'fail' };
      case '~':
        this.i++;
        return { kind: 'neg' };
      case '$':
        this.i++;
        return { kind: 'empty' };
      case '/':
        return { kind: 'leaf', value: this.path() };
      default:
        return this.illegal("'/'");
    }
  }

  dentry(): Dentry {
    const prefix = this.prefix();
    this.ws();
    this.eat('=');
    this.eat('>');
    return { prefix, dst: this.tree() };
  }

  dtab(): Dentry[] {
    const out: Dentry[] = [];
    this.ws();
    if (this.i < this.s.length && this.c() !== ';') out.push(this.dentry());
    for (;;) {
      this.ws();
      if (this.c() !== ';') break;
      this.i++;
      this.ws();
      if (this.i < this.s.length && this.c() !== ';') out.push(this.dentry());
    }
    return out;
  }
}

/** Parses `/a/b` (whitespace around is allowed; `/` is the empty path). */
export function parsePath(s: string): Path {
  const p = new Parser(s);
  const path = p.path();
  p.end();
  return path;
}

export function parseNameTree(s: string): NameTree<Path> {
  const p = new Parser(s);
  const t = p.tree();
  p.end();
  return t;
}

export function parseDtab(s: string): Dentry[] {
  const p = new Parser(s);
  const d = p.dtab();
  p.end();
  return d;
}

export function parseDentry(s: string): Dentry {
  const p = new Parser(s);
  const d = p.dentry();
  p.end();
  return d;
}
