// podtun dashboard, plain browser JS (no bundler), uPlot as the global `uPlot`. Three feeds, all
// from the server that served the page:
//  1. /events: one snapshot per second -> this node's links, the peers table, routes, drops;
//  2. /api/history: the daemon's per-peer samples (last 15 min) and events, read whole at load
//     (so a reload or a late viewer sees what happened), then what is newer every interval;
//  3. /api/cluster: every node's links, asked of the peers by the daemon, every CLUSTER_POLL_MS.
'use strict';
(function () {
  const CLUSTER_POLL_MS = 5000;
  const EVENTS_SHOWN = 50;
  const COLORS = { udp: '#2e7d32', ws: '#1565c0', down: '#c62828', unknown: '#999' };
  const SERIES_COLORS = ['#e65100', '#6a1b9a', '#00838f', '#ad1457', '#558b2f', '#4527a0', '#f9a825', '#37474f'];
  const SVG_NS = 'http://www.w3.org/2000/svg';

  let prev = null; // last snapshot, for the live rates
  // The daemon's history, merged across fetches: sample time (ms) -> peer -> { mbps, rtt }.
  const hist = { intervalMs: 2000, windowMs: 15 * 60_000, lastT: 0, samples: new Map(), events: new Map() };
  // The charts, also for the browser test and the console.
  const charts = { throughput: null, rtt: null };
  window.podtunCharts = charts;
  const chartKeys = { throughput: '', rtt: '' };

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, text) {
    const e = tag.startsWith('svg:') ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  function linkKind(p) { return p.state === 'down' ? 'down' : (p.transport === 'ws' ? 'ws' : p.transport === 'udp' ? 'udp' : 'unknown'); }
  function fmt(n, d) { return n === null || n === undefined ? '–' : n.toFixed(d); }
  function clock(ms) { return new Date(ms).toLocaleTimeString(); }
  function ago(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    return s < 90 ? `${s} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
  }
  function mbpsOf(txBps, rxBps) { return txBps === null || rxBps === null ? null : (txBps + rxBps) / 1e6; }
  function fillTable(id, rows) { $(id).tBodies[0].replaceChildren(...rows); }
  function row(attrs, cells) {
    const tr = el('tr', attrs);
    for (const c of cells) tr.append(c instanceof Node ? c : el('td', {}, c));
    return tr;
  }

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

  function sealedText(p) {
    if (!p.sealed) return 'no';
    return p.lastHandshakeAgeMs === null ? 'yes' : `yes, keys ${Math.round(p.lastHandshakeAgeMs / 1000)} s old`;
  }

  // Over WebSocket the endpoint worth showing is the WebSocket one; a peer that dials us has none.
  function endpointText(p) {
    if (p.transport === 'ws') return p.endpoints.ws || 'inbound (the peer dials)';
    return p.endpoint || '–';
  }

  function drawPeers(snap, rate) {
    fillTable('peers', snap.peers.map((p) => {
      const kind = linkKind(p);
      const state = el('td', { class: `state ${kind === 'down' ? 'down' : ''}` }, p.state);
      if (p.downReason) {
        state.append(' ', el('span', { class: 'reason', title: p.downDetail || '' }, `(${p.downReason})`));
      }
      if (p.ownershipMismatch) {
        state.append(' ', el('span', { class: 'reason ownership', title: p.ownershipMismatch }, '(subnets disagree)'));
      }
      const sw = p.lastSwitch;
      const lastSwitch = el('td', sw ? { class: 'last-switch', 'data-at': sw.atMs } : { class: 'last-switch' },
        sw ? `${clock(sw.atMs)} (${sw.from} → ${sw.to}: ${sw.reason})` : '–');
      // Last heard matters for a link that is not up: how long it has been silent.
      const heard = p.state !== 'up' && p.lastHeardAgeMs !== null ? ago(p.lastHeardAgeMs) : '–';
      return row({ 'data-peer': p.node, 'data-latest-mbps': (rate.get(p.node) || 0).toFixed(3) }, [
        p.node, el('td', { class: `transport ${p.transport || ''}` }, p.transport || '?'), state,
        fmt(p.rttMs, 2), fmt(rate.get(p.node), 1), el('td', { class: 'endpoint' }, endpointText(p)), lastSwitch,
        el('td', { class: 'last-heard' }, heard), sealedText(p),
      ]);
    }));
  }

  function drawRoutesAndDrops(snap) {
    const routes = snap.localSubnets.map((s) =>
      row({ 'data-subnet': s, 'data-node': snap.node }, [s, `${snap.node} (local)`, '–', 'local']));
    for (const p of snap.peers) {
      for (const s of p.subnets) {
        routes.push(row({ 'data-subnet': s, 'data-node': p.node }, [s, p.node,
          el('td', { class: p.transport || '' }, p.transport || '?'), el('td', { class: p.state === 'down' ? 'down' : '' }, p.state)]));
      }
    }
    fillTable('routes', routes);
    const drops = Object.entries(snap.drops).sort((a, b) => b[1] - a[1]);
    fillTable('drops', drops.length === 0
      ? [row({}, [el('td', { colspan: 2 }, 'none')])]
      : drops.map(([reason, count]) => row({ 'data-reason': reason }, [reason, count])));
  }

  function onSnapshot(snap) {
    $('node-name').textContent = snap.node;
    const conn = $('conn');
    conn.textContent = snap.error ? `status error: ${snap.error}` : `live · ${clock(snap.t)}`;
    conn.className = snap.error ? 'bad' : '';
    if (snap.error) return;
    const rate = rates(snap);
    drawTopology(snap, rate);
    drawPeers(snap, rate);
    drawRoutesAndDrops(snap);
    prev = snap;
    document.body.dataset.snapshots = String((Number(document.body.dataset.snapshots) || 0) + 1);
  }

  // --- the daemon's history ---

  function mergeHistory(h) {
    hist.intervalMs = h.intervalMs;
    hist.windowMs = h.windowMs;
    for (const [peer, s] of Object.entries(h.peers)) {
      s.t.forEach((t, k) => {
        if (!hist.samples.has(t)) hist.samples.set(t, new Map());
        hist.samples.get(t).set(peer, { mbps: mbpsOf(s.txBps[k], s.rxBps[k]), rtt: s.rttMs[k] });
        hist.lastT = Math.max(hist.lastT, t);
      });
    }
    for (const e of h.events) hist.events.set(`${e.t}|${e.peer}|${e.kind}`, e);
    const oldest = h.t - hist.windowMs;
    for (const t of hist.samples.keys()) if (t <= oldest) hist.samples.delete(t);
    for (const [key, e] of hist.events) if (e.t <= oldest) hist.events.delete(key);
    $('history-note').textContent = `sampled every ${hist.intervalMs / 1000} s by the daemon` +
      (h.untracked > 0 ? `; ${h.untracked} peers beyond the limit not kept` : '');
  }

  function drawChart(key, boxId, label, pick) {
    const times = [...hist.samples.keys()].sort((a, b) => a - b);
    const peers = [...new Set(times.flatMap((t) => [...hist.samples.get(t).keys()]))].sort();
    const data = [times.map((t) => t / 1000), ...peers.map((p) => times.map((t) => {
      const v = hist.samples.get(t).get(p);
      return v === undefined ? null : pick(v);
    }))];
    const box = $(boxId);
    box.dataset.points = String(times.length);
    if (charts[key] !== null && chartKeys[key] === peers.join(',')) {
      charts[key].setData(data);
      return;
    }
    if (charts[key] !== null) charts[key].destroy();
    chartKeys[key] = peers.join(',');
    charts[key] = new uPlot({
      width: Math.max(300, box.clientWidth || 600), height: 200,
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [{}, { label, size: 60 }],
      series: [{}, ...peers.map((p, i) => ({
        label: p, stroke: SERIES_COLORS[i % SERIES_COLORS.length], width: 2,
        value: (u, v) => (v === null || v === undefined ? '–' : v.toFixed(1)),
      }))],
    }, data, box);
  }

  function eventText(e) {
    if (e.kind === 'switch') return `switched ${e.from} → ${e.to}: ${e.reason}`;
    if (e.kind === 'removed') return 'removed from the lease set';
    return `${e.from} → ${e.to}${e.reason ? ` (${e.reason})` : ''}`;
  }

  function drawEvents() {
    const events = [...hist.events.values()].sort((a, b) => b.t - a.t).slice(0, EVENTS_SHOWN);
    fillTable('events', events.length === 0
      ? [row({}, [el('td', { colspan: 3 }, 'none')])]
      : events.map((e) => row({ 'data-peer': e.peer, 'data-kind': e.kind, 'data-t': e.t }, [clock(e.t), e.peer, eventText(e)])));
  }

  async function loadHistory() {
    // An interval back: a switch is stamped when it happened, a little before the sample that saw it.
    const since = hist.lastT === 0 ? '' : `?since=${hist.lastT - hist.intervalMs}`;
    try {
      const res = await fetch(`/api/history${since}`, { cache: 'no-store' });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      mergeHistory(await res.json());
      drawChart('throughput', 'chart', 'Mbit/s', (v) => v.mbps);
      drawChart('rtt', 'rtt-chart', 'ms', (v) => v.rtt);
      drawEvents();
      document.body.dataset.historyLoads = String((Number(document.body.dataset.historyLoads) || 0) + 1);
    } catch (error) {
      $('history-note').textContent = `history unavailable: ${error.message}`;
    }
    setTimeout(loadHistory, hist.intervalMs);
  }

  // --- the cluster view ---

  function drawCluster(c) {
    const names = [];
    for (const n of c.nodes) {
      if (!names.includes(n.node)) names.push(n.node);
      for (const l of n.links) if (!names.includes(l.peer)) names.push(l.peer);
    }
    const cx = 220, cy = 150, r = 115;
    const pos = new Map(names.map((name, i) => {
      const a = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(names.length, 1);
      return [name, { x: cx + r * Math.cos(a), y: cy + r * Math.sin(a) }];
    }));
    const svg = $('cluster-map');
    svg.replaceChildren();
    const lines = el('svg:g', {});
    const circles = el('svg:g', {});
    const rows = [];
    for (const n of c.nodes) {
      const from = pos.get(n.node);
      for (const l of n.links) {
        const to = pos.get(l.peer);
        const kind = linkKind(l);
        const line = el('svg:line', {
          class: 'clink', 'data-from': n.node, 'data-to': l.peer, 'data-state': l.state, 'data-transport': l.transport || '',
          x1: from.x, y1: from.y, x2: (from.x + to.x) / 2, y2: (from.y + to.y) / 2, stroke: COLORS[kind], 'stroke-width': 3,
        });
        if (l.state === 'down') line.setAttribute('stroke-dasharray', '6 4');
        lines.append(line);
        const state = el('td', { class: `state ${kind === 'down' ? 'down' : ''}` }, l.state);
        if (l.downReason) state.append(' ', el('span', { class: 'reason' }, `(${l.downReason})`));
        if (l.state !== 'up' && l.lastHeardAgeMs !== null) state.append(`, heard ${ago(l.lastHeardAgeMs)}`);
        rows.push(row({ 'data-from': n.node, 'data-to': l.peer, 'data-state': l.state }, [n.node, l.peer,
          el('td', { class: l.transport || '' }, l.transport || '?'), state, fmt(l.rttMs, 2), fmt(mbpsOf(l.txBps, l.rxBps), 1)]));
      }
    }
    const errors = [];
    for (const name of names) {
      const n = c.nodes.find((m) => m.node === name);
      const failed = n === undefined || n.error !== null;
      const g = el('svg:g', { class: `cnode${failed ? ' unreachable' : ''}`, 'data-node': name });
      g.append(el('svg:circle', { cx: pos.get(name).x, cy: pos.get(name).y, r: 22, fill: n && n.address === null && n.error === null ? '#263238' : '#fff',
        stroke: failed ? COLORS.down : '#263238', 'stroke-width': 2, 'stroke-dasharray': failed ? '4 3' : 'none' }));
      g.append(el('svg:text', { x: pos.get(name).x, y: pos.get(name).y + 4, 'text-anchor': 'middle', 'font-weight': 600,
        fill: n && n.address === null && n.error === null ? '#fff' : '#222' }, name));
      circles.append(g);
      if (n !== undefined && n.error !== null) errors.push(el('li', { 'data-node': name }, `${name}: ${n.error}`));
    }
    if (!c.peersAsked) errors.push(el('li', {}, "peers' dashboards are not asked: set dashboard.peerPort on every node"));
    svg.append(lines, circles);
    fillTable('cluster-links', rows);
    $('cluster-nodes').replaceChildren(...errors);
    document.body.dataset.clusterLoads = String((Number(document.body.dataset.clusterLoads) || 0) + 1);
  }

  async function loadCluster() {
    try {
      const res = await fetch('/api/cluster', { cache: 'no-store' });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      drawCluster(await res.json());
    } catch (error) {
      $('cluster-nodes').replaceChildren(el('li', { class: 'bad' }, `cluster view unavailable: ${error.message}`));
    }
    setTimeout(loadCluster, CLUSTER_POLL_MS);
  }

  const events = new EventSource('/events');
  events.onmessage = (ev) => onSnapshot(JSON.parse(ev.data));
  events.onerror = () => { const c = $('conn'); c.textContent = 'disconnected, retrying…'; c.className = 'bad'; };
  void loadHistory();
  void loadCluster();
})();
