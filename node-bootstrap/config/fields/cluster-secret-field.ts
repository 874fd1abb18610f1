/**
 * `clusterSecret` / `clusterSecretFile`: exactly one, at least MIN_SECRET_BYTES long. Required:
 * tunnels accept only peers that prove they hold it.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, errorMessage } from '../../../core/config-check.js';
import type { IssueFn } from '../../../core/config-check.js';
import { MIN_SECRET_BYTES } from '../../../tunnel/cluster-auth.js';
import { ClusterSecret } from '../cluster-secret.js';

/** How to make a secret, quoted in the errors about it. */
export const SECRET_HOWTO = 'make one with `head -c 32 /dev/urandom | base64 > /etc/podtun/secret` and set clusterSecretFile: /etc/podtun/secret (the same file on every node)';

/**
 * clusterSecret is the text's UTF-8 bytes; clusterSecretFile the file's bytes, trailing newlines
 * stripped, a relative path taken from the config file's directory.
 */
export function clusterSecretAt(text: unknown, file: unknown, baseDir: string, issue: IssueFn): ClusterSecret | undefined {
  const needed = `at least ${MIN_SECRET_BYTES} bytes`;
  if (text !== undefined && file !== undefined) {
    return issue('clusterSecret', 'set clusterSecret or clusterSecretFile, not both');
  }
  if (text === undefined && file === undefined) {
    return issue('clusterSecret', `required (or clusterSecretFile): tunnels accept only peers holding the cluster secret; ${SECRET_HOWTO}`);
  }
  if (text !== undefined) {
    if (typeof text !== 'string') return issue('clusterSecret', `expected a string, got ${typeof text}`);
    const bytes = Buffer.from(text, 'utf8');
    if (bytes.length < MIN_SECRET_BYTES) return issue('clusterSecret', `${bytes.length} bytes is too short (${needed}); ${SECRET_HOWTO}`);
    return new ClusterSecret(bytes);
  }
  if (typeof file !== 'string' || file.trim() === '') return issue('clusterSecretFile', `expected a file path, got ${describe(file)}`);
  const path = resolve(baseDir, file.trim());
  let content: Buffer;
  try {
    content = readFileSync(path);
  } catch (err: unknown) {
    return issue('clusterSecretFile', `cannot read ${path}: ${errorMessage(err)}`);
  }
  let end = content.length;
  while (end > 0 && (content[end - 1] === 0x0a || content[end - 1] === 0x0d)) end--;
  if (end < MIN_SECRET_BYTES) return issue('clusterSecretFile', `${path} holds ${end} bytes, too short (${needed}); ${SECRET_HOWTO}`);
  return new ClusterSecret(content.subarray(0, end));
}
