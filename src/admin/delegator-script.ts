// The dtab page's browser script (plain ES2020 text, no build step, no backticks or
// backslashes so it can live in a template literal). The operator picks a router, types a name
// and optional extra dentries; every edit re-asks delegator.json (the previous ask aborted) and
// draws the tree. api/state is polled for the routers and the endpoints' states, shown beside
// each leaf's addresses. Names and dentries are operator input and the tree echoes them: the
// DOM is built with textContent/setAttribute only, nothing is ever parsed as HTML.
import { DOM_HELPERS } from './dashboard-script.ts';

export const DELEGATOR_SCRIPT = `
(function () {
  'use strict';
  var q = new URLSearchParams(location.search);
  var interval = Math.min(10000, Math.max(100, Number(q.get('interval')) || 2000));
  var routerSel = document.getElementById('dtab-router');
  var pathIn = document.getElementById('dtab-path');
  var extraIn = document.getElementById('dtab-extra');
  var out = document.getElementById('dtab-tree');
  var msg = document.getElementById('dtab-message');
  var lastTree = null, states = new Map(), inflight = null, debounce = null, asked = 0;
  if (q.get('path')) pathIn.value = q.get('path');
  if (q.get('dtab')) extraIn.value = q.get('dtab');

${DOM_HELPERS}
  function str(x) { return typeof x === 'string' ? x : ''; }
  function addrKey(ip, port) { return (ip.indexOf(':') >= 0 ? '[' + ip + ']' : ip) + ':' + port; }

  // available / ejected / unhealthy / retired, as the router's balancers see the address now.
  function stateOf(key) {
    var ep = states.get(key);
    if (!ep) return ['dim', 'not in use (no destination of this router has it)'];
    if (ep.healthy === false) return ['failed', 'unhealthy (health check)'];
    if (ep.state === 'failed') return ['failed', 'ejected'];
    if (ep.state === 'retired') return ['retired', 'retired'];
    return ['available', ep.state === 'available' ? 'available' : str(ep.state)];
  }

  function renderAddr(addr) {
    var a = addr && typeof addr === 'object' ? addr : {};
    if (a.type !== 'bound') return el('div', 'dim', 'addresses: ' + str(a.type) + (a.cause ? ': ' + str(a.cause) : ''), 'leaf-addr-none');
    var table = el('table');
    var head = el('tr');
    ['address', 'weight', 'state'].forEach(function (h) { head.appendChild(el('th', null, h)); });
    table.appendChild(head);
    (Array.isArray(a.addrs) ? a.addrs : []).forEach(function (x) {
      var k = addrKey(str(x.ip), Number(x.port));
      var w = x.meta && typeof x.meta.endpoint_addr_weight === 'number' ? x.meta.endpoint_addr_weight : 1;
      var st = stateOf(k);
      add(table, add(el('tr', null, null, 'leaf-addr-' + k), el('td', 'mono', k), el('td', 'num', w),
        el('td', 'state ' + st[0], st[1], 'leaf-addr-state-' + k)));
    });
    if (!(Array.isArray(a.addrs) && a.addrs.length)) add(table, add(el('tr'), el('td', 'dim', 'no addresses')));
    return table;
  }

  function renderNode(t) {
    var n = t && typeof t === 'object' ? t : { type: 'exception', path: '?', message: 'not a delegate tree' };
    var li = el('li', 'node ' + str(n.type), null, 'node-' + str(n.type));
    var line = add(el('div', 'line'), el('span', 'badge', str(n.type)), el('span', 'mono', ' ' + str(n.path), 'node-path'));
    if (n.dentry && typeof n.dentry === 'object') line.appendChild(el('span', 'dim mono', '  by ' + str(n.dentry.prefix) + ' => ' + str(n.dentry.dst), 'node-dentry'));
    li.appendChild(line);
    var kids = el('ul', 'tree');
    if (n.type === 'delegate') kids.appendChild(renderNode(n.delegate));
    else if (n.type === 'alt') (Array.isArray(n.alt) ? n.alt : []).forEach(function (c) { kids.appendChild(renderNode(c)); });
    else if (n.type === 'union') (Array.isArray(n.union) ? n.union : []).forEach(function (w) {
      var item = add(el('li', 'weighted'), el('span', 'weight', 'weight ' + String(w && w.weight), 'union-weight'));
      add(kids, add(item, add(el('ul', 'tree'), renderNode(w && w.tree))));
    });
    else if (n.type === 'leaf') {
      var b = n.bound && typeof n.bound === 'object' ? n.bound : {};
      li.appendChild(el('div', 'dim', 'bound id ' + str(b.id) + ', residual ' + str(b.path), 'leaf-id'));
      li.appendChild(renderAddr(b.addr));
    } else if (n.type === 'exception') li.appendChild(el('div', 'msg bad', str(n.message), 'node-message'));
    if (kids.childNodes.length) li.appendChild(kids);
    return li;
  }

  function draw() {
    if (lastTree === null) return out.replaceChildren();
    out.replaceChildren(add(el('ul', 'tree root'), renderNode(lastTree)));
  }

  function ask() {
    debounce = null;
    if (inflight) inflight.abort();
    var ns = routerSel.value, path = pathIn.value.trim();
    if (!ns || !path) { lastTree = null; msg.textContent = path ? 'pick a router' : 'type a name, e.g. /svc/web'; draw(); return; }
    var params = new URLSearchParams({ namespace: ns, path: path });
    if (extraIn.value.trim()) params.set('dtab', extraIn.value);
    var ctl = inflight = new AbortController();
    var n = ++asked;
    var timer = setTimeout(function () { ctl.abort(); }, 10000);
    fetch('delegator.json?' + params.toString(), { cache: 'no-store', signal: ctl.signal })
      .then(function (res) { return res.text().then(function (body) { return { ok: res.ok, status: res.status, body: body }; }); })
      .then(function (r) {
        if (n !== asked) return;
        if (!r.ok) { lastTree = null; msg.textContent = 'HTTP ' + r.status + ': ' + r.body; msg.className = 'msg bad'; }
        else { lastTree = JSON.parse(r.body); msg.textContent = ''; msg.className = 'msg'; }
        draw();
        document.body.setAttribute('data-answers', String(n));
      })
      .catch(function (e) { if (n === asked && e && e.name !== 'AbortError') { msg.textContent = String(e && e.message ? e.message : e); msg.className = 'msg bad'; } })
      .finally(function () { clearTimeout(timer); if (inflight === ctl) inflight = null; });
  }
  function later() { if (debounce) clearTimeout(debounce); debounce = setTimeout(ask, 120); }
  [pathIn, extraIn].forEach(function (i) { i.addEventListener('input', later); });
  routerSel.addEventListener('change', later);

  function poll() {
    fetch('api/state', { cache: 'no-store' })
      .then(function (res) { if (!res.ok) throw new Error('HTTP ' + res.status); return res.json(); })
      .then(function (st) {
        var routers = Array.isArray(st.routers) ? st.routers : [];
        var want = routerSel.value || q.get('namespace') || '';
        var labels = routers.map(function (r) { return str(r.label); });
        if (labels.join('|') !== Array.from(routerSel.options).map(function (o) { return o.value; }).join('|')) {
          routerSel.replaceChildren.apply(routerSel, routers.map(function (r) {
            var o = el('option', null, str(r.label) + ' (' + str(r.interpreter && r.interpreter.kind) + ')');
            o.value = str(r.label);
            return o;
          }));
          if (labels.indexOf(want) >= 0) routerSel.value = want;
          later();
        }
        var rt = routers.filter(function (r) { return r.label === routerSel.value; })[0];
        states = new Map();
        ((rt && rt.destinations) || []).forEach(function (d) { (d.endpoints || []).forEach(function (ep) { states.set(ep.key, ep); }); });
        draw();
        document.body.setAttribute('data-state-polls', String(Number(document.body.getAttribute('data-state-polls') || 0) + 1));
      })
      .catch(function () {})
      .finally(function () { setTimeout(poll, interval); });
  }
  poll();
})();
`;
