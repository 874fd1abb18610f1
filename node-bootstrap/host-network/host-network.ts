/**
 * The host side of the TUN, set once it is open, and put back exactly on shutdown. Flow:
 *
 *  1. sysctls: forwarding on (IPv4; IPv6 when the cluster has it); on the TUN accept_local=1 and
 *     rp_filter=0, because ICMP errors podtun writes are sourced from the TUN's own address;
 *     IPv6 off on the TUN for an IPv4-only cluster, else addr_gen_mode=1 (no link-local
 *     address), set before the link goes up: the kernel sends no DAD or router solicitation
 *     into the TUN (what is left, MLD reports for the all-routers group, the router drops as
 *     link_local).
 *  2. MTU = underlay MTU - tunnel overhead (the caller computes it).
 *  3. link up (before the addresses: taking a link down flushes its IPv6 addresses, so undo
 *     must remove them while it is still up).
 *  4. addresses: the node subnet's network address, 10.244.1.0/32 and fd00:10:244:1::/128 nodad
 *     (the pod bridge takes .1 / ::1).
 *  5. a route per cluster CIDR to the TUN (`ip route replace`).
 *
 * Every change is recorded with the value it replaced; undo() walks the record backwards. Only
 * what was changed is recorded: a value already right is left alone and not touched on undo.
 * Addresses, routes and per-device sysctls vanish with a non-persistent TUN; undo skips them
 * when the device is gone and removes them when it persists.
 *
 * Commands and sysctls go through HostOps (host-ops.ts).
 */
import { formatAddress, parseAddress, parseCidr } from '../../core/cidr.js';
import type { Cidr } from '../../core/cidr.js';
import { errorMessage } from '../../core/config-check.js';
import type { Logger } from '../../core/logger.js';
import { HostNetworkError, systemHostOps } from './host-ops.js';
import type { HostOps } from './host-ops.js';

export interface HostNetworkOptions {
  tunName: string;
  /** This node's pod subnets (canonical CIDRs): the TUN takes each one's network address. */
  localSubnets: readonly string[];
  /** Routed to the TUN. */
  clusterCidrs: readonly string[];
  /** The TUN MTU (underlay MTU - tunnel overhead). */
  mtu: number;
  log: Logger;
  /** Default: systemHostOps(). */
  ops?: HostOps;
}

/** A route that was there before ours replaced it (restored on undo). */
export interface PreviousRoute {
  dev: string | undefined;
  gateway: string | undefined;
  metric: number | undefined;
  type: string | undefined;
}

export type HostChange =
  | { kind: 'sysctl'; path: readonly string[]; key: string; old: string; value: string; perDevice: boolean }
  | { kind: 'mtu'; dev: string; old: number; value: number }
  | { kind: 'address'; dev: string; address: string }
  | { kind: 'link-up'; dev: string }
  | { kind: 'route'; dev: string; cidr: string; previous: PreviousRoute | undefined };

export interface HostNetwork {
  /** What setup changed, in order. */
  readonly changes: readonly HostChange[];
  /** Puts back what setup changed, newest first. Best effort over all changes; safe twice. */
  undo(): Promise<void>;
}

/** The TUN's own addresses: each subnet's network address as a host route (/32, /128). */
export function tunAddressesOf(localSubnets: readonly string[]): string[] {
  return localSubnets.map((text) => {
    const cidr = parseCidr(text);
    return `${formatAddress(cidr)}/${cidr.family === 4 ? 32 : 128}`;
  });
}

/**
 * Applies the host settings for an open TUN. On failure, what was already changed is undone
 * before the error (HostNetworkError, with context) is thrown.
 */
export async function setupHostNetwork(options: HostNetworkOptions): Promise<HostNetwork> {
  const ops = options.ops ?? systemHostOps();
  const dev = options.tunName;
  const log = options.log;
  const changes: HostChange[] = [];
  const network = hostNetwork(changes, ops, log);
  const clusterCidrs = options.clusterCidrs.map((c) => parseCidr(c));
  const hasV6 = clusterCidrs.some((c) => c.family === 6) || options.localSubnets.some((s) => parseCidr(s).family === 6);

  try {
    const link = await linkInfo(ops, dev);
    if (link === undefined) throw new HostNetworkError('ERR_PODTUN_HOST_NETWORK', `device ${dev} does not exist`);

    await setSysctl(ops, changes, log, ['net', 'ipv4', 'ip_forward'], '1', false);
    if (hasV6) await setSysctl(ops, changes, log, ['net', 'ipv6', 'conf', 'all', 'forwarding'], '1', false);
    await setSysctl(ops, changes, log, ['net', 'ipv4', 'conf', dev, 'accept_local'], '1', true);
    await setSysctl(ops, changes, log, ['net', 'ipv4', 'conf', dev, 'rp_filter'], '0', true);
    // IPv6 on the TUN only for a cluster that has it; either way none of the kernel's own link
    // chatter. The keys are absent when the kernel has no IPv6 at all (no chatter either).
    const ipv6Conf = ['net', 'ipv6', 'conf', dev];
    if (await ops.readSysctl([...ipv6Conf, 'disable_ipv6']) !== undefined) {
      await setSysctl(ops, changes, log, [...ipv6Conf, 'disable_ipv6'], hasV6 ? '0' : '1', true);
    }
    if (hasV6 && await ops.readSysctl([...ipv6Conf, 'addr_gen_mode']) !== undefined) {
      await setSysctl(ops, changes, log, [...ipv6Conf, 'addr_gen_mode'], '1', true);
    }
    // The kernel uses max(all, device) for rp_filter: a strict `all` overrides ours.
    const allRp = await ops.readSysctl(['net', 'ipv4', 'conf', 'all', 'rp_filter']);
    if (allRp !== undefined && allRp !== '0') {
      log.warn({ sysctl: 'net.ipv4.conf.all.rp_filter', reason: `is ${allRp}; the kernel applies max(all, ${dev}), so ICMP errors from the TUN may be dropped` }, 'reverse path filter left on');
    }

    if (link.mtu !== options.mtu) {
      await ops.ip(['link', 'set', 'dev', dev, 'mtu', String(options.mtu)]);
      changes.push({ kind: 'mtu', dev, old: link.mtu, value: options.mtu });
    }

    if (!link.up) {
      await ops.ip(['link', 'set', 'dev', dev, 'up']);
      changes.push({ kind: 'link-up', dev });
    }

    for (const address of tunAddressesOf(options.localSubnets)) {
      const [host = ''] = address.split('/');
      if (link.addresses.includes(formatAddress(parseAddress(host)))) continue;
      const v6 = address.includes(':');
      await ops.ip(v6 ? ['-6', 'addr', 'add', address, 'dev', dev, 'nodad'] : ['-4', 'addr', 'add', address, 'dev', dev]);
      changes.push({ kind: 'address', dev, address });
    }

    for (const cidr of clusterCidrs) {
      const previous = await routeOf(ops, cidr);
      if (previous !== undefined && previous.dev === dev && previous.gateway === undefined && isUnicast(previous)) continue;
      await ops.ip([familyFlag(cidr), 'route', 'replace', cidr.text, 'dev', dev]);
      changes.push({ kind: 'route', dev, cidr: cidr.text, previous });
      if (previous !== undefined) log.warn({ subnet: cidr.text, reason: `replaced a route via ${describeRoute(previous)}` }, 'route replaced');
    }
  } catch (err: unknown) {
    try {
      await network.undo();
    } catch (undoErr: unknown) {
      log.error({ err: undoErr }, 'undoing a failed host network setup');
    }
    if (err instanceof HostNetworkError) {
      throw new HostNetworkError(err.code, `failed to set up host network for ${dev}: ${err.message}`, { cause: err });
    }
    throw new HostNetworkError('ERR_PODTUN_HOST_NETWORK', `failed to set up host network for ${dev}: ${errorMessage(err)}`, { cause: err });
  }
  log.info({ tun: dev, mtu: options.mtu, count: changes.length }, 'host network set');
  return network;
}

function hostNetwork(changes: HostChange[], ops: HostOps, log: Logger): HostNetwork {
  let undoing: Promise<void> | undefined;
  return {
    changes,
    undo() {
      undoing ??= undoAll(changes, ops, log);
      return undoing;
    },
  };
}

const DEVICE_GONE_RE = /Cannot find device|does not exist/i;

async function undoAll(changes: readonly HostChange[], ops: HostOps, log: Logger): Promise<void> {
  const failures: string[] = [];
  const devices = new Map<string, boolean>();
  const exists = async (dev: string): Promise<boolean> => {
    let known = devices.get(dev);
    if (known === undefined) {
      known = (await linkInfo(ops, dev)) !== undefined;
      devices.set(dev, known);
    }
    return known;
  };
  for (const change of [...changes].reverse()) {
    try {
      switch (change.kind) {
        case 'route': {
          const cidr = parseCidr(change.cidr);
          if (await exists(change.dev)) {
            const now = await routeOf(ops, cidr);
            if (now?.dev === change.dev) await ops.ip([familyFlag(cidr), 'route', 'del', cidr.text, 'dev', change.dev]);
          }
          const prev = change.previous;
          if (prev !== undefined) await ops.ip([familyFlag(cidr), 'route', 'replace', ...routeArgs(cidr.text, prev)]);
          break;
        }
        case 'link-up':
          if (await exists(change.dev)) await ops.ip(['link', 'set', 'dev', change.dev, 'down']);
          break;
        case 'address': {
          const [host = ''] = change.address.split('/');
          const link = (await exists(change.dev)) ? await linkInfo(ops, change.dev) : undefined;
          if (link?.addresses.includes(formatAddress(parseAddress(host))) === true) {
            await ops.ip(['addr', 'del', change.address, 'dev', change.dev]);
          }
          break;
        }
        case 'mtu':
          if (await exists(change.dev)) await ops.ip(['link', 'set', 'dev', change.dev, 'mtu', String(change.old)]);
          break;
        case 'sysctl':
          if (!change.perDevice || (await ops.readSysctl(change.path)) !== undefined) {
            await ops.writeSysctl(change.path, change.old);
            // Writing addr_gen_mode makes the kernel add a link-local address at once, even on
            // a link undo has just taken down (where it had none): remove it again there.
            const dev = change.path.at(-2) ?? '';
            if (change.perDevice && change.path.at(-1) === 'addr_gen_mode' && (await linkInfo(ops, dev))?.up === false) {
              await ops.ip(['-6', 'addr', 'flush', 'dev', dev, 'scope', 'link']);
            }
          }
          break;
      }
    } catch (err: unknown) {
      // A non-persistent TUN vanishes once its fd's close completes, which may land between the
      // existence check and the command: what went with it needs no undo.
      if ((change.kind === 'mtu' || change.kind === 'address' || change.kind === 'link-up') && DEVICE_GONE_RE.test(errorMessage(err))) {
        devices.set(change.dev, false);
        continue;
      }
      failures.push(errorMessage(err));
      log.warn({ err, reason: describeChange(change) }, 'could not undo a host network change');
    }
  }
  if (failures.length > 0) {
    throw new HostNetworkError('ERR_PODTUN_HOST_NETWORK', `failed to restore the host network: ${failures.join('; ')}`);
  }
  log.info({ count: changes.length }, 'host network restored');
}

async function setSysctl(
  ops: HostOps,
  changes: HostChange[],
  log: Logger,
  path: readonly string[],
  value: string,
  perDevice: boolean,
): Promise<void> {
  const key = path.join('.');
  const old = await ops.readSysctl(path);
  if (old === undefined) throw new HostNetworkError('ERR_PODTUN_HOST_NETWORK', `sysctl ${key} does not exist`);
  if (old === value) return;
  await ops.writeSysctl(path, value);
  changes.push({ kind: 'sysctl', path, key, old, value, perDevice });
  log.debug({ sysctl: key, reason: `${old} -> ${value}` }, 'sysctl set');
}

interface LinkInfo {
  mtu: number;
  up: boolean;
  /** Canonical address text (no prefix length). */
  addresses: string[];
}

interface IpAddrJson {
  mtu?: number;
  flags?: string[];
  addr_info?: { family?: string; local?: string }[];
}

interface IpRouteJson {
  dst?: string;
  dev?: string;
  gateway?: string;
  metric?: number;
  type?: string;
}

async function linkInfo(ops: HostOps, dev: string): Promise<LinkInfo | undefined> {
  let out: string;
  try {
    out = await ops.ip(['-j', 'addr', 'show', 'dev', dev]);
  } catch (err: unknown) {
    if (err instanceof HostNetworkError && err.code === 'ERR_PODTUN_IP_MISSING') throw err;
    if (/does not exist|Cannot find device/i.test(errorMessage(err))) return undefined;
    throw err;
  }
  const [link] = JSON.parse(out) as IpAddrJson[];
  if (link === undefined) return undefined;
  return {
    mtu: link.mtu ?? 0,
    up: (link.flags ?? []).includes('UP'),
    addresses: (link.addr_info ?? []).flatMap((a) => (a.local === undefined ? [] : [formatAddress(parseAddress(a.local))])),
  };
}

/** The main-table route for exactly `cidr`, if any. */
async function routeOf(ops: HostOps, cidr: Cidr): Promise<PreviousRoute | undefined> {
  const routes = JSON.parse(await ops.ip(['-j', familyFlag(cidr), 'route', 'show', 'exact', cidr.text])) as IpRouteJson[];
  const [route] = routes;
  if (route === undefined) return undefined;
  return { dev: route.dev, gateway: route.gateway, metric: route.metric, type: route.type };
}

function routeArgs(cidr: string, route: PreviousRoute): string[] {
  const args = route.type !== undefined && route.type !== 'unicast' ? [route.type, cidr] : [cidr];
  if (route.gateway !== undefined) args.push('via', route.gateway);
  if (route.dev !== undefined) args.push('dev', route.dev);
  if (route.metric !== undefined) args.push('metric', String(route.metric));
  return args;
}

function isUnicast(route: PreviousRoute): boolean {
  return route.type === undefined || route.type === 'unicast';
}

function describeRoute(route: PreviousRoute): string {
  return [route.type, route.gateway, route.dev].filter((x) => x !== undefined).join(' ');
}

function familyFlag(cidr: Cidr): '-4' | '-6' {
  return cidr.family === 4 ? '-4' : '-6';
}

function describeChange(change: HostChange): string {
  switch (change.kind) {
    case 'sysctl': return `restore ${change.key}=${change.old}`;
    case 'mtu': return `restore mtu ${change.old} on ${change.dev}`;
    case 'address': return `remove ${change.address} from ${change.dev}`;
    case 'link-up': return `set ${change.dev} down`;
    case 'route': return `remove route ${change.cidr} dev ${change.dev}`;
  }
}
