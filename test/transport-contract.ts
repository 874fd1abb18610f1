/**
 * The Transport contract (core/transport.ts), run against every implementation by
 * tunnel/transport-contract.test.ts. Call inside a test file with a factory for a connected pair:
 * `transportContract('udp', { connectedPair, slotErrorCode: 'ERR_PODTUN_UDP_SLOT', ... })`.
 *
 *   transport a (node-a)                           transport b (node-b)
 *     slot SLOT_OF_B = node-b  <---- carrier ---->   slot SLOT_OF_A = node-a
 *
 * What differs between transports is declared, not skipped quietly: whether a TSO super-packet
 * travels whole, and whether sends to a peer seen down are dropped.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { VNET_GSO_TCPV4, VNET_HDR_LEN } from '../core/packet-batch.js';
import { MAX_PEER_SLOTS } from '../core/transport.js';
import type { InboundSink, PeerSpec, PeerState, Transport } from '../core/transport.js';
import { TransportError } from '../tunnel/transport-error.js';
import { collector } from './inbound-collector.js';
import { waitFor } from './registry-contract.js';
import { PROTO_TCP, VNET_F_NEEDS_CSUM, batchOf, ipv4, ipv6, tcp, udp, withVnetHdr } from './packet-fixtures.js';

/** The slot a gives node-b, and the slot b gives node-a (different, so a mix-up shows). */
export const SLOT_OF_B = 3;
export const SLOT_OF_A = 5;

export interface ConnectedPair {
  readonly a: Transport;
  readonly b: Transport;
}

export interface TransportContractSubject {
  /**
   * Two transports for node-a and node-b, started with these sinks, each holding the other in
   * its slot (SLOT_OF_B at a, SLOT_OF_A at b), and both up: ready to carry packets both ways.
   */
  connectedPair(sinkA: InboundSink, sinkB: InboundSink): Promise<ConnectedPair>;
  /** The code of the TransportError that setPeer and removePeer throw for a slot out of range. */
  readonly slotErrorCode: string;
  /** Carries a 64 KiB TSO super-packet whole; false: it splits super-packets (UDP: into MTU segments). */
  readonly superPackets: boolean;
  /**
   * Drops (peer_down) what is sent to a peer seen down; false: sends still go out (UDP sends
   * datagrams whatever the peer's state; the selector moves traffic off a down peer).
   */
  readonly dropsToDownPeer: boolean;
  /** How long the other side may take to see a closed side down. */
  readonly downWithinMs: number;
}

/** A minimal IPv4 packet (header only) up to a 9000-byte one, an IPv6 one; each with content of its own. */
function packetOfSize(ipLen: number, seed: number): Buffer {
  const data = Buffer.alloc(Math.max(0, ipLen - 28));
  for (let i = 0; i < data.length; i++) data[i] = (seed * 7 + i) & 0xff;
  if (ipLen < 28) return withVnetHdr(ipv4({ src: '10.244.1.2', dst: '10.244.2.2', payload: Buffer.alloc(ipLen - 20) }));
  return withVnetHdr(ipv4({ src: '10.244.1.2', dst: '10.244.2.2', identification: seed, payload: udp(5000, 6000, data) }));
}

const IP_SIZES = [20, 28, 29, 100, 576, 1400, 1500, 4000, 9000];

function superPacket(seed: number): Buffer {
  const data = Buffer.alloc(65535 - 40);
  for (let i = 0; i < data.length; i++) data[i] = (seed + i) & 0xff;
  return withVnetHdr(ipv4({ src: '10.244.1.2', dst: '10.244.2.2', protocol: PROTO_TCP, payload: tcp(40000, 80, data) }),
    { flags: VNET_F_NEEDS_CSUM, gsoType: VNET_GSO_TCPV4, hdrLen: 40, gsoSize: 1400, csumStart: 20, csumOffset: 16 });
}

function sendAll(t: Transport, slot: number, packets: Buffer[]): number {
  const { batch, idx } = batchOf(packets, 16);
  return t.send(slot, batch, idx, packets.length);
}

function dropTotal(t: Transport): number {
  return Object.values(t.drops()).reduce((sum, n) => sum + n, 0);
}

/** drops() and the `drop.*` keys of stats() say the same thing. */
function expectDropCountersAgree(t: Transport): void {
  const fromStats: Record<string, number> = {};
  for (const [key, n] of Object.entries(t.stats())) if (key.startsWith('drop.')) fromStats[key.slice('drop.'.length)] = n;
  expect(fromStats).toEqual(t.drops());
}

function stateOf(t: Transport, slot: number): PeerState | undefined {
  return t.peerStatus().find((p) => p.slot === slot)?.state;
}

function resources(): string[] {
  return process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');
}

const spec = (node: string): PeerSpec => ({ node, endpoints: {}, transports: [] });

export function transportContract(name: string, subject: TransportContractSubject): void {
  describe(`Transport contract: ${name}`, () => {
    const open: Transport[] = [];

    afterEach(async () => {
      for (const t of open.splice(0)) await t.close();
    });

    async function pair(): Promise<ConnectedPair & { atA: ReturnType<typeof collector>; atB: ReturnType<typeof collector> }> {
      const atA = collector();
      const atB = collector();
      const { a, b } = await subject.connectedPair(atA.sink, atB.sink);
      open.push(a, b);
      return { a, b, atA, atB };
    }

    it(`delivers batches of packets of many sizes${subject.superPackets ? ' and 64 KiB super-packets' : ''} intact, in order, tagged with the sender's slot, both ways`, async () => {
      const { a, b, atA, atB } = await pair();
      const toB = IP_SIZES.flatMap((size, i) => [packetOfSize(size, i), packetOfSize(IP_SIZES[IP_SIZES.length - 1 - i] ?? 20, 100 + i)]);
      toB.push(withVnetHdr(ipv6({ src: 'fd00:10:244:1::2', dst: 'fd00:10:244:2::2', payload: udp(1, 2, Buffer.alloc(300, 9)) })));
      if (subject.superPackets) toB.splice(5, 0, superPacket(1), superPacket(2));
      const toA = Array.from({ length: 40 }, (_, i) => packetOfSize(IP_SIZES[i % IP_SIZES.length] ?? 20, 1000 + i));
      const dropsBefore = [dropTotal(a), dropTotal(b)];

      expect(sendAll(a, SLOT_OF_B, toB)).toBe(0);
      expect(sendAll(b, SLOT_OF_A, toA.slice(0, 20))).toBe(0);
      expect(sendAll(b, SLOT_OF_A, toA.slice(20))).toBe(0);
      await waitFor('every packet', () => atB.got.length >= toB.length && atA.got.length >= toA.length, 3000);
      await new Promise((r) => setTimeout(r, 20));

      // Bare IP packets unless the batch says the virtio header came along.
      const asSent = (r: { packet: Buffer; vnetHdr: boolean }, sent: Buffer | undefined): Buffer | undefined =>
        r.vnetHdr ? sent : sent?.subarray(VNET_HDR_LEN);
      expect(atB.got.map((r, i) => r.packet.equals(asSent(r, toB[i]) ?? Buffer.alloc(0)))).toEqual(toB.map(() => true));
      expect(atA.got.map((r, i) => r.packet.equals(asSent(r, toA[i]) ?? Buffer.alloc(0)))).toEqual(toA.map(() => true));
      expect(atB.got.every((r) => r.slot === SLOT_OF_A)).toBe(true);
      expect(atA.got.every((r) => r.slot === SLOT_OF_B)).toBe(true);
      expect([dropTotal(a), dropTotal(b)]).toEqual(dropsBefore);
      expectDropCountersAgree(a);
      expectDropCountersAgree(b);
    });

    it('drops and counts (peer_down) what is sent to a slot it does not know; refuses a slot out of range with a TransportError', async () => {
      const { a } = await pair();
      const before = a.drops()['peer_down'] ?? 0;
      const packets = [packetOfSize(100, 1), packetOfSize(1400, 2)];
      let returned = 0;
      for (const slot of [SLOT_OF_B + 1, -1, MAX_PEER_SLOTS, 1e9]) {
        const dropped = sendAll(a, slot, packets);
        expect({ slot, dropped }).toEqual({ slot, dropped: packets.length });
        returned += dropped;
      }
      expect((a.drops()['peer_down'] ?? 0) - before).toBe(returned);
      expectDropCountersAgree(a);
      for (const slot of [-1, MAX_PEER_SLOTS, 2.5]) {
        const err: unknown = (() => {
          try {
            a.setPeer(slot, spec('node-x'));
          } catch (e: unknown) {
            return e;
          }
          return undefined;
        })();
        expect(err).toBeInstanceOf(TransportError);
        expect({ slot, code: (err as TransportError).code }).toEqual({ slot, code: subject.slotErrorCode });
        expect(() => a.removePeer(slot)).toThrow(TransportError);
      }
      expect(a.peerStatus().map((p) => p.slot)).toEqual([SLOT_OF_B]);
    });

    it('drops and counts (peer_down) what is sent to a removed peer, and no longer reports it', async () => {
      const { a } = await pair();
      a.removePeer(SLOT_OF_B);
      a.removePeer(SLOT_OF_B);
      expect(a.peerStatus()).toEqual([]);
      const before = a.drops()['peer_down'] ?? 0;
      expect(sendAll(a, SLOT_OF_B, [packetOfSize(100, 1)])).toBe(1);
      expect((a.drops()['peer_down'] ?? 0) - before).toBe(1);
      expectDropCountersAgree(a);
    });

    it('sees a peer whose side closed go down', async () => {
      const { a, b } = await pair();
      expect(stateOf(a, SLOT_OF_B)).toBe('up');
      await b.close();
      await waitFor('b down at a', () => stateOf(a, SLOT_OF_B) === 'down', subject.downWithinMs);
    });

    it.skipIf(!subject.dropsToDownPeer)('drops and counts (peer_down) what is sent to a peer that went down', async () => {
      const { a, b } = await pair();
      await b.close();
      await waitFor('b down at a', () => stateOf(a, SLOT_OF_B) === 'down', subject.downWithinMs);
      const before = dropTotal(a);
      const peerDownBefore = a.drops()['peer_down'] ?? 0;
      expect(sendAll(a, SLOT_OF_B, [packetOfSize(100, 1), packetOfSize(576, 2), packetOfSize(1500, 3)])).toBe(3);
      expect((a.drops()['peer_down'] ?? 0) - peerDownBefore).toBe(3);
      expect(dropTotal(a) - before).toBe(3);
      expectDropCountersAgree(a);
    });

    it('closes twice safely, leaves no handle or timer behind, and drops (peer_down) what is sent after', async () => {
      await new Promise((r) => setImmediate(r));
      const before = resources();
      const { a, b, atB } = await pair();
      expect(sendAll(a, SLOT_OF_B, [packetOfSize(100, 1)])).toBe(0);
      await waitFor('data at b', () => atB.got.length >= 1, 3000);
      await a.close();
      await a.close();
      await b.close();
      await b.close();
      const peerDownBefore = a.drops()['peer_down'] ?? 0;
      expect(sendAll(a, SLOT_OF_B, [packetOfSize(100, 2)])).toBe(1);
      expect((a.drops()['peer_down'] ?? 0) - peerDownBefore).toBe(1);
      expectDropCountersAgree(a);
      await new Promise((r) => setImmediate(r));
      const after = resources();
      const count = (list: string[], kind: string): number => list.filter((x) => x === kind).length;
      for (const kind of new Set(after)) {
        expect({ kind, n: count(after, kind) }).toEqual({ kind, n: Math.min(count(after, kind), count(before, kind)) });
      }
    });
  });
}
