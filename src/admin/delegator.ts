// GET /delegator.json?namespace=<router label>&path=<name>[&dtab=<extra entries>]: linkerd 1's
// delegator (reference §1.6): the JsonDelegateTree of `path` through the router's dtab with the
// extra entries appended, from the router's interpreter (the dtab and namers here, or namerd).
// Errors as linkerd/namerd word them: 400 `Invalid path: …` / `Invalid dtab: …`, 501 when the
// interpreter cannot delegate; 404 for a namespace that names no router (linkerd's namespaces
// are its routers; namerd itself would treat an unknown namespace as an empty dtab).
import { LinkerdTcpError } from '../errors.ts';
import { type Dtab, parseDtab } from '../naming/dtab.ts';
import { parsePath, type Path } from '../naming/path.ts';
import { boundText } from '../safe-text.ts';

/** A router interpreter's delegate (interpreter.ts's, seen from here: admin does not import interpreter/). */
export type Delegate = (path: Path, extra: Dtab, waitMs: number) => Promise<{ readonly status: 200; readonly tree: unknown } | { readonly status: number; readonly message: string }>;

/** Where the admin finds the routers' interpreters (the app's routers, or the primary's names hub). */
export interface Delegators {
  /** The router labels, in config order. */
  labels(): readonly string[];
  /** Router `label`'s interpreter's delegate; null when it cannot delegate, undefined when no router has that label. */
  delegate(label: string): Delegate | null | undefined;
}

/** As namerd's delegate handler: a delegation that takes longer is cut (namers still pending show as such). */
export const DELEGATE_WAIT_MS = 2_000;

export type DelegatorAnswer = { readonly status: number; readonly body: string; readonly json: boolean };

const text = (status: number, message: string): DelegatorAnswer => ({ status, body: message, json: false });

/** Parses what the operator wrote; the parser's message names the bad character. */
function parse<T>(what: 'path' | 'dtab', s: string, f: (s: string) => T): T | DelegatorAnswer {
  try {
    return f(s);
  } catch (e) {
    if (!(e instanceof LinkerdTcpError)) throw e;
    return text(400, `Invalid ${what}: ${e.message}`);
  }
}

const isAnswer = (x: unknown): x is DelegatorAnswer => typeof x === 'object' && x !== null && 'status' in x && 'body' in x;

export async function answerDelegation(query: URLSearchParams, d: Delegators, waitMs = DELEGATE_WAIT_MS): Promise<DelegatorAnswer> {
  const ns = query.get('namespace');
  const known = d.labels().map((l) => JSON.stringify(l)).join(', ');
  if (ns === null || ns === '') return text(400, `Malformed delegation request: namespace (a router label: ${known}) is required`);
  const pathText = query.get('path');
  if (pathText === null) return text(400, 'Malformed delegation request: path is required');
  const path = parse<Path>('path', pathText, parsePath);
  if (isAnswer(path)) return path;
  const extra = parse<Dtab>('dtab', query.get('dtab') ?? '', parseDtab);
  if (isAnswer(extra)) return extra;
  const del = d.delegate(ns);
  if (del === undefined) return text(404, `Unknown namespace: ${JSON.stringify(boundText(ns, 200))} names no router (routers: ${known})`);
  if (del === null) return text(501, `Name Interpreter for ${boundText(ns, 200)} cannot show delegations`);
  const a = await del(path, extra, waitMs);
  // namerd's style: JSON without a trailing newline.
  return 'tree' in a ? { status: 200, body: JSON.stringify(a.tree), json: true } : text(a.status, a.message);
}
