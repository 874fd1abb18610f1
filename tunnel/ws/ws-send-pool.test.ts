/**
 * SendBufferPool by itself (completions driven by hand), then under a real `ws` connection on
 * loopback, where completions come from ws's send callback:
 *
 *   pool -> client WebSocket (zero mask, as the transport) ---- TCP ----> server WebSocket (paused, then read)
 */
import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { MIN_POOLED_BYTES, SEND_POOL_BUFFERS, SendBufferPool } from './ws-send-pool.js';
import type { SendPoolCounters } from './ws-send-pool.js';
import { waitFor } from '../../test/registry-contract.js';

function counters(): SendPoolCounters {
  return { sendBuffersReused: 0, sendBuffersPooled: 0, sendPoolEmpty: 0 };
}

describe('SendBufferPool', () => {
  it('hands a buffer out again only after its write completed', () => {
    const c = counters();
    const pool = new SendBufferPool(c, 1 << 20);
    const first = pool.take(1000);
    expect(first.length).toBe(1000);
    expect(first.buffer.byteLength).toBe(MIN_POOLED_BYTES);
    const second = pool.take(1000); // the first is still being written
    expect(second.buffer).not.toBe(first.buffer);
    pool.completed(undefined);
    const third = pool.take(2000);
    expect(third.buffer).toBe(first.buffer);
    expect(third.length).toBe(2000);
    expect(c).toEqual({ sendBuffersReused: 1, sendBuffersPooled: 2, sendPoolEmpty: 0 });
  });

  it('reuses the buffer written longest ago, and falls back to a one-off buffer when all are in flight', () => {
    const c = counters();
    const pool = new SendBufferPool(c, 1 << 20, 2);
    const a = pool.take(100);
    const b = pool.take(100);
    const oneOff = pool.take(100);
    expect([oneOff.buffer === a.buffer, oneOff.buffer === b.buffer]).toEqual([false, false]);
    expect(c.sendPoolEmpty).toBe(1);
    pool.completed(undefined); // a
    expect(pool.take(100).buffer).toBe(a.buffer);
    pool.completed(undefined); // b
    pool.completed(undefined); // the one-off
    expect(pool.take(100).buffer).toBe(b.buffer); // b was handed out before a's second use
    expect(pool.take(100).buffer).not.toBe(a.buffer); // a's second write has not completed
    expect(c).toEqual({ sendBuffersReused: 2, sendBuffersPooled: 2, sendPoolEmpty: 2 });
  });

  it('replaces a buffer too small for the message by a bigger one, never above maxMessageBytes', () => {
    const c = counters();
    const pool = new SendBufferPool(c, 300_000, 1);
    const small = pool.take(100);
    pool.completed(undefined);
    const big = pool.take(200_000);
    expect(big.buffer).not.toBe(small.buffer);
    expect(big.buffer.byteLength).toBe(262_144);
    pool.completed(undefined);
    const biggest = pool.take(290_000);
    expect(biggest.buffer.byteLength).toBe(300_000); // 512 KiB capped at the largest message
    pool.completed(undefined);
    expect(pool.take(5).buffer).toBe(biggest.buffer);
    expect(c).toEqual({ sendBuffersReused: 1, sendBuffersPooled: 3, sendPoolEmpty: 0 });
  });

  it('reuses nothing after a failed write (completion order no longer holds)', () => {
    const c = counters();
    const pool = new SendBufferPool(c, 1 << 20);
    const a = pool.take(100);
    pool.completed(new Error('socket destroyed'));
    expect(pool.take(100).buffer).not.toBe(a.buffer);
    expect(c.sendPoolEmpty).toBe(1);
  });

  describe('under a real ws connection', () => {
    const cleanups: (() => Promise<void> | void)[] = [];
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    /** A client connected to a server whose socket starts paused; `received` collects its messages. */
    async function connected(): Promise<{ client: WebSocket; resume: () => void; received: Buffer[] }> {
      const server = createServer();
      const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 1 << 30 });
      const received: Buffer[] = [];
      let serverSocket: Socket | undefined;
      server.on('upgrade', (req, socket, head) => {
        wss.handleUpgrade(req, socket, head, (ws) => {
          serverSocket = socket as Socket;
          serverSocket.pause();
          ws.on('message', (data: Buffer) => received.push(Buffer.from(data)));
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as { port: number }).port;
      const client = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false, generateMask: (m) => m.fill(0) });
      cleanups.push(async () => {
        client.terminate();
        serverSocket?.destroy(); // a paused socket would never read the client's FIN
        server.closeAllConnections();
        await new Promise<void>((r) => server.close(() => r()));
      });
      await new Promise<void>((r) => client.once('open', () => r()));
      await waitFor('the server side', () => serverSocket !== undefined, 5000);
      return { client, resume: () => serverSocket?.resume(), received };
    }

    it('gets a buffer back once ws has flushed it, keeps queued ones untouched, and every message arrives intact', async () => {
      const { client, resume, received } = await connected();
      const c = counters();
      const pool = new SendBufferPool(c, 1 << 20);
      let completions = 0;
      const onWritten = (err?: Error | null): void => {
        completions++;
        pool.completed(err);
      };
      const MESSAGE_BYTES = 200 * 1024;
      const sent: Buffer[] = [];
      const send = (seed: number): ArrayBufferLike => {
        const message = pool.take(MESSAGE_BYTES);
        for (let i = 0; i < message.length; i += 4096) message.fill((seed + i / 4096) & 0xff, i, Math.min(i + 4096, message.length));
        sent.push(Buffer.from(message));
        client.send(message, { binary: true, compress: false }, onWritten);
        return message.buffer;
      };

      // Once ws has flushed a message (its callback ran), the same ArrayBuffer comes back.
      const first = send(0);
      await waitFor('the first write', () => completions === 1, 5000);
      expect(send(1)).toBe(first);
      await waitFor('the second write', () => completions === 2, 5000);

      // The reader is paused: messages queue in the socket until the pool is all in flight.
      let seed = 2;
      for (; seed <= 200 && client.bufferedAmount === 0; seed++) {
        send(seed);
        await new Promise((r) => setImmediate(r));
      }
      expect(client.bufferedAmount).toBeGreaterThan(0);
      for (let i = 0; i < 2 * SEND_POOL_BUFFERS; i++) send(seed++);
      expect(c.sendPoolEmpty).toBeGreaterThan(0);
      const reusedWhileQueued = c.sendBuffersReused;
      resume();
      await waitFor('the queue flushed', () => client.bufferedAmount === 0, 5000);
      for (let i = 0; i < 20; i++) {
        send(seed++);
        await new Promise((r) => setImmediate(r));
      }
      expect(c.sendBuffersReused).toBeGreaterThan(reusedWhileQueued);
      expect(c.sendBuffersPooled).toBeLessThanOrEqual(SEND_POOL_BUFFERS);
      await waitFor('every message', () => received.length === sent.length, 5000);
      expect(received.length).toBe(sent.length);
      for (let i = 0; i < sent.length; i++) expect({ i, same: received[i]?.equals(sent[i] as Buffer) }).toEqual({ i, same: true });
    });
  });
});
