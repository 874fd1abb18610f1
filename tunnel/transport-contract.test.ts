/**
 * The Transport contract (test/transport-contract.ts) against every implementation, each pair on
 * loopback:
 *
 *   memory      a <--- in-process calls ---> b
 *   udp         a 127.0.0.1:pA <--- UDP (real addon) ---> 127.0.0.1:pB b
 *   sealed udp  the same, every datagram sealed after a Noise_IKpsk2 handshake
 *   ws          a ws://127.0.0.1:pA (listens) <--- one TCP connection, dialed by b ---- b (dials out only)
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe } from 'vitest';
import type { InboundSink, Transport } from '../core/transport.js';
import { createMemoryTransportPair } from '../test/memory-transport.js';
import { quietLogger } from '../test/recording-logger.js';
import { waitFor } from '../test/registry-contract.js';
import { SLOT_OF_A, SLOT_OF_B, transportContract } from '../test/transport-contract.js';
import type { ConnectedPair } from '../test/transport-contract.js';
import { UdpTransport } from './udp/udp-transport.js';
import { SealedUdpTransport } from './udp/sealed-udp-transport.js';
import { generateX25519 } from './seal/x25519.js';
import { publicKeyText } from '../core/public-key.js';
import { addon } from '../native/addon.js';
import { WsTransport } from './ws/ws-transport.js';
import { skipUnlessMet } from '../test/requirement.js';

const SECRET = Buffer.from('contract test cluster secret, 32');
const nativeMissing = skipUnlessMet('tunnel/transport-contract.test.ts (UDP)',
  existsSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'build', 'Release', 'podtun.node')) ? undefined : 'the native addon is not built (npm ci builds it)');

/** Starts `a` and `b`, lets `connect` introduce them, waits until each sees the other up; closes both if that fails. */
async function connect(
  a: Transport, b: Transport, sinkA: InboundSink, sinkB: InboundSink, introduce: () => void,
): Promise<ConnectedPair> {
  try {
    await a.start(sinkA);
    await b.start(sinkB);
    introduce();
    const up = (t: Transport, slot: number): boolean => t.peerStatus().find((p) => p.slot === slot)?.state === 'up';
    // Returns as soon as both are up; the bound only matters on a loaded machine (a sealed pair
    // needs its handshake first), where 3 s was seen to fall short.
    await waitFor('both up', () => up(a, SLOT_OF_B) && up(b, SLOT_OF_A), 10_000);
    return { a, b };
  } catch (err: unknown) {
    await a.close();
    await b.close();
    throw err;
  }
}

transportContract('memory', {
  async connectedPair(sinkA, sinkB) {
    const [a, b] = createMemoryTransportPair('node-a', 'node-b');
    await a.start(sinkA);
    await b.start(sinkB);
    a.setPeer(SLOT_OF_B, { node: 'node-b', endpoints: {}, transports: ['memory'] });
    b.setPeer(SLOT_OF_A, { node: 'node-a', endpoints: {}, transports: ['memory'] });
    return { a, b };
  },
  slotErrorCode: 'ERR_PODTUN_MEMORY_SLOT',
  superPackets: true,
  dropsToDownPeer: true,
  downWithinMs: 100,
});

describe.skipIf(nativeMissing)('', () => {
  const PROBE_INTERVAL_MS = 50;
  const DEAD_AFTER_MS = 200;
  const udp = (node: string): UdpTransport => new UdpTransport({
    listen: '127.0.0.1:0', localNode: node, clusterSecret: SECRET, log: quietLogger,
    probeIntervalMs: PROBE_INTERVAL_MS, deadAfterMs: DEAD_AFTER_MS,
  });
  transportContract('udp (native addon)', {
    connectedPair(sinkA, sinkB) {
      const a = udp('node-a');
      const b = udp('node-b');
      return connect(a, b, sinkA, sinkB, () => {
        a.setPeer(SLOT_OF_B, { node: 'node-b', endpoints: { udp: `127.0.0.1:${b.port}` }, transports: ['udp'] });
        b.setPeer(SLOT_OF_A, { node: 'node-a', endpoints: { udp: `127.0.0.1:${a.port}` }, transports: ['udp'] });
      });
    },
    slotErrorCode: 'ERR_PODTUN_UDP_SLOT',
    // The addon splits a super-packet into MTU segments (native/offload.test.ts checks them).
    superPackets: false,
    dropsToDownPeer: false,
    downWithinMs: DEAD_AFTER_MS + PROBE_INTERVAL_MS + 500,
  });

  const keyA = generateX25519();
  const keyB = generateX25519();
  const sealed = (node: string, nodeKey: typeof keyA): SealedUdpTransport => new SealedUdpTransport({
    listen: '127.0.0.1:0', localNode: node, clusterSecret: SECRET, log: quietLogger, nodeKey, cpuHasAesHw: true,
    probeIntervalMs: PROBE_INTERVAL_MS, deadAfterMs: DEAD_AFTER_MS,
  });
  transportContract('sealed udp (native addon)', {
    connectedPair(sinkA, sinkB) {
      const a = sealed('node-a', keyA);
      const b = sealed('node-b', keyB);
      return connect(a, b, sinkA, sinkB, () => {
        a.setPeer(SLOT_OF_B, { node: 'node-b', endpoints: { udp: `127.0.0.1:${b.port}` }, transports: ['udp'], publicKey: publicKeyText(keyB.publicKey) });
        b.setPeer(SLOT_OF_A, { node: 'node-a', endpoints: { udp: `127.0.0.1:${a.port}` }, transports: ['udp'], publicKey: publicKeyText(keyA.publicKey) });
      });
    },
    slotErrorCode: 'ERR_PODTUN_UDP_SLOT',
    superPackets: false,
    dropsToDownPeer: false,
    downWithinMs: DEAD_AFTER_MS + PROBE_INTERVAL_MS + 500,
  });
});

const ws = (node: string, listen: string | undefined): WsTransport => new WsTransport({
  localNode: node, listen, clusterSecret: SECRET, proxyFor: () => undefined, log: quietLogger,
  pingIntervalMs: 50, deadAfterMs: 300, reconnectMinMs: 20, reconnectMaxMs: 200,
});

const sealedWs = (node: string, listen: string | undefined, nodeKey: ReturnType<typeof generateX25519>): WsTransport => new WsTransport({
  localNode: node, listen, clusterSecret: SECRET, proxyFor: () => undefined, log: quietLogger,
  pingIntervalMs: 50, deadAfterMs: 300, reconnectMinMs: 20, reconnectMaxMs: 200,
  sealing: { nodeKey, sealer: addon.openSealer(), cpuHasAesHw: addon.cpuHasAesHw },
});

describe.skipIf(nativeMissing)('', () => {
  const keyA = generateX25519();
  const keyB = generateX25519();
  transportContract('sealed ws', {
    connectedPair(sinkA, sinkB) {
      const a = sealedWs('node-a', '127.0.0.1:0', keyA);
      const b = sealedWs('node-b', undefined, keyB);
      return connect(a, b, sinkA, sinkB, () => {
        a.setPeer(SLOT_OF_B, { node: 'node-b', endpoints: {}, transports: ['ws'], publicKey: publicKeyText(keyB.publicKey) });
        b.setPeer(SLOT_OF_A, { node: 'node-a', endpoints: { ws: `ws://127.0.0.1:${a.port}` }, transports: ['ws'], publicKey: publicKeyText(keyA.publicKey) });
      });
    },
    slotErrorCode: 'ERR_PODTUN_WS_SLOT',
    superPackets: true,
    dropsToDownPeer: true,
    downWithinMs: 1000,
  });
});

transportContract('ws', {
  connectedPair(sinkA, sinkB) {
    const a = ws('node-a', '127.0.0.1:0');
    const b = ws('node-b', undefined);
    return connect(a, b, sinkA, sinkB, () => {
      a.setPeer(SLOT_OF_B, { node: 'node-b', endpoints: {}, transports: ['ws'] });
      b.setPeer(SLOT_OF_A, { node: 'node-a', endpoints: { ws: `ws://127.0.0.1:${a.port}` }, transports: ['ws'] });
    });
  },
  slotErrorCode: 'ERR_PODTUN_WS_SLOT',
  superPackets: true,
  dropsToDownPeer: true,
  downWithinMs: 1000,
});
