/**
 * The router: owns the route table, the peer table and the two pipelines, and is the one door
 * from the control plane into the data plane (`applyLeaseEvents`).
 *
 *   device (TUN) --batch--> InsidePipeline  --send per peer--> transport
 *   transport    --batch--> OutsidePipeline --one write------> device (TUN)
 */
import type { OwnershipClaims } from '../core/ownership-claims.js';
import { DropSamples } from './drop-samples.js';
import type { DropSample } from './drop-samples.js';
import { ipv4ToNumber, parseAddress, parseCidr } from '../core/cidr.js';
import type { Cidr, IpFamily } from '../core/cidr.js';
import { dropCountersToObject, newDropCounters } from '../core/drop-reason.js';
import { IcmpErrorWriter } from './icmp-error.js';
import { InsidePipeline } from './inside-pipeline.js';
import type { Logger } from '../core/logger.js';
import { OutsidePipeline } from './outside-pipeline.js';
import type { InboundBatch, PacketBatch } from '../core/packet-batch.js';
import type { PacketDevice } from '../core/packet-device.js';
import { LocalSubnets } from './local-subnets.js';
import { CLUSTER_ROUTE, LOCAL_ROUTE, PeerTable } from './peer-table.js';
import type { PeerRecord } from './peer-table.js';
import type { RouteTable } from './route-table.js';
import { TrieRouteTable } from './trie-route-table.js';
import type { Lease, LeaseEvent } from '../core/lease.js';
import { transportNowMs } from '../core/transport.js';
import type { PeerEndpoints, PeerState, PeerStatus, Transport, TransportKind, TransportSwitch } from '../core/transport.js';

export interface RouterOptions {
  device: PacketDevice;
  transport: Transport;
  /** This node's name, as in leases. */
  localNode: string;
  /** This node's pod subnets (CIDR text): packets for them are written to the device. */
  localSubnets: readonly string[];
  /** Source of ICMP errors (the TUN address); undefined: the local IPv4 subnet's network address. */
  icmpSourceV4: string | undefined;
  /** Source of ICMPv6 errors; undefined: the local IPv6 subnet's first address. */
  icmpSourceV6: string | undefined;
  /** Largest inner packet the tunnel carries, bytes (the TUN MTU). */
  tunnelMtu: number;
  /** What the tunnel adds around a packet on the underlay (tunnel/tunnel-mtu.ts): a lease's own MTU minus this is its peer's tunnel MTU. */
  overheadBytes: number;
  /** The transports of a peer whose lease names none, most preferred first (tunnel/transports.ts). */
  defaultTransports: readonly TransportKind[];
  /** The whole pod network: a destination inside it that no node owns gets net unreachable. */
  clusterCidrs: readonly string[];
  /** What this node and each peer own, as the transports' probes compare it; kept current here. */
  ownership?: OwnershipClaims;
  log: Logger;
}

export interface PeerStats {
  node: string;
  subnets: string[];
  /** The endpoint in use now (the carrying transport's), else the lease's first. */
  endpoint: string | undefined;
  /** Every endpoint of its lease, by transport kind. */
  endpoints: PeerEndpoints;
  tunnelMtu: number;
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  rxBytes: number;
  spoofed: number;
  state: PeerState;
  /** Smoothed probe round trip, only while up: a down peer's last one is not its RTT now. */
  rttMs: number | undefined;
  /** ms since anything was last heard from it; absent when nothing ever was. */
  lastHeardAgeMs?: number;
  /** The transport carrying the peer now (per peer with transport selection). */
  transport: TransportKind | undefined;
  /** The last change of transport for this peer, if any. */
  lastSwitch?: TransportSwitch;
  /** Why it is not up (the carrying transport's words). */
  downReason?: string;
  /** What that reason came from (a dial's error, a refusal). */
  downDetail?: string;
  /** How its claim of subnets and ours disagree (core/ownership-claims.ts); absent when they agree. */
  ownershipMismatch?: string;
  lastHandshakeAgeMs?: number;
  sealed?: boolean;
}

export interface RouterStats {
  node: string;
  localSubnets: readonly string[];
  /** Drops by reason name (zeros left out). */
  drops: Record<string, number>;
  /** ICMP errors not sent because of the rate limit. */
  icmpSuppressed: number;
  peers: PeerStats[];
  transport: Record<string, number>;
}

/** A bad router option; `field` names it. */
export class RouterConfigError extends Error {
  readonly code = 'ERR_PODTUN_ROUTER_CONFIG';
  constructor(
    readonly field: string,
    message: string,
    options?: { cause: unknown },
  ) {
    super(`router option ${field}: ${message}`, options);
  }
}

const ICMP_ERRORS_PER_SEC = 100;
const ICMP_ERROR_BURST = 100;
const ICMP_ERRORS_PER_BATCH = 64;

export class Router {
  private readonly device: PacketDevice;
  private readonly transport: Transport;
  private readonly log: Logger;
  private readonly ownership: OwnershipClaims | undefined;
  private readonly localNode: string;
  private readonly tunnelMtu: number;
  private readonly overheadBytes: number;
  private readonly defaultTransports: readonly TransportKind[];
  private readonly routes: RouteTable<number> = new TrieRouteTable<number>();
  private readonly peers = new PeerTable();
  private readonly drops = newDropCounters();
  private readonly dropSamples = new DropSamples();
  private readonly local = new LocalSubnets();
  private readonly icmp: IcmpErrorWriter;
  private readonly inside: InsidePipeline;
  private readonly outside: OutsidePipeline;
  private readonly icmpSourceV4Given: boolean;
  private readonly icmpSourceV6Given: boolean;
  private localSubnets: Cidr[] = [];
  private started = false;
  private closing: Promise<void> | undefined;

  /** Bound once: the device and transport call these per batch. */
  private readonly onTunBatch = (batch: PacketBatch): void => {
    this.inside.process(batch);
  };
  private readonly onInboundBatch = (batch: InboundBatch): void => {
    this.outside.process(batch);
  };

  constructor(options: RouterOptions) {
    this.device = options.device;
    this.transport = options.transport;
    this.localNode = options.localNode;
    this.log = options.log;
    this.ownership = options.ownership;
    if (!Number.isInteger(options.tunnelMtu) || options.tunnelMtu < 68 || options.tunnelMtu > 65535) {
      throw new RouterConfigError('tunnelMtu', `${options.tunnelMtu} is not an MTU (68-65535)`);
    }
    this.tunnelMtu = options.tunnelMtu;
    this.overheadBytes = options.overheadBytes;
    this.defaultTransports = options.defaultTransports;

    options.clusterCidrs.forEach((text, i) => {
      const cidr = parseOption(`clusterCidrs[${i}]`, text);
      this.routes.insert(cidr, CLUSTER_ROUTE);
      this.peers.routeOwners.set(cidr.text, CLUSTER_ROUTE);
    });
    this.setLocalSubnets(options.localSubnets.map((text, i) => parseOption(`localSubnets[${i}]`, text)));

    this.icmpSourceV4Given = options.icmpSourceV4 !== undefined;
    this.icmpSourceV6Given = options.icmpSourceV6 !== undefined;
    this.icmp = new IcmpErrorWriter({
      sourceV4: undefined,
      sourceV6: undefined,
      ratePerSec: ICMP_ERRORS_PER_SEC,
      burst: ICMP_ERROR_BURST,
      maxPerBatch: ICMP_ERRORS_PER_BATCH,
      nowMs: () => performance.now(),
    });
    if (options.icmpSourceV4 !== undefined) {
      this.icmp.sourceV4 = ipv4ToNumber(parseSource('icmpSourceV4', options.icmpSourceV4, 4));
    }
    if (options.icmpSourceV6 !== undefined) {
      this.icmp.sourceV6 = parseSource('icmpSourceV6', options.icmpSourceV6, 6);
    }
    this.deriveIcmpSources();

    const deps = { routes: this.routes, peers: this.peers, device: this.device, drops: this.drops, samples: this.dropSamples };
    this.inside = new InsidePipeline({ ...deps, transport: this.transport, icmp: this.icmp });
    this.outside = new OutsidePipeline({ ...deps, local: this.local });
  }

  /** Starts the transport, then reading the device. */
  async start(): Promise<void> {
    if (this.started || this.closing !== undefined) return;
    this.started = true;
    await this.transport.start(this.onInboundBatch);
    if (this.closing !== undefined) return;
    this.device.start(this.onTunBatch);
  }

  /**
   * Applies lease changes: the only writer of the route table. A peer's lease adds or replaces
   * its routes and tells the transport; this node's own lease replaces the local subnets.
   * A removal of a node not known is ignored; a lease with a bad subnet is refused with a warning.
   */
  applyLeaseEvents(events: LeaseEvent[]): void {
    for (const event of events) {
      if (event.type === 'added') this.leaseAdded(event.lease);
      else this.leaseRemoved(event.lease);
    }
  }

  stats(): RouterStats {
    const status = new Map<number, PeerStatus>();
    for (const s of this.transport.peerStatus()) status.set(s.slot, s);
    const nowMs = transportNowMs();
    const peers = this.peers;
    return {
      node: this.localNode,
      localSubnets: this.localSubnets.map((c) => c.text),
      drops: dropCountersToObject(this.drops),
      icmpSuppressed: this.icmp.suppressed,
      peers: peers.all().map((record) => {
        const s = status.get(record.slot);
        const peer: PeerStats = {
          node: record.node,
          subnets: record.subnets.map((c) => c.text),
          endpoint: s?.endpoint ?? Object.values(record.endpoints)[0],
          endpoints: record.endpoints,
          tunnelMtu: record.tunnelMtu,
          txPackets: peers.txPackets[record.slot] ?? 0,
          txBytes: peers.txBytes[record.slot] ?? 0,
          rxPackets: peers.rxPackets[record.slot] ?? 0,
          rxBytes: peers.rxBytes[record.slot] ?? 0,
          spoofed: peers.spoofed[record.slot] ?? 0,
          state: s?.state ?? 'unknown',
          rttMs: s?.state === 'up' ? s.rttMs : undefined,
          transport: s?.transport,
        };
        if (s?.lastSeenMs !== undefined) peer.lastHeardAgeMs = Math.max(0, Math.round(nowMs - s.lastSeenMs));
        if (s?.lastSwitch !== undefined) peer.lastSwitch = s.lastSwitch;
        if (s?.downReason !== undefined) peer.downReason = s.downReason;
        if (s?.downDetail !== undefined) peer.downDetail = s.downDetail;
        const mismatch = this.ownership?.mismatch(record.slot);
        if (mismatch !== undefined) peer.ownershipMismatch = mismatch;
        if (s?.lastHandshakeAgeMs !== undefined) peer.lastHandshakeAgeMs = s.lastHandshakeAgeMs;
        if (s?.sealed !== undefined) peer.sealed = s.sealed;
        return peer;
      }),
      transport: this.transport.stats(),
    };
  }

  /**
   * Drop counters by reason, the router's own (`no_route`, `spoofed`, ...) and the transports'
   * (`udp.congested`, ...): what the drop log reads every second, without a full stats snapshot.
   */
  dropCounts(): Record<string, number> {
    return { ...dropCountersToObject(this.drops), ...this.transport.drops() };
  }

  /** The addresses of the last packet the router dropped for reason `name`, if it knows them. */
  lastDropped(name: string): DropSample | undefined {
    return this.dropSamples.last(name);
  }

  /** Closes the transport, then the device. Safe to call twice (the second call waits for the first). */
  close(): Promise<void> {
    if (this.closing === undefined) {
      this.closing = this.closeOnce();
    }
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    try {
      await this.transport.close();
    } finally {
      this.device.close();
      this.log.debug({ node: this.localNode }, 'router closed');
    }
  }

  private leaseAdded(lease: Lease): void {
    const subnets = this.parseLeaseSubnets(lease);
    if (subnets === undefined) return;
    if (lease.node === this.localNode) {
      this.setLocalSubnets(subnets);
      this.deriveIcmpSources();
      this.log.info({ node: lease.node, subnets: subnets.map((c) => c.text) }, 'local subnets set');
      return;
    }
    const tunnelMtu = this.peerTunnelMtu(lease);
    let record = this.peers.byName(lease.node);
    const isNew = record === undefined;
    if (record === undefined) {
      record = this.peers.add(lease.node, [], lease.endpoints, tunnelMtu);
    } else {
      this.removePeerRoutes(record);
      record.endpoints = lease.endpoints;
      this.peers.setTunnelMtu(record, tunnelMtu);
    }
    record.subnets = this.installPeerRoutes(record, subnets);
    this.ownership?.setPeer(record.slot, lease.node, record.subnets.map((c) => c.text));
    this.transport.setPeer(record.slot, {
      node: lease.node,
      endpoints: lease.endpoints,
      transports: lease.transports ?? this.defaultTransports,
      ...(lease.publicKey === undefined ? {} : { publicKey: lease.publicKey }),
    });
    this.log.info(
      { peer: lease.node, subnets: record.subnets.map((c) => c.text), endpoints: lease.endpoints },
      isNew ? 'peer added' : 'peer updated',
    );
  }

  private leaseRemoved(lease: Lease): void {
    const record = this.peers.byName(lease.node);
    if (record === undefined) {
      if (lease.node === this.localNode) this.log.warn({ node: lease.node }, 'lease removal for this node ignored');
      return;
    }
    this.removePeerRoutes(record);
    this.ownership?.removePeer(record.slot);
    this.transport.removePeer(record.slot);
    this.peers.remove(record);
    this.log.info(
      { peer: record.node, subnets: record.subnets.map((c) => c.text), endpoints: record.endpoints },
      'peer removed',
    );
  }

  private parseLeaseSubnets(lease: Lease): Cidr[] | undefined {
    const subnets: Cidr[] = [];
    for (const text of lease.subnets) {
      try {
        subnets.push(parseCidr(text));
      } catch (err: unknown) {
        this.log.warn({ peer: lease.node, subnet: text, err }, 'lease refused: bad subnet');
        return undefined;
      }
    }
    return subnets;
  }

  /** Installs the routes not already owned by someone else; returns those installed. */
  private installPeerRoutes(record: PeerRecord, subnets: Cidr[]): Cidr[] {
    const installed: Cidr[] = [];
    for (const cidr of subnets) {
      const owner = this.peers.routeOwners.get(cidr.text);
      if (owner !== undefined && owner !== record.slot) {
        const holder = owner >= 0 ? this.peers.get(owner)?.node : owner === LOCAL_ROUTE ? this.localNode : 'cluster';
        this.log.warn({ peer: record.node, subnet: cidr.text, owner: holder }, 'subnet already owned: route not installed');
        continue;
      }
      this.routes.insert(cidr, record.slot);
      this.peers.routeOwners.set(cidr.text, record.slot);
      installed.push(cidr);
    }
    return installed;
  }

  private removePeerRoutes(record: PeerRecord): void {
    for (const cidr of record.subnets) {
      if (this.peers.routeOwners.get(cidr.text) !== record.slot) continue;
      this.routes.remove(cidr);
      this.peers.routeOwners.delete(cidr.text);
    }
  }

  private setLocalSubnets(subnets: Cidr[]): void {
    for (const cidr of this.localSubnets) {
      if (this.peers.routeOwners.get(cidr.text) !== LOCAL_ROUTE) continue;
      this.routes.remove(cidr);
      this.peers.routeOwners.delete(cidr.text);
    }
    for (const cidr of subnets) {
      this.routes.insert(cidr, LOCAL_ROUTE);
      this.peers.routeOwners.set(cidr.text, LOCAL_ROUTE);
    }
    this.localSubnets = subnets;
    this.local.set(subnets);
    this.ownership?.setLocal(subnets.map((c) => c.text));
  }

  /** Without an explicit ICMP source, the TUN address: the local subnet's network address. */
  private deriveIcmpSources(): void {
    if (!this.icmpSourceV4Given) {
      const v4 = this.localSubnets.find((c) => c.family === 4);
      this.icmp.sourceV4 = v4 === undefined ? undefined : ipv4ToNumber(v4.bytes);
    }
    if (!this.icmpSourceV6Given) {
      this.icmp.sourceV6 = this.localSubnets.find((c) => c.family === 6)?.bytes;
    }
  }

  private peerTunnelMtu(lease: Lease): number {
    if (lease.mtu === undefined) return this.tunnelMtu;
    return Math.min(this.tunnelMtu, lease.mtu - this.overheadBytes);
  }
}

function parseOption(field: string, text: string): Cidr {
  try {
    return parseCidr(text);
  } catch (err: unknown) {
    throw new RouterConfigError(field, err instanceof Error ? err.message : String(err), { cause: err });
  }
}

function parseSource(field: string, text: string, family: IpFamily): Uint8Array {
  let bytes: Uint8Array;
  let actual: IpFamily;
  try {
    ({ bytes, family: actual } = parseAddress(text));
  } catch (err: unknown) {
    throw new RouterConfigError(field, err instanceof Error ? err.message : String(err), { cause: err });
  }
  if (actual !== family) throw new RouterConfigError(field, `"${text}" is not an IPv${family} address`);
  return bytes;
}
