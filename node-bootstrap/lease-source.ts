/**
 * Where this node's lease and its peers' leases come from, as the config says: the static
 * `nodes` list (reloaded on file edits and SIGHUP) or etcd (acquired, renewed and watched by
 * ipam/registry-subnet-manager.ts over the etcd Registry).
 *
 * In etcd mode a reload can only change the log level (checkReloadable refuses the rest), and
 * the file is not watched: SIGHUP reloads.
 */
import type { EtcdManagerSettings, LogLevel, NodeConfig } from './config.js';
import { checkReloadable } from './config-reload.js';
import { StaticSubnetManager } from '../ipam/static-subnet-manager.js';
import type { Registry } from '../ipam/registry.js';
import type { SubnetManager } from '../core/subnet-manager.js';
import type { Logger } from '../core/logger.js';

export interface LeaseSource {
  readonly manager: SubnetManager;
  /** Re-reads the config (file edit, SIGHUP); true when a new config was taken. */
  reload(): Promise<boolean>;
  /** Stops renewing and watching (an etcd lease is kept until its TTL: a quick restart keeps the subnet). Safe twice. */
  close(): Promise<void>;
}

/** Opens the etcd Registry; injectable so tests can hand in an in-memory one. */
export type RegistryFactory = (settings: EtcdManagerSettings, log: Logger) => Registry | Promise<Registry>;

export interface LeaseSourceOptions {
  config: NodeConfig;
  /** Reads and validates the config file again. */
  load: () => Promise<NodeConfig>;
  watchConfig: boolean;
  log: Logger;
  onLogLevel: (level: LogLevel) => void;
  /** Our subnet is now held by another node (etcd mode): the daemon must stop. */
  onLeaseLost: (reason: string) => void;
  createRegistry?: RegistryFactory;
}

export async function openLeaseSource(options: LeaseSourceOptions): Promise<LeaseSource> {
  const { config, log } = options;
  let logLevel = config.logLevel;
  const takeLogLevel = (next: NodeConfig): void => {
    if (next.logLevel === logLevel) return;
    logLevel = next.logLevel;
    options.onLogLevel(logLevel);
  };
  const loadChecked = async (): Promise<NodeConfig> => {
    const next = await options.load();
    checkReloadable(config, next);
    return next;
  };

  const settings = config.subnetManager;
  if (settings.type === 'static') {
    const manager = new StaticSubnetManager<NodeConfig>({
      initial: config,
      load: loadChecked,
      ...(options.watchConfig ? { watchPath: config.source } : {}),
      log,
      onReload: takeLogLevel,
    });
    return { manager, reload: () => manager.reload(), close: async () => undefined };
  }

  const createRegistry = options.createRegistry ?? openEtcdRegistry;
  const registry = await createRegistry(settings, log);
  const { RegistrySubnetManager } = await import('../ipam/registry-subnet-manager.js');
  const advertise = config.advertise;
  const manager = new RegistrySubnetManager({
    registry,
    node: config.nodeName,
    clusterCidrs: config.clusterCidrs,
    subnetLengthV4: settings.subnetLengthV4,
    subnetLengthV6: settings.subnetLengthV6,
    ttlSeconds: settings.ttlSeconds,
    advertise: {
      endpoint: advertise?.endpoint?.text,
      ...(advertise?.wsEndpoint === undefined ? {} : { wsEndpoint: advertise.wsEndpoint }),
      ...(advertise === undefined ? {} : { transport: advertise.transport }),
      ...(advertise?.mtu === undefined ? {} : { mtu: advertise.mtu }),
    },
    log,
    onLeaseLost: options.onLeaseLost,
  });
  let closing: Promise<void> | undefined;
  return {
    manager,
    async reload() {
      try {
        takeLogLevel(await loadChecked());
        return true;
      } catch (err: unknown) {
        log.warn({ err }, 'config reload refused; keeping the running config');
        return false;
      }
    },
    close() {
      closing ??= (async () => {
        await manager.close();
        await registry.close();
      })();
      return closing;
    },
  };
}

/** Loaded only in etcd mode: the etcd client (gRPC) is heavy. */
async function openEtcdRegistry(settings: EtcdManagerSettings, log: Logger): Promise<Registry> {
  const { createEtcdRegistry } = await import('../ipam/etcd-registry.js');
  return createEtcdRegistry({
    endpoints: [...settings.endpoints],
    prefix: settings.prefix,
    ...(settings.tls === undefined
      ? {}
      : {
          tls: {
            ...(settings.tls.caFile === undefined ? {} : { caFile: settings.tls.caFile }),
            ...(settings.tls.certFile === undefined ? {} : { certFile: settings.tls.certFile }),
            ...(settings.tls.keyFile === undefined ? {} : { keyFile: settings.tls.keyFile }),
          },
        }),
    log,
  });
}
