/**
 * Prometheus metrics for `GET /metrics`: the process's default metrics plus podtun's own, all
 * computed at scrape time from one `router.stats()` snapshot in collect() callbacks (nothing
 * is counted per packet here). The only importer of prom-client.
 *
 * Counters carry the router's running totals; `{peer, transport}` labels name the transport
 * carrying the peer at scrape time.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { DROP_REASON_NAMES } from '../../core/drop-reason.js';
import { dropTotals } from '../../api/drop-totals.js';
import type { RouterStats } from '../../router/router.js';

export interface PodtunMetrics {
  /** The exposition format's content type. */
  readonly contentType: string;
  /** The text exposition of every metric, from one stats snapshot. */
  render(): Promise<string>;
}

export interface MetricsOptions {
  /** The router's stats now; undefined while the node is starting (only process metrics then). */
  stats: () => RouterStats | undefined;
  /** Default process metrics (CPU, memory, event loop, ...); default true. Tests turn them off. */
  processMetrics?: boolean;
}

/**
 * WebSocket connections closed before they authenticated, by why: the transport's counter and
 * the `reason` label (tunnel/ws/ws-admission.ts, ws-listener.ts).
 */
const WS_REFUSALS: ReadonlyArray<readonly [key: string, reason: string]> = [
  ['ws.refused.perSourceCap', 'per_source_cap'],
  ['ws.refused.globalCap', 'global_cap'],
  ['ws.handshakeTimeouts', 'handshake_timeout'],
  ['ws.authRejected', 'auth_rejected'],
  ['ws.proofFailures', 'proof_failure'],
  ['ws.preProofMessages', 'message_before_proof'],
];

export function createMetrics(options: MetricsOptions): PodtunMetrics {
  const registry = new Registry();
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry });

  // One snapshot per scrape: render() takes it, every collect() reads it.
  let snapshot: RouterStats | undefined;
  const registers = [registry];
  const peerLabels = ['peer', 'transport'] as const;

  const peerCounter = (name: string, help: string, pick: (p: RouterStats['peers'][number]) => number): void => {
    const counter: Counter<'peer' | 'transport'> = new Counter({
      name,
      help,
      labelNames: peerLabels,
      registers,
      collect() {
        counter.reset();
        for (const p of snapshot?.peers ?? []) counter.inc({ peer: p.node, transport: p.transport ?? 'none' }, pick(p));
      },
    });
  };
  peerCounter('podtun_peer_tx_bytes_total', 'Bytes of inner packets sent to the peer.', (p) => p.txBytes);
  peerCounter('podtun_peer_tx_packets_total', 'Inner packets sent to the peer.', (p) => p.txPackets);
  peerCounter('podtun_peer_rx_bytes_total', 'Bytes of inner packets received from the peer.', (p) => p.rxBytes);
  peerCounter('podtun_peer_rx_packets_total', 'Inner packets received from the peer.', (p) => p.rxPackets);

  /** A gauge per peer; a peer whose `pick` is undefined has no series. */
  const peerGauge = (name: string, help: string, pick: (p: RouterStats['peers'][number]) => number | undefined): void => {
    const gauge: Gauge<'peer' | 'transport'> = new Gauge({
      name,
      help,
      labelNames: peerLabels,
      registers,
      collect() {
        gauge.reset();
        for (const p of snapshot?.peers ?? []) {
          const value = pick(p);
          if (value !== undefined) gauge.set({ peer: p.node, transport: p.transport ?? 'none' }, value);
        }
      },
    });
  };
  const seconds = (ms: number | undefined): number | undefined => (ms === undefined ? undefined : ms / 1000);
  peerGauge('podtun_peer_up', '1 when the peer answers probes (state up), else 0.', (p) => (p.state === 'up' ? 1 : 0));
  peerGauge('podtun_peer_rtt_seconds',
    'Smoothed probe round-trip time to the peer, while it is up (absent before the first reply and while down).',
    (p) => seconds(p.rttMs));
  peerGauge('podtun_peer_last_heard_seconds', 'Since anything was last heard from the peer (absent when nothing ever was).',
    (p) => seconds(p.lastHeardAgeMs));
  peerGauge('podtun_peer_handshake_age_seconds',
    'Since the last completed handshake with the peer (sealed transports; absent before the first).',
    (p) => seconds(p.lastHandshakeAgeMs));
  const downReason: Gauge<'peer' | 'reason'> = new Gauge({
    name: 'podtun_peer_down_reason',
    help: '1 for a peer that is not up, labelled with why ("authentication failed", "no answer on udp", "connection refused on ws", "proxy refused (HTTP 403)", "no handshake answer", "key unknown", ...).',
    labelNames: ['peer', 'reason'] as const,
    registers,
    collect() {
      downReason.reset();
      for (const p of snapshot?.peers ?? []) {
        if (p.state !== 'up' && p.downReason !== undefined) downReason.set({ peer: p.node, reason: p.downReason }, 1);
      }
    },
  });
  const ownership: Gauge<'peer'> = new Gauge({
    name: 'podtun_peer_ownership_mismatch',
    help: '1 for a peer whose claim of subnets and this node\'s view of it (or its view of this node) disagree.',
    labelNames: ['peer'] as const,
    registers,
    collect() {
      ownership.reset();
      for (const p of snapshot?.peers ?? []) ownership.set({ peer: p.node }, p.ownershipMismatch === undefined ? 0 : 1);
    },
  });
  const drops: Counter<'reason'> = new Counter({
    name: 'podtun_drops_total',
    help: 'Packets dropped, by reason (router and transports).',
    labelNames: ['reason'] as const,
    registers,
    collect() {
      drops.reset();
      if (snapshot === undefined) return;
      for (const [reason, n] of dropsByReason(snapshot)) drops.inc({ reason }, n);
    },
  });
  const switches: Counter = new Counter({
    name: 'podtun_transport_switches_total',
    help: 'Changes of the transport carrying a peer (UDP <-> WebSocket).',
    registers,
    collect() {
      switches.reset();
      switches.inc(snapshot?.transport['switches'] ?? 0);
    },
  });

  const wsRefused: Counter<'reason'> = new Counter({
    name: 'podtun_ws_connections_refused_total',
    help: 'WebSocket connections closed before they authenticated, by reason (caps, deadlines, failed authentication).',
    labelNames: ['reason'] as const,
    registers,
    collect() {
      wsRefused.reset();
      const transport = snapshot?.transport;
      if (transport === undefined) return;
      for (const [key, reason] of WS_REFUSALS) {
        const n = transport[key];
        if (n !== undefined) wsRefused.inc({ reason }, n);
      }
    },
  });

  return {
    contentType: registry.contentType,
    async render() {
      snapshot = options.stats();
      try {
        return await registry.metrics();
      } finally {
        snapshot = undefined;
      }
    },
  };
}

/** Every router drop reason (zeros included, so the series exist), plus the transports' drop counters. */
export function dropsByReason(stats: RouterStats): Map<string, number> {
  const out = new Map<string, number>(DROP_REASON_NAMES.map((name) => [name, 0]));
  for (const [reason, n] of dropTotals(stats.drops, stats.transport)) out.set(reason, n);
  return out;
}
