/**
 * The network configuration list podtun installs (e.g. /etc/cni/net.d/10-podtun.conflist): one
 * `podtun` plugin, which delegates to bridge + podtun-ipam (podtun-cni-plugin.ts).
 *
 * `cniVersion` 1.0.0 is what runtimes with an older libcni (< 1.2) read and use; `cniVersions`
 * lets a newer libcni pick the highest version both sides speak (1.1.0, which adds STATUS, GC
 * and interface MTUs in results). Every value is validated by the plugin's own config parser, so
 * a conflist podtun writes is one the plugin accepts.
 */
import { CniCode, CniError } from './cni-error.js';
import {
  DEFAULT_BRIDGE,
  DEFAULT_DAEMON_SOCKET,
  DEFAULT_IPAM_DATA_DIR,
  parsePodtunConfig,
} from './podtun-cni-plugin.js';

export const DEFAULT_NETWORK_NAME = 'podtun';
/** The version runtimes with libcni < 1.2 use (they ignore `cniVersions`). */
export const CONFLIST_CNI_VERSION = '1.0.0';
/** The versions libcni >= 1.2 chooses from (the highest it also supports). */
export const CONFLIST_CNI_VERSIONS: readonly string[] = ['1.0.0', '1.1.0'];

export interface ConflistOptions {
  /** The network name; podtun-ipam keeps reservations under `<dataDir>/<networkName>/`. */
  networkName?: string;
  /** The daemon's local API socket (podtun run --status-socket). */
  daemonSocket?: string;
  /** The Linux bridge pods attach to. */
  bridge?: string;
  /** podtun-ipam's reservation directory. */
  dataDir?: string;
}

/**
 * The conflist as a JSON object (write it with JSON.stringify). Throws CniError 7 naming the
 * field when an option is not something the plugin would accept.
 */
export function buildConflist(options: ConflistOptions = {}): Record<string, unknown> {
  const name = options.networkName ?? DEFAULT_NETWORK_NAME;
  const plugin = {
    type: 'podtun',
    daemonSocket: options.daemonSocket ?? DEFAULT_DAEMON_SOCKET,
    bridge: options.bridge ?? DEFAULT_BRIDGE,
    dataDir: options.dataDir ?? DEFAULT_IPAM_DATA_DIR,
  };
  try {
    parsePodtunConfig({ name, ...plugin });
  } catch (err: unknown) {
    if (err instanceof CniError) throw new CniError(CniCode.InvalidConfig, `cannot build the podtun conflist: ${err.message}`, err.details, { cause: err });
    throw err;
  }
  return {
    cniVersion: CONFLIST_CNI_VERSION,
    cniVersions: [...CONFLIST_CNI_VERSIONS],
    name,
    plugins: [plugin],
  };
}
