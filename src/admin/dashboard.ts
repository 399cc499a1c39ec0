// The dashboard page served at `/`: one self-contained HTML document (inline CSS and
// script, no external resources, no build step). Its Content-Security-Policy allows exactly
// this script and stylesheet (by hash) and fetches to the admin server itself.
import { createHash } from 'node:crypto';
import { DASHBOARD_SCRIPT } from './dashboard-script.ts';

export const STYLE = `
:root { --bg: #f6f7f9; --card: #fff; --ink: #1d2330; --dim: #6b7385; --line: #e2e5eb;
  --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --accent: #2f6fdb; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--ink); }
header { display: flex; align-items: center; gap: 16px; padding: 12px 20px; background: #1d2330; color: #fff; }
header h1 { font-size: 18px; margin: 0; font-weight: 600; }
header .dim { color: #aab2c5; }
main { padding: 16px 20px; max-width: 1400px; }
h2 { font-size: 15px; margin: 20px 0 8px; color: var(--dim); text-transform: uppercase; letter-spacing: .04em; }
h3 { font-size: 15px; margin: 0 0 8px; }
h4 { font-size: 14px; margin: 12px 0 6px; display: flex; gap: 10px; align-items: baseline; flex-wrap: wrap; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; margin-bottom: 12px; }
.tiles { display: flex; flex-wrap: wrap; gap: 8px; }
.tile { min-width: 120px; padding: 6px 8px; border: 1px solid var(--line); border-radius: 6px; background: #fbfcfd; }
.tile .label { font-size: 11px; color: var(--dim); text-transform: uppercase; letter-spacing: .03em; }
.tile .value { font-size: 17px; font-variant-numeric: tabular-nums; }
.spark { display: block; color: var(--accent); margin-top: 2px; }
.dim { color: var(--dim); font-weight: normal; }
.mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px; }
.badge { margin-left: 8px; font-size: 11px; padding: 1px 6px; border-radius: 10px; background: #ddf4ff; color: #0550ae; }
.badge.bad, .status.bad { background: #ffebe9; color: var(--bad); }
.status { font-size: 12px; padding: 1px 8px; border-radius: 10px; }
.status.ok { background: #dafbe1; color: var(--ok); }
.status.warn { background: #fff8c5; color: var(--warn); }
table { border-collapse: collapse; width: 100%; margin-top: 4px; }
th, td { text-align: left; padding: 3px 10px 3px 0; border-bottom: 1px solid var(--line); }
th { font-size: 11px; color: var(--dim); text-transform: uppercase; font-weight: 600; }
td.num { font-variant-numeric: tabular-nums; }
td.state { font-weight: 600; }
td.state.available { color: var(--ok); }
td.state.available.failing { color: var(--warn); }
td.num.bad, .tile.bad .value { color: var(--bad); font-weight: 600; }
.tile .scale { font-size: 10px; color: var(--dim); font-variant-numeric: tabular-nums; }
td.state.failed { color: var(--bad); }
td.state.retired { color: var(--dim); }
ul.errors { list-style: none; padding: 0; margin: 0; }
ul.errors li { padding: 3px 0; border-bottom: 1px solid var(--line); }
ul.errors li.error .level, ul.errors li.fatal .level { color: var(--bad); font-weight: 600; }
ul.errors li.warn .level { color: var(--warn); font-weight: 600; }
ul.errors li.info .level { color: var(--dim); }
ul.errors .count { font-weight: 600; }
`;

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/** The policy of a self-contained admin page: exactly this script and stylesheet (by hash), fetches to the admin server. */
export function pageCsp(script: string, style: string): string {
  return [
    "default-src 'none'",
    `script-src ${sha256(script)}`,
    `style-src ${sha256(style)}`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** An admin page's document start, through </head>: the same for every page but its title and style. */
export function pageHead(title: string, style: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="icon" href="data:,">
<style>${style}</style>
</head>
`;
}

export const DASHBOARD_CSP = pageCsp(DASHBOARD_SCRIPT, STYLE);

export const DASHBOARD_HTML = `${pageHead('linkerd-tcp', STYLE)}<body>
<header>
  <h1>linkerd-tcp</h1>
  <span id="status" class="status warn" data-testid="conn-status">connecting</span>
  <span class="dim">updated <span id="updated" data-testid="updated">never</span></span>
  <a class="dim" href="delegator" data-testid="dtab-link">dtab</a>
</header>
<main>
  <h2>Process</h2>
  <div id="process" class="card"></div>
  <h2>Servers</h2>
  <div id="servers"></div>
  <h2>Routers and destinations</h2>
  <div id="routers"></div>
  <h2>Recent errors (<span id="errors-count" data-testid="errors-count">0</span>)</h2>
  <div id="errors" class="card"></div>
</main>
<script>${DASHBOARD_SCRIPT}</script>
</body>
</html>
`;
