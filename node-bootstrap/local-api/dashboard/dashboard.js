// podtun dashboard, plain browser JS (no bundler). Reads /events (one snapshot per second),
// draws the cluster, routes, drops, and per-peer throughput with uPlot (global `uPlot`).
'use strict';
(function () {
  const HISTORY_S = 300;
  const COLORS = { udp: '#2e7d32', ws: '#1565c0', down: '#c62828', unknown: '#999' };
  const SERIES_COLORS = ['#e65100', '#6a1b9a', '#00838f', '#ad1457', '#558b2f', '#4527a0', '#f9a825', '#37474f'];
  const SVG_NS = 'http://www.w3.org/2000/svg';

  let prev = null; // last snapshot, for rates
  const history = { t: [], byPeer: new Map() }; // byPeer: node -> array of Mbit/s (aligned with t)
  let chart = null;
  let chartPeers = '';

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, text) {
    const e = tag.startsWith('svg:') ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  function linkKind(p) { return p.state === 'down' ? 'down' : (p.transport === 'ws' ? 'ws' : p.transport === 'udp' ? 'udp' : 'unknown'); }
  function fmt(n, d) { return n === null || n === undefined ? '–' : n.toFixed(d); }

  function rates(snap) {
    const out = new Map();
    for (const p of snap.peers) {
      const before = prev && prev.peers.find((q) => q.node === p.node);
      const dt = prev ? (snap.t - prev.t) / 1000 : 0;
      let mbps = 0;
      if (before && dt > 0) {
        const bytes = (p.txBytes - before.txBytes) + (p.rxBytes - before.rxBytes);
        mbps = Math.max(0, (bytes * 8) / dt / 1e6);
      }
      out.set(p.node, mbps);
    }
    return out;
  }

  function drawTopology(snap, rate) {
    const svg = $('topology');
    svg.replaceChildren();
    const cx = 220, cy = 150, r = 110;
    const n = snap.peers.length;
    const links = el('svg:g', { id: 'links' });
    const nodes = el('svg:g', { id: 'nodes' });
    snap.peers.forEach((p, i) => {
      const a = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(n, 1);
      const x = cx + r * Math.cos(a), y = cy + r * Math.sin(a);
      const kind = linkKind(p);
      const line = el('svg:line', {
        class: 'link', 'data-peer': p.node, 'data-transport': p.transport || '', 'data-state': p.state,
        x1: cx, y1: cy, x2: x, y2: y, stroke: COLORS[kind], 'stroke-width': 3,
      });
      if (p.state === 'down') line.setAttribute('stroke-dasharray', '6 4');
      links.append(line);
      const mx = (cx + x) / 2, my = (cy + y) / 2;
      links.append(el('svg:text', { x: mx + 6, y: my - 4, fill: COLORS[kind] },
        `${p.transport || '?'} ${fmt(p.rttMs, 1)} ms · ${fmt(rate.get(p.node), 1)} Mb/s`));
      const g = el('svg:g', { class: 'node peer', 'data-node': p.node });
      g.append(el('svg:circle', { cx: x, cy: y, r: 22, fill: '#fff', stroke: COLORS[kind], 'stroke-width': 2 }));
      g.append(el('svg:text', { x, y: y + 4, 'text-anchor': 'middle', 'font-weight': 600 }, p.node));
      nodes.append(g);
    });
    const self = el('svg:g', { class: 'node self', 'data-node': snap.node });
    self.append(el('svg:circle', { cx, cy, r: 28, fill: '#263238' }));
    self.append(el('svg:text', { x: cx, y: cy + 4, 'text-anchor': 'middle', fill: '#fff', 'font-weight': 600 }, snap.node));
    nodes.append(self);
    svg.append(links, nodes);
  }

  function fillTable(id, rows) {
    const body = $(id).tBodies[0];
    body.replaceChildren(...rows);
  }

  function sealedText(p) {
    if (!p.sealed) return 'no';
    return p.lastHandshakeAgeMs === null ? 'yes' : `yes, keys ${Math.round(p.lastHandshakeAgeMs / 1000)} s old`;
  }

  function drawTables(snap, rate) {
    fillTable('peers', snap.peers.map((p) => {
      const kind = linkKind(p);
      const tr = el('tr', { 'data-peer': p.node, 'data-latest-mbps': (rate.get(p.node) || 0).toFixed(3) });
      tr.append(el('td', {}, p.node), el('td', { class: p.transport || '' }, p.transport || '?'),
        el('td', { class: kind === 'down' ? 'down' : '' }, p.downReason ? `${p.state} (${p.downReason})` : p.state),
        el('td', {}, fmt(p.rttMs, 2)), el('td', {}, fmt(rate.get(p.node), 1)), el('td', {}, p.endpoint || '–'),
        el('td', {}, sealedText(p)));
      if (p.lastSwitch) tr.title = `last switch ${p.lastSwitch.from} → ${p.lastSwitch.to}: ${p.lastSwitch.reason}`;
      return tr;
    }));
    const routes = [];
    for (const s of snap.localSubnets) {
      const tr = el('tr', { 'data-subnet': s, 'data-node': snap.node });
      tr.append(el('td', {}, s), el('td', {}, `${snap.node} (local)`), el('td', {}, '–'), el('td', {}, 'local'));
      routes.push(tr);
    }
    for (const p of snap.peers) {
      for (const s of p.subnets) {
        const tr = el('tr', { 'data-subnet': s, 'data-node': p.node });
        tr.append(el('td', {}, s), el('td', {}, p.node), el('td', { class: p.transport || '' }, p.transport || '?'),
          el('td', { class: p.state === 'down' ? 'down' : '' }, p.state));
        routes.push(tr);
      }
    }
    fillTable('routes', routes);
    const drops = Object.entries(snap.drops).sort((a, b) => b[1] - a[1]);
    fillTable('drops', drops.length === 0
      ? [el('tr', {}, '')].map((tr) => { tr.append(el('td', { colspan: 2 }, 'none')); return tr; })
      : drops.map(([reason, count]) => {
        const tr = el('tr', { 'data-reason': reason });
        tr.append(el('td', {}, reason), el('td', {}, count));
        return tr;
      }));
  }

  function pushHistory(snap, rate) {
    const t = snap.t / 1000;
    history.t.push(t);
    for (const p of snap.peers) {
      if (!history.byPeer.has(p.node)) history.byPeer.set(p.node, history.t.slice(0, -1).map(() => null));
    }
    for (const [node, arr] of history.byPeer) arr.push(rate.has(node) ? rate.get(node) : null);
    while (history.t.length > 0 && history.t[0] < t - HISTORY_S) {
      history.t.shift();
      for (const arr of history.byPeer.values()) arr.shift();
    }
  }

  function drawChart() {
    const peers = [...history.byPeer.keys()].sort();
    const data = [history.t, ...peers.map((p) => history.byPeer.get(p))];
    const box = $('chart');
    const width = Math.max(300, box.clientWidth || 600);
    if (chart === null || chartPeers !== peers.join(',')) {
      if (chart !== null) chart.destroy();
      chartPeers = peers.join(',');
      chart = new uPlot({
        width, height: 260,
        scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
        axes: [{}, { label: 'Mbit/s', size: 60 }],
        series: [{}, ...peers.map((p, i) => ({
          label: p, stroke: SERIES_COLORS[i % SERIES_COLORS.length], width: 2,
          value: (u, v) => (v === null || v === undefined ? '–' : v.toFixed(1)),
        }))],
      }, data, box);
    } else {
      chart.setData(data);
    }
    box.dataset.points = String(history.t.length);
  }

  function onSnapshot(snap) {
    $('node-name').textContent = snap.node;
    const conn = $('conn');
    conn.textContent = snap.error ? `status error: ${snap.error}` : `live · ${new Date(snap.t).toLocaleTimeString()}`;
    conn.className = snap.error ? 'bad' : '';
    if (snap.error) return;
    const rate = rates(snap);
    drawTopology(snap, rate);
    drawTables(snap, rate);
    pushHistory(snap, rate);
    drawChart();
    prev = snap;
    document.body.dataset.snapshots = String((Number(document.body.dataset.snapshots) || 0) + 1);
  }

  const events = new EventSource('/events');
  events.onmessage = (ev) => onSnapshot(JSON.parse(ev.data));
  events.onerror = () => { const c = $('conn'); c.textContent = 'disconnected, retrying…'; c.className = 'bad'; };
})();
