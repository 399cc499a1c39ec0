// The dashboard's browser script, as plain ES2020 text (no build step). It polls
// api/state, keeps the last 60 samples per series for sparklines, computes rates from
// successive samples, and rebuilds the DOM with textContent/setAttribute only: nothing
// from the server is ever parsed as HTML. Written without backticks so it can live in a
// template literal; `?interval=ms` changes the poll period (tests use it).
/**
 * The DOM builders both admin pages use (this dashboard and the dtab page): elements are made
 * with textContent and setAttribute only, never from HTML text.
 */
export const DOM_HELPERS = `
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
`;

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

${DOM_HELPERS}
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
  // One figure: label, value (with its test id) and, when a series id is given, its sparkline
  // with its scale (the top of the chart, formatted by fmtScale; the bottom is 0).
  function tile(label, value, testid, series, v, fmtScale) {
    if (series) record(series, v === undefined ? null : v);
    var box = add(el('div', 'tile'), el('div', 'label', label), el('div', 'value', value, testid), series ? spark(series) : null);
    if (series) {
      var top = 0;
      (history.get(series) || []).forEach(function (x) { if (x > top) top = x; });
      box.appendChild(el('div', 'scale', '0 \\u2013 ' + (fmtScale ? fmtScale(top) : String(Math.round(top * 10) / 10)), 'scale-' + series));
    }
    return box;
  }

  function fmtPct(n) { return n === null ? '\\u2013' : n.toFixed(1) + '%'; }
  // The whole process tree (with workers: the primary and each worker): tiles for the sums
  // (CPU and memory of every process), then one row per process.
  function renderProcess(p, list, at, cfg, workers) {
    var box = el('div');
    if (!p) return box;
    var procs = list && list.length ? list : [p];
    var cpu = null, rss = 0, heap = 0, fds = null, eld = null;
    var rows = procs.map(function (x) {
      var r = rates('proc:' + x.pid, at, { cpu: num(x.cpuUserSecs) + num(x.cpuSystemSecs) });
      if (r.cpu !== null) cpu = (cpu || 0) + r.cpu;
      rss += num(x.rssBytes); heap += num(x.heapUsedBytes);
      if (typeof x.openFds === 'number') fds = (fds || 0) + x.openFds;
      if (typeof x.eventLoopDelayP99Ms === 'number' && (eld === null || x.eventLoopDelayP99Ms > eld)) eld = x.eventLoopDelayP99Ms;
      return { x: x, cpu: r.cpu };
    });
    add(box, add(el('div', 'tiles'),
      tile('pid', p.pid, 'proc-pid'),
      procs.length > 1 ? tile('processes', procs.length, 'proc-count') : null,
      tile('uptime', fmtSecs(p.uptimeSecs), 'proc-uptime'),
      tile('cpu', fmtPct(cpu === null ? null : cpu * 100), 'proc-cpu', 'proc-cpu', cpu === null ? null : cpu * 100, function (v) { return v.toFixed(1) + '%'; }),
      tile('rss', fmtBytes(rss), 'proc-rss', 'proc-rss', rss, fmtBytes),
      tile('heap used', fmtBytes(heap), 'proc-heap'),
      tile('open fds', fds === null ? 'n/a' : fds, 'proc-fds'),
      tile('event-loop p99', eld === null ? 'n/a' : eld.toFixed(1) + ' ms', 'proc-eld', 'proc-eld', eld, function (v) { return v.toFixed(1) + ' ms'; }),
      tile('node', p.nodeVersion, 'proc-node'),
      cfg ? configTile(cfg) : null));
    // A replacement worker that cannot start (say a TLS file went bad on disk): the others serve.
    if (workers && workers.degraded) {
      box.appendChild(el('p', 'status bad', 'workers: ' + workers.listening + ' of ' + workers.configured +
        ' serving; a replacement cannot start (retrying): ' + (workers.lastFailure || 'unknown'), 'proc-workers-degraded'));
    }
    if (procs.length < 2) return box;
    var table = el('table', null, null, 'proc-table');
    var head = el('tr');
    ['process', 'pid', 'cpu', 'rss', 'heap used', 'open fds', 'event-loop p99', 'uptime'].forEach(function (h) { head.appendChild(el('th', null, h)); });
    table.appendChild(head);
    rows.forEach(function (r) {
      var x = r.x, id = String(x.pid);
      add(table, add(el('tr', null, null, 'proc-row-' + id),
        el('td', null, x.role === 'worker' ? 'worker ' + x.worker : (x.role || 'process'), 'proc-role-' + id), el('td', 'num mono', x.pid),
        el('td', 'num', fmtPct(r.cpu === null ? null : r.cpu * 100), 'proc-cpu-' + id), el('td', 'num', fmtBytes(x.rssBytes), 'proc-rss-' + id),
        el('td', 'num', fmtBytes(x.heapUsedBytes)), el('td', 'num', typeof x.openFds === 'number' ? x.openFds : 'n/a'),
        el('td', 'num', typeof x.eventLoopDelayP99Ms === 'number' ? x.eventLoopDelayP99Ms.toFixed(1) + ' ms' : 'n/a'),
        el('td', 'num', fmtSecs(x.uptimeSecs))));
    });
    return add(box, table);
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
    if (s.engine) title.appendChild(el('span', 'badge', s.engine + ' engine' + (s.threads ? ', ' + s.threads + ' threads' : ''), 'srv-engine-' + id));
    add(card, title, add(el('div', 'tiles'),
      tile('open', s.active, 'srv-active-' + id, 'srv-active-' + id, num(s.active)),
      tile('accepts/s', fmtPerSec(r.accepts), 'srv-accepts-rate-' + id, 'srv-accepts-rate-' + id, r.accepts),
      tile('rx', fmtRate(r.rx), 'srv-rx-rate-' + id, 'srv-rx-rate-' + id, r.rx),
      tile('tx', fmtRate(r.tx), 'srv-tx-rate-' + id, 'srv-tx-rate-' + id, r.tx),
      // Failures now, not since start: red only while the last interval had some.
      mark(tile('failures/s', fmtPerSec(r.failures), 'srv-failures-rate-' + id, 'srv-failures-rate-' + id, r.failures), num(r.failures) > 0),
      latencyTile('p50', s, id),
      latencyTile('p99', s, id),
      tile('accepts', s.accepts, 'srv-accepts-' + id),
      tile('failures', s.failures, 'srv-failures-' + id),
      tile('waiting', s.waiters, 'srv-waiters-' + id),
      s.tls ? tlsFailuresTile(s, id) : null));
    return card;
  }
  // Real quantiles over the server's sliding window (exact values, not bucket bounds), charted with a scale.
  function latencyTile(q, s, id) {
    var l = s.connectLatencyUs || {};
    var v = l.count ? num(l[q]) : null;
    var t = tile('connect ' + q + ' (' + num(l.windowSecs, 60) + ' s)', v === null ? '\\u2013' : fmtUs(v), 'srv-lat-' + q + '-' + id, 'srv-lat-' + q + '-' + id, v, fmtUs);
    t.setAttribute('title', num(l.count) + ' connects in the last ' + num(l.windowSecs, 60) + ' s');
    return t;
  }
  function tlsFailuresTile(s, id) {
    var f = s.tlsFailures || {}, keys = Object.keys(f).filter(function (k) { return f[k] > 0; }).sort();
    var text = keys.length ? keys.map(function (k) { return k + ' ' + f[k]; }).join(' \\u00b7 ') : 'none';
    return mark(tile('tls handshake failures', text, 'srv-tls-failures-' + id), keys.length > 0);
  }
  // The running config: its SHA-256 (short), when it was loaded, and a refused last reload in red.
  function configTile(cfg) {
    var last = cfg.lastReload;
    var t = mark(tile('config', cfg.hash.slice(0, 12) + ' \\u00b7 ' + clock(cfg.loadedAt), 'config-hash'), last && last.result === 'failed');
    t.setAttribute('title', 'sha256 ' + cfg.hash + '\\nloaded ' + new Date(cfg.loadedAt).toISOString() +
      (last ? '\\nlast reload (' + last.trigger + '): ' + last.result + (last.error ? ': ' + last.error : '') : '') +
      (last && last.needsRestart.length ? '\\nneeds a restart: ' + last.needsRestart.join(', ') : ''));
    return t;
  }

  function mark(node, bad) {
    if (bad) node.className += ' bad';
    return node;
  }

  function statusOf(d) {
    var r = d.resolution || { kind: 'pending' };
    if (r.kind === 'bound') return ['ok', 'bound \\u00b7 ' + r.endpoints + ' endpoint' + (r.endpoints === 1 ? '' : 's')];
    if (r.kind === 'neg') return ['warn', 'neg: name does not exist'];
    if (r.kind === 'failed') return ['bad', (d.resolved ? 'failed, keeping last set: ' : 'failed: ') + r.reason];
    return ['warn', 'waiting for first resolution'];
  }

  function renderDestination(rt, d, at) {
    var box = el('div', 'dst', null, 'dst-' + rt + '-' + d.name);
    var st = statusOf(d);
    add(box, add(el('h4'), el('span', 'name', d.name), d.sni ? el('span', 'dim', ' (SNI) ', 'dst-sni-' + rt + '-' + d.name) : null,
      el('span', 'status ' + st[0], st[1], 'dst-status-' + rt + '-' + d.name),
      el('span', 'dim', ' ' + d.available + ' available, ' + d.failed + ' failed, ' + d.retired + ' retired, ' +
        d.open + ' open, ' + d.waiters + ' waiting', 'dst-counts-' + rt + '-' + d.name)));
    var table = el('table');
    var head = el('tr');
    ['endpoint', 'state', 'weight', 'load', 'open', 'pending', 'connects', 'failures', 'consecutive', 'ejected until'].forEach(function (h) { head.appendChild(el('th', null, h)); });
    table.appendChild(head);
    (d.endpoints || []).forEach(function (ep) {
      var k = ep.key;
      // The failure count is cumulative: red only while it grows (or the endpoint is failing now).
      var grew = num(rates('ep:' + rt + ':' + d.name + ':' + k, at, { failures: num(ep.failures) }).failures) > 0;
      // Not green while failing: an available endpoint whose last connects failed is shown as a warning.
      var failing = ep.state === 'available' && num(ep.consecutiveFailures) > 0;
      var state = el('td', 'state ' + ep.state + (failing ? ' failing' : ''), ep.state + (ep.healthy === false ? ' (health check)' : '') + (failing ? ', failing' : ''), 'ep-state-' + k);
      if (ep.state === 'failed' && ep.failedUntil) state.setAttribute('title', 'ejected until ' + clock(ep.failedUntil));
      else if (ep.healthy === false) state.setAttribute('title', 'ejected: failing its health check (no new connections)');
      add(table, add(el('tr', null, null, 'ep-' + k), el('td', 'mono', k), state,
        el('td', 'num', (num(ep.weight) * 100).toFixed(1) + '%', 'ep-weight-' + k),
        el('td', 'num', ep.load, 'ep-load-' + k), el('td', 'num', ep.open), el('td', 'num', ep.pending),
        el('td', 'num', ep.connects), el('td', grew || num(ep.consecutiveFailures) > 0 ? 'num bad' : 'num', ep.failures, 'ep-failures-' + k),
        el('td', num(ep.consecutiveFailures) > 0 ? 'num bad' : 'num', ep.consecutiveFailures, 'ep-consecutive-' + k),
        el('td', ep.failedUntil ? 'num bad' : 'num dim', ep.state === 'failed' && ep.failedUntil ? clock(ep.failedUntil) : '\\u2013', 'ep-ejected-' + k)));
    });
    if (!(d.endpoints || []).length) add(table, add(el('tr'), el('td', 'dim', 'no endpoints')));
    return add(box, table);
  }

  function renderRouter(rt, servers, rs, at) {
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
    var sni = rt.sniDestinations;
    if (sni) card.appendChild(el('p', 'dim', 'SNI destinations: ' + sni.count + ' of ' + sni.max + ' (least recently used closed beyond that)', 'rt-sni-' + id));
    (rt.destinations || []).forEach(function (d) { card.appendChild(renderDestination(id, d, at)); });
    if (!(rt.destinations || []).length) card.appendChild(el('p', 'dim', 'no destinations yet (created on the first connection)'));
    return card;
  }

  // Newest first, at the level the log wrote them; a repeated entry says how often and since when.
  function renderErrors(list) {
    var ul = el('ul', 'errors', null, 'errors');
    list.slice().reverse().forEach(function (e, i) {
      var ctx = Object.keys(e.context || {}).map(function (k) { return k + '=' + e.context[k]; }).join(' ');
      var n = num(e.count, 1);
      add(ul, add(el('li', e.level, null, 'err-' + i), el('span', 'mono', clock(e.at) + ' '), el('span', 'level', e.level + ' ', 'err-level-' + i),
        el('span', 'msg', e.msg), n > 1 ? el('span', 'count', ' \\u00d7' + n + ' since ' + clock(num(e.firstAt, e.at)), 'err-count-' + i) : null,
        el('span', 'dim', ctx ? ' ' + ctx : '')));
    });
    if (!list.length) ul.appendChild(el('li', 'dim', 'none'));
    return ul;
  }

  function render(st) {
    seen = new Set();
    var servers = st.servers || [], routers = st.routers || [];
    var rs = servers.map(function (s) {
      return rates('srv:' + s.router + ':' + s.srvAddr, st.at, { accepts: num(s.accepts), rx: num(s.rxBytes), tx: num(s.txBytes), failures: num(s.failures) });
    });
    document.getElementById('process').replaceChildren(renderProcess(st.process, st.processes, st.at, st.config, st.workers));
    document.getElementById('servers').replaceChildren.apply(document.getElementById('servers'),
      servers.map(function (s, i) { return renderServer(s, rs[i]); }));
    document.getElementById('routers').replaceChildren.apply(document.getElementById('routers'), routers.map(function (rt) {
      var mine = [], mineRates = [];
      servers.forEach(function (s, i) { if (s.router === rt.label) { mine.push(s); mineRates.push(rs[i]); } });
      return renderRouter(rt, mine, mineRates, st.at);
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
