/**
 * The etcd subnet manager as it registers (`subnetManager: {type: etcd, endpoints, ...}`): each
 * node leases a free subnet of the cluster CIDRs in etcd (registry-subnet-manager.ts over
 * etcd-registry.ts, loaded only in this mode: the etcd client is heavy).
 */
import type { Cidr, IpFamily } from '../core/cidr.js';
import { blockIssues, checkKnownKeys, describe, filePathAt, intAt, isAbsent, isRecord, show, urlAt } from '../core/config-check.js';
import type { IssueFn } from '../core/config-check.js';
import type { SubnetManagerType } from '../core/subnet-manager.js';
import { RegistrySubnetManager } from './registry-subnet-manager.js';

export interface EtcdManagerSettings {
  /** Client URLs, "http(s)://host:port". */
  readonly endpoints: readonly string[];
  /** Key prefix, starting and ending with "/". */
  readonly prefix: string;
  /** A lease not renewed for this long is free again. */
  readonly ttlSeconds: number;
  readonly subnetLengthV4: number;
  readonly subnetLengthV6: number;
  /** Client TLS (absolute paths); undefined: plain or system-trusted https. */
  readonly tls: { readonly caFile: string | undefined; readonly certFile: string | undefined; readonly keyFile: string | undefined } | undefined;
}

export const DEFAULT_ETCD_PREFIX = '/podtun/';
export const DEFAULT_LEASE_TTL_SECONDS = 60;
export const DEFAULT_SUBNET_LENGTH_V4 = 24;
export const DEFAULT_SUBNET_LENGTH_V6 = 64;
/** etcd grants no lease shorter than ~1.5 election timeouts; renewals need headroom. */
export const MIN_LEASE_TTL_SECONDS = 3;
export const MAX_LEASE_TTL_SECONDS = 7 * 24 * 3600;
/** The TUN takes the subnet's network address and the pod bridge .1: at least 4 addresses. */
const SUBNET_PREFIX_MAX: Readonly<Record<IpFamily, number>> = { 4: 30, 6: 126 };
const TLS_KEYS = ['caFile', 'certFile', 'keyFile'] as const;
const URL_FORM = '"http://host:port" or "https://host:port"';

export const etcdManagerType: SubnetManagerType<EtcdManagerSettings> = {
  type: 'etcd',
  readsNodeList: false,
  keys: ['endpoints', 'prefix', 'ttlSeconds', 'subnetLength', 'subnetLengthV6', 'tls'],
  validate(block, ctx) {
    const { issue, bad } = blockIssues(ctx.issue);
    const endpoints: string[] = [];
    const rawEndpoints = block['endpoints'];
    if (!Array.isArray(rawEndpoints) || rawEndpoints.length === 0) {
      issue('subnetManager.endpoints', `required: a list of etcd client URLs ("http://10.0.0.1:2379"), got ${describe(rawEndpoints)}`);
    } else {
      rawEndpoints.forEach((e: unknown, i) => {
        const url = urlAt(e, `subnetManager.endpoints[${i}]`, ['http:', 'https:'], URL_FORM, issue);
        if (url !== undefined) endpoints.push(url);
      });
    }
    let prefix = DEFAULT_ETCD_PREFIX;
    const rawPrefix = block['prefix'];
    if (rawPrefix !== undefined) {
      if (typeof rawPrefix !== 'string' || !/^\/([\w.-]+\/)*$/.test(rawPrefix)) {
        issue('subnetManager.prefix', `${show(rawPrefix)} is not a key prefix like "/podtun/" (starts and ends with "/"; letters, digits, '_', '.', '-')`);
      } else prefix = rawPrefix;
    }
    const ttlSeconds = intAt(block['ttlSeconds'], 'subnetManager.ttlSeconds', DEFAULT_LEASE_TTL_SECONDS, MIN_LEASE_TTL_SECONDS, MAX_LEASE_TTL_SECONDS, issue);
    const subnetLengthV4 = subnetLengthAt(block['subnetLength'], 'subnetManager.subnetLength', DEFAULT_SUBNET_LENGTH_V4, 4, ctx.clusterCidrs, issue);
    const subnetLengthV6 = subnetLengthAt(block['subnetLengthV6'], 'subnetManager.subnetLengthV6', DEFAULT_SUBNET_LENGTH_V6, 6, ctx.clusterCidrs, issue);
    let tls: EtcdManagerSettings['tls'];
    const rawTls = block['tls'];
    if (!isAbsent(rawTls)) {
      if (!isRecord(rawTls)) issue('subnetManager.tls', `expected a mapping (caFile, certFile, keyFile), got ${describe(rawTls)}`);
      else {
        checkKnownKeys(rawTls, 'subnetManager.tls', TLS_KEYS, issue);
        const caFile = filePathAt(rawTls['caFile'], 'subnetManager.tls.caFile', ctx.baseDir, issue, false);
        const certFile = filePathAt(rawTls['certFile'], 'subnetManager.tls.certFile', ctx.baseDir, issue, false);
        const keyFile = filePathAt(rawTls['keyFile'], 'subnetManager.tls.keyFile', ctx.baseDir, issue, false);
        if ((certFile === undefined) !== (keyFile === undefined)) issue('subnetManager.tls', 'certFile and keyFile go together (client certificate and its key)');
        tls = { caFile, certFile, keyFile };
      }
    }
    if (bad() || ttlSeconds === undefined || subnetLengthV4 === undefined || subnetLengthV6 === undefined) return undefined;
    return { endpoints, prefix, ttlSeconds, subnetLengthV4, subnetLengthV6, tls };
  },
  async open(settings, ctx) {
    const { createEtcdRegistry } = await import('./etcd-registry.js');
    const registry = createEtcdRegistry({
      endpoints: [...settings.endpoints],
      prefix: settings.prefix,
      ...(settings.tls === undefined ? {} : { tls: definedOnly(settings.tls) }),
      log: ctx.log,
    });
    return new RegistrySubnetManager({
      registry,
      ownsRegistry: true,
      node: ctx.node,
      clusterCidrs: ctx.clusterCidrs,
      subnetLengthV4: settings.subnetLengthV4,
      subnetLengthV6: settings.subnetLengthV6,
      ttlSeconds: settings.ttlSeconds,
      advertise: ctx.advertise,
      log: ctx.log,
      onLeaseLost: (reason) => ctx.onLeaseLost(reason),
    });
  },
};

/** A node subnet length: longer than the cluster CIDR's, short enough for the TUN, the bridge and pods. */
function subnetLengthAt(value: unknown, path: string, fallback: number, family: IpFamily, clusterCidrs: readonly Cidr[], issue: IssueFn): number | undefined {
  const length = intAt(value, path, fallback, 1, family === 4 ? 32 : 128, issue);
  const cluster = clusterCidrs.find((c) => c.family === family);
  if (length === undefined || cluster === undefined) return length;
  if (length <= cluster.prefixLen) return issue(path, `/${length} does not split the cluster CIDR ${cluster.text} into node subnets (needs more than /${cluster.prefixLen})`);
  if (length > SUBNET_PREFIX_MAX[family]) return issue(path, `/${length} is too small for a node subnet (at most /${SUBNET_PREFIX_MAX[family]})`);
  return length;
}

function definedOnly<T extends Record<string, string | undefined>>(value: T): { [K in keyof T]?: string } {
  const out: { [K in keyof T]?: string } = {};
  for (const key of Object.keys(value) as (keyof T)[]) {
    const v = value[key];
    if (v !== undefined) out[key] = v;
  }
  return out;
}
