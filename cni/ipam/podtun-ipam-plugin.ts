/**
 * podtun-ipam: the CNI IPAM plugin that hands pods addresses from the node's subnets. Pure of
 * process and environment: the caller parses the request (cni-protocol.ts) and prints the
 * outcome. State lives in files (pod-address-store.ts), so concurrent invocations, possibly
 * killed at any instant, need no daemon and no lock.
 *
 * ADD    one address per range set for (containerID, ifname); the same pair again gets the
 *        same addresses back. A full range set is CniError 100 and leaves no reservation.
 * DEL    releases everything the pair holds; success when it holds nothing.
 * CHECK  the pair's reservations exist and are exactly prevResult's ips.
 * GC     frees every reservation whose owner is not in cni.dev/valid-attachments, sweeps
 *        leftovers of killed invocations, keeps going past errors and reports them at the end.
 * STATUS exit 0 when the data dir is usable and the ranges are known, else CniError 50.
 *
 * Ranges come from the config, or (without ranges and subnet) from the podtun daemon through
 * `deps.daemonLease`, which throws CniError 11 while the daemon has no lease yet.
 */
import { access, constants } from 'node:fs/promises';
import { CniCode, CniError } from '../cni-error.js';
import {
  GC_ATTACHMENTS_KEY_DRAFT,
  GC_VALID_ATTACHMENTS_KEY,
  convertResult,
  emptyOutcome,
  errorOutcome,
  isPlainObject,
  successOutcome,
  versionOutcome,
} from '../cni-protocol.js';
import type { CniOutcome, CniRequest } from '../cni-protocol.js';
import { candidateAddresses, formatBigint, formatWithPrefix, parseBigint, rangeOf } from './pod-address-allocator.js';
import type { AddressRange } from './pod-address-allocator.js';
import { PodAddressStore } from './pod-address-store.js';
import type { AddressOwner } from './pod-address-store.js';
import { parseIpamConfig, parseStoreLocation, rangeSetsFromSubnets } from './podtun-ipam-config.js';
import type { IpamStoreLocation, PodtunIpamConfig } from './podtun-ipam-config.js';

export interface DaemonLease {
  /** The node's pod subnets, CIDR text ("10.244.1.0/24", "fd00:10:244:1::/64"). */
  subnets: string[];
}

export interface PodtunIpamDeps {
  /**
   * The node's subnets from the local podtun daemon (at ipam.daemonSocket when set), for
   * configs without ranges. Throws CniError 11 while the daemon is not ready.
   */
  daemonLease?: (daemonSocket: string | undefined) => Promise<DaemonLease>;
  /** Clock for the staleness of leftover temp files. */
  now?: () => number;
  /** Whether a PID runs (temp files of dead processes are swept); default: signal 0. */
  isProcessAlive?: (pid: number) => boolean;
}

type Ips = { address: string; gateway: string }[];

/** Runs one podtun-ipam command; every failure becomes the spec's error outcome. */
export async function runIpamCommand(request: CniRequest, deps: PodtunIpamDeps = {}): Promise<CniOutcome> {
  try {
    switch (request.command) {
      case 'VERSION':
        return versionOutcome(request.cniVersion);
      case 'ADD':
        return successOutcome(convertResult(await add(request, deps), request.cniVersion), request.cniVersion);
      case 'DEL':
        await del(request, deps);
        return emptyOutcome();
      case 'CHECK':
        await check(request, deps);
        return emptyOutcome();
      case 'GC':
        await gc(request, deps);
        return emptyOutcome();
      case 'STATUS':
        await status(request, deps);
        return emptyOutcome();
    }
  } catch (err: unknown) {
    return errorOutcome(err, request.cniVersion);
  }
}

async function add(request: CniRequest, deps: PodtunIpamDeps): Promise<Record<string, unknown>> {
  const { containerId, ifName } = attachment(request);
  const config = parseIpamConfig(request.config);
  const store = openStore(config, deps);
  await ensureDir(store);
  await sweepQuietly(store);
  const rangeSets = await resolveRangeSets(config, deps);
  const held = (await io(`failed to read reservations in ${store.dir}`, () => store.findByOwner(containerId, ifName)))
    .map((text) => parseBigint(text))
    .filter((parsed) => parsed !== undefined);

  const ips: Ips = [];
  const fresh: { setIndex: number; address: string }[] = [];
  try {
    for (const [setIndex, set] of rangeSets.entries()) {
      const existing = held.map((address) => ({ value: address.value, range: rangeOf(set, address) })).find(({ range }) => range !== undefined);
      if (existing?.range !== undefined) {
        ips.push(ipEntry(existing.range, existing.value));
        continue;
      }
      const address = await reserveInSet(store, set, setIndex, { containerId, ifName });
      fresh.push({ setIndex, address: formatBigint(address.range.family, address.value) });
      ips.push(ipEntry(address.range, address.value));
    }
  } catch (err: unknown) {
    // All or nothing: an ADD that fails leaves no reservation behind.
    for (const { address } of fresh) {
      await store.releaseIf(address, (owner) => owner !== undefined && owner.containerId === containerId && owner.ifName === ifName).catch(() => undefined);
    }
    throw err;
  }
  // The hint only spreads reservations round-robin; losing it must not fail a complete ADD.
  for (const { setIndex, address } of fresh) await store.writeLastReserved(setIndex, address).catch(() => undefined);
  const result: Record<string, unknown> = { ips };
  if (config.routes.length > 0) result['routes'] = config.routes.map((route) => ({ ...route }));
  return result;
}

async function reserveInSet(
  store: PodAddressStore,
  set: readonly AddressRange[],
  setIndex: number,
  owner: { containerId: string; ifName: string },
): Promise<{ range: AddressRange; value: bigint }> {
  const hint = await io(`failed to read the round-robin hint in ${store.dir}`, () => store.readLastReserved(setIndex));
  const last = hint === undefined ? undefined : parseBigint(hint);
  function* texts(): Generator<string> {
    for (const { range, address } of candidateAddresses(set, last)) yield formatBigint(range.family, address);
  }
  const reserved = await io(`failed to reserve an address in ${store.dir}`, () => store.reserveFirstFree(texts(), owner));
  const parsed = reserved === undefined ? undefined : parseBigint(reserved);
  const range = parsed === undefined ? undefined : rangeOf(set, parsed);
  const found = parsed === undefined || range === undefined ? undefined : { range, value: parsed.value };
  if (found === undefined) {
    throw new CniError(CniCode.RangeExhausted, `no free address in ${describeSet(set)}`, `every address of range set ${setIndex} is reserved in ${store.dir}`);
  }
  return found;
}

async function del(request: CniRequest, deps: PodtunIpamDeps): Promise<void> {
  const { containerId, ifName } = attachment(request);
  const store = openStore(parseStoreLocation(request.config), deps);
  await sweepQuietly(store);
  await io(`failed to release the addresses of ${containerId}/${ifName} in ${store.dir}`, () => store.releaseOwner(containerId, ifName));
}

async function check(request: CniRequest, deps: PodtunIpamDeps): Promise<void> {
  const { containerId, ifName } = attachment(request);
  const config = parseIpamConfig(request.config);
  const store = openStore(config, deps);
  const prevResult = request.config['prevResult'];
  if (!isPlainObject(prevResult)) throw new CniError(CniCode.InvalidConfig, 'CHECK needs prevResult (the result of the ADD being checked)');
  const expected = new Set<string>();
  const ips = prevResult['ips'];
  for (const ip of Array.isArray(ips) ? ips : []) {
    const address = isPlainObject(ip) && typeof ip['address'] === 'string' ? parseBigint(ip['address'].split('/')[0] ?? '') : undefined;
    if (address === undefined) throw new CniError(CniCode.InvalidConfig, `prevResult has a malformed ip entry: ${JSON.stringify(ip)}`);
    expected.add(formatBigint(address.family, address.value));
  }
  const held = await io(`failed to read reservations in ${store.dir}`, () => store.findByOwner(containerId, ifName));
  if (held.length === 0) {
    throw new CniError(CniCode.UnknownContainer, `no address is reserved for ${containerId}/${ifName} in network ${config.network}`);
  }
  const missing = [...expected].filter((address) => !held.includes(address));
  const extra = held.filter((address) => !expected.has(address));
  if (missing.length > 0 || extra.length > 0) {
    throw new CniError(
      CniCode.InvalidConfig,
      `reservations of ${containerId}/${ifName} do not match prevResult`,
      `reserved: [${held.join(', ')}]; in prevResult: [${[...expected].join(', ')}]`,
    );
  }
  const rangeSets = await resolveRangeSets(config, deps);
  for (const address of held) {
    const parsed = parseBigint(address);
    if (parsed === undefined || !rangeSets.some((set) => rangeOf(set, parsed) !== undefined)) {
      throw new CniError(CniCode.InvalidConfig, `${containerId}/${ifName} holds ${address}, which is outside the configured ranges`);
    }
  }
}

async function gc(request: CniRequest, deps: PodtunIpamDeps): Promise<void> {
  const valid = validAttachments(request.config);
  const store = openStore(parseStoreLocation(request.config), deps);
  const failures: string[] = [];
  try {
    await store.sweepStale();
  } catch (err: unknown) {
    failures.push(`sweeping leftovers: ${errorMessage(err)}`);
  }
  const stale = (owner: AddressOwner | undefined): boolean =>
    owner === undefined || !valid.some((a) => a.containerId === owner.containerId && (owner.ifName === undefined || a.ifName === owner.ifName));
  let reservations: { address: string }[] = [];
  try {
    reservations = await store.list();
  } catch (err: unknown) {
    failures.push(`listing ${store.dir}: ${errorMessage(err)}`);
  }
  for (const { address } of reservations) {
    try {
      await store.releaseIf(address, stale);
    } catch (err: unknown) {
      failures.push(`${address}: ${errorMessage(err)}`);
    }
  }
  if (failures.length > 0) {
    throw new CniError(CniCode.IoFailure, `GC of ${store.dir} failed for ${failures.length} item(s)`, failures.join('; '));
  }
}

async function status(request: CniRequest, deps: PodtunIpamDeps): Promise<void> {
  const config = parseIpamConfig(request.config);
  const store = openStore(config, deps);
  try {
    await store.ensureDir();
    await access(store.dir, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (err: unknown) {
    throw new CniError(CniCode.NotAvailable, `data dir ${store.dir} is not usable: ${errorMessage(err)}`, undefined, { cause: err });
  }
  try {
    await resolveRangeSets(config, deps);
  } catch (err: unknown) {
    throw new CniError(CniCode.NotAvailable, `no pod ranges known: ${errorMessage(err)}`, err instanceof CniError ? err.details : undefined, { cause: err });
  }
}

/** The config's range sets, or one set per subnet of the node's lease from the daemon. */
async function resolveRangeSets(config: PodtunIpamConfig, deps: PodtunIpamDeps): Promise<readonly (readonly AddressRange[])[]> {
  if (config.rangeSets !== undefined) return config.rangeSets;
  if (deps.daemonLease === undefined) {
    throw new CniError(CniCode.InvalidConfig, 'invalid ipam: no "ranges" or "subnet", and no podtun daemon to ask for the node\'s subnets');
  }
  let lease: DaemonLease;
  try {
    lease = await deps.daemonLease(config.daemonSocket);
  } catch (err: unknown) {
    if (err instanceof CniError) throw err;
    throw new CniError(CniCode.TryAgainLater, `podtun daemon did not answer with the node's subnets: ${errorMessage(err)}`, undefined, { cause: err });
  }
  if (lease.subnets.length === 0) throw new CniError(CniCode.TryAgainLater, 'podtun daemon has no subnets for this node yet');
  return rangeSetsFromSubnets(lease.subnets);
}

/** GC's list of still-valid attachments (libcni sends it under both spellings). */
function validAttachments(config: Readonly<Record<string, unknown>>): { containerId: string; ifName: string }[] {
  const list = config[GC_VALID_ATTACHMENTS_KEY] ?? config[GC_ATTACHMENTS_KEY_DRAFT];
  if (!Array.isArray(list)) {
    throw new CniError(CniCode.InvalidConfig, `GC needs "${GC_VALID_ATTACHMENTS_KEY}" (an array of {containerID, ifname})`);
  }
  return list.map((item: unknown, i) => {
    if (!isPlainObject(item) || typeof item['containerID'] !== 'string' || typeof item['ifname'] !== 'string') {
      throw new CniError(CniCode.InvalidConfig, `invalid ${GC_VALID_ATTACHMENTS_KEY}[${i}]: expected {containerID, ifname} strings, got ${JSON.stringify(item)}`);
    }
    return { containerId: item['containerID'], ifName: item['ifname'] };
  });
}

function attachment(request: CniRequest): { containerId: string; ifName: string } {
  // parseCniRequest guarantees both for ADD, DEL and CHECK; this guards direct callers.
  if (request.containerId === undefined || request.ifName === undefined) {
    throw new CniError(CniCode.InvalidEnv, `${request.command} needs CNI_CONTAINERID and CNI_IFNAME`);
  }
  return { containerId: request.containerId, ifName: request.ifName };
}

function openStore(location: IpamStoreLocation, deps: PodtunIpamDeps): PodAddressStore {
  return new PodAddressStore(location.dataDir, location.network, {
    ...(deps.now === undefined ? {} : { now: deps.now }),
    ...(deps.isProcessAlive === undefined ? {} : { isProcessAlive: deps.isProcessAlive }),
  });
}

async function ensureDir(store: PodAddressStore): Promise<void> {
  await io(`failed to create ${store.dir}`, () => store.ensureDir());
}

/** Leftovers of killed invocations are garbage: failing to sweep them must not fail the command. */
async function sweepQuietly(store: PodAddressStore): Promise<void> {
  await store.sweepStale().catch(() => undefined);
}

function ipEntry(range: AddressRange, address: bigint): { address: string; gateway: string } {
  return { address: formatWithPrefix(range, address), gateway: formatBigint(range.family, range.gateway) };
}

function describeSet(set: readonly AddressRange[]): string {
  return set.map((range) => range.subnet.text).join(', ');
}

/** Runs a filesystem step; a failure becomes CniError 5 saying what failed. */
async function io<T>(what: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err: unknown) {
    if (err instanceof CniError) throw err;
    throw new CniError(CniCode.IoFailure, `${what}: ${errorMessage(err)}`, undefined, { cause: err });
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
