/**
 * The peer:<name> layer, per configured peer: its state and transport as /status reports them,
 * whether UDP answers (a peer carried over WebSocket in `auto` names the UDP port to open), a TCP
 * connect to its WebSocket endpoint (or the proxy), then its path MTU (mtu-check.ts).
 */
import type { PeerReport, StatusReport } from '../../api/status-schema.js';
import { parseHostPort } from '../../core/config-check.js';
import { DEFAULT_TRANSPORTS } from '../../tunnel/transports.js';
import { transportChoice } from '../config/node-config.js';
import type { NodeConfig, NodeSpec } from '../config/node-config.js';
import { fail, pass, warn } from './doctor-check.js';
import type { DoctorCheck } from './doctor-check.js';
import type { DoctorProbes } from './doctor-probes.js';
import { mtuCheck } from './mtu-check.js';

const WS_CONNECT_TIMEOUT_MS = 1_500;

/** The checks of one peer, from the daemon's /status (doctor.ts runs them only when it answered). */
export async function peerChecks(probes: DoctorProbes, config: NodeConfig, peer: NodeSpec, status: StatusReport): Promise<DoctorCheck[]> {
  const layer = `peer:${peer.name}`;
  const seen = status.peers.find((p) => p.node === peer.name);
  const out: DoctorCheck[] = [];
  const reach = describeReach(peer);
  if (seen === undefined) {
    out.push(fail(layer, 'state', 'not in /status', 'see the daemon peers check'));
  } else if (seen.state === 'up') {
    out.push(pass(layer, 'state', `up${seen.rttMs === undefined ? '' : `, rtt ${seen.rttMs.toFixed(1)} ms`}`));
  } else if (seen.downReason !== undefined) {
    const detail = seen.downDetail === undefined ? '' : ` (${seen.downDetail})`;
    out.push(fail(layer, 'state', `${seen.state}: ${seen.downReason}${detail}${heardText(seen)}`, downReasonHint(seen.downReason, peer.name, reach)));
  } else {
    out.push(fail(layer, 'state', `${seen.state}: answers on no transport${heardText(seen)}`, `is podtun running on ${peer.name}? can this node reach it (${reach})?`));
  }
  if (seen !== undefined) out.push(transportCheck(layer, peer, seen), ownershipCheck(layer, peer, seen));
  out.push(udpCheck(layer, config, peer, seen));
  out.push(await wsCheck(probes, layer, config, peer));
  out.push(await mtuCheck(probes, config, peer, seen));
  return out;
}

/** Whether it and this node agree on who owns which subnets (their probes compare digests). */
function ownershipCheck(layer: string, peer: NodeSpec, seen: PeerReport): DoctorCheck {
  if (seen.ownershipMismatch === undefined) return pass(layer, 'subnets', `no disagreement in its probes (routed to it: ${seen.subnets.join(', ') || 'none'})`);
  return fail(layer, 'subnets', seen.ownershipMismatch,
    `the nodes' configs disagree: make nodes[${peer.name}].subnets here match what ${peer.name} claims in its own config, and this node's entry in ${peer.name}'s config match this node's`);
}

function transportCheck(layer: string, peer: NodeSpec, seen: PeerReport): DoctorCheck {
  const on = seen.transport ?? 'none';
  const since = seen.lastSwitch === undefined ? '' : `, since ${ago(seen.lastSwitch.atMs)} (${seen.lastSwitch.reason || `${seen.lastSwitch.from} -> ${seen.lastSwitch.to}`})`;
  const mode = preferenceText(peer);
  const first = peer.transports[0];
  if (peer.transports.length > 1 && on !== first && peer.transports.includes(on)) {
    return pass(layer, 'transport', `${on} (preference ${mode}: ${first ?? '?'} is not answering, firewall?${since})`);
  }
  if (seen.transport !== undefined && !peer.transports.includes(seen.transport)) {
    return fail(layer, 'transport', `${on}, but the config says ${mode}`, 'the daemon runs another config: send SIGHUP to reload');
  }
  return pass(layer, 'transport', `${on} (mode ${mode}${since})`);
}

function udpCheck(layer: string, config: NodeConfig, peer: NodeSpec, seen: PeerReport | undefined): DoctorCheck {
  if (!peer.transports.includes('udp')) return pass(layer, 'udp', `not used (transport: ${preferenceText(peer)})`);
  const configured = peer.endpoints['udp'];
  const where = (seen?.transport === 'udp' ? seen.endpoint : undefined) ?? configured;
  const listen = transportChoice(config, 'udp')?.listenAddress;
  const port = configured === undefined ? listen?.port : parseHostPort(configured).port;
  const firewall = `allow UDP ${port ?? '?'} both ways between this node (${listen?.text ?? '?'}) and ${peer.name} (${where ?? 'no endpoint'}): firewall?`;
  if (seen === undefined) return fail(layer, 'udp', 'unknown: the peer is not in /status', firewall);
  if (seen.transport === 'udp' && seen.state === 'up') return pass(layer, 'udp', `up on ${where ?? '?'}${seen.rttMs === undefined ? '' : `, rtt ${seen.rttMs.toFixed(1)} ms`}`);
  if (seen.transport === 'ws') {
    const since = seen.lastSwitch === undefined ? '' : ` since ${ago(seen.lastSwitch.atMs)}`;
    const detail = `UDP not answering (${where ?? 'no endpoint'}): traffic carried over WebSocket${since}`;
    // The restricted network podtun falls back for: the peer is reached, a warning says how.
    return seen.state === 'up' ? warn(layer, 'udp', detail, firewall) : fail(layer, 'udp', detail, firewall);
  }
  if (where === undefined) return fail(layer, 'udp', `${seen.state}: no endpoint, waiting for ${peer.name}'s probes`, `set nodes[${peer.name}].endpoint, or check that ${peer.name} can reach ${listen?.text ?? 'our UDP port'}`);
  return fail(layer, 'udp', `${seen.state}: no probe answered on ${where}`, firewall);
}

async function wsCheck(probes: DoctorProbes, layer: string, config: NodeConfig, peer: NodeSpec): Promise<DoctorCheck> {
  if (!peer.transports.includes('ws')) return pass(layer, 'websocket', `not used (transport: ${preferenceText(peer)})`);
  const wsEndpoint = peer.endpoints['ws'];
  if (wsEndpoint === undefined) {
    const listen = transportChoice(config, 'ws')?.listenAddress;
    return listen === undefined
      ? pass(layer, 'websocket', 'no wsEndpoint and no ws.listen here: not available')
      : pass(layer, 'websocket', `no wsEndpoint: ${peer.name} dials our ${listen.text}`);
  }
  let url: URL;
  try {
    url = new URL(wsEndpoint);
  } catch {
    return fail(layer, 'websocket', `bad wsEndpoint ${wsEndpoint}`, 'fix the config');
  }
  const port = url.port === '' ? (url.protocol === 'wss:' ? 443 : 80) : Number(url.port);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const proxy = config.proxy ?? undefined;
  if (proxy !== undefined) {
    const p = new URL(proxy);
    const why = await probes.tcpConnect(p.hostname, p.port === '' ? 80 : Number(p.port), WS_CONNECT_TIMEOUT_MS);
    if (why === undefined) return pass(layer, 'websocket', `proxy ${p.host} accepts TCP (dials ${wsEndpoint} through it)`);
    return fail(layer, 'websocket', `proxy ${p.host}: ${why}`, 'check the proxy setting and that the proxy runs');
  }
  const why = await probes.tcpConnect(host, port, WS_CONNECT_TIMEOUT_MS);
  if (why === undefined) return pass(layer, 'websocket', `TCP connect to ${host}:${port} ok (${wsEndpoint})`);
  return fail(layer, 'websocket', `TCP connect to ${host}:${port}: ${why}`, `is podtun on ${peer.name} listening (ws.listen)? allow TCP ${port} to it (firewall?)`);
}

/** The config's word for a preference: auto for the default order, else the kinds. */
function preferenceText(peer: NodeSpec): string {
  const isDefault = peer.transports.length === DEFAULT_TRANSPORTS.length && peer.transports.every((k, i) => k === DEFAULT_TRANSPORTS[i]);
  return isDefault ? 'auto' : peer.transports.join(',');
}

function describeReach(peer: NodeSpec): string {
  const known = Object.entries(peer.endpoints).map(([kind, text]) => `${kind} ${text}`);
  return known.length === 0 ? 'no endpoint: it dials us' : known.join(', ');
}

/** ", last heard 42 s ago" / ", never heard from". */
function heardText(seen: PeerReport): string {
  return seen.lastHeardAgeMs === undefined ? ', never heard from' : `, last heard ${ago(Date.now() - seen.lastHeardAgeMs)}`;
}

function ago(atMs: number): string {
  const s = Math.max(0, (Date.now() - atMs) / 1000);
  return `${s.toFixed(s < 10 ? 1 : 0)} s ago`;
}

/** What to do about a transport's reason (tunnel/seal/peer-sessions.ts, tunnel/udp/udp-transport.ts, tunnel/ws/ws-down-reason.ts words). */
function downReasonHint(reason: string, name: string, reach: string): string {
  if (reason.startsWith('authentication failed')) return `${name} and this node do not share the cluster secret, or its key differs from the one its lease names: compare clusterSecretFile on both`;
  if (reason.startsWith('proxy')) return `the proxy refuses the WebSocket dial to ${name} (${reach}): does it allow CONNECT to that port?`;
  if (reason.startsWith('connection refused') || reason.startsWith('no answer on')) return `is podtun running on ${name}, listening there? can this node reach it (${reach}): firewall?`;
  if (reason.startsWith('waiting for it to dial in')) return `${name} has no ws endpoint in its lease: it must dial this node; is podtun running on ${name} with this node's endpoint?`;
  if (reason.startsWith('TLS failed')) return `check caFile here and the certificate ${name} serves`;
  if (reason.startsWith('host name not resolved')) return `the endpoint's host name does not resolve from this node: check DNS`;
  if (reason.startsWith('key unknown')) return `this node has no public key for ${name} (its lease or nodes[].publicKey), or ${name} does not know this node's: run \`podtun key public\` on each and compare`;
  if (reason.startsWith('no handshake answer')) return `is podtun running on ${name} with encryption: sealed? can this node reach it (${reach})?`;
  if (reason.startsWith('unsealed')) return `${name} runs with encryption: none; both ends must have the same encryption setting`;
  return `is podtun running on ${name}? can this node reach it (${reach})?`;
}
