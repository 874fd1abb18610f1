/**
 * This node's key pair at start (`encryption: sealed`): read from `nodeKeyFile`, made there on
 * first start. In static mode this node's own `nodes[]` entry may name its public key (every
 * node reads the same list); a key file that does not match it is refused at once, with both
 * keys named, since peers would refuse every handshake of this node.
 */
import type { Logger } from '../../core/logger.js';
import { publicKeyText } from '../../core/public-key.js';
import { loadOrCreateNodeKey } from '../../tunnel/seal/node-key.js';
import type { NodeKeyPair } from '../../tunnel/seal/node-key.js';
import { ConfigError } from '../config/node-config.js';
import type { NodeConfig } from '../config/node-config.js';

export async function loadNodeKey(config: NodeConfig, log: Logger): Promise<NodeKeyPair | undefined> {
  if (config.encryption !== 'sealed') {
    log.warn({ node: config.nodeName }, 'encryption: none: pod traffic crosses the underlay in clear and unauthenticated');
    return undefined;
  }
  const key = await loadOrCreateNodeKey(config.nodeKeyFile);
  const mine = publicKeyText(key.publicKey);
  const at = config.nodes.findIndex((n) => n.name === config.nodeName);
  const listed = config.nodes[at]?.publicKey;
  if (listed !== undefined && listed !== mine) {
    throw new ConfigError(config.source, [{
      path: `nodes[${at}].publicKey`,
      reason: `${listed} is not the key in ${config.nodeKeyFile} (${mine}); peers would refuse this node: put ${mine} in every node's list, or restore the key file`,
    }]);
  }
  log.info({ node: config.nodeName, file: config.nodeKeyFile, publicKey: mine }, 'node key loaded');
  return key;
}
