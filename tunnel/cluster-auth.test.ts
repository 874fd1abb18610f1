import { describe, expect, it } from 'vitest';
import { authTag, verifyAuthTag } from './cluster-auth.js';

const secret = Buffer.from('a cluster secret of some length');

describe('cluster auth tags', () => {
  it('verifies a tag made with the same secret and parts, also truncated', () => {
    const tag = authTag(secret, 'node-a', 'ws', '1700000000');
    expect(verifyAuthTag(secret, tag, 'node-a', 'ws', '1700000000')).toBe(true);
    expect(verifyAuthTag(secret, tag.subarray(0, 16), 'node-a', 'ws', '1700000000')).toBe(true);
  });

  it.each([
    ['another secret', Buffer.from('another cluster secret entirely'), ['node-a', 'ws', '1700000000']],
    ['another node', secret, ['node-b', 'ws', '1700000000']],
    ['another time', secret, ['node-a', 'ws', '1700000001']],
    ['shifted boundary', secret, ['node-aw', 's', '1700000000']],
  ] as const)('refuses %s', (_name, key, parts) => {
    const tag = authTag(secret, 'node-a', 'ws', '1700000000');
    expect(verifyAuthTag(key, tag, ...parts)).toBe(false);
  });

  it('refuses tags that are too short or too long', () => {
    const tag = authTag(secret, 'x');
    expect(verifyAuthTag(secret, tag.subarray(0, 15), 'x')).toBe(false);
    expect(verifyAuthTag(secret, Buffer.concat([tag, Buffer.alloc(1)]), 'x')).toBe(false);
  });
});
