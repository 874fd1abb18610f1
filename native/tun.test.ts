/**
 * A real TUN, moved into a namespace we create:
 *
 *   root ns: this test process holds the TUN fd          ns ptnat-xxxx
 *        tun.start / tun.write  <====== fd ======>  ptt-xxxx 10.66.0.1/24 (up), ping 10.66.0.2
 *
 * ping's echo requests reach us through the addon; we answer them through the addon (once with
 * our own virtio header, once bare) and ping must count the replies.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addon } from './addon.js';
import type { NativeTun } from './addon.js';
import { createNs, deleteNs, kernelSkipReason, moveIntoNs, run, uniqueName } from './test-support.js';
import { VNET_HDR_LEN, csumAdd, fold, readVnet } from './test-packets.js';
import { skipUnlessMet } from '../test/requirement.js';

const skip = skipUnlessMet('native/tun.test.ts', kernelSkipReason());

const LOCAL = '10.66.0.1';
const REMOTE = '10.66.0.2';

/** Turns an ICMP echo request (plain IPv4) into its reply, in place. */
function toEchoReply(ip: Buffer): boolean {
  const iphl = ((ip[0] ?? 0) & 15) * 4;
  if (ip[9] !== 1 || ip[iphl] !== 8) return false;
  const src = Buffer.from(ip.subarray(12, 16));
  ip.copy(ip, 12, 16, 20);
  src.copy(ip, 16);
  ip[iphl] = 0;
  ip.writeUInt16BE(0, iphl + 2);
  ip.writeUInt16BE(0xffff - fold(csumAdd(ip, iphl, ip.length)), iphl + 2);
  return true; // addresses swapped: the IPv4 header checksum is unchanged
}

function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

describe.skipIf(skip)('TUN device (real kernel)', () => {
  const ns = uniqueName('ptnat-');
  const dev = uniqueName('ptt');

  beforeAll(async () => {
    await createNs(ns);
  });

  afterAll(async () => {
    await deleteNs([ns]);
  });

  it('reports the kernel error with its errno text', () => {
    expect(() => addon.openTun({ name: 'bad name/', multiQueue: false, vnetHdr: true })).toThrow(
      expect.objectContaining({ code: 'ERR_PODTUN_TUN_OPEN', message: expect.stringMatching(/^cannot open TUN bad name\/: /) }),
    );
  });

  it('reads ping requests with virtio headers and writes replies the kernel accepts', async () => {
    const fdsBefore = fdCount();
    const tun: NativeTun = addon.openTun({ name: dev, multiQueue: false, vnetHdr: true });
    expect(tun.name).toBe(dev);
    try {
      await moveIntoNs(dev, ns, [
        ['link', 'set', dev, 'up'],
        ['addr', 'add', `${LOCAL}/24`, 'dev', dev],
      ]);
      const buf = Buffer.alloc(1 << 20);
      const offs = new Int32Array(256);
      const idx = new Int32Array(128).map((_, i) => i);
      let requests = 0;
      let accepted = 0;
      let badHeaders = 0;
      tun.start(buf, offs, 128, (count) => {
        for (let i = 0; i < count; i++) {
          const off = offs[2 * i] ?? 0;
          const len = offs[2 * i + 1] ?? 0;
          const v = readVnet(buf, off);
          if (v.gsoType !== 0 || len < VNET_HDR_LEN + 20) badHeaders++;
          const ip = buf.subarray(off + VNET_HDR_LEN, off + len);
          if (ip[0] !== 0x45 || ip.readUInt32BE(16) !== 0x0a420002 || !toEchoReply(ip)) continue;
          requests++;
          // Alternate the two write paths: as read (our header, zeroed), and bare.
          if (requests % 2 === 0) {
            buf.fill(0, off, off + VNET_HDR_LEN);
            accepted += tun.write(buf, offs, idx.subarray(i), 1, false);
          } else {
            offs[2 * i] = off + VNET_HDR_LEN;
            offs[2 * i + 1] = len - VNET_HDR_LEN;
            accepted += tun.write(buf, offs, idx.subarray(i), 1, true);
          }
        }
      });
      const out = await run(['ip', 'netns', 'exec', ns, 'ping', '-c', '4', '-i', '0.2', '-W', '2', REMOTE], 20_000);
      expect(out).toMatch(/4 packets transmitted, 4 received/);
      expect(requests).toBe(4);
      expect(accepted).toBe(4);
      expect(badHeaders).toBe(0);
      const stats = tun.stats();
      expect(stats['writePackets']).toBe(4);
      expect(stats['writeErrors']).toBe(0);
    } finally {
      tun.close();
      tun.close();
    }
    // The fd is closed in the uv_close callback, in the close phase of this loop turn.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(fdCount()).toBe(fdsBefore);
    expect(() => tun.start(Buffer.alloc(1 << 17), new Int32Array(2), 1, () => undefined)).toThrow(
      expect.objectContaining({ code: 'ERR_PODTUN_CLOSED' }),
    );
    // The device went away with its last fd.
    await expect(run(['ip', '-n', ns, 'link', 'show', dev])).rejects.toThrow();
  });

  it('leaves nothing on the event loop after close: a process that polled a TUN exits by itself', () => {
    // getActiveResourcesInfo() lists only Node's own handles, so the real proof is a process that
    // must exit on its own (a leftover uv_poll would keep it alive until the timeout kills it).
    const addonPath = new URL('../build/Release/podtun.node', import.meta.url).pathname;
    const script = `
      const addon = require(${JSON.stringify(addonPath)});
      const tun = addon.openTun({ name: ${JSON.stringify(uniqueName('ptx'))}, multiQueue: false, vnetHdr: true });
      tun.start(Buffer.alloc(1 << 20), new Int32Array(64), 32, () => {});
      setTimeout(() => { tun.close(); tun.close(); }, 50);
      process.on('beforeExit', () => console.log('left:', JSON.stringify(process.getActiveResourcesInfo())));
    `;
    const started = Date.now();
    const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10_000, killSignal: 'SIGKILL' });
    expect(out).toBe('left: []\n');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('a started TUN keeps the process alive until closed (the poll handle is real)', () => {
    const addonPath = new URL('../build/Release/podtun.node', import.meta.url).pathname;
    const script = `
      const addon = require(${JSON.stringify(addonPath)});
      const tun = addon.openTun({ name: ${JSON.stringify(uniqueName('ptx'))}, multiQueue: false, vnetHdr: true });
      tun.start(Buffer.alloc(1 << 20), new Int32Array(64), 32, () => {});
    `;
    expect(() => execFileSync(process.execPath, ['-e', script], { timeout: 1_500, killSignal: 'SIGKILL' })).toThrow(
      expect.objectContaining({ signal: 'SIGKILL' }),
    );
  });
});
