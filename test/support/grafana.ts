// Reads deploy/grafana/linkerd-tcp.json for the tests: every panel target's PromQL, the
// metric names it reads, and the expression as Grafana would send it (variables substituted).
import { readFileSync } from 'node:fs';

export const DASHBOARD_PATH = new URL('../../deploy/grafana/linkerd-tcp.json', import.meta.url).pathname;

export interface PanelTarget {
  readonly panel: string;
  readonly refId: string;
  readonly expr: string;
}

interface PanelJson {
  readonly title?: string;
  readonly type?: string;
  readonly targets?: readonly { readonly refId?: string; readonly expr?: string }[];
  readonly panels?: readonly PanelJson[];
}

export function loadDashboard(): Record<string, unknown> {
  return JSON.parse(readFileSync(DASHBOARD_PATH, 'utf8')) as Record<string, unknown>;
}

/** Every target of every panel (rows' nested panels too). */
export function panelTargets(dash: Record<string, unknown>): PanelTarget[] {
  const out: PanelTarget[] = [];
  const walk = (ps: readonly PanelJson[]): void => {
    for (const p of ps) {
      for (const t of p.targets ?? []) out.push({ panel: p.title ?? '?', refId: t.refId ?? '?', expr: t.expr ?? '' });
      walk(p.panels ?? []);
    }
  };
  walk((dash['panels'] ?? []) as readonly PanelJson[]);
  return out;
}

/** The metric names a PromQL expression reads: identifiers with a `:` (all of ours) or followed by `{`. */
export function metricNames(expr: string): string[] {
  const noStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\[[^\]]*\]/g, '[]');
  const names = new Set<string>();
  for (const m of noStrings.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\{)?/g)) {
    if (m[1]!.includes(':') || m[2]) names.add(m[1]!);
  }
  return [...names];
}

/**
 * The expression as Grafana sends it: template variables replaced by `vars` (a regex, `.*`
 * for All) and Grafana's interval macros by fixed durations fitting a 1 s scrape.
 */
export function substitute(expr: string, vars: Readonly<Record<string, string>>): string {
  return expr
    .replace(/\$__rate_interval|\$\{__rate_interval\}/g, '5s')
    .replace(/\$__interval|\$\{__interval\}/g, '1s')
    .replace(/\$__range|\$\{__range\}/g, '5m')
    .replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, a: string | undefined, b: string | undefined) => {
      const v = vars[a ?? b ?? ''];
      if (v === undefined) throw new Error(`unknown variable ${whole} in ${expr}`);
      return v;
    });
}
