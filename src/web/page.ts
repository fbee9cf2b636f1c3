/**
 * The web page: plain HTML + JS, no framework, no external resources. Polls /api/traces and draws
 * each recent trace as a waterfall (one row per span, indented by depth, a bar placed on the
 * trace's time axis). Data is inserted with textContent only.
 */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>spanbridge — recent traces</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  :root { --fg: #1d2430; --muted: #6b7385; --line: #e3e6ec; --err: #c8312b; --bg: #fafbfc; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
  header { padding: 10px 16px; background: #20283a; color: #fff; display: flex; gap: 16px; align-items: baseline; }
  header h1 { font-size: 15px; margin: 0; font-weight: 600; }
  header #status { color: #b9c1d3; font-size: 12px; }
  main { padding: 12px 16px; }
  #procs { padding: 6px 16px; background: #eef1f6; border-bottom: 1px solid var(--line); color: var(--muted); font-size: 12px; }
  #procs .proc { display: inline-block; margin-right: 14px; }
  #procs .proc b { color: var(--fg); font-weight: 600; }
  .empty { color: var(--muted); padding: 24px 0; }
  .trace { background: #fff; border: 1px solid var(--line); border-radius: 6px; margin-bottom: 12px; overflow: hidden; }
  .trace.error { border-left: 4px solid var(--err); }
  .trace-head { display: flex; gap: 12px; padding: 6px 10px; background: #f3f5f8; border-bottom: 1px solid var(--line); align-items: baseline; }
  .trace-head .root { font-weight: 600; }
  .trace-head .meta, .trace-head .tid { color: var(--muted); font-size: 12px; }
  .trace-head .tid { margin-left: auto; font-family: ui-monospace, monospace; }
  table { width: 100%; border-collapse: collapse; table-layout: fixed; }
  td { padding: 3px 10px; border-top: 1px solid #f0f2f5; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  tr:first-child td { border-top: none; }
  td.service { width: 150px; font-weight: 500; }
  td.name { width: 34%; font-family: ui-monospace, monospace; font-size: 12px; }
  td.name .kind { color: var(--muted); margin-right: 6px; font-size: 11px; }
  td.status { width: 90px; font-family: ui-monospace, monospace; font-size: 12px; }
  tr.err td.status { color: var(--err); font-weight: 600; }
  td.bar { position: relative; }
  .track { position: relative; height: 14px; background: #f4f6f9; border-radius: 3px; }
  .fill { position: absolute; top: 0; bottom: 0; border-radius: 3px; min-width: 2px; }
  tr.err .fill { outline: 2px solid var(--err); }
  td.dur { width: 80px; text-align: right; font-variant-numeric: tabular-nums; color: var(--muted); }
</style>
</head>
<body>
<header><h1>spanbridge — recent traces</h1><span id="status">loading…</span></header>
<div id="procs">traced processes: …</div>
<main id="traces"><div class="empty">No finished trace yet. Traces appear here a moment after their last span.</div></main>
<script>
(function () {
  'use strict';
  var main = document.getElementById('traces');
  var status = document.getElementById('status');
  var last = '';
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  // Services get distinct colours in order of first appearance (kept across refreshes).
  var PALETTE = ['#5b8def', '#e8964a', '#4fb286', '#b565d9', '#d95b73', '#3fb8c9', '#c9b03f', '#7a869a'];
  var colours = {};
  var nextColour = 0;
  function colour(s) {
    if (!(s in colours)) colours[s] = PALETTE[nextColour++ % PALETTE.length];
    return colours[s];
  }
  function ms(v) {
    if (v < 1) return Math.round(v * 1000) + ' µs';
    if (v < 1000) return v.toFixed(v < 10 ? 2 : 1) + ' ms';
    return (v / 1000).toFixed(2) + ' s';
  }
  function renderTrace(t) {
    var box = el('section', 'trace' + (t.error ? ' error' : ''));
    box.dataset.traceId = t.traceId;
    var head = el('div', 'trace-head');
    head.appendChild(el('span', 'root', t.rootName));
    head.appendChild(el('span', 'meta', t.spans.length + ' spans · ' + t.services.join(', ') + ' · ' + ms(t.durationMs) +
      ' · ' + new Date(t.startTimeUnixMs).toLocaleTimeString() + (t.late ? ' · late spans' : '')));
    head.appendChild(el('span', 'tid', t.traceId));
    box.appendChild(head);
    var table = el('table');
    var total = t.durationMs > 0 ? t.durationMs : 1;
    t.spans.forEach(function (s) {
      var tr = el('tr', 'span-row' + (s.error ? ' err' : ''));
      tr.dataset.service = s.service;
      tr.title = Object.keys(s.attributes).map(function (k) { return k + '=' + s.attributes[k]; }).join('\\n');
      tr.appendChild(el('td', 'service', s.service));
      var name = el('td', 'name');
      name.style.paddingLeft = (10 + 16 * s.depth) + 'px';
      name.appendChild(el('span', 'kind', s.kind));
      name.appendChild(document.createTextNode(s.name + s.peer + (s.orphan ? ' ↑' : '')));
      tr.appendChild(name);
      tr.appendChild(el('td', 'status', s.status));
      var bar = el('td', 'bar');
      var track = el('div', 'track');
      var fill = el('div', 'fill');
      fill.style.left = (100 * s.offsetMs / total) + '%';
      fill.style.width = Math.max(0.3, 100 * s.durationMs / total) + '%';
      fill.style.background = colour(s.service);
      track.appendChild(fill);
      bar.appendChild(track);
      tr.appendChild(bar);
      tr.appendChild(el('td', 'dur', ms(s.durationMs)));
      table.appendChild(tr);
    });
    box.appendChild(table);
    return box;
  }
  function refreshProcesses() {
    fetch('api/processes', { cache: 'no-store' })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        var box = document.getElementById('procs');
        box.textContent = 'traced processes (' + data.processes.length + '): ';
        data.processes.forEach(function (p) {
          var s = el('span', 'proc');
          s.dataset.service = p.service;
          // How its server spans get http.route, on hover (framework, declared, heuristic).
          if (p.routes) s.title = 'routes: ' + p.routes;
          s.appendChild(el('b', '', p.service));
          s.appendChild(document.createTextNode(' pid ' + p.pid + ' · ' + p.tracer + (p.probes === null ? '' : ' · ' + p.probes + ' probes')));
          box.appendChild(s);
        });
      })
      .catch(function () {});
  }
  function refresh() {
    refreshProcesses();
    fetch('api/traces?limit=30', { cache: 'no-store' })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        var text = JSON.stringify(data.traces.map(function (t) { return t.traceId + t.spans.length; }));
        status.textContent = data.traces.length + ' recent traces · updated ' + new Date().toLocaleTimeString();
        if (text === last) return;
        last = text;
        if (data.traces.length === 0) return;
        main.textContent = '';
        data.traces.forEach(function (t) { main.appendChild(renderTrace(t)); });
        document.body.dataset.rendered = String(data.traces.length);
      })
      .catch(function (e) { status.textContent = 'agent unreachable (' + e.message + ')'; });
  }
  refresh();
  setInterval(refresh, 2000);
})();
</script>
</body>
</html>
`;
