import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  KEY_TEXT_LEN,
  NodeKeyError,
  generateNodeKeyText,
  loadOrCreateNodeKey,
  parsePublicKey,
  publicKeyOfPrivateText,
  publicKeyText,
} from './node-key.js';
import { rawPrivateKey } from './x25519.js';

let dir = '';

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'podtun-node-key-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function refusal(path: string): Promise<NodeKeyError> {
  try {
    await loadOrCreateNodeKey(path);
  } catch (err: unknown) {
    if (err instanceof NodeKeyError) return err;
    throw err;
  }
  throw new Error(`${path} was accepted`);
}

describe('node key file', () => {
  it('creates the key (file 0600, missing directories 0700), then reads back the same key', async () => {
    const path = join(dir, 'state', 'podtun', 'node.key');
    const created = await loadOrCreateNodeKey(path);
    expect(created.publicKey.length).toBe(32);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'state', 'podtun'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'state'))).mode & 0o777).toBe(0o700);
    const text = await readFile(path, 'utf8');
    expect(text).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);

    const loaded = await loadOrCreateNodeKey(path);
    expect(loaded.publicKey).toEqual(created.publicKey);
    expect(rawPrivateKey(loaded.privateKey)).toEqual(rawPrivateKey(created.privateKey));
    expect(await readdir(join(dir, 'state', 'podtun'))).toEqual(['node.key']);
  });

  it('reads a key written by `wg genkey` style text (0400, through a symlink as a Secret volume has)', async () => {
    const privateText = generateNodeKeyText();
    const target = join(dir, '..data-node.key');
    await writeFile(target, `${privateText}\n`, { mode: 0o400 });
    const path = join(dir, 'node.key');
    await symlink(target, path);
    const key = await loadOrCreateNodeKey(path);
    expect(publicKeyText(key.publicKey)).toBe(publicKeyOfPrivateText(privateText));
  });

  it('gives concurrent creators the same key', async () => {
    const path = join(dir, 'node.key');
    const keys = await Promise.all([1, 2, 3, 4].map(() => loadOrCreateNodeKey(path)));
    for (const key of keys) expect(key.publicKey).toEqual(keys[0]?.publicKey);
    expect(await readdir(dir)).toEqual(['node.key']);
  });

  it.each([0o644, 0o640, 0o604, 0o660])('refuses a key file of mode %o, naming the path', async (mode) => {
    const path = join(dir, 'node.key');
    await writeFile(path, `${generateNodeKeyText()}\n`);
    await chmod(path, mode);
    const err = await refusal(path);
    expect(err.code).toBe('ERR_PODTUN_NODE_KEY');
    expect(err.path).toBe(path);
    expect(err.message).toContain(path);
    expect(err.message).toContain(`mode 0${mode.toString(8)}`);
  });

  it.each([
    ['empty', ''],
    ['not base64', `${'!'.repeat(43)}=\n`],
    ['too short', `${generateNodeKeyText().slice(0, 40)}=\n`],
    ['two keys', `${generateNodeKeyText()}\n${generateNodeKeyText()}\n`],
    ['hex', `${'ab'.repeat(32)}\n`],
    ['non-canonical base64', `${'A'.repeat(42)}B=\n`],
  ])('refuses a malformed key file (%s)', async (_name, content) => {
    const path = join(dir, 'node.key');
    await writeFile(path, content, { mode: 0o600 });
    const err = await refusal(path);
    expect(err.code).toBe('ERR_PODTUN_NODE_KEY');
    expect(err.message).toMatch(/malformed/);
  });

  it('refuses what is not a regular file, without hanging on a FIFO', async () => {
    const asDir = join(dir, 'is-a-dir');
    await mkdir(asDir, { mode: 0o700 });
    expect((await refusal(asDir)).message).toContain('not a regular file');
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', ['-m', '600', fifo]);
    expect((await refusal(fifo)).message).toContain('not a regular file');
  });
});

describe('key text', () => {
  it('round-trips a public key as 44 characters of base64', () => {
    const publicKey = parsePublicKey(publicKeyOfPrivateText(generateNodeKeyText()));
    const text = publicKeyText(publicKey);
    expect(text.length).toBe(KEY_TEXT_LEN);
    expect(parsePublicKey(text)).toEqual(publicKey);
  });

  it('derives the public key of a private key (RFC 7748 vector)', () => {
    const alicePrivate = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex').toString('base64');
    const alicePublic = Buffer.from('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a', 'hex').toString('base64');
    expect(publicKeyOfPrivateText(`${alicePrivate}\n`)).toBe(alicePublic);
  });

  it.each([
    ['wrong length', 'abc', /expected 32 bytes in base64.*got 3 characters/],
    ['33 bytes', Buffer.alloc(33, 1).toString('base64'), /expected 32 bytes in base64/],
    ['not base64', `${'-'.repeat(43)}=`, /expected 32 bytes in base64/],
    ['url-safe alphabet', `${'_'.repeat(43)}=`, /expected 32 bytes in base64/],
    ['non-canonical', `${'A'.repeat(42)}B=`, /not canonical/],
  ])('refuses a public key text that is %s', (_name, text, reason) => {
    let caught: unknown;
    try {
      parsePublicKey(text);
    } catch (err: unknown) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(NodeKeyError);
    expect((caught as NodeKeyError).code).toBe('ERR_PODTUN_KEY_TEXT');
    expect((caught as NodeKeyError).message).toMatch(reason);
  });

  it('generates distinct keys', () => {
    expect(generateNodeKeyText()).not.toBe(generateNodeKeyText());
  });
});
