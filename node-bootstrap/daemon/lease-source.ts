/**
 * Where this node's lease and its peers' leases come from: the subnet manager the config's
 * `subnetManager.type` picked (ipam/subnet-managers.ts), opened with what it may need: this
 * node's name and advertised endpoints, the config's own node list and how to re-read it.
 *
 * A reload (file edit, SIGHUP) re-reads the whole config and refuses edits that need a restart
 * (config-reload.ts); the log level always follows. A manager that reads the node list diffs it
 * into lease events; the others take only the log level from a reload.
 */
import type { Logger } from '../../core/logger.js';
import type { SubnetManager } from '../../core/subnet-manager.js';
import { checkReloadable } from '../config/config-reload.js';
import { leasesOfConfig } from '../config/node-config.js';
import type { LogLevel, NodeConfig } from '../config/node-config.js';

export interface LeaseSource {
  readonly manager: SubnetManager;
  /** Re-reads the config (file edit, SIGHUP); true when a new config was taken. */
  reload(): Promise<boolean>;
  /** Stops renewing and watching (a held lease is kept until its TTL: a quick restart keeps the subnet). Safe twice. */
  close(): Promise<void>;
}

export interface LeaseSourceOptions {
  config: NodeConfig;
  /** This node's public key, published with its lease (control-plane managers); undefined: unsealed. */
  publicKey: string | undefined;
  /** Reads and validates the config file again. */
  load: () => Promise<NodeConfig>;
  watchConfig: boolean;
  log: Logger;
  onLogLevel: (level: LogLevel) => void;
  /** Our subnet is now held by another node (control-plane managers): the daemon must stop. */
  onLeaseLost: (reason: string) => void;
  env: Readonly<Record<string, string | undefined>>;
}

export async function openLeaseSource(options: LeaseSourceOptions): Promise<LeaseSource> {
  const { config, log } = options;
  let logLevel = config.logLevel;
  const reloadConfig = async (): Promise<NodeConfig> => {
    const next = await options.load();
    checkReloadable(config, next);
    if (next.logLevel !== logLevel) {
      logLevel = next.logLevel;
      options.onLogLevel(logLevel);
    }
    return next;
  };
  const readsNodeList = config.subnetManager.readsNodeList;
  const manager = await config.subnetManager.open({
    node: config.nodeName,
    clusterCidrs: config.clusterCidrs,
    advertise: {
      ...(config.advertise ?? { endpoints: {}, transports: undefined, mtu: undefined }),
      ...(options.publicKey === undefined ? {} : { publicKey: options.publicKey }),
    },
    configLeases: {
      initial: leasesOfConfig(config),
      reload: async () => leasesOfConfig(await reloadConfig()),
      // Only a manager that reads the list follows the file; the others reload on SIGHUP.
      watchPath: options.watchConfig && readsNodeList ? config.source : undefined,
    },
    endpointsAt: (host) => {
      const out: Record<string, string> = {};
      for (const t of config.transports) {
        const endpoint = t.endpointAt(host);
        if (endpoint !== undefined) out[t.kind] = endpoint;
      }
      return out;
    },
    env: options.env,
    log,
    onLeaseLost: options.onLeaseLost,
  });
  return {
    manager,
    async reload() {
      if (manager.reload !== undefined) return manager.reload();
      try {
        await reloadConfig();
        return true;
      } catch (err: unknown) {
        log.warn({ err }, 'config reload refused; keeping the running config');
        return false;
      }
    },
    close: () => manager.close(),
  };
}
