import { describe, expect, it } from 'vitest';
import { decodeLeaseRecord, encodeLeaseRecord, LeaseRecordError } from './lease-record.js';
import type { Lease } from '../core/subnet-manager.js';

describe('lease record', () => {
  it.each<[string, Lease]>([
    ['minimal, dial-out only', { node: 'node-a', subnets: ['10.244.3.0/24'], endpoint: undefined }],
    ['UDP endpoint', { node: 'node-a', subnets: ['10.244.3.0/24'], endpoint: '192.168.77.1:8285' }],
    [
      'dual stack, every field',
      {
        node: 'node-b.example',
        subnets: ['10.244.4.0/24', 'fd00:10:244:4::/64'],
        endpoint: '[fd00::1]:8285',
        wsEndpoint: 'wss://node-b.example:8443/tunnel',
        transport: 'ws',
        mtu: 1400,
      },
    ],
    ['v6 only', { node: 'n', subnets: ['fd00:10:244:4::/64'], endpoint: undefined, transport: 'udp' }],
  ])('round-trips: %s', (_name, lease) => {
    expect(decodeLeaseRecord(encodeLeaseRecord(lease))).toEqual(lease);
  });

  it('writes the format version and omits absent fields', () => {
    const text = encodeLeaseRecord({ node: 'node-a', subnets: ['10.244.3.0/24'], endpoint: undefined });
    expect(JSON.parse(text)).toEqual({ version: 1, node: 'node-a', subnets: ['10.244.3.0/24'] });
  });

  it('canonicalises subnets and ignores unknown fields', () => {
    const lease = decodeLeaseRecord(
      JSON.stringify({ version: 1, node: 'a', subnets: ['fd00:10:244:0004:0::/64'], endpoint: null, future: { x: 1 } }),
    );
    expect(lease).toEqual({ node: 'a', subnets: ['fd00:10:244:4::/64'], endpoint: undefined });
  });

  const good = { version: 1, node: 'node-a', subnets: ['10.244.3.0/24'], endpoint: '192.168.77.1:8285' };

  it.each<[string, string, string]>([
    ['not JSON', '{"version":1,', 'not JSON'],
    ['an array', '[1,2]', 'not a JSON object'],
    ['null', 'null', 'not a JSON object'],
    ['no version', JSON.stringify({ ...good, version: undefined }), 'version'],
    ['a newer version', JSON.stringify({ ...good, version: 2 }), 'version: expected 1, got 2'],
    ['version as text', JSON.stringify({ ...good, version: '1' }), 'version'],
    ['no node', JSON.stringify({ ...good, node: undefined }), 'node'],
    ['empty node', JSON.stringify({ ...good, node: '' }), 'node'],
    ['huge node name', JSON.stringify({ ...good, node: 'x'.repeat(300) }), 'node'],
    ['no subnets', JSON.stringify({ ...good, subnets: [] }), 'subnets'],
    ['subnets not a list', JSON.stringify({ ...good, subnets: '10.244.3.0/24' }), 'subnets'],
    ['three subnets', JSON.stringify({ ...good, subnets: ['10.244.3.0/24', 'fd00::/64', '10.1.0.0/24'] }), 'subnets'],
    ['two v4 subnets', JSON.stringify({ ...good, subnets: ['10.244.3.0/24', '10.244.4.0/24'] }), 'two IPv4'],
    ['a bad CIDR', JSON.stringify({ ...good, subnets: ['10.244.3.1/24'] }), 'host bits'],
    ['a number as subnet', JSON.stringify({ ...good, subnets: [7] }), 'subnets'],
    ['a bad endpoint', JSON.stringify({ ...good, endpoint: '192.168.77.1' }), 'endpoint'],
    ['a hostname endpoint', JSON.stringify({ ...good, endpoint: 'node-a:8285' }), 'endpoint'],
    ['a numeric endpoint', JSON.stringify({ ...good, endpoint: 8285 }), 'endpoint'],
    ['an http wsEndpoint', JSON.stringify({ ...good, wsEndpoint: 'http://x:1' }), 'wsEndpoint'],
    ['a garbage wsEndpoint', JSON.stringify({ ...good, wsEndpoint: 'not a url' }), 'wsEndpoint'],
    ['an unknown transport', JSON.stringify({ ...good, transport: 'tcp' }), 'transport'],
    ['a tiny mtu', JSON.stringify({ ...good, mtu: 100 }), 'mtu'],
    ['a fractional mtu', JSON.stringify({ ...good, mtu: 1400.5 }), 'mtu'],
    ['an mtu as text', JSON.stringify({ ...good, mtu: '1400' }), 'mtu'],
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

  it('accepts the good record the refusals are built from', () => {
    expect(decodeLeaseRecord(JSON.stringify(good)).endpoint).toBe('192.168.77.1:8285');
  });
});
