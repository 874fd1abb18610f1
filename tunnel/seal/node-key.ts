/**
 * A node's static X25519 key pair: its identity in the sealed handshake. Peers know it by its
 * public key (published with the node's lease); the private key never leaves the node's disk.
 *
 * The key file holds the private key as base64 on one line, as `wg genkey` writes it, so a key
 * can be made with either tool and read by eye. The file is refused (NodeKeyError) when it is
 * not a regular file, when group or others may read or write it (a key others could read is no
 * identity; a Kubernetes Secret mounted as a volume needs `defaultMode: 0400`), or when it does
 * not hold exactly one key. A missing file is created: in a temp file of the same directory
 * (mode 0600, fsynced), then linked to its name, which fails rather than replaces when another
 * process created the key first (that key is then read, so both use the same identity); the
 * directory is created with mode 0700 when missing.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { link, mkdir, open, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { errorReason } from '../../core/error-reason.js';
import { parsePublicKeyText, publicKeyText } from '../../core/public-key.js';
import { generateX25519, privateKeyFromRaw, rawPrivateKey, rawPublicKey } from './x25519.js';
import type { X25519KeyPair } from './x25519.js';

/** The text of a public key (base64, 44 characters): core/public-key.ts, which leases share. */
export { publicKeyText };

/** A node's static key pair: the private key as node:crypto holds it, the public key raw (32 bytes). */
export type NodeKeyPair = X25519KeyPair;

/** Length of a key as text: base64 of 32 bytes. */
export const KEY_TEXT_LEN = 44;
/** Larger than any key file (44 characters and a newline, maybe a CR): refused unread. */
const MAX_KEY_FILE_BYTES = 128;
const KEY_FILE_MODE = 0o600;
const KEY_DIR_MODE = 0o700;

/**
 * A key file or key text that cannot be used. `code` is ERR_PODTUN_NODE_KEY for the node's key
 * file (with `path`), ERR_PODTUN_KEY_TEXT for a key given as text (a peer's public key).
 */
export class NodeKeyError extends Error {
  constructor(
    readonly code: 'ERR_PODTUN_NODE_KEY' | 'ERR_PODTUN_KEY_TEXT',
    message: string,
    readonly path?: string,
    options?: { cause: unknown },
  ) {
    super(message, options);
    this.name = 'NodeKeyError';
  }
}

/** The node's key pair from `path`, created there first when the file does not exist. */
export async function loadOrCreateNodeKey(path: string): Promise<NodeKeyPair> {
  const existing = await readKeyFile(path);
  if (existing !== undefined) return existing;
  return createKeyFile(path);
}

/** The 32 bytes of a public key given as text; NodeKeyError('ERR_PODTUN_KEY_TEXT') saying what is wrong. */
export function parsePublicKey(text: string): Buffer {
  try {
    return parsePublicKeyText(text);
  } catch (err: unknown) {
    throw new NodeKeyError('ERR_PODTUN_KEY_TEXT', `invalid public key "${shown(text)}": ${errorReason(err)}`, undefined, { cause: err });
  }
}

/** A new private key as text (`podtun key generate`, the lab): base64, one line, no newline. */
export function generateNodeKeyText(): string {
  const { privateKey } = generateX25519();
  const raw = rawPrivateKey(privateKey);
  try {
    return raw.toString('base64');
  } finally {
    raw.fill(0);
  }
}

/** The public key text of a private key text (`podtun key public`). */
export function publicKeyOfPrivateText(privateText: string): string {
  const text = privateText.trim();
  const reason = keyTextProblem(text);
  if (reason !== undefined) throw new NodeKeyError('ERR_PODTUN_KEY_TEXT', `invalid private key: ${reason}`);
  return publicKeyText(keyPairOfPrivateText(text).publicKey);
}

/** Why `text` is not a key's text, or undefined: private keys are written as public ones are. */
function keyTextProblem(text: string): string | undefined {
  try {
    parsePublicKeyText(text);
    return undefined;
  } catch (err: unknown) {
    return errorReason(err);
  }
}

function keyPairOfPrivateText(text: string): NodeKeyPair {
  const raw = Buffer.from(text, 'base64');
  try {
    const privateKey = privateKeyFromRaw(raw);
    return { privateKey, publicKey: rawPublicKey(privateKey) };
  } finally {
    raw.fill(0);
  }
}

/** The key in `path`, undefined when there is no such file; NodeKeyError for anything unusable. */
async function readKeyFile(path: string): Promise<NodeKeyPair | undefined> {
  let handle;
  try {
    // O_NONBLOCK: opening a FIFO put in the key's place must not hang the daemon.
    handle = await open(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (err: unknown) {
    if ((err as { code?: unknown }).code === 'ENOENT') return undefined;
    throw keyError(path, `cannot open: ${errorReason(err)}`, err);
  }
  let content: Buffer;
  try {
    // Checked on the open file, not the name, so what is read is what was checked.
    const stats = await handle.stat();
    if (!stats.isFile()) throw keyError(path, 'not a regular file');
    if ((stats.mode & 0o077) !== 0) {
      throw keyError(path, `mode ${(stats.mode & 0o777).toString(8).padStart(4, '0')} lets group or others at it; chmod 600 it (a Kubernetes Secret volume: defaultMode 0400)`);
    }
    if (stats.size > MAX_KEY_FILE_BYTES) throw keyError(path, `malformed: ${stats.size} bytes, a key file holds one line of ${KEY_TEXT_LEN} characters`);
    content = await handle.readFile();
  } catch (err: unknown) {
    if (err instanceof NodeKeyError) throw err;
    throw keyError(path, `cannot read: ${errorReason(err)}`, err);
  } finally {
    await handle.close();
  }
  const text = content.toString('latin1').trim();
  content.fill(0);
  const reason = keyTextProblem(text);
  if (reason !== undefined) throw keyError(path, `malformed: ${reason}`);
  return keyPairOfPrivateText(text);
}

async function createKeyFile(path: string): Promise<NodeKeyPair> {
  const dir = dirname(path);
  try {
    await mkdir(dir, { recursive: true, mode: KEY_DIR_MODE });
  } catch (err: unknown) {
    throw keyError(path, `cannot create directory ${dir}: ${errorReason(err)}`, err);
  }
  const text = generateNodeKeyText();
  const temp = join(dir, `.${basename(path)}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', KEY_FILE_MODE);
    try {
      await handle.chmod(KEY_FILE_MODE); // whatever the umask
      await handle.writeFile(`${text}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await link(temp, path);
    await syncDir(dir);
  } catch (err: unknown) {
    if ((err as { code?: unknown }).code !== 'EEXIST') throw keyError(path, `cannot create: ${errorReason(err)}`, err);
    // Another process created the key between our read and our link: use that one.
    const winner = await readKeyFile(path);
    if (winner !== undefined) return winner;
    throw keyError(path, 'cannot create: it appeared and vanished while being created', err);
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  return keyPairOfPrivateText(text);
}

/** A new name in a directory is durable once the directory is synced. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function keyError(path: string, reason: string, cause?: unknown): NodeKeyError {
  return new NodeKeyError('ERR_PODTUN_NODE_KEY', `node key ${path}: ${reason}`, path, cause === undefined ? undefined : { cause });
}

/** A bad key text as shown in an error: long enough to recognise, never a whole private key. */
function shown(text: string): string {
  return text.length > 12 ? `${text.slice(0, 8)}…` : text;
}
