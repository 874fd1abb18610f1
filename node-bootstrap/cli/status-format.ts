/**
 * Plain-text views of a StatusReport (api/status-schema.ts) for `podtun status`, `routes` and
 * `peers`: aligned columns, no ANSI, the same on a terminal and in a pipe. Pure: the clock is a
 * parameter.
 */
import type { DropCounts, PeerReport, StatusReport, TransportCounters } from '../../api/status-schema.js';
import { dropTotals } from '../../api/drop-totals.js';

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** 1536 -> "1.5 KiB"; whole bytes below 1 KiB. */
export function humanBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${BYTE_UNITS[unit] ?? ''}`;
}

/** An elapsed time, coarse: "42s ago", "5m ago", "3h ago", "2d ago"; "just now" under a second. */
export function formatAgo(elapsedMs: number): string {
  const s = Math.floor(Math.max(0, elapsedMs) / 1000);
  if (s < 1) return 'just now';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function formatRtt(rttMs: number | undefined): string {
  if (rttMs === undefined) return '-';
  return rttMs < 10 ? `${rttMs.toFixed(2)}ms` : `${Math.round(rttMs)}ms`;
}

/** Columns padded to their widest cell, two spaces apart, trailing blanks trimmed. */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

const PEER_HEADERS = ['PEER', 'TRANSPORT', 'STATE', 'ENDPOINT', 'RTT', 'LAST HEARD', 'MTU', 'RX', 'TX', 'LAST SWITCH'] as const;

function lastSwitchText(peer: PeerReport, nowMs: number): string {
  const s = peer.lastSwitch;
  if (s === undefined) return '-';
  return `${formatAgo(nowMs - s.atMs)} (${s.from}->${s.to}: ${s.reason})`;
}

/** The peer table (`podtun peers`); nowMs is epoch ms, the clock of `lastSwitch.atMs`. */
export function formatPeers(report: StatusReport, nowMs: number): string {
  if (report.peers.length === 0) return 'no peers\n';
  const rows = report.peers.map((p) => [
    p.node,
    p.transport ?? '-',
    stateText(p),
    p.endpoint ?? '-',
    formatRtt(p.rttMs),
    p.lastHeardAgeMs === undefined ? 'never' : formatAgo(p.lastHeardAgeMs),
    String(p.mtu),
    humanBytes(p.rxBytes),
    humanBytes(p.txBytes),
    lastSwitchText(p, nowMs),
  ]);
  return formatTable(PEER_HEADERS, rows);
}

/** "up", "down (authentication failed)", "up (subnets disagree)". */
function stateText(p: PeerReport): string {
  if (p.state !== 'up' && p.downReason !== undefined) return `${p.state} (${p.downReason})`;
  return p.ownershipMismatch === undefined ? p.state : `${p.state} (${SUBNETS_DISAGREE})`;
}

const SUBNETS_DISAGREE = 'subnets disagree';

/**
 * Under the table, one line per peer that is not up and whose reason has a detail (where it came
 * from), and one per peer whose claim of subnets disagrees with this node's (both views).
 */
function formatPeerNotes(report: StatusReport): string {
  const lines: string[] = [];
  for (const p of report.peers) {
    if (p.state !== 'up' && p.downReason !== undefined && p.downDetail !== undefined) lines.push(`  ${p.node}: ${p.downReason}: ${p.downDetail}\n`);
    if (p.ownershipMismatch !== undefined) lines.push(`  ${p.node}: ${SUBNETS_DISAGREE}: ${p.ownershipMismatch}\n`);
  }
  return lines.join('');
}

/** "drops: spoofed 3, unauthenticated 2, no_route 1" (router and transports, largest first), or "drops: none". */
export function formatDrops(drops: DropCounts, transport: TransportCounters): string {
  const entries = [...dropTotals(drops, transport)].filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return `drops: ${entries.length === 0 ? 'none' : entries.map(([reason, n]) => `${reason} ${n}`).join(', ')}\n`;
}

/** `podtun status`: who this node is, its lease, its peers, its drops. */
export function formatStatus(report: StatusReport, nowMs: number): string {
  const head = formatTable(['node', report.node], [['lease', report.lease.join(', ') || '-']]);
  return `${head}\n${formatPeers(report, nowMs)}${formatPeerNotes(report)}\n${formatDrops(report.drops, report.transport)}`;
}

/** `podtun routes`: subnet -> node -> transport -> state. */
export function formatRoutes(report: StatusReport): string {
  return formatTable(
    ['SUBNET', 'NODE', 'TRANSPORT', 'STATE'],
    report.routes.map((r) => [r.subnet, r.node, r.transport, r.state]),
  );
}
