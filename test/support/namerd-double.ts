// A namerd HTTP API test double (namerd, a JVM program, cannot run here), built from the
// reference (§1): GET /api/1/resolve/<ns>?path=<name>[&dtab=…][&watch=true], and the bind +
// addr pair linkerd itself uses, /api/1/bind/<ns>?path=<name> (the bound tree, §1.5) and
// /api/1/addr/<ns>?path=<id> (one leaf's addresses, §1.3), answering exactly as namerd 1.7.x
// does — compact JSON plus "\n", `Content-Type: application/json` on resolve only, 200 for
// bound/neg/failed alike, chunked newline-delimited updates when watching (a bind stream does
// not repeat when only a leaf's addresses change), and a plain-text error line then EOF when
// a watched name fails.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Addr {
  readonly ip: string;
  readonly port: number;
  readonly weight?: number; // sent as meta.endpoint_addr_weight
}

export type Answer =
  | { readonly type: 'bound'; readonly addrs: readonly Addr[] }
  | { readonly type: 'neg' }
  | { readonly type: 'failed'; readonly cause: string }
  | { readonly type: 'status'; readonly status: number } // an HTTP error, empty body
  | { readonly type: 'garbage'; readonly body: string } // 200 with this body
  | { readonly type: 'hang' } // never answers (polls) / sends nothing (watches)
  | { readonly type: 'endless'; readonly chunkBytes: number; readonly everyMs: number } // 200, then a body that never ends (no newline)
  | { readonly type: 'error-line'; readonly message: string }; // watch: plain-text line then EOF

/** The answers that are not a value: what a broken request gets. */
export type ErrorAnswer = Extract<Answer, { type: 'status' | 'hang' | 'garbage' | 'error-line' | 'endless' }>;

/** A bound tree as namerd's /api/1/bind renders it; a leaf's addresses are those set with setAddr(id). */
export type Tree =
  | { readonly type: 'leaf'; readonly id: string }
  | { readonly type: 'union'; readonly union: readonly { readonly weight: number; readonly tree: Tree }[] }
  | { readonly type: 'alt'; readonly alt: readonly Tree[] }
  | { readonly type: 'neg' }
  | { readonly type: 'fail' }
  | { readonly type: 'empty' };

/** Jackson prints a double with a fraction: 3.0, 0.5. */
const double = (w: number): string => (Number.isInteger(w) ? w.toFixed(1) : String(w));

/** namerd's exact body for an Addr answer; `setMeta` is the address set's meta (e.g. the union weight of a bound leaf). */
export function body(a: Answer, setMeta = ''): string {
  switch (a.type) {
    case 'bound': {
      const addrs = a.addrs.map((x) => `{"ip":"${x.ip}","port":${x.port},"meta":{${x.weight === undefined ? '' : `"endpoint_addr_weight":${x.weight}`}}}`);
      return `{"type":"bound","addrs":[${addrs.join(',')}],"meta":{${setMeta}}}\n`;
    }
    case 'neg':
      return '{"type":"neg"}\n';
    case 'failed':
      return `{"type":"failed","cause":${JSON.stringify(a.cause)}}\n`;
    case 'garbage':
      return a.body;
    case 'error-line':
      return a.message + '\n';
    default:
      return '';
  }
}

/** namerd's exact /api/1/bind body for `t`, with each leaf's current addresses from `addrOf`. */
export function treeBody(t: Tree, addrOf: (id: string) => Answer): string {
  const render = (x: Tree, weight: number | undefined): string => {
    switch (x.type) {
      case 'leaf': {
        // A leaf's addr is an Addr (what a broken addr *request* gets is not): a failure renders as failed.
        const a = addrOf(x.id);
        const shown: Answer = a.type === 'error-line' ? { type: 'failed', cause: a.message } : a.type === 'bound' || a.type === 'neg' || a.type === 'failed' ? a : { type: 'neg' };
        const addr = body(shown, weight === undefined ? '' : `"namer_nametree_weight":${double(weight)}`).trimEnd();
        return `{"type":"leaf","bound":{"addr":${addr},"id":${JSON.stringify(x.id)},"path":"/"}}`;
      }
      case 'union':
        return `{"type":"union","union":[${x.union.map((b) => `{"weight":${double(b.weight)},"tree":${render(b.tree, b.weight)}}`).join(',')}]}`;
      case 'alt':
        return `{"type":"alt","alt":[${x.alt.map((y) => render(y, undefined)).join(',')}]}`;
      default:
        return `{"type":"${x.type}"}`;
    }
  };
  return render(t, undefined) + '\n';
}

export interface Recorded {
  readonly api: 'resolve' | 'bind' | 'addr';
  readonly namespace: string;
  readonly path: string | null;
  readonly dtab: string | null;
  readonly watch: boolean;
}

export class NamerdDouble {
  readonly requests: Recorded[] = [];
  private readonly answers = new Map<string, Answer>();
  private readonly trees = new Map<string, Tree | ErrorAnswer>();
  private readonly streams = new Map<string, Set<ServerResponse>>();
  private readonly server: Server;
  private readonly requestListeners = new Set<(r: Recorded) => void>();

  private constructor() {
    this.server = createServer((req, res) => this.handle(req, res));
  }

  /** Listens on `port` (0: any free one; a fixed one brings namerd "back" after close()). */
  static async start(port = 0): Promise<NamerdDouble> {
    const d = new NamerdDouble();
    d.server.listen(port, '127.0.0.1');
    await once(d.server, 'listening');
    return d;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Sets what `path` in `namespace` resolves to (/api/1/resolve); open watch streams get the new line at once. */
  set(namespace: string, path: string, a: Answer): void {
    const key = `resolve ${namespace} ${path}`;
    this.answers.set(key, a);
    for (const res of this.streams.get(key) ?? []) this.push(res, key, a);
  }

  /** Sets the bound tree of `path` in `namespace` (/api/1/bind), or an error answer; bind watchers get it at once. */
  setTree(namespace: string, path: string, t: Tree | ErrorAnswer): void {
    const key = `bind ${namespace} ${path}`;
    this.trees.set(key, t);
    const a = this.bindAnswer(key);
    for (const res of this.streams.get(key) ?? []) this.push(res, key, a);
  }

  /** Sets a concrete id's addresses (/api/1/addr, any namespace); addr watchers get them, bind watchers do not (as namerd). */
  setAddr(id: string, a: Answer): void {
    const key = `addr ${id}`;
    this.answers.set(key, a);
    for (const res of this.streams.get(key) ?? []) this.push(res, key, a);
  }

  private bindAnswer(key: string): Answer {
    const t = this.trees.get(key) ?? { type: 'neg' };
    if (t.type === 'status' || t.type === 'hang' || t.type === 'garbage' || t.type === 'error-line' || t.type === 'endless') return t;
    return { type: 'garbage', body: treeBody(t, (id) => this.answers.get(`addr ${id}`) ?? { type: 'neg' }) };
  }

  /** Resolves with the next request that arrives. */
  nextRequest(): Promise<Recorded> {
    return new Promise((resolve) => {
      const l = (r: Recorded): void => {
        this.requestListeners.delete(l);
        resolve(r);
      };
      this.requestListeners.add(l);
    });
  }

  /** Ends every open watch stream (as a namerd restart would). */
  dropStreams(): void {
    for (const set of this.streams.values()) for (const res of set) res.destroy();
    this.streams.clear();
  }

  async close(): Promise<void> {
    this.dropStreams();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const m = /^\/api\/1\/(resolve|bind|addr)\/(.+)$/.exec(url.pathname);
    if (req.method !== 'GET' || !m) {
      res.writeHead(404).end();
      return;
    }
    const watchParam = (url.searchParams.get('watch') ?? '').toLowerCase();
    const api = m[1] as Recorded['api'];
    const rec: Recorded = {
      api, namespace: decodeURIComponent(m[2]!), path: url.searchParams.get('path'), dtab: url.searchParams.get('dtab'),
      watch: ['1', 't', 'true'].includes(watchParam),
    };
    this.requests.push(rec);
    for (const l of [...this.requestListeners]) l(rec);
    const key = api === 'addr' ? `addr ${rec.path}` : `${api} ${rec.namespace} ${rec.path}`;
    // An unknown namespace or name behaves as an empty dtab: neg.
    const a = api === 'bind' ? this.bindAnswer(key) : (this.answers.get(key) ?? { type: 'neg' });
    // namerd sets Content-Type only on resolve (reference §1.0).
    const json = api === 'resolve' ? { 'content-type': 'application/json' } : {};
    if (a.type === 'endless') {
      res.writeHead(200, { ...json, 'transfer-encoding': 'chunked' });
      const chunk = '['.repeat(a.chunkBytes);
      const timer = setInterval(() => res.write(chunk), a.everyMs);
      res.on('close', () => clearInterval(timer));
      return;
    }
    if (!rec.watch) {
      if (a.type === 'hang') return;
      if (a.type === 'status') {
        res.writeHead(a.status).end();
        return;
      }
      res.writeHead(200, json).end(body(a));
      return;
    }
    res.writeHead(200, { ...json, 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    let set = this.streams.get(key);
    if (!set) this.streams.set(key, (set = new Set()));
    set.add(res);
    res.on('close', () => set.delete(res));
    this.push(res, key, a);
  }

  private push(res: ServerResponse, key: string, a: Answer): void {
    switch (a.type) {
      case 'hang':
        return;
      case 'status':
        res.destroy(); // a stream cannot change its status: cut it
        return;
      case 'error-line':
        res.end(body(a));
        this.streams.get(key)?.delete(res);
        return;
      default:
        res.write(body(a));
    }
  }
}
