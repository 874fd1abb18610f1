import { describe, expect, it } from 'vitest';
import { decodeLeaseRecord, encodeLeaseRecord, LeaseRecordError } from './lease-record.js';
import type { Lease } from '../core/lease.js';
import { testPublicKey } from '../test/node-keys.js';

describe('lease record', () => {
  it.each<[string, Lease]>([
    ['minimal, dial-out only', { node: 'node-a', subnets: ['10.244.3.0/24'], endpoints: {} }],
    ['UDP endpoint', { node: 'node-a', subnets: ['10.244.3.0/24'], endpoints: { udp: '192.168.77.1:8285' } }],
    [
      'dual stack, every field',
      {
        node: 'node-b.example',
        subnets: ['10.244.4.0/24', 'fd00:10:244:4::/64'],
        endpoints: { udp: '[fd00::1]:8285', ws: 'wss://node-b.example:8443/tunnel' },
        transports: ['ws'],
        mtu: 1400,
        publicKey: testPublicKey(0),
      },
    ],
    ['v6 only', { node: 'n', subnets: ['fd00:10:244:4::/64'], endpoints: {}, transports: ['udp'] }],
    ['a kind this node may not have', { node: 'n', subnets: ['10.244.3.0/24'], endpoints: { relay: 'via node-c' }, transports: ['udp', 'ws', 'relay'] }],
  ])('round-trips: %s', (_name, lease) => {
    expect(decodeLeaseRecord(encodeLeaseRecord(lease))).toEqual(lease);
  });

  it('writes the format version and omits absent fields', () => {
    const text = encodeLeaseRecord({ node: 'node-a', subnets: ['10.244.3.0/24'], endpoints: {} });
    expect(JSON.parse(text)).toEqual({ version: 2, node: 'node-a', subnets: ['10.244.3.0/24'], endpoints: {} });
  });

  it('canonicalises subnets and ignores unknown fields', () => {
    const lease = decodeLeaseRecord(
      JSON.stringify({ version: 2, node: 'a', subnets: ['fd00:10:244:0004:0::/64'], endpoints: {}, future: { x: 1 } }),
    );
    expect(lease).toEqual({ node: 'a', subnets: ['fd00:10:244:4::/64'], endpoints: {} });
  });

  it.each<[string, object, Lease]>([
    ['udp and ws endpoints, auto', { endpoint: '192.168.77.1:8285', wsEndpoint: 'ws://192.168.77.1:8443', transport: 'auto' },
      { node: 'a', subnets: ['10.244.3.0/24'], endpoints: { udp: '192.168.77.1:8285', ws: 'ws://192.168.77.1:8443' }, transports: ['udp', 'ws'] }],
    ['dial-out only, ws', { endpoint: null, transport: 'ws' }, { node: 'a', subnets: ['10.244.3.0/24'], endpoints: {}, transports: ['ws'] }],
    ['no transport word', { endpoint: '192.168.77.1:8285', mtu: 1400 }, { node: 'a', subnets: ['10.244.3.0/24'], endpoints: { udp: '192.168.77.1:8285' }, mtu: 1400 }],
  ])('reads a version 1 record (%s) as the same lease', (_name, fields, lease) => {
    expect(decodeLeaseRecord(JSON.stringify({ version: 1, node: 'a', subnets: ['10.244.3.0/24'], ...fields }))).toEqual(lease);
  });

  const good = { version: 2, node: 'node-a', subnets: ['10.244.3.0/24'], endpoints: { udp: '192.168.77.1:8285' } };
  const goodV1 = { version: 1, node: 'node-a', subnets: ['10.244.3.0/24'], endpoint: '192.168.77.1:8285' };

  it.each<[string, string, string]>([
    ['not JSON', '{"version":2,', 'not JSON'],
    ['an array', '[1,2]', 'not a JSON object'],
    ['null', 'null', 'not a JSON object'],
    ['no version', JSON.stringify({ ...good, version: undefined }), 'version'],
    ['a newer version', JSON.stringify({ ...good, version: 3 }), 'version: expected 1 or 2, got 3'],
    ['version as text', JSON.stringify({ ...good, version: '2' }), 'version'],
    ['no node', JSON.stringify({ ...good, node: undefined }), 'node'],
    ['empty node', JSON.stringify({ ...good, node: '' }), 'node'],
    ['huge node name', JSON.stringify({ ...good, node: 'x'.repeat(300) }), 'node'],
    ['no subnets', JSON.stringify({ ...good, subnets: [] }), 'subnets'],
    ['subnets not a list', JSON.stringify({ ...good, subnets: '10.244.3.0/24' }), 'subnets'],
    ['three subnets', JSON.stringify({ ...good, subnets: ['10.244.3.0/24', 'fd00::/64', '10.1.0.0/24'] }), 'subnets'],
    ['two v4 subnets', JSON.stringify({ ...good, subnets: ['10.244.3.0/24', '10.244.4.0/24'] }), 'two IPv4'],
    ['a bad CIDR', JSON.stringify({ ...good, subnets: ['10.244.3.1/24'] }), 'host bits'],
    ['a number as subnet', JSON.stringify({ ...good, subnets: [7] }), 'subnets'],
    ['endpoints a list', JSON.stringify({ ...good, endpoints: ['192.168.77.1:8285'] }), 'endpoints: expected an object'],
    ['a numeric endpoint', JSON.stringify({ ...good, endpoints: { udp: 8285 } }), 'endpoints.udp'],
    ['an empty endpoint', JSON.stringify({ ...good, endpoints: { udp: '' } }), 'endpoints.udp'],
    ['a huge endpoint', JSON.stringify({ ...good, endpoints: { udp: 'x'.repeat(600) } }), 'endpoints.udp'],
    ['a bad kind', JSON.stringify({ ...good, endpoints: { 'UDP!': '1.2.3.4:1' } }), 'is not a transport kind'],
    ['transports not a list', JSON.stringify({ ...good, transports: 'auto' }), 'transports'],
    ['transports empty', JSON.stringify({ ...good, transports: [] }), 'transports'],
    ['transports repeated', JSON.stringify({ ...good, transports: ['udp', 'udp'] }), 'transports'],
    ['a v1 numeric endpoint', JSON.stringify({ ...goodV1, endpoint: 8285 }), 'endpoint'],
    ['a v1 unknown transport', JSON.stringify({ ...goodV1, transport: 'tcp' }), 'transport'],
    ['a tiny mtu', JSON.stringify({ ...good, mtu: 100 }), 'mtu'],
    ['a fractional mtu', JSON.stringify({ ...good, mtu: 1400.5 }), 'mtu'],
    ['an mtu as text', JSON.stringify({ ...good, mtu: '1400' }), 'mtu'],
    ['a public key as a number', JSON.stringify({ ...good, publicKey: 7 }), 'publicKey: expected text'],
    ['a short public key', JSON.stringify({ ...good, publicKey: 'AAAA' }), 'publicKey: expected 32 bytes in base64'],
    ['the all-zero key', JSON.stringify({ ...good, publicKey: Buffer.alloc(32).toString('base64') }), 'publicKey: the all-zero key'],
  ])('refuses %s', (_name, text, reason) => {
    let caught: unknown;
    try {
      decodeLeaseRecord(text);
    } catch (err: unknown) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(LeaseRecordError);
    expect((caught as LeaseRecordError).code).toBe('ERR_PODTUN_LEASE_RECORD');
    expect((caught as Error).message).toContain(reason);
  });

  it('accepts the good records the refusals are built from', () => {
    expect(decodeLeaseRecord(JSON.stringify(good)).endpoints).toEqual({ udp: '192.168.77.1:8285' });
    expect(decodeLeaseRecord(JSON.stringify(goodV1)).endpoints).toEqual({ udp: '192.168.77.1:8285' });
  });
});
