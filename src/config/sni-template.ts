// What a `{sni}` dstName template can name, for `--check`: the template is never a name
// itself (the proxy resolves only what it expands to, server/preface-gate.ts), so it is
// shown with the dtab entries that one of its expansions can match: entries whose prefix
// agrees with its fixed labels, and whose labels where `{sni}` sits could be a client's
// validated server name (lowercase LDH host names: `/svc/sni/DB.example.com` is unreachable).
import { type Dentry, type Dtab, WILDCARD } from '../naming/dtab.ts';
import { parsePath, type Path } from '../naming/path.ts';
import { SNI_PLACEHOLDER, validateSniName } from '../wire/sni-name.ts';

/** One label of a template: fixed, or literal parts with the same SNI name between each two. */
type TemplateLabel =
  | { readonly kind: 'fixed'; readonly label: string }
  | { readonly kind: 'sni'; readonly parts: readonly string[] };

export interface SniTemplate {
  readonly labels: readonly TemplateLabel[];
  /** The labels before the first one that holds `{sni}`. */
  readonly fixed: Path;
}

/**
 * NUL stands in for `{sni}` while the path grammar reads the template (`\x00`): a host name
 * never holds one, so every NUL in a parsed label is a placeholder.
 */
const MARK = '\u0000';

/** Parses a dstName holding `{sni}` (config/sni-proxy.ts's dstPath has already accepted it). */
export function parseSniTemplate(dstName: string): SniTemplate {
  const labels: TemplateLabel[] = parsePath(dstName.split(SNI_PLACEHOLDER).join('\\x00')).map((l) =>
    l.includes(MARK) ? { kind: 'sni', parts: l.split(MARK) } : { kind: 'fixed', label: l });
  const first = labels.findIndex((l) => l.kind === 'sni');
  const fixed = labels.slice(0, first < 0 ? labels.length : first).map((l) => (l.kind === 'fixed' ? l.label : ''));
  return { labels, fixed };
}

/** Whether some validated SNI name, put in place of every `{sni}` of `t`, makes it `label`. */
function canBe(t: TemplateLabel, label: string): boolean {
  if (t.kind === 'fixed') return t.label === label;
  const holes = t.parts.length - 1;
  const literal = t.parts.reduce((n, p) => n + p.length, 0);
  const nameLength = (label.length - literal) / holes;
  if (!Number.isInteger(nameLength) || nameLength <= 0) return false;
  const name = label.slice(t.parts[0]!.length, t.parts[0]!.length + nameLength);
  if (t.parts.join(name) !== label) return false;
  const v = validateSniName(name);
  return v.kind === 'ok' && v.name === name; // names arrive lowercased, without a trailing dot
}

/** The entries of `dtab` (in dtab order) whose prefix some expansion of `t` matches. */
export function reachableDentries(t: SniTemplate, dtab: Dtab): Dentry[] {
  return dtab.filter((d) =>
    d.prefix.length <= t.labels.length && d.prefix.every((p, i) => p === WILDCARD || canBe(t.labels[i]!, p)));
}

export { hasSniPlaceholder } from '../wire/sni-name.ts';
