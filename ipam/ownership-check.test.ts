import { describe, expect, it } from 'vitest';
import type { Lease } from '../core/lease.js';
import { checkOwnership } from './ownership-check.js';
import type { Ownership } from './ownership-check.js';

const V4 = '10.244.1.0/24';
const V6 = 'fd00:10:244:1::/64';
const held = { node: 'node-a', subnets: [V4, V6], claimRevision: 10 };
const record = (node: string): { lease: Lease } => ({ lease: { node, subnets: [V4, V6], endpoints: {} } });
const unreadable = { lease: undefined };

describe('checkOwnership', () => {
  it.each<[string, [string, { lease: Lease | undefined }][], number, Ownership]>([
    ['both records ours', [[V4, record('node-a')], [V6, record('node-a')]], 10, { kind: 'held' }],
    ['one missing, in a view older than our claim (not seen yet)', [[V4, record('node-a')]], 9, { kind: 'held' }],
    ['one missing, in a view as new as our claim', [[V4, record('node-a')]], 10, { kind: 'missing' }],
    ['one held by another node', [[V4, record('node-a')], [V6, record('node-b')]], 12, { kind: 'taken', subnet: V6, owner: 'node-b' }],
    ['one unreadable', [[V4, unreadable], [V6, record('node-a')]], 12, { kind: 'taken', subnet: V4, owner: undefined }],
    ['one missing and one taken: taken wins', [[V6, record('node-b')]], 12, { kind: 'taken', subnet: V6, owner: 'node-b' }],
  ])('%s', (_name, view, seenRevision, verdict) => {
    expect(checkOwnership(held, new Map(view), seenRevision)).toEqual(verdict);
  });
});
