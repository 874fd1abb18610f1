/**
 * The dashboard's cluster view: every node's links, not just this node's. The daemon asks its
 * peers' dashboards; the page only ever talks to the dashboard that served it.
 *
 * Why the daemon aggregates, and not the page:
 * - An operator reaches one dashboard, usually through a port-forward to loopback; from there
 *   the page could not reach the other nodes, and opening CORS on every dashboard would let any
 *   web page the operator visits read the cluster's topology.
 * - Where peers are: a node knows its peers' lease addresses, not their dashboards. Every node
 *   of a cluster runs the same config, so `dashboard.peerPort` names the port once and a peer's
 *   dashboard is asked at its lease address (UDP endpoint's host, else the WebSocket
 *   endpoint's) on that port. Its dashboard must then listen on an address peers reach
 *   (`dashboard.listen: <node IP>:9403`), which shows read-only status to that network: keep it
 *   behind the node firewall or a NetworkPolicy. Without peerPort nothing is asked and the view
 *   holds this node alone.
 *
 * Why it cannot be used as a proxy or an amplifier:
 * - The targets are this node's own peers only, taken from its own status; no address, port or
 *   path ever comes from a request. Each is asked one fixed path, GET /api/links, which answers
 *   that node's own links and never asks anyone in turn.
 * - Bounded: at most maxPeers peers, concurrency at a time, each within timeoutMs and
 *   maxReplyBytes; the reply is checked field by field and only those fields go to the page; a
 *   reply naming another node is refused.
 * - Asked only when a viewer asks (/api/cluster), at most once per refreshMs however many
 *   viewers there are (one round in flight, the last result cached); nothing runs while nobody
 *   looks, so there is no timer to leave behind.
 */
import { request } from 'node:http';
import { errorMessage } from '../../../core/config-check.js';
import { formatEndpoint, parseEndpoint } from '../../../core/endpoint.js';
import type { PeerReport, StatusReport } from '../../../api/status-schema.js';
import type { PeerState, TransportSwitch } from '../../../core/transport.js';
import type { LinkRates } from '../link-history.js';

/** The one path a dashboard asks its peers. */
export const LINKS_PATH = '/api/links';

/** One link as seen from one end. */
export interface LinkView {
  peer: string;
  state: PeerState;
  transport: string | null;
  endpoint: string | null;
  rttMs: number | null;
  downReason: string | null;
  /** ms since anything was heard from the peer; null when nothing ever was. */
  lastHeardAgeMs: number | null;
  lastSwitch: TransportSwitch | null;
  /** The newest history sample's rates; null before the second sample. */
  txBps: number | null;
  rxBps: number | null;
}

/** GET /api/links: one node's own links. */
export interface LinksReply {
  node: string;
  /** Wall-clock ms when its status was read. */
  t: number;
  links: LinkView[];
}

export interface ClusterNode {
  node: string;
  /** The dashboard asked (host:port); null for this node and for peers not asked. */
  address: string | null;
  links: LinkView[];
  /** Why its links are missing (no answer, refused, not asked). */
  error: string | null;
}

/** GET /api/cluster. */
export interface ClusterReply {
  t: number;
  /** This node first, then its peers in status order. */
  nodes: ClusterNode[];
  /** False when `dashboard.peerPort` is not set: the view holds this node alone. */
  peersAsked: boolean;
}

/** A peer's dashboard to ask. */
export interface PeerTarget {
  node: string;
  /** Host without brackets (IPv6 literal, IPv4 literal or a name from a wsEndpoint); undefined when its lease has none. */
  host: string | undefined;
}

export interface ClusterViewOptions {
  /** This node's status now. */
  status: () => Promise<StatusReport>;
  /** The newest rates of a peer (the dashboard's history). */
  rates: (peer: string) => LinkRates | undefined;
  /** Peers' dashboard port (`dashboard.peerPort`); undefined: peers are not asked. */
  peerPort: number | undefined;
  /** One peer's whole answer (default 1500 ms). */
  timeoutMs?: number;
  /** Peers asked at most (default 64); the rest are listed with an error. */
  maxPeers?: number;
  /** Requests at a time (default 8). */
  concurrency?: number;
  /** A reply larger than this is cut off and refused (default 256 KiB). */
  maxReplyBytes?: number;
  /** A result younger than this is served again (default 5000 ms). */
  refreshMs?: number;
}

export interface ClusterView {
  get(): Promise<ClusterReply>;
  /** Aborts a round in flight. Safe twice. */
  close(): void;
}

const DEFAULTS = { timeoutMs: 1500, maxPeers: 64, concurrency: 8, maxReplyBytes: 256 * 1024, refreshMs: 5000 };

/** This node's links, from its status and its history's newest rates. */
export function linksOf(report: StatusReport, rates: (peer: string) => LinkRates | undefined, t: number): LinksReply {
  return {
    node: report.node,
    t,
    links: report.peers.map((p): LinkView => {
      const r = rates(p.node);
      return {
        peer: p.node,
        state: p.state,
        transport: p.transport ?? null,
        endpoint: p.endpoint ?? null,
        rttMs: p.rttMs ?? null,
        downReason: p.downReason ?? null,
        lastHeardAgeMs: p.lastHeardAgeMs ?? null,
        lastSwitch: p.lastSwitch ?? null,
        txBps: r?.txBps ?? null,
        rxBps: r?.rxBps ?? null,
      };
    }),
  };
}

/** Where a peer's dashboard is: the host of its lease's UDP endpoint, else of its WebSocket endpoint. */
export function peerTarget(peer: Pick<PeerReport, 'node' | 'endpoints' | 'endpoint'>): PeerTarget {
  for (const text of [peer.endpoints['udp'], peer.endpoints['ws'], peer.endpoint]) {
    const host = text === undefined ? undefined : hostOf(text);
    if (host !== undefined) return { node: peer.node, host };
  }
  return { node: peer.node, host: undefined };
}

function hostOf(endpoint: string): string | undefined {
  if (/^wss?:\/\//.test(endpoint)) {
    try {
      return new URL(endpoint).hostname.replace(/^\[(.*)\]$/, '$1') || undefined;
    } catch {
      return undefined;
    }
  }
  try {
    return parseEndpoint(endpoint).host;
  } catch {
    return undefined;
  }
}

export function createClusterView(options: ClusterViewOptions): ClusterView {
  const o = { ...DEFAULTS, ...options };
  let cached: { at: number; reply: ClusterReply } | undefined;
  let round: Promise<ClusterReply> | undefined;
  const abort = new AbortController();

  const build = async (): Promise<ClusterReply> => {
    const report = await o.status();
    const t = Date.now();
    const self: ClusterNode = { node: report.node, address: null, links: linksOf(report, o.rates, t).links, error: null };
    const port = o.peerPort;
    if (port === undefined) return { t, nodes: [self], peersAsked: false };
    const targets = report.peers.map(peerTarget);
    const nodes: ClusterNode[] = targets.map((target, k) => ({
      node: target.node,
      address: null,
      links: [],
      error: k >= o.maxPeers ? `not asked: over ${o.maxPeers} peers` : target.host === undefined ? 'not asked: its lease has no address' : null,
    }));
    const asked = nodes.flatMap((n, k) => (n.error === null ? [k] : []));
    let next = 0;
    const signal = abort.signal;
    const worker = async (): Promise<void> => {
      for (let k = asked[next++]; k !== undefined; k = asked[next++]) {
        const target = targets[k];
        const node = nodes[k];
        if (target?.host === undefined || node === undefined) continue;
        node.address = formatEndpoint(target.host, port);
        try {
          const reply = readLinksReply(await getJson(target.host, port, o.timeoutMs, o.maxReplyBytes, signal));
          if (reply.node !== target.node) throw new Error(`answered as "${reply.node}"`);
          node.links = reply.links;
        } catch (error: unknown) {
          node.error = errorMessage(error);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(o.concurrency, asked.length) }, worker));
    return { t, nodes: [self, ...nodes], peersAsked: true };
  };

  return {
    get() {
      if (cached !== undefined && Date.now() - cached.at < o.refreshMs) return Promise.resolve(cached.reply);
      round ??= build()
        .then((reply) => {
          cached = { at: Date.now(), reply };
          return reply;
        })
        .finally(() => {
          round = undefined;
        });
      return round;
    },
    close() {
      abort.abort();
    },
  };
}

/** GET http://host:port/api/links within timeoutMs and maxBytes; rejects with what went wrong. */
function getJson(host: string, port: number, timeoutMs: number, maxBytes: number, signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      req.destroy();
      reject(error);
    };
    const req = request({ host, port, path: LINKS_PATH, headers: { accept: 'application/json' }, agent: false, signal }, (res) => {
      if (res.statusCode !== 200) return fail(new Error(`HTTP ${res.statusCode ?? '?'}`));
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) fail(new Error(`reply over ${maxBytes} bytes`));
        else chunks.push(chunk);
      });
      res.on('end', () => {
        if (settled) return;
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return fail(new Error('reply is not JSON'));
        }
        settled = true;
        clearTimeout(deadline);
        resolve(body);
      });
      res.on('error', fail);
    });
    const deadline = setTimeout(() => fail(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', fail);
    req.end();
  });
}

// --- a peer's reply, checked field by field: only these fields reach the page ---

const STATES: Readonly<Record<PeerState, true>> = { unknown: true, up: true, down: true };

export function readLinksReply(value: unknown): LinksReply {
  const r = obj(value, 'reply');
  return {
    node: str(r['node'], 'node'),
    t: num(r['t'], 't'),
    links: arr(r['links'], 'links').map((item, k) => readLink(item, `links[${k}]`)),
  };
}

function readLink(value: unknown, field: string): LinkView {
  const l = obj(value, field);
  const state = str(l['state'], `${field}.state`);
  if (!Object.hasOwn(STATES, state)) throw new Error(`${field}.state: "${state}" is not a peer state`);
  return {
    peer: str(l['peer'], `${field}.peer`),
    state: state as PeerState,
    transport: nullable(l['transport'], `${field}.transport`, str),
    endpoint: nullable(l['endpoint'], `${field}.endpoint`, str),
    rttMs: nullable(l['rttMs'], `${field}.rttMs`, num),
    downReason: nullable(l['downReason'], `${field}.downReason`, str),
    lastHeardAgeMs: nullable(l['lastHeardAgeMs'], `${field}.lastHeardAgeMs`, num),
    lastSwitch: nullable(l['lastSwitch'], `${field}.lastSwitch`, (v, f) => {
      const s = obj(v, f);
      return { atMs: num(s['atMs'], `${f}.atMs`), from: str(s['from'], `${f}.from`), to: str(s['to'], `${f}.to`), reason: str(s['reason'], `${f}.reason`) };
    }),
    txBps: nullable(l['txBps'], `${field}.txBps`, num),
    rxBps: nullable(l['rxBps'], `${field}.rxBps`, num),
  };
}

function obj(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${field} is not an object`);
  return value as Record<string, unknown>;
}

function arr(value: unknown, field: string): unknown[] {
  if (!Array.isArray(value)) throw new Error(`${field} is not a list`);
  return value;
}

function str(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new Error(`${field} is not a string`);
  return value;
}

function num(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`${field} is not a number`);
  return value;
}

function nullable<T>(value: unknown, field: string, read: (v: unknown, f: string) => T): T | null {
  return value === null || value === undefined ? null : read(value, field);
}
