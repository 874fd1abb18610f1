/**
 * The `nodes` list (static mode): every node of the cluster, this one included, with its
 * subnets, endpoints, transport preference and MTU. Cross-node rules live here: unique names
 * (and UDP node ids), no overlapping subnets, no endpoint used twice, and nobody left that no
 * node could dial.
 */
import type { Cidr } from '../../../core/cidr.js';
import { checkKnownKeys, describe, isRecord } from '../../../core/config-check.js';
import type { IssueFn } from '../../../core/config-check.js';
import type { TransportChoice } from '../../../tunnel/transport-type.js';
import { TRANSPORTS } from '../../../tunnel/transports.js';
import { nodeIdOf } from '../../../tunnel/udp/node-id.js';
import type { NodeSpec } from '../node-config.js';
import { cidrAt, subnetAt } from './cidrs.js';
import { PUBLIC_KEY_HOWTO, publicKeyAt } from './encryption.js';
import type { EncryptionMode } from './encryption.js';
import { mtuAt } from './mtu.js';
import { nodeNameAt } from './names.js';
import { ENDPOINT_KEYS, endpointsAt, transportsAt } from './reach.js';
import type { Reach } from './reach.js';

const NODE_KEYS = ['name', 'subnets', ...ENDPOINT_KEYS, 'transport', 'mtu', 'publicKey'] as const;

export interface NodesContext {
  readonly nodeName: string | undefined;
  readonly clusterCidrs: readonly Cidr[];
  /** This node's transports as configured (undefined where their block had issues). */
  readonly transports: readonly (TransportChoice | undefined)[];
  /** Sealed: every peer entry must name its public key. */
  readonly encryption: EncryptionMode;
  readonly issue: IssueFn;
}

export interface NodesResult {
  readonly nodes: NodeSpec[];
  /** The families of every endpoint that names an address (they size the MTU). */
  readonly families: Reach['families'];
}

export function nodesAt(value: unknown, ctx: NodesContext): NodesResult {
  const { issue, clusterCidrs } = ctx;
  const nodes: NodeSpec[] = [];
  const families: Reach['families'] = [];
  const seenSubnets: { cidr: Cidr; path: string }[] = [];
  const seenNames = new Map<string, string>();
  const seenIds = new Map<number, { name: string; path: string }>();
  const seenEndpoints = new Map<string, string>();
  const seenKeys = new Map<string, string>();
  if (value === undefined) {
    issue('nodes', 'required (the list of nodes, this one included), or subnetManager: {type: etcd, ...}');
    return { nodes, families };
  }
  if (!Array.isArray(value)) {
    issue('nodes', `expected a list of nodes, got ${describe(value)}`);
    return { nodes, families };
  }
  if (value.length === 0) {
    issue('nodes', 'empty; it must list this node at least');
    return { nodes, families };
  }
  value.forEach((rawNode: unknown, i) => {
    const at = `nodes[${i}]`;
    if (!isRecord(rawNode)) return issue(at, `expected a mapping (name, subnets, endpoint, mtu), got ${describe(rawNode)}`);
    checkKnownKeys(rawNode, at, NODE_KEYS, issue);
    const name = nodeNameAt(rawNode['name'], `${at}.name`, issue, true);
    if (name !== undefined) {
      const dup = seenNames.get(name);
      const nodeId = nodeIdOf(name);
      const clash = seenIds.get(nodeId);
      if (dup !== undefined) issue(`${at}.name`, `"${name}" is already used by ${dup}`);
      else if (clash !== undefined) {
        issue(`${at}.name`, `"${name}" has node id 0x${nodeId.toString(16).padStart(8, '0')}, the same as "${clash.name}" (${clash.path}); rename one`);
      } else {
        seenNames.set(name, `${at}.name`);
        seenIds.set(nodeId, { name, path: `${at}.name` });
      }
    }

    const subnets = nodeSubnetsAt(rawNode['subnets'], at, clusterCidrs, seenSubnets, issue);
    const reach = endpointsAt(rawNode, at, issue);
    families.push(...reach.families);
    for (const t of TRANSPORTS) {
      const text = reach.endpoints[t.kind];
      if (text === undefined || t.endpointKey === undefined) continue;
      const key = `${t.kind} ${text}`;
      const dup = seenEndpoints.get(key);
      if (dup !== undefined) issue(`${at}.${t.endpointKey}`, `"${text}" is already used by ${dup}`);
      else seenEndpoints.set(key, `${at}.${t.endpointKey}`);
    }
    const mtu = rawNode['mtu'] === undefined ? undefined : mtuAt(rawNode['mtu'], `${at}.mtu`, reach.families.includes(6) ? 6 : 4, clusterCidrs, issue);
    const transports = transportsAt(rawNode['transport'], `${at}.transport`, issue);
    const publicKey = publicKeyAt(rawNode['publicKey'], `${at}.publicKey`, issue);
    if (publicKey !== undefined) {
      const dup = seenKeys.get(publicKey);
      if (dup !== undefined) issue(`${at}.publicKey`, `the same key as ${dup}: every node has its own`);
      else seenKeys.set(publicKey, `${at}.publicKey`);
    } else if (ctx.encryption === 'sealed' && rawNode['publicKey'] === undefined && name !== undefined && name !== ctx.nodeName) {
      issue(`${at}.publicKey`, `required with encryption: sealed (peers are accepted only with the key their entry names); ${PUBLIC_KEY_HOWTO}`);
    }
    if (name !== undefined && transports !== undefined) {
      checkDialable(ctx, at, name, name === ctx.nodeName, reach, transports);
      nodes.push({ name, subnets, endpoints: reach.endpoints, mtu, transports, ...(publicKey === undefined ? {} : { publicKey }) });
    }
  });
  if (ctx.nodeName !== undefined && nodes.length > 0 && !nodes.some((n) => n.name === ctx.nodeName)) {
    issue('nodeName', `"${ctx.nodeName}" is not in nodes (${nodes.map((n) => n.name).join(', ')})`);
  }
  return { nodes, families };
}

function nodeSubnetsAt(
  value: unknown,
  at: string,
  clusterCidrs: readonly Cidr[],
  seen: { cidr: Cidr; path: string }[],
  issue: IssueFn,
): string[] {
  const subnets: Cidr[] = [];
  if (value === undefined) issue(`${at}.subnets`, 'required (one IPv4 subnet, optionally one IPv6 subnet)');
  else if (!Array.isArray(value)) issue(`${at}.subnets`, `expected a list of CIDRs, got ${describe(value)}`);
  else {
    let bad = false;
    value.forEach((item: unknown, j) => {
      const path = `${at}.subnets[${j}]`;
      let here = false;
      const report: IssueFn = (p, reason) => {
        here = true;
        return issue(p, reason);
      };
      const cidr = cidrAt(item, path, report);
      if (cidr !== undefined) subnetAt(cidr, path, clusterCidrs, subnets, seen, report);
      if (here) bad = true;
      else if (cidr !== undefined) {
        subnets.push(cidr);
        seen.push({ cidr, path });
      }
    });
    if (!bad && !subnets.some((c) => c.family === 4)) issue(`${at}.subnets`, 'needs one IPv4 subnet');
  }
  return subnets.sort((a, b) => a.family - b.family).map((c) => c.text);
}

/**
 * Who could dial whom: a node listing its own endpoint for a transport it does not listen on
 * answers nobody there; a peer reachable by one transport only, with no endpoint for it, can be
 * reached only if it dials us, which needs our listener.
 */
function checkDialable(ctx: NodesContext, at: string, name: string, isLocal: boolean, reach: Reach, transports: readonly string[]): void {
  for (const t of TRANSPORTS) {
    const mine = ctx.transports.find((c) => c?.kind === t.kind);
    if (mine === undefined || t.endpointKey === undefined) continue;
    const endpoint = reach.endpoints[t.kind];
    const listening = mine.listenAddress !== undefined;
    if (isLocal && endpoint !== undefined && !listening) {
      ctx.issue(`${at}.${t.endpointKey}`, `this node (${name}) has no ${t.listenSetting}, so nothing answers at ${endpoint}; add ${t.listenSetting} or drop ${t.endpointKey}`);
    }
    const only = transports.length === 1 && transports[0] === t.kind;
    if (!isLocal && only && endpoint === undefined && !listening) {
      ctx.issue(`${at}.transport`, `"${t.kind}" but ${name} has no ${t.endpointKey} and this node has no ${t.listenSetting}: neither side can dial the other (add one, or use another transport)`);
    }
  }
}
