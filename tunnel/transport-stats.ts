/** Counters as the transports report them: `<prefix>.<name>`, zero drop reasons left out. */
import { dropCountersToObject } from '../core/drop-reason.js';

/** Copies `counters` into `out` as `<prefix>.<name>`. */
export function addPrefixed(out: Record<string, number>, prefix: string, counters: Readonly<Record<string, number>>): void {
  for (const name of Object.keys(counters)) out[`${prefix}.${name}`] = counters[name] ?? 0;
}

/** Drop counters (indexed by DropReason) into `out` as `drop.<reason>`. */
export function addDrops(out: Record<string, number>, drops: Float64Array): void {
  addPrefixed(out, 'drop', dropCountersToObject(drops));
}
