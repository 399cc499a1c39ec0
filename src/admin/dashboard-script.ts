// The dashboard's browser script, as plain ES2020 text (no build step). It polls
// api/state, keeps the last 60 samples per series for sparklines, computes rates from
// successive samples, and rebuilds the DOM with textContent/setAttribute only: nothing
// from the server is ever parsed as HTML. Written without backticks so it can live in a
// template literal; `?interval=ms` changes the poll period (tests use it).
export const DASHBOARD_SCRIPT = `
(function () {
  'use strict';
  var SVGNS = 'http://www.w3.org/2000/svg';
  var HIST = 60;
  var q = new URLSearchParams(location.search);
  var interval = Math.min(10000, Math.max(100, Number(q.get('interval')) || 1000));
  var history = new Map();
  var prev = new Map();
  var seen = new Set();

  function el(tag, cls, text, testid) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (testid) e.setAttribute('data-testid', testid);
    return e;
  }
  function add(parent) {
    for (var i = 1; i < arguments.length; i++) if (arguments[i]) parent.appendChild(arguments[i]);
    return parent;
  }
  function num(n, d) { return typeof n === 'number' && isFinite(n) ? n : (d === undefined ? 0 : d); }
  function fmtBytes(n) {
    var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var i = 0;
    n = num(n);
    while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(Math.round(n)) : n.toFixed(1)) + ' ' + u[i];
  }
  function fmtRate(n) { return n === null ? '\\u2013' : fmtBytes(n) + '/s'; }
  function fmtPerSec(n) { return n === null ? '\\u2013' : (n < 10 ? n.toFixed(1) : String(Math.round(n))) + '/s'; }
  function fmtUs(us) {
    us = num(us);
    if (us < 1000) return Math.round(us) + ' \\u00b5s';
    if (us < 1e6) return (us / 1000).toFixed(1) + ' ms';
    return (us / 1e6).toFixed(2) + ' s';
  }
  function fmtSecs(s) {
    s = Math.floor(num(s));
    var d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
    return (d ? d + 'd ' : '') + (d || h ? h + 'h ' : '') + m + 'm ' + (s % 60) + 's';
  }
  function clock(ms) { return new Date(ms).toISOString().slice(11, 19); }

  // Per-second rates of each counter in values, from the previous sample under the same key.
  function rates(key, at, values) {
    seen.add(key);
    var p = prev.get(key);
    prev.set(key, { at: at, values: values });
    var out = {};
    for (var k in values) {
      out[k] = null;
      if (p && at > p.at && typeof p.values[k] === 'number') out[k] = Math.max(0, values[k] - p.values[k]) / ((at - p.at) / 1000);
    }
    return out;
  }
  function record(id, v) {
    seen.add(id);
    var h = history.get(id);
    if (!h) history.set(id, (h = []));
    if (v !== null) h.push(v);
    if (h.length > HIST) h.shift();
  }
  function spark(id) {
    var h = history.get(id) || [];
    var w = 120, ht = 28;
    var svg = document.createElementNS(SVGNS, 'svg');
    svg.setAttribute('class', 'spark');
    svg.setAttribute('viewBox', '0 0 ' + w + ' ' + ht);
    svg.setAttribute('width', String(w));
    svg.setAttribute('height', String(ht));
    svg.setAttribute('data-testid', 'spark-' + id);
    svg.setAttribute('data-points', String(h.length));
    var max = 0;
    for (var i = 0; i < h.length; i++) if (h[i] > max) max = h[i];
    var pts = [];
    for (var j = 0; j < h.length; j++) {
      var x = h.length === 1 ? w : (j * w) / (HIST - 1) + (HIST - h.length) * w / (HIST - 1);
      var y = ht - 2 - (max > 0 ? (h[j] / max) * (ht - 4) : 0);
      pts.push(x.toFixed(1) + ',' + y.toFixed(1));
    }
    var line = document.createElementNS(SVGNS, 'polyline');
    line.setAttribute('points', pts.join(' '));
    line.setAttribute('fill', 'none');
    line.setAttribute('stroke', 'currentColor');
    line.setAttribute('stroke-width', '1.5');
    svg.appendChild(line);
    return svg;
  }
  // One figure: label, value (with its test id) and, when a series id is given, its sparkline.
  function tile(label, value, testid, series, v) {
    if (series) record(series, v === undefined ? null : v);
    return add(el('div', 'tile'), el('div', 'label', label), el('div', 'value', value, testid), series ? spark(series) : null);
  }

  function renderProcess(p, at) {
    var box = el('div', 'tiles');
    if (!p) return box;
    var r = rates('proc', at, { cpu: num(p.cpuUserSecs) + num(p.cpuSystemSecs) });
    add(box,
      tile('pid', p.pid, 'proc-pid'),
      tile('uptime', fmtSecs(p.uptimeSecs), 'proc-uptime'),
      tile('cpu', r.cpu === null ? '\\u2013' : (r.cpu * 100).toFixed(1) + '%', 'proc-cpu', 'proc-cpu', r.cpu === null ? null : r.cpu * 100),
      tile('rss', fmtBytes(p.rssBytes), 'proc-rss', 'proc-rss', num(p.rssBytes)),
      tile('heap used', fmtBytes(p.heapUsedBytes), 'proc-heap'),
      tile('open fds', p.openFds === null ? 'n/a' : p.openFds, 'proc-fds'),
      tile('event-loop p99', p.eventLoopDelayP99Ms === null ? 'n/a' : num(p.eventLoopDelayP99Ms).toFixed(1) + ' ms', 'proc-eld', 'proc-eld', p.eventLoopDelayP99Ms),
      tile('node', p.nodeVersion, 'proc-node'));
    return box;
  }

  function renderServer(s, r) {
    var id = s.srvAddr;
    var card = el('section', 'card', null, 'srv-' + id);
    var title = add(el('h3'), el('span', 'name', s.router + ' \\u00b7 ' + id), el('span', 'dim', ' \\u2192 ' + s.dstName, 'srv-dst-' + id));
    if (s.tls) {
      var badge = title.appendChild(el('span', 'badge', 'TLS'));
      badge.setAttribute('title', (s.tlsIdentities || []).map(function (i) {
        return i.name + ': ' + i.names.join(', ') + ' (until ' + i.notAfter + ')';
      }).join('\\n'));
    }
    if (!s.listening) title.appendChild(el('span', 'badge bad', 'not listening'));
    add(card, title, add(el('div', 'tiles'),
      tile('open', s.active, 'srv-active-' + id, 'srv-active-' + id, num(s.active)),
      tile('accepts/s', fmtPerSec(r.accepts), 'srv-accepts-rate-' + id, 'srv-accepts-rate-' + id, r.accepts),
      tile('rx', fmtRate(r.rx), 'srv-rx-rate-' + id, 'srv-rx-rate-' + id, r.rx),
      tile('tx', fmtRate(r.tx), 'srv-tx-rate-' + id, 'srv-tx-rate-' + id, r.tx),
      tile('connect p50', fmtUs(s.connectLatencyUs && s.connectLatencyUs.p50), 'srv-lat-p50-' + id),
      tile('connect p99', fmtUs(s.connectLatencyUs && s.connectLatencyUs.p99), 'srv-lat-p99-' + id),
      tile('accepts', s.accepts, 'srv-accepts-' + id),
      tile('failures', s.failures, 'srv-failures-' + id),
      tile('waiting', s.waiters, 'srv-waiters-' + id)));
    return card;
  }

  function statusOf(d) {
    var r = d.resolution || { kind: 'pending' };
    if (r.kind === 'bound') return ['ok', 'bound \\u00b7 ' + r.endpoints + ' endpoint' + (r.endpoints === 1 ? '' : 's')];
    if (r.kind === 'neg') return ['warn', 'neg: name does not exist'];
    if (r.kind === 'failed') return ['bad', (d.resolved ? 'failed, keeping last set: ' : 'failed: ') + r.reason];
    return ['warn', 'waiting for first resolution'];
  }

  function renderDestination(rt, d) {
    var box = el('div', 'dst', null, 'dst-' + rt + '-' + d.name);
    var st = statusOf(d);
    add(box, add(el('h4'), el('span', 'name', d.name),
      el('span', 'status ' + st[0], st[1], 'dst-status-' + rt + '-' + d.name),
      el('span', 'dim', ' ' + d.available + ' available, ' + d.failed + ' failed, ' + d.retired + ' retired, ' +
        d.open + ' open, ' + d.waiters + ' waiting', 'dst-counts-' + rt + '-' + d.name)));
    var table = el('table');
    var head = el('tr');
    ['endpoint', 'state', 'weight', 'load', 'open', 'pending', 'connects', 'failures', 'consecutive'].forEach(function (h) { head.appendChild(el('th', null, h)); });
    table.appendChild(head);
    (d.endpoints || []).forEach(function (ep) {
      var k = ep.key;
      var state = el('td', 'state ' + ep.state, ep.state, 'ep-state-' + k);
      if (ep.state === 'failed' && ep.failedUntil) state.setAttribute('title', 'ejected until ' + clock(ep.failedUntil));
      add(table, add(el('tr', null, null, 'ep-' + k), el('td', 'mono', k), state,
        el('td', 'num', (num(ep.weight) * 100).toFixed(1) + '%', 'ep-weight-' + k),
        el('td', 'num', ep.load, 'ep-load-' + k), el('td', 'num', ep.open), el('td', 'num', ep.pending),
        el('td', 'num', ep.connects), el('td', 'num', ep.failures, 'ep-failures-' + k), el('td', 'num', ep.consecutiveFailures)));
    });
    if (!(d.endpoints || []).length) add(table, add(el('tr'), el('td', 'dim', 'no endpoints')));
    return add(box, table);
  }

  function renderRouter(rt, servers, rs) {
    var open = 0, acc = 0, rx = 0, tx = 0, known = servers.length > 0;
    servers.forEach(function (s, i) {
      open += num(s.active);
      if (rs[i].accepts === null) known = false;
      acc += num(rs[i].accepts, 0); rx += num(rs[i].rx, 0); tx += num(rs[i].tx, 0);
    });
    var id = rt.label;
    var interp = rt.interpreter || { kind: 'unknown' };
    var card = el('section', 'card', null, 'rt-' + id);
    add(card, add(el('h3'), el('span', 'name', 'router ' + id + ' '), el('span', 'dim', interp.kind, 'rt-interp-' + id),
      interp.namespace ? el('span', 'dim', ' (namespace ' + interp.namespace + ')') : null));
    add(card, add(el('div', 'tiles'),
      tile('open', open, 'rt-active-' + id, 'rt-active-' + id, open),
      tile('accepts/s', known ? fmtPerSec(acc) : '\\u2013', 'rt-accepts-rate-' + id, 'rt-accepts-rate-' + id, known ? acc : null),
      tile('rx', known ? fmtRate(rx) : '\\u2013', 'rt-rx-rate-' + id, 'rt-rx-rate-' + id, known ? rx : null),
      tile('tx', known ? fmtRate(tx) : '\\u2013', 'rt-tx-rate-' + id, 'rt-tx-rate-' + id, known ? tx : null)));
    (rt.destinations || []).forEach(function (d) { card.appendChild(renderDestination(id, d)); });
    if (!(rt.destinations || []).length) card.appendChild(el('p', 'dim', 'no destinations yet (created on the first connection)'));
    return card;
  }

  function renderErrors(list) {
    var ul = el('ul', 'errors', null, 'errors');
    list.slice().reverse().forEach(function (e) {
      var ctx = Object.keys(e.context || {}).map(function (k) { return k + '=' + e.context[k]; }).join(' ');
      add(ul, add(el('li', e.level), el('span', 'mono', clock(e.at) + ' '), el('span', 'level', e.level + ' '),
        el('span', 'msg', e.msg), el('span', 'dim', ctx ? ' ' + ctx : '')));
    });
    if (!list.length) ul.appendChild(el('li', 'dim', 'none'));
    return ul;
  }

  function render(st) {
    seen = new Set();
    var servers = st.servers || [], routers = st.routers || [];
    var rs = servers.map(function (s) {
      return rates('srv:' + s.router + ':' + s.srvAddr, st.at, { accepts: num(s.accepts), rx: num(s.rxBytes), tx: num(s.txBytes) });
    });
    document.getElementById('process').replaceChildren(renderProcess(st.process, st.at));
    document.getElementById('servers').replaceChildren.apply(document.getElementById('servers'),
      servers.map(function (s, i) { return renderServer(s, rs[i]); }));
    document.getElementById('routers').replaceChildren.apply(document.getElementById('routers'), routers.map(function (rt) {
      var mine = [], mineRates = [];
      servers.forEach(function (s, i) { if (s.router === rt.label) { mine.push(s); mineRates.push(rs[i]); } });
      return renderRouter(rt, mine, mineRates);
    }));
    var errs = st.recentErrors || [];
    document.getElementById('errors-count').textContent = String(errs.length);
    document.getElementById('errors').replaceChildren(renderErrors(errs));
    // Forget series of servers and routers that went away.
    [history, prev].forEach(function (m) { Array.from(m.keys()).forEach(function (k) { if (!seen.has(k)) m.delete(k); }); });
  }

  var samples = 0;
  function setStatus(ok, text) {
    var s = document.getElementById('status');
    s.className = 'status ' + (ok ? 'ok' : 'bad');
    s.textContent = text;
  }
  function poll() {
    var ctl = new AbortController();
    var timer = setTimeout(function () { ctl.abort(); }, 5000);
    fetch('api/state', { cache: 'no-store', signal: ctl.signal })
      .then(function (res) { if (!res.ok) throw new Error('HTTP ' + res.status); return res.json(); })
      .then(function (st) {
        render(st);
        samples++;
        document.body.setAttribute('data-samples', String(samples));
        setStatus(true, 'live');
        document.getElementById('updated').textContent = clock(st.at);
      })
      .catch(function (e) { setStatus(false, 'disconnected: ' + (e && e.message ? e.message : String(e))); })
      .finally(function () { clearTimeout(timer); setTimeout(poll, interval); });
  }
  poll();
})();
`;
