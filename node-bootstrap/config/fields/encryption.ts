/**
 * `encryption` and `nodeKeyFile`: whether tunnels seal every packet (the default) and where this
 * node's private key lives, and `nodes[].publicKey`, how a static node list names each node's key.
 *
 * `sealed`: every datagram is authenticated and encrypted per node pair (tunnel/seal/); a peer is
 * accepted only with the public key its lease names. `none`: the unsealed format, for an underlay
 * the operator trusts completely; both ends must agree (a sealed node refuses unsealed traffic).
 */
import { isAbsent, show } from '../../../core/config-check.js';
import type { IssueFn } from '../../../core/config-check.js';
import { parsePublicKeyText } from '../../../core/public-key.js';
import { resolve } from 'node:path';

export const ENCRYPTION_MODES = ['sealed', 'none'] as const;
export type EncryptionMode = (typeof ENCRYPTION_MODES)[number];
export const DEFAULT_ENCRYPTION: EncryptionMode = 'sealed';
export const DEFAULT_NODE_KEY_FILE = '/var/lib/podtun/node.key';

/** How to learn a node's public key, for messages. */
export const PUBLIC_KEY_HOWTO = 'run `podtun key public` on that node (it prints the key of its nodeKeyFile, creating it on first use)';

export function encryptionAt(value: unknown, issue: IssueFn): EncryptionMode {
  if (isAbsent(value)) return DEFAULT_ENCRYPTION;
  if (typeof value === 'string' && (ENCRYPTION_MODES as readonly string[]).includes(value)) return value as EncryptionMode;
  issue('encryption', `${show(value)} is not one of ${ENCRYPTION_MODES.join('|')} (none only on an underlay you trust: it carries pod traffic in clear and unauthenticated)`);
  return DEFAULT_ENCRYPTION;
}

/** The key file's absolute path (relative paths are read from the config's directory). */
export function nodeKeyFileAt(value: unknown, baseDir: string, issue: IssueFn): string {
  if (isAbsent(value)) return DEFAULT_NODE_KEY_FILE;
  if (typeof value !== 'string' || value.trim() === '') {
    issue('nodeKeyFile', `expected a file path, got ${show(value)}`);
    return DEFAULT_NODE_KEY_FILE;
  }
  return resolve(baseDir, value.trim());
}

/** A node entry's `publicKey`, canonical text; undefined when absent or reported. */
export function publicKeyAt(value: unknown, path: string, issue: IssueFn): string | undefined {
  if (isAbsent(value)) return undefined;
  if (typeof value !== 'string') return issue(path, `expected the node's public key (base64), got ${show(value)}`);
  try {
    parsePublicKeyText(value.trim());
  } catch (err: unknown) {
    return issue(path, `${err instanceof Error ? err.message : String(err)}; ${PUBLIC_KEY_HOWTO}`);
  }
  return value.trim();
}
