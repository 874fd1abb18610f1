/**
 * A Kubernetes Node as a podtun lease, and this node's advertisement as Node annotations.
 *
 * The pod subnets are `spec.podCIDRs` (kube-controller-manager's nodeipam assigns them; podtun
 * never allocates in this mode). How the node is reached is published by its podtun under one
 * prefix (default "podtun.io/"):
 *
 *   podtun.io/transports          "udp,ws"            the preference, most preferred first
 *   podtun.io/endpoint-udp        "192.168.77.1:8285" one key per transport kind it listens on
 *   podtun.io/endpoint-ws         "ws://192.168.77.1:8443"
 *   podtun.io/mtu                 "1400"              only when the node's underlay is smaller
 *   podtun.io/public-key          "<base64, 44 chars>" its X25519 key (sealed tunnels)
 *
 * `transports` marks a Node that runs podtun: a Node without it is not a peer yet. A user sets
 * `podtun.io/override-endpoint-<kind>` (a node behind NAT: its public address) and podtun
 * publishes that instead of the address it would pick.
 */
import { cidrContains, parseCidr } from '../../core/cidr.js';
import type { Cidr } from '../../core/cidr.js';
import type { Lease } from '../../core/lease.js';
import { parsePublicKeyText } from '../../core/public-key.js';
import type { Advertisement } from '../../core/subnet-manager.js';
import type { KubeObject } from './kube-client.js';

export const DEFAULT_ANNOTATION_PREFIX = 'podtun.io/';
const KIND_RE = /^[a-z][a-z0-9-]{0,31}$/;
const MAX_ENDPOINT_CHARS = 512;
const MTU_MIN = 576;
const MTU_MAX = 65535;

export interface AnnotationKeys {
  readonly transports: string;
  readonly mtu: string;
  readonly publicKey: string;
  endpoint(kind: string): string;
  override(kind: string): string;
}

export function annotationKeys(prefix: string): AnnotationKeys {
  return {
    transports: `${prefix}transports`,
    mtu: `${prefix}mtu`,
    publicKey: `${prefix}public-key`,
    endpoint: (kind) => `${prefix}endpoint-${kind}`,
    override: (kind) => `${prefix}override-endpoint-${kind}`,
  };
}

/** A Node that cannot be used as a lease: the reason names the field. */
export class NodeLeaseError extends Error {
  readonly code = 'ERR_PODTUN_NODE_LEASE';
}

export function nodeName(node: KubeObject): string {
  const name = (node['metadata'] as { name?: unknown } | undefined)?.name;
  return typeof name === 'string' ? name : '';
}

export function annotationsOf(node: KubeObject): Readonly<Record<string, string>> {
  const raw = (node['metadata'] as { annotations?: unknown } | undefined)?.annotations;
  if (typeof raw !== 'object' || raw === null) return {};
  return Object.fromEntries(Object.entries(raw).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

/** `spec.podCIDRs` (or the older single `spec.podCIDR`), as written. */
export function podCidrsOf(node: KubeObject): string[] {
  const spec = node['spec'] as { podCIDRs?: unknown; podCIDR?: unknown } | undefined;
  if (Array.isArray(spec?.podCIDRs)) return spec.podCIDRs.filter((c): c is string => typeof c === 'string');
  return typeof spec?.podCIDR === 'string' && spec.podCIDR !== '' ? [spec.podCIDR] : [];
}

/** The node's InternalIP addresses, IPv4 first, as the kubelet registered them. */
export function internalIpsOf(node: KubeObject): string[] {
  const addresses = (node['status'] as { addresses?: unknown } | undefined)?.addresses;
  if (!Array.isArray(addresses)) return [];
  const ips = addresses
    .filter((a): a is { type: string; address: string } => typeof a === 'object' && a !== null && (a as { type?: unknown }).type === 'InternalIP' && typeof (a as { address?: unknown }).address === 'string')
    .map((a) => a.address);
  return [...ips.filter((ip) => !ip.includes(':')), ...ips.filter((ip) => ip.includes(':'))];
}

/**
 * The node's pod subnets, checked against the cluster CIDRs: canonical text, IPv4 first. Throws
 * NodeLeaseError naming both when a subnet lies outside them (a mismatch between kube-controller-
 * manager's --cluster-cidr and podtun's clusterCidrs), or when there are two of one family.
 */
export function podSubnetsOf(node: KubeObject, clusterCidrs: readonly Cidr[]): string[] {
  const out: Cidr[] = [];
  for (const text of podCidrsOf(node)) {
    let cidr: Cidr;
    try {
      cidr = parseCidr(text);
    } catch (err: unknown) {
      throw new NodeLeaseError(`node ${nodeName(node)}: spec.podCIDRs "${text}": ${err instanceof Error ? err.message : String(err)}`);
    }
    const cluster = clusterCidrs.find((c) => c.family === cidr.family);
    if (cluster === undefined || !cidrContains(cluster, cidr)) {
      throw new NodeLeaseError(
        `node ${nodeName(node)}: spec.podCIDRs ${cidr.text} is not inside podtun's clusterCidrs (${clusterCidrs.map((c) => c.text).join(', ')}): ` +
          "make kube-controller-manager's --cluster-cidr and podtun's clusterCidrs the same",
      );
    }
    if (out.some((c) => c.family === cidr.family)) throw new NodeLeaseError(`node ${nodeName(node)}: spec.podCIDRs has two IPv${cidr.family} subnets`);
    out.push(cidr);
  }
  return out.sort((a, b) => a.family - b.family).map((c) => c.text);
}

/**
 * The lease a peer Node stands for, or undefined when it is not a podtun node yet (no
 * `transports` annotation) or has no pod subnet yet. Throws NodeLeaseError for what cannot be
 * used (the manager logs it once and ignores the node).
 */
export function leaseOfNode(node: KubeObject, keys: AnnotationKeys, clusterCidrs: readonly Cidr[]): Lease | undefined {
  const annotations = annotationsOf(node);
  const name = nodeName(node);
  const preference = annotations[keys.transports];
  if (preference === undefined) return undefined;
  const subnets = podSubnetsOf(node, clusterCidrs);
  if (subnets.length === 0) return undefined;
  const transports = preference.split(',').map((k) => k.trim()).filter((k) => k !== '');
  if (transports.length === 0 || transports.some((k) => !KIND_RE.test(k)) || new Set(transports).size !== transports.length) {
    throw new NodeLeaseError(`node ${name}: annotation ${keys.transports} "${preference}" is not a list of distinct transport kinds`);
  }
  const endpoints: Record<string, string> = {};
  const prefix = keys.endpoint('');
  for (const [key, value] of Object.entries(annotations)) {
    if (!key.startsWith(prefix)) continue;
    const kind = key.slice(prefix.length);
    if (!KIND_RE.test(kind)) continue;
    if (value === '' || value.length > MAX_ENDPOINT_CHARS) throw new NodeLeaseError(`node ${name}: annotation ${key}: empty or longer than ${MAX_ENDPOINT_CHARS} characters`);
    endpoints[kind] = value;
  }
  const mtuText = annotations[keys.mtu];
  let mtu: number | undefined;
  if (mtuText !== undefined) {
    mtu = Number(mtuText);
    if (!Number.isInteger(mtu) || mtu < MTU_MIN || mtu > MTU_MAX) throw new NodeLeaseError(`node ${name}: annotation ${keys.mtu} "${mtuText}" is not an MTU (${MTU_MIN}-${MTU_MAX})`);
  }
  const publicKey = annotations[keys.publicKey];
  if (publicKey !== undefined) {
    try {
      parsePublicKeyText(publicKey);
    } catch (err: unknown) {
      throw new NodeLeaseError(`node ${name}: annotation ${keys.publicKey}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return {
    node: name,
    subnets,
    endpoints,
    transports,
    ...(mtu === undefined ? {} : { mtu }),
    ...(publicKey === undefined ? {} : { publicKey }),
  };
}

/**
 * The annotations this node publishes (one merge patch; a key set to null is removed, so an
 * endpoint this node no longer has does not linger): its endpoints (the user's override for a
 * kind wins), its preference and MTU.
 */
export function advertisedAnnotations(
  node: KubeObject,
  advertisement: Advertisement,
  keys: AnnotationKeys,
): Record<string, string | null> {
  const current = annotationsOf(node);
  const out: Record<string, string | null> = {};
  const prefix = keys.endpoint('');
  for (const key of Object.keys(current)) if (key.startsWith(prefix)) out[key] = null;
  const endpoints: Record<string, string> = { ...advertisement.endpoints };
  const overridePrefix = keys.override('');
  for (const [key, value] of Object.entries(current)) {
    if (key.startsWith(overridePrefix) && value !== '') endpoints[key.slice(overridePrefix.length)] = value;
  }
  for (const [kind, endpoint] of Object.entries(endpoints)) out[keys.endpoint(kind)] = endpoint;
  out[keys.transports] = (advertisement.transports ?? []).join(',');
  out[keys.mtu] = advertisement.mtu === undefined ? null : String(advertisement.mtu);
  out[keys.publicKey] = advertisement.publicKey ?? null;
  return out;
}
