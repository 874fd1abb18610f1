/**
 * The `advertise` block: how peers reach this node when leases come from a control plane (etcd,
 * Kubernetes). A transport's endpoint not given defaults to what its listener says
 * (TransportType.defaultEndpoint).
 */
import type { Cidr } from '../../../core/cidr.js';
import { blockIssues, checkKnownKeys, describe, isAbsent, isRecord } from '../../../core/config-check.js';
import type { IssueFn } from '../../../core/config-check.js';
import type { TransportChoice } from '../../../tunnel/transport-type.js';
import { TRANSPORTS } from '../../../tunnel/transports.js';
import type { AdvertiseSettings } from '../node-config.js';
import { mtuAt } from './mtu.js';
import { ENDPOINT_KEYS, endpointsAt, transportsAt } from './reach.js';
import type { Reach } from './reach.js';

const KEYS = [...ENDPOINT_KEYS, 'transport', 'mtu'] as const;

export function advertiseAt(
  value: unknown,
  transports: readonly (TransportChoice | undefined)[],
  clusterCidrs: readonly Cidr[],
  report: IssueFn,
): { advertise: AdvertiseSettings; families: Reach['families'] } | undefined {
  const raw = isAbsent(value) ? {} : value;
  if (!isRecord(raw)) return report('advertise', `expected a mapping (${KEYS.join(', ')}), got ${describe(raw)}`);
  const { issue, bad } = blockIssues(report);
  checkKnownKeys(raw, 'advertise', KEYS, issue);
  const reach = endpointsAt(raw, 'advertise', issue);
  for (const t of TRANSPORTS) {
    const mine = transports.find((c) => c?.kind === t.kind);
    const listen = mine?.listenAddress;
    const given = reach.endpoints[t.kind];
    if (given !== undefined && mine !== undefined && listen === undefined && t.endpointKey !== undefined) {
      issue(`advertise.${t.endpointKey}`, `this node has no ${t.listenSetting}, so nothing answers at ${given}; add ${t.listenSetting} or drop ${t.endpointKey}`);
    }
    const fallback = mine?.defaultEndpoint;
    if (given === undefined && fallback !== undefined) {
      const parsed = t.parseEndpoint(fallback);
      reach.endpoints[t.kind] = parsed.text;
      if (parsed.family !== undefined) reach.families.push(parsed.family);
    }
  }
  const preference = transportsAt(raw['transport'], 'advertise.transport', issue);
  const mtu = raw['mtu'] === undefined ? undefined : mtuAt(raw['mtu'], 'advertise.mtu', reach.families.includes(6) ? 6 : 4, clusterCidrs, issue);
  if (bad() || preference === undefined) return undefined;
  return { advertise: { endpoints: reach.endpoints, transports: preference, mtu }, families: reach.families };
}
