/**
 * The etcd Registry against a real, throwaway etcd (test/etcd-server.ts): the shared Registry
 * contract plus what is etcd's own (key layout, TLS options).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quietLogger } from '../test/recording-logger.js';
import { etcdCompact, etcdDelete, etcdKeys, etcdPut, etcdSkipReason, startEtcd } from '../lab/etcd-server.js';
import type { EtcdServer } from '../lab/etcd-server.js';
import { registryContract } from '../test/registry-contract.js';
import { skipUnlessMet } from '../test/requirement.js';
import { createEtcdRegistry } from './etcd-registry.js';
import { RegistryError } from './registry.js';

const etcdMissing = skipUnlessMet('ipam/etcd-registry.test.ts', etcdSkipReason());

describe.skipIf(etcdMissing)('etcd registry', () => {
  let server: EtcdServer | undefined;

  beforeAll(async () => {
    server = await startEtcd();
  });

  afterAll(async () => {
    await server?.destroy();
  });

  const endpoint = (): string => {
    if (server === undefined) throw new Error('etcd not started');
    return server.endpoint;
  };
  const newPrefix = (): string => `/podtun-test-${randomBytes(4).toString('hex')}/`;
  const keyOf = (prefix: string, subnet: string): string => `${prefix}subnets/${subnet.replace('/', '-')}`;

  registryContract('etcd', async () => {
    const prefix = newPrefix();
    const registry = createEtcdRegistry({ endpoints: [endpoint()], prefix, dialTimeoutMs: 2000, log: quietLogger });
    return {
      registry,
      ttlSeconds: 2,
      putRaw: async (subnet, value) => {
        await etcdPut(endpoint(), keyOf(prefix, subnet), value);
      },
      deleteRaw: (subnet) => etcdDelete(endpoint(), keyOf(prefix, subnet)),
      compact: async () => {
        await etcdCompact(endpoint());
      },
      down: () => server?.stop() ?? Promise.resolve(),
      up: () => server?.restart() ?? Promise.resolve(),
      close: () => registry.close(),
    };
  });

  it('stores one key per subnet under <prefix>subnets/, "/" written as "-"; a prefix gets its trailing "/"', async () => {
    const prefix = newPrefix();
    const registry = createEtcdRegistry({ endpoints: [endpoint()], prefix: prefix.slice(0, -1), log: quietLogger });
    try {
      const claim = await registry.claim(
        [
          { subnet: '10.244.3.0/24', ifRevision: 0 },
          { subnet: 'fd00:10:244:3::/64', ifRevision: 0 },
        ],
        'value',
        5,
      );
      expect(claim?.ttlSeconds).toBe(5);
      expect(await etcdKeys(endpoint(), prefix)).toEqual([`${prefix}subnets/10.244.3.0-24`, `${prefix}subnets/fd00:10:244:3::-64`]);
      // A key that is not a subnet comes back as its raw name, for the manager to refuse.
      await etcdPut(endpoint(), `${prefix}subnets/garbage`, 'x');
      const subnets = (await registry.list()).entries.map((e) => e.subnet).sort();
      expect(subnets).toEqual(['10.244.3.0/24', 'fd00:10:244:3::/64', 'garbage']);
    } finally {
      await registry.close();
    }
  });

  it('an unreachable etcd is a RegistryError naming the endpoint, within the dial timeout', async () => {
    const registry = createEtcdRegistry({ endpoints: ['http://127.0.0.1:9'], prefix: '/x/', dialTimeoutMs: 1000, log: quietLogger });
    const started = Date.now();
    try {
      await registry.list();
      expect.unreachable();
    } catch (err: unknown) {
      expect(err).toBeInstanceOf(RegistryError);
      expect((err as Error).message).toContain('127.0.0.1:9');
    } finally {
      await registry.close();
    }
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('etcd registry options', () => {
  it('an unreadable TLS file is a RegistryError naming the field and the path', () => {
    expect(() =>
      createEtcdRegistry({ endpoints: ['https://127.0.0.1:2379'], prefix: '/p/', tls: { caFile: '/nonexistent/ca.pem' }, log: quietLogger }),
    ).toThrow(/tls\.caFile: cannot read \/nonexistent\/ca\.pem/);
  });

  it('a client certificate needs its key', () => {
    expect(() =>
      createEtcdRegistry({ endpoints: ['https://127.0.0.1:2379'], prefix: '/p/', tls: { certFile: '/x.pem' }, log: quietLogger }),
    ).toThrow(RegistryError);
  });

  it('no endpoints is refused', () => {
    expect(() => createEtcdRegistry({ endpoints: [], prefix: '/p/', log: quietLogger })).toThrow(RegistryError);
  });
});
