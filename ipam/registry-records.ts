/**
 * The registry's records read as leases. Anything stored may have been written by another
 * version, another tool or a human with etcdctl, so a record is used only when its key is a
 * canonical subnet, its value decodes (lease-record.ts), it names its own key and every subnet it
 * names lies inside the cluster CIDRs; any other is ignored with one warning (per key and
 * revision), and its key still counts as taken.
 *
 * Leases are derived from the records: one per node, from its newest usable record, with only
 * the subnets whose keys that node really holds (the atomic claim protects keys, not what a value
 * says).
 */
import { errorMessage } from '../core/config-check.js';
import { parseCidr } from '../core/cidr.js';
import type { Cidr } from '../core/cidr.js';
import type { Lease } from '../core/lease.js';
import type { Logger } from '../core/logger.js';
import { decodeLeaseRecord } from './lease-record.js';
import type { RegistryEntry } from './registry.js';
import { insideClusters } from './subnet-plan.js';
import type { SubnetPlan } from './subnet-plan.js';

/** A stored entry as the manager reads it. */
export interface Decoded {
  readonly entry: RegistryEntry;
  /** The key as a CIDR; undefined when it is not one (then it cannot collide with ours). */
  readonly cidr: Cidr | undefined;
  /** The record; undefined when unusable (it was warned about). */
  readonly lease: Lease | undefined;
}

/** Bounds the memory of warnings given: past it, a record may be warned about once more. */
const WARNED_MAX = 1000;

export class RecordReader {
  /** "subnet@revision" of unusable records already warned about. */
  private warned = new Set<string>();

  constructor(
    private readonly plan: SubnetPlan,
    private readonly log: Logger,
  ) {}

  decode(entry: RegistryEntry): Decoded {
    let cidr: Cidr | undefined;
    try {
      cidr = parseCidr(entry.subnet);
    } catch {
      cidr = undefined;
    }
    if (cidr === undefined || cidr.text !== entry.subnet) {
      this.warnOnce(entry, 'the key is not a canonical subnet');
      return { entry, cidr, lease: undefined };
    }
    let lease: Lease;
    try {
      lease = decodeLeaseRecord(entry.value);
    } catch (err: unknown) {
      this.warnOnce(entry, errorMessage(err));
      return { entry, cidr, lease: undefined };
    }
    if (!lease.subnets.includes(entry.subnet)) {
      this.warnOnce(entry, `the record (${lease.subnets.join(', ')}) does not name its own key`);
      return { entry, cidr, lease: undefined };
    }
    const outside = lease.subnets.find((s) => !insideClusters(this.plan, s));
    if (outside !== undefined) {
      this.warnOnce(entry, `${outside} is outside the cluster CIDRs (${this.plan.text})`);
      return { entry, cidr, lease: undefined };
    }
    return { entry, cidr, lease };
  }

  private warnOnce(entry: RegistryEntry, reason: string): void {
    const key = `${entry.subnet}@${entry.revision}`;
    if (this.warned.has(key)) return;
    if (this.warned.size >= WARNED_MAX) this.warned = new Set();
    this.warned.add(key);
    this.log.warn({ subnet: entry.subnet, reason }, 'unusable lease record in the registry ignored');
  }
}

/**
 * One lease per node, from its newest usable record, with the subnets of that record whose keys
 * the node holds; IPv4 first.
 */
export function deriveLeases(records: Iterable<Decoded>): Lease[] {
  const byNode = new Map<string, Decoded[]>();
  for (const d of records) {
    if (d.lease === undefined) continue;
    const list = byNode.get(d.lease.node);
    if (list === undefined) byNode.set(d.lease.node, [d]);
    else list.push(d);
  }
  const leases: Lease[] = [];
  for (const list of byNode.values()) {
    let newest = list[0];
    for (const d of list) if (newest === undefined || d.entry.revision > newest.entry.revision) newest = d;
    if (newest?.lease === undefined) continue;
    const keys = new Set(list.map((d) => d.entry.subnet));
    const subnets = newest.lease.subnets.filter((s) => keys.has(s)).sort((a, b) => Number(a.includes(':')) - Number(b.includes(':')));
    leases.push({ ...newest.lease, subnets });
  }
  return leases;
}

/** A lease handed out: its own subnet list, so that no caller shares the manager's. */
export function copyLease(lease: Lease): Lease {
  return { ...lease, subnets: [...lease.subnets] };
}
