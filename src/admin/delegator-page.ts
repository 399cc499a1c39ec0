// The dtab page served at /delegator (linkerd 1's path): pick a router, type a name and extra
// dentries, see the delegation tree live with the leaves' endpoints and their states. One
// self-contained document in the dashboard's style; its Content-Security-Policy allows exactly
// its script and stylesheet (by hash) and fetches to the admin server itself.
import { STYLE as DASHBOARD_STYLE, pageCsp, pageHead } from './dashboard.ts';
import { DELEGATOR_SCRIPT } from './delegator-script.ts';

const STYLE = `${DASHBOARD_STYLE}
header a { color: #aab2c5; }
.form { display: grid; grid-template-columns: max-content 1fr; gap: 8px 12px; align-items: center; }
.form input, .form select, .form textarea { font: 13px ui-monospace, SFMono-Regular, Menlo, monospace; padding: 4px 6px; width: 100%; }
ul.tree { list-style: none; margin: 0; padding-left: 18px; border-left: 1px solid var(--line); }
ul.tree.root { padding-left: 0; border-left: 0; }
li.node { margin: 6px 0; }
li.node.neg > .line .badge, li.node.fail > .line .badge, li.node.exception > .line .badge { background: #ffebe9; color: var(--bad); }
li.node.leaf > .line .badge { background: #dafbe1; color: var(--ok); }
.line .badge { margin-left: 0; }
.weight { font-weight: 600; color: var(--accent); }
.msg.bad { color: var(--bad); }
td.state.dim { color: var(--dim); font-weight: normal; }
`;

export const DELEGATOR_CSP = pageCsp(DELEGATOR_SCRIPT, STYLE);

export const DELEGATOR_HTML = `${pageHead('linkerd-tcp: dtab', STYLE)}<body>
<header>
  <h1>linkerd-tcp dtab</h1>
  <a href="./">dashboard</a>
</header>
<main>
  <div class="card form">
    <label for="dtab-router">router</label><select id="dtab-router" data-testid="dtab-router"></select>
    <label for="dtab-path">name</label><input id="dtab-path" data-testid="dtab-path" placeholder="/svc/web" autocomplete="off" spellcheck="false">
    <label for="dtab-extra">extra dtab</label><textarea id="dtab-extra" data-testid="dtab-extra" rows="3" placeholder="/svc/web => /#/io.l5d.fs/web-canary;" spellcheck="false"></textarea>
  </div>
  <p id="dtab-message" class="msg" data-testid="dtab-message"></p>
  <div id="dtab-tree" class="card" data-testid="dtab-tree"></div>
</main>
<script>${DELEGATOR_SCRIPT}</script>
</body>
</html>
`;
