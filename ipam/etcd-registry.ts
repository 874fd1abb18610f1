/**
 * The Registry (registry.ts) on etcd v3; the only importer of `etcd3`.
 *
 * Layout: one key per subnet, `<prefix>subnets/10.244.3.0-24` ("/" written as "-", as flannel
 * does), whose value is the lease record and which is attached to an etcd lease.
 *
 *  - list: one range read over the prefix; its header revision is the snapshot's revision.
 *  - claim: grant an etcd lease of the TTL, then one transaction: if every key is absent
 *    (create revision 0) or still at the revision the caller read (mod revision), put every key
 *    under the new lease; else write nothing and revoke the lease. A takeover re-puts the key
 *    under the new lease, which detaches it from the old one (that lease then expires empty).
 *  - renew: one LeaseKeepAlive round trip; TTL 0 in the answer means etcd no longer knows the
 *    lease (expired or revoked), and with it the keys are gone.
 *  - watch: an etcd watch on the prefix from the given revision. Any disconnect or cancel
 *    (compaction) breaks it, and the caller resyncs with a fresh list: the library's own
 *    silent resubscribe is not used, so no change can slip by unnoticed.
 *
 * Across an etcd restart, etcd keeps leases and gives each a fresh TTL when it comes back, so a
 * renewal after the outage succeeds. A lease etcd really lost is re-claimed by the manager.
 *
 * Fault handling: the library's per-host circuit breaker would refuse calls for 5 s after three
 * failures, which delays renewal after an etcd restart by up to a TTL; it is replaced by a
 * pass-through policy (the manager retries with its own backoff). Every unary call and renewal
 * has a deadline (`dialTimeoutMs`), so a hung connection fails instead of stalling renewals.
 */
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { Etcd3 } from 'etcd3';
import type { IKeyValue, IOptions, IWatchResponse, Watcher } from 'etcd3';
import { errorMessage } from '../core/config-check.js';
import type { Logger } from '../core/logger.js';
import { RegistryError } from './registry.js';
import type {
  Claim,
  ClaimRequest,
  Registry,
  RegistryEntry,
  RegistryEvent,
  RegistrySnapshot,
  RegistryWatch,
  RegistryWatchBreak,
  RegistryWatchListener,
  RenewResult,
} from './registry.js';

export interface EtcdRegistryOptions {
  /** Client URLs, "http://host:2379" or "https://host:2379". */
  endpoints: string[];
  /** Key prefix, e.g. "/podtun/"; a missing trailing "/" is added. */
  prefix: string;
  /** PEM files; without caFile the system's root CAs are trusted. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** Deadline of each call (and of connecting for it); default 5000 ms. */
  dialTimeoutMs?: number;
  log: Logger;
}

export const DEFAULT_ETCD_DIAL_TIMEOUT_MS = 5000;
/** How long close() waits for etcd to confirm a watch cancel before dropping the connection. */
const WATCH_CANCEL_WAIT_MS = 1000;

export function createEtcdRegistry(options: EtcdRegistryOptions): Registry {
  return new EtcdRegistry(options);
}

type FaultHandling = NonNullable<IOptions['faultHandling']>;
type HostPolicy = ReturnType<NonNullable<FaultHandling['host']>>;

/**
 * The library's own watch reconnect delay. Broken watches are dropped and resynced by the
 * manager, so this only paces a reconnect timer the library leaves behind after a disconnect;
 * a short constant delay keeps that from holding the process open for up to 30 s after close.
 */
const WATCH_RECONNECT_BACKOFF: NonNullable<FaultHandling['watchBackoff']> = {
  duration: 500,
  next() {
    return this;
  },
};

/** Runs the call as is: no circuit breaker (see the file comment). */
function passThroughPolicy(): HostPolicy {
  const noEvent = () => ({ dispose: () => undefined });
  const policy = {
    onSuccess: noEvent,
    onFailure: noEvent,
    execute: <T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T): Promise<T> =>
      Promise.resolve().then(() => fn({ signal: new AbortController().signal })),
  };
  return policy as unknown as HostPolicy;
}

class EtcdRegistry implements Registry {
  private readonly client: Etcd3;
  private readonly keyPrefix: string;
  private readonly callTimeoutMs: number;
  private readonly where: string;
  private readonly log: Logger;
  private readonly watches = new Set<EtcdWatch>();
  private closing: Promise<void> | undefined;

  constructor(options: EtcdRegistryOptions) {
    if (options.endpoints.length === 0) throw new RegistryError('etcd: no endpoints given');
    const prefix = options.prefix.endsWith('/') ? options.prefix : `${options.prefix}/`;
    this.keyPrefix = `${prefix}subnets/`;
    this.callTimeoutMs = options.dialTimeoutMs ?? DEFAULT_ETCD_DIAL_TIMEOUT_MS;
    this.where = options.endpoints.join(',');
    this.log = options.log;
    const timeout = this.callTimeoutMs;
    const clientOptions: IOptions = {
      hosts: options.endpoints,
      dialTimeout: timeout,
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + timeout }),
      faultHandling: { host: () => passThroughPolicy(), watchBackoff: WATCH_RECONNECT_BACKOFF },
      grpcOptions: {
        // Reconnect promptly once etcd is back; the manager paces its own retries.
        'grpc.initial_reconnect_backoff_ms': 200,
        'grpc.max_reconnect_backoff_ms': 2000,
        // Notice a silently dead connection (etcd refuses pings more often than every 5 s).
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
      },
    };
    if (options.tls !== undefined) clientOptions.credentials = credentialsOf(options.tls);
    this.client = new Etcd3(clientOptions);
  }

  async list(): Promise<RegistrySnapshot> {
    const res = await this.call('list', () => this.client.getAll().prefix(this.keyPrefix).exec());
    return { entries: res.kvs.map((kv) => this.entryOf(kv)), revision: Number(res.header.revision) };
  }

  async claim(subnets: readonly ClaimRequest[], value: string, ttlSeconds: number): Promise<Claim | undefined> {
    const [first, ...rest] = subnets;
    if (first === undefined) throw new RegistryError('etcd claim: no subnets requested');
    const ttl = Math.max(1, Math.ceil(ttlSeconds));
    const grant = await this.call('lease grant', () => this.client.leaseClient.leaseGrant({ TTL: ttl }));
    const id = grant.ID;
    let txn = this.client.if(this.keyOf(first.subnet), ...condition(first));
    for (const request of rest) txn = txn.and(this.keyOf(request.subnet), ...condition(request));
    txn = txn.then(...subnets.map((r) => this.client.put(this.keyOf(r.subnet)).value(value).lease(id)));
    // On a failed commit the transaction may or may not have happened (the caller lists to find
    // out); revoking the lease would delete our keys if it did, so it is left to expire instead.
    const res = await this.call('claim', () => txn.commit());
    if (!res.succeeded) {
      this.revokeQuietly(id);
      return undefined;
    }
    return { id, ttlSeconds: Number(grant.TTL), revision: Number(res.header.revision) };
  }

  async renew(claim: Claim): Promise<RenewResult> {
    const stream = await this.call('renew', () =>
      this.client.leaseClient.leaseKeepAlive({ deadline: Date.now() + this.callTimeoutMs }),
    );
    try {
      const ttl = await new Promise<number>((resolve, reject) => {
        stream.on('data', (res: { TTL: string }) => resolve(Number(res.TTL)));
        stream.on('error', (err: unknown) => reject(err instanceof Error ? err : new Error(String(err))));
        stream.on('end', () => reject(new Error('keepalive stream ended without an answer')));
        stream.write({ ID: claim.id });
      });
      return ttl > 0 ? 'renewed' : 'expired';
    } catch (err: unknown) {
      throw this.wrap('renew', err);
    } finally {
      stream.end();
    }
  }

  watch(fromRevision: number, listener: RegistryWatchListener): RegistryWatch {
    const watch = new EtcdWatch(listener, this.log, (w) => this.watches.delete(w));
    if (this.closing !== undefined) {
      watch.fail('registry closed', 'failed');
      return watch;
    }
    this.watches.add(watch);
    let watcher: Watcher;
    try {
      watcher = this.client.watch().prefix(this.keyPrefix).startRevision(String(fromRevision)).watcher();
    } catch (err: unknown) {
      watch.fail(`watch failed: ${errorMessage(err)}`, 'failed');
      return watch;
    }
    watch.attach(watcher);
    watcher.on('data', (res: IWatchResponse) => {
      // A replay of history arrives as one response over many revisions: split it so that a
      // batch is always one transaction, as the contract says.
      let batch: RegistryEvent[] = [];
      let batchRevision = 0;
      for (const ev of res.events) {
        const revision = Number(ev.kv.mod_revision || res.header.revision);
        if (batch.length > 0 && revision !== batchRevision) {
          watch.deliver(batch);
          batch = [];
        }
        batchRevision = revision;
        batch.push(
          ev.type === 'Delete' ? { type: 'delete', subnet: this.subnetOf(ev.kv.key), revision } : { type: 'put', entry: this.entryOf(ev.kv) },
        );
      }
      if (batch.length > 0) watch.deliver(batch);
    });
    watcher.on('disconnected', (err: Error) => {
      this.log.debug({ err, reason: `watch from revision ${fromRevision}` }, 'etcd watch disconnected');
      watch.fail(`connection to etcd lost (${this.where}): ${errorMessage(err)}`, 'failed');
    });
    watcher.on('error', (err: Error) => {
      this.log.debug({ err, reason: `watch from revision ${fromRevision}` }, 'etcd watch canceled');
      // etcd cancels with an empty reason when the start revision has been compacted away.
      const reason = errorMessage(err).replace(/^Watcher canceled:\s*/, '');
      if (reason === '') watch.fail(`etcd canceled the watch from revision ${fromRevision}: history compacted`, 'compacted');
      else watch.fail(`etcd canceled the watch from revision ${fromRevision}: ${reason}`, 'failed');
    });
    return watch;
  }

  close(): Promise<void> {
    if (this.closing === undefined) {
      this.closing = (async () => {
        await Promise.all([...this.watches].map((w) => w.close()));
        this.client.close();
      })();
    }
    return this.closing;
  }

  private entryOf(kv: IKeyValue): RegistryEntry {
    return { subnet: this.subnetOf(kv.key), value: kv.value.toString('utf8'), revision: Number(kv.mod_revision) };
  }

  private keyOf(subnet: string): string {
    return `${this.keyPrefix}${subnet.replace('/', '-')}`;
  }

  /** "…/subnets/10.244.3.0-24" -> "10.244.3.0/24"; a foreign key comes back as is (the manager refuses it). */
  private subnetOf(key: Buffer): string {
    const name = key.toString('utf8').slice(this.keyPrefix.length);
    const dash = name.lastIndexOf('-');
    return dash < 0 ? name : `${name.slice(0, dash)}/${name.slice(dash + 1)}`;
  }

  private revokeQuietly(id: string): void {
    this.client.leaseClient.leaseRevoke({ ID: id }).catch((err: unknown) => {
      this.log.debug({ err, reason: `lease ${id}` }, 'etcd lease revoke failed; it will expire');
    });
  }

  private async call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    if (this.closing !== undefined) throw new RegistryError(`etcd ${op}: registry closed`);
    try {
      return await fn();
    } catch (err: unknown) {
      throw this.wrap(op, err);
    }
  }

  private wrap(op: string, err: unknown): RegistryError {
    if (err instanceof RegistryError) return err;
    return new RegistryError(`etcd ${op} failed (${this.where}): ${errorMessage(err)}`, { cause: err });
  }
}

/** The etcd compare for one claimed key: absent (create revision 0), or unchanged since read. */
function condition(request: ClaimRequest): ['Create' | 'Mod', '==', number] {
  return request.ifRevision === 0 ? ['Create', '==', 0] : ['Mod', '==', request.ifRevision];
}

class EtcdWatch implements RegistryWatch {
  private watcher: Watcher | undefined;
  private open = true;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly listener: RegistryWatchListener,
    private readonly log: Logger,
    private readonly forget: (watch: EtcdWatch) => void,
  ) {}

  attach(watcher: Watcher): void {
    this.watcher = watcher;
  }

  deliver(batch: RegistryEvent[]): void {
    if (!this.open) return;
    // A throw here would surface inside the etcd client as an uncaught exception.
    try {
      this.listener.events(batch);
    } catch (err: unknown) {
      this.log.error({ err }, 'registry watch listener failed');
    }
  }

  /** Breaks the watch: the listener hears `broken` once (asynchronously, unless closed first). */
  fail(reason: string, kind: RegistryWatchBreak): void {
    if (!this.open) return;
    this.open = false;
    void this.cancel();
    queueMicrotask(() => {
      if (this.closing === undefined) this.listener.broken(reason, kind);
    });
  }

  close(): Promise<void> {
    this.open = false;
    this.closing ??= this.cancel();
    return this.closing;
  }

  private async cancel(): Promise<void> {
    this.forget(this);
    const watcher = this.watcher;
    this.watcher = undefined;
    if (watcher === undefined) return;
    watcher.removeAllListeners('data');
    // A cancel needs etcd's answer; when etcd is gone that never comes: do not wait for it long.
    watcher.on('error', () => undefined);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      watcher.cancel().catch(() => undefined),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, WATCH_CANCEL_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
  }
}

function credentialsOf(tls: NonNullable<EtcdRegistryOptions['tls']>): NonNullable<IOptions['credentials']> {
  const read = (field: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err: unknown) {
      throw new RegistryError(`etcd tls.${field}: cannot read ${path}: ${errorMessage(err)}`, { cause: err });
    }
  };
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    throw new RegistryError('etcd tls: certFile and keyFile go together');
  }
  const credentials: NonNullable<IOptions['credentials']> = {
    rootCertificate: tls.caFile !== undefined ? read('caFile', tls.caFile) : Buffer.from(rootCertificates.join('\n')),
  };
  if (tls.certFile !== undefined) credentials.certChain = read('certFile', tls.certFile);
  if (tls.keyFile !== undefined) credentials.privateKey = read('keyFile', tls.keyFile);
  return credentials;
}
