/**
 * End to end through the addon: two namespaces, each with a TUN whose fd this process holds, and
 * a forwarder in between made of the addon's UDP sockets over loopback.
 *
 *   ns A (ptnat-a…)                      this process (root ns)                     ns B (ptnat-b…)
 *   sender ──> pta… 10.77.1.1 ══ fd ══> TunDevice A ─sendPackets─> udp A ──┐
 *              fd77:1::1                  (TSO split, GSO)                  │ 127.0.0.1
 *                                                                           v
 *   receiver <── ptb… 10.77.2.1 <══ fd ══ TunDevice B <─write(bare)─ udp B (GRO)
 *                fd77:2::1                  (coalescing)
 *   and the same way back for the ACKs.
 *
 * The payload is hashed on both sides: with offloads on, the receiving kernel trusts the
 * checksums of re-merged super-packets, so only an end-to-end hash catches a merging bug.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addon } from './addon.js';
import type { NativeUdp } from './addon.js';
import { TunDevice } from '../router/tun-device.js';
import type { PacketBatch } from '../core/packet-batch.js';
import { createNs, deleteNs, kernelSkipReason, moveIntoNs, nodeInNs, uniqueName } from './test-support.js';
import { skipUnlessMet } from '../test/requirement.js';

const skip = skipUnlessMet('native/forwarder.test.ts', kernelSkipReason());

const TUN_MTU = 1400;
const HEADER = Buffer.from([1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]); // tunnel/udp-header.ts: v1, data
const RECV_BYTES = 4 * 1024 * 1024;
const RECV_MAX = 4096;
const TRANSFER_TIMEOUT_MS = 60_000;

/** One direction: TUN -> UDP socket -> peer slot 0. */
function forwardTunToUdp(tun: TunDevice, udp: NativeUdp): void {
  const idx = new Int32Array(128).map((_, i) => i);
  tun.start((batch: PacketBatch) => {
    udp.sendPackets(0, HEADER, HEADER.length, batch.buf, batch.offs, idx, batch.count, batch.headroom);
  });
}

/** The other: UDP socket -> strip our header -> TUN (bare, coalesced). */
function forwardUdpToTun(udp: NativeUdp, tun: TunDevice, badHeaders: { count: number }): void {
  const batch: PacketBatch = { buf: Buffer.alloc(RECV_BYTES), offs: new Int32Array(RECV_MAX * 2), count: 0, headroom: 0 };
  const idx = new Int32Array(RECV_MAX);
  udp.start(batch.buf, batch.offs, RECV_MAX, (count) => {
    let n = 0;
    for (let i = 0; i < count; i++) {
      const off = batch.offs[2 * i] ?? 0;
      const len = batch.offs[2 * i + 1] ?? 0;
      if (len <= HEADER.length || batch.buf[off] !== 1 || batch.buf[off + 1] !== 1) {
        badHeaders.count++;
        continue;
      }
      batch.offs[2 * i] = off + HEADER.length;
      batch.offs[2 * i + 1] = len - HEADER.length;
      idx[n++] = i;
    }
    tun.write(batch, idx, n, false);
  });
}

const receiverScript = (host: string, port: number): string => `
  const net = require('net'), crypto = require('crypto');
  const hash = crypto.createHash('sha256');
  let bytes = 0, first = 0;
  const server = net.createServer((sock) => {
    sock.on('data', (d) => { if (bytes === 0) first = performance.now(); hash.update(d); bytes += d.length; });
    sock.on('end', () => {
      console.log('result ' + bytes + ' ' + hash.digest('hex'));
      console.log('ms ' + (performance.now() - first));
      sock.end();
      server.close();
    });
  });
  server.listen(${port}, ${JSON.stringify(host)}, () => console.log('listening'));
`;

const senderScript = (host: string, port: number, totalBytes: number): string => `
  const net = require('net'), crypto = require('crypto');
  // AES-CTR over zeros: deterministic, never repeating, fast enough not to be the bottleneck.
  const cipher = crypto.createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 9));
  const hash = crypto.createHash('sha256');
  const zeros = Buffer.alloc(1 << 20);
  let sent = 0;
  const sock = net.connect({ host: ${JSON.stringify(host)}, port: ${port} }, pump);
  function pump() {
    while (sent < ${totalBytes}) {
      const chunk = cipher.update(zeros);
      hash.update(chunk);
      sent += chunk.length;
      if (!sock.write(chunk)) return sock.once('drain', pump);
    }
    sock.end(() => console.log('result ' + sent + ' ' + hash.digest('hex')));
  }
  sock.on('data', () => {});
`;

describe.skipIf(skip)('TUN -> UDP -> TUN forwarder (real kernel, offloads on)', () => {
  const nsA = uniqueName('ptnat-a');
  const nsB = uniqueName('ptnat-b');
  const devA = uniqueName('pta');
  const devB = uniqueName('ptb');
  let tunA: TunDevice | undefined;
  let tunB: TunDevice | undefined;
  const sockets: NativeUdp[] = [];
  const badHeaders = { count: 0 };

  beforeAll(async () => {
    await createNs(nsA);
    await createNs(nsB);
    tunA = TunDevice.open({ name: devA });
    tunB = TunDevice.open({ name: devB });
    for (const [dev, ns, self, peer] of [
      [devA, nsA, '1', '2'],
      [devB, nsB, '2', '1'],
    ] as const) {
      await moveIntoNs(dev, ns, [
        ['link', 'set', dev, 'mtu', String(TUN_MTU), 'up'],
        ['addr', 'add', `10.77.${self}.1/24`, 'dev', dev],
        ['addr', 'add', `fd77:${self}::1/64`, 'dev', dev, 'nodad'],
        ['route', 'add', `10.77.${peer}.0/24`, 'dev', dev],
        ['route', 'add', `fd77:${peer}::/64`, 'dev', dev],
      ]);
    }
    const open = (): NativeUdp => {
      const u = addon.openUdp({ host: '127.0.0.1', port: 0, recvBufferBytes: 8 << 20, sendBufferBytes: 8 << 20 });
      sockets.push(u);
      return u;
    };
    const udpA = open();
    const udpB = open();
    udpA.setPeer(0, '127.0.0.1', udpB.port);
    udpB.setPeer(0, '127.0.0.1', udpA.port);
    forwardTunToUdp(tunA, udpA);
    forwardUdpToTun(udpB, tunB, badHeaders);
    forwardTunToUdp(tunB, udpB);
    forwardUdpToTun(udpA, tunA, badHeaders);
  });

  afterAll(async () => {
    tunA?.close();
    tunB?.close();
    for (const u of sockets) u.close();
    await deleteNs([nsA, nsB]);
  });

  async function transfer(host: string, totalBytes: number): Promise<number> {
    const port = 5201;
    const receiver = nodeInNs(nsB, receiverScript(host, port), TRANSFER_TIMEOUT_MS);
    try {
      await receiver.printed('listening');
      const sender = nodeInNs(nsA, senderScript(host, port, totalBytes), TRANSFER_TIMEOUT_MS);
      try {
        const [sent, received] = await Promise.all([sender.done, receiver.done]);
        const result = (out: string): string | undefined => /^result .*$/m.exec(out)?.[0];
        expect(result(sent)).toMatch(new RegExp(`^result ${totalBytes} [0-9a-f]{64}$`));
        expect(result(received)).toBe(result(sent));
        const ms = Number(/^ms (.*)$/m.exec(received)?.[1]);
        return totalBytes / (ms / 1000) / 1e6; // first byte to last, at the receiver
      } finally {
        sender.kill();
      }
    } finally {
      receiver.kill();
    }
  }

  it('carries 256 MiB over IPv4 intact, through split, GSO, GRO and re-merge', async () => {
    const mbps = await transfer('10.77.2.1', 256 << 20);
    const [udpA, udpB] = sockets;
    const a = udpA?.stats() ?? {};
    const b = udpB?.stats() ?? {};
    const ta = tunA?.stats() ?? {};
    const tb = tunB?.stats() ?? {};
    console.log(`[forwarder] IPv4 256 MiB: ${mbps.toFixed(0)} MB/s (${((mbps * 8) / 1000).toFixed(2)} Gbit/s)`);
    console.log('[forwarder] tunA', JSON.stringify(ta), '\n[forwarder] udpA', JSON.stringify(a));
    console.log('[forwarder] udpB', JSON.stringify(b), '\n[forwarder] tunB', JSON.stringify(tb));
    expect(ta['readSupers']).toBeGreaterThan(0); // TSO super-packets came out of the kernel
    expect(a['splitSupers']).toBeGreaterThan(0); // ...were split in C
    if (udpA?.gso) expect(a['gsoSends']).toBeGreaterThan(0);
    if (udpB?.gro && udpA?.gso) expect(b['groDatagrams']).toBeGreaterThan(0);
    expect(tb['mergedSupers']).toBeGreaterThan(0); // ...and re-merged before the TUN write
    expect(tb['writeErrors']).toBe(0);
    expect(a['malformedDrops']).toBe(0);
    expect(badHeaders.count).toBe(0);
  });

  it('carries 64 MiB over IPv6 intact (TSO6 split and IPv6 merge)', async () => {
    const mergedBefore = tunB?.stats()['mergedSupers'] ?? 0;
    const mbps = await transfer('fd77:2::1', 64 << 20);
    console.log(`[forwarder] IPv6 64 MiB: ${mbps.toFixed(0)} MB/s`);
    expect(tunB?.stats()['mergedSupers'] ?? 0).toBeGreaterThan(mergedBefore);
    expect(tunB?.stats()['writeErrors']).toBe(0);
  });
});
