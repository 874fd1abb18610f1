/**
 * WsTransport end to end on loopback with real sockets.
 *
 *   transport A (node-a)  ws://127.0.0.1:pA  <---- one or two TCP connections ---->  transport B (node-b)
 *     slot 3 = node-b        (listens)                                                 slot 5 = node-a
 *                                                                      (often dials out only: no listener)
 *   fake server / fake client (bare `ws` + ws-handshake.ts): a peer that misbehaves on purpose
 *   tinyproxy on 127.0.0.1:pP (BasicAuth user pass, CONNECT to pA only) for the proxy test
 *
 * What every transport does (delivery, unknown and removed slots, a closed peer, close twice
 * without leftovers) is the contract's, checked in tunnel/transport-contract.test.ts; here, what
 * is the WebSocket transport's own.
 */
import { spawn, execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import { createServer as createNetServer, connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4 } from '../../core/packet-batch.js';
import { PROTO_TCP, ipv4, tcp, udp, withVnetHdr } from '../../test/packet-fixtures.js';
import type { PeerSpec, PeerStatus } from '../../core/transport.js';
import { MessagePlan, WS_SUBPROTOCOL, decodeMessage, encodeMessage, newInboundBatch, planMessages } from './ws-framing.js';
import { SEND_POOL_BUFFERS } from './ws-send-pool.js';
import { HEADER_NODE, HEADER_NONCE, checkServerProof, clientHello, serverChallenge } from './ws-handshake.js';
import type { ClientHello } from './ws-handshake.js';
import { WsTransport } from './ws-transport.js';
import { TransportError } from '../transport-error.js';
import { wsTransportType } from './ws-transport-type.js';
import type { WsTransportOptions } from './ws-options.js';
import { recordingLogger } from '../../test/recording-logger.js';
import type { LogLine } from '../../test/recording-logger.js';
import { collector } from '../../test/inbound-collector.js';
import { batchOf } from '../../test/packet-fixtures.js';

const SECRET = Buffer.from('podtun test cluster secret, 32 b');
const OTHER_SECRET = Buffer.from('some other cluster secret 32 byt');
const SLOT_B = 3;
const SLOT_A = 5;
const SLOT_C = 7;
const PING_INTERVAL_MS = 50;
const DEAD_AFTER_MS = 300;
const RECONNECT_MIN_MS = 20;
const RECONNECT_MAX_MS = 200;

// --- packets: virtio header + IPv4 (small UDP, or a 64 KiB TCP super-packet) ---

function smallPacket(i: number): Buffer {
  return withVnetHdr(ipv4({ src: '10.244.1.2', dst: '10.244.2.2', payload: udp(5000, 6000, Buffer.from(`packet ${i}`)) }));
}

function superPacket(fill: number): Buffer {
  const data = Buffer.alloc(65535 - 40);
  for (let i = 0; i < data.length; i++) data[i] = (fill + i) & 0xff;
  return withVnetHdr(ipv4({ src: '10.244.1.2', dst: '10.244.2.2', protocol: PROTO_TCP, payload: tcp(40000, 80, data) }),
    { flags: VNET_F_NEEDS_CSUM, gsoType: VNET_GSO_TCPV4, hdrLen: 40, gsoSize: 1400, csumStart: 20, csumOffset: 16 });
}


/** One message carrying `packets`, framed as the transport frames it. */
function messageOf(packets: Buffer[]): Buffer {
  const { batch, idx } = batchOf(packets);
  const plan = new MessagePlan();
  planMessages(batch, idx, packets.length, 1 << 30, plan);
  const message = Buffer.alloc(plan.totalBytes);
  encodeMessage(batch, idx, 0, packets.length, message);
  return message;
}

function sendAll(t: WsTransport, slot: number, packets: Buffer[]): number {
  const { batch, idx } = batchOf(packets);
  return t.send(slot, batch, idx, packets.length);
}

// --- recording logger and sink ---



async function until(what: string, cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A peer reached over WebSocket (mode 'ws'), with WebSocket as the fallback ('auto'), or UDP only. */
function spec(node: string, wsEndpoint: string | undefined, mode: 'ws' | 'auto' | 'udp' = 'ws'): PeerSpec {
  const transports = { ws: ['ws'], auto: ['udp', 'ws'], udp: ['udp'] }[mode];
  return { node, endpoints: wsEndpoint === undefined ? {} : { ws: wsEndpoint }, transports };
}

function statusOf(t: WsTransport, slot: number): PeerStatus {
  const s = t.peerStatus().find((p) => p.slot === slot);
  if (s === undefined) throw new Error(`no peer in slot ${slot}`);
  return s;
}

function stat(t: WsTransport, name: string): number {
  return t.stats()[name] ?? 0;
}

/** A free loopback TCP port (bound and released). */
async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  await new Promise<void>((r) => server.close(() => r()));
  await new Promise((r) => setImmediate(r));
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

describe('WsTransport', () => {
  const lines: LogLine[] = [];
  const cleanups: (() => Promise<void> | void)[] = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    lines.length = 0;
  });

  function transport(node: string, extra: Partial<WsTransportOptions> = {}): WsTransport {
    const t = new WsTransport({
      localNode: node,
      listen: '127.0.0.1:0',
      clusterSecret: SECRET,
      proxyFor: () => undefined,
      log: recordingLogger(lines, { self: node }),
      pingIntervalMs: PING_INTERVAL_MS,
      deadAfterMs: DEAD_AFTER_MS,
      reconnectMinMs: RECONNECT_MIN_MS,
      reconnectMaxMs: RECONNECT_MAX_MS,
      ...extra,
    });
    cleanups.push(() => t.close());
    return t;
  }

  /** A listens; B dials A (and A dials B too when `bListens`). */
  async function pair(opts: { bListens?: boolean; a?: Partial<WsTransportOptions>; b?: Partial<WsTransportOptions> } = {}) {
    const a = transport('node-a', opts.a);
    const b = transport('node-b', { listen: opts.bListens === true ? '127.0.0.1:0' : undefined, ...opts.b });
    const atA = collector();
    const atB = collector();
    await a.start(atA.sink);
    await b.start(atB.sink);
    const aUrl = `${opts.a?.tls === undefined ? 'ws' : 'wss'}://127.0.0.1:${a.port}`;
    a.setPeer(SLOT_B, spec('node-b', opts.bListens === true ? `ws://127.0.0.1:${b.port}` : undefined));
    b.setPeer(SLOT_A, spec('node-a', aUrl));
    return { a, b, atA, atB, aUrl };
  }

  async function bothUp(a: WsTransport, b: WsTransport): Promise<void> {
    await until('both up', () => statusOf(a, SLOT_B).state === 'up' && statusOf(b, SLOT_A).state === 'up');
  }

  /**
   * A bare `ws` server posing as `node`: answers upgrades with a server challenge made with
   * `secret` (no check of the client, nor of its proof message, which it receives as a message),
   * then hands each connection to `onConnection`.
   */
  async function fakeServer(opts: {
    node: string; secret: Uint8Array; autoPong?: () => boolean;
    onConnection?: (ws: WebSocket, socket: Socket) => void;
  }): Promise<{ url: string; connections: WebSocket[]; server: Server }> {
    const wss = new WebSocketServer({
      noServer: true, perMessageDeflate: false, handleProtocols: () => WS_SUBPROTOCOL, autoPong: false,
    });
    wss.on('headers', (headers: string[], req: IncomingMessage) => {
      headers.push(...serverChallenge(opts.secret, opts.node, String(req.headers[HEADER_NODE]), String(req.headers[HEADER_NONCE])).lines);
    });
    const connections: WebSocket[] = [];
    const server = createServer();
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      wss.handleUpgrade(req, socket, head, (ws) => {
        connections.push(ws);
        ws.on('error', () => {});
        ws.on('ping', (data) => {
          if (opts.autoPong?.() ?? true) ws.pong(data);
        });
        opts.onConnection?.(ws, socket as Socket);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(async () => {
      for (const ws of connections) ws.terminate();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    });
    const address = server.address();
    if (typeof address !== 'object' || address === null) throw new Error('no address');
    return { url: `ws://127.0.0.1:${address.port}`, connections, server };
  }

  /**
   * A bare `ws` client with the given upgrade headers; resolves on open or with the refusal
   * status. Given the hello (as node-b, to node-a), it sends its proof first (or `proof`, a
   * recorded one), like a real client; given bare headers, nothing.
   */
  function rawClient(
    url: string, hello: ClientHello | Record<string, string>, proof?: Buffer,
  ): Promise<{ ws: WebSocket; status: number; proof: Buffer | undefined }> {
    const given = 'nonce' in hello && typeof hello.nonce === 'string' ? hello as ClientHello : undefined;
    const headers = given?.headers ?? hello as Record<string, string>;
    return new Promise((resolve) => {
      const ws = new WebSocket(url, [WS_SUBPROTOCOL], { headers, perMessageDeflate: false });
      cleanups.push(() => ws.terminate());
      let sent: Buffer | undefined;
      ws.on('upgrade', (res: IncomingMessage) => {
        if (given === undefined) return;
        const answer = checkServerProof(SECRET, 'node-b', 'node-a', given.nonce, res.headers);
        if (!answer.ok) throw new Error(answer.reason);
        sent = proof ?? answer.proof;
      });
      ws.on('error', () => {});
      ws.on('open', () => {
        if (sent !== undefined) ws.send(sent);
        resolve({ ws, status: 101, proof: sent });
      });
      ws.on('unexpected-response', (_req, res: IncomingMessage) => {
        let body = '';
        res.on('data', (c: Buffer) => {
          body += c.toString();
        });
        res.on('end', () => {
          expect(body.length).toBeGreaterThan(0);
          resolve({ ws, status: res.statusCode ?? 0, proof: undefined });
        });
      });
    });
  }

  it('is kind ws with no MTU overhead and validates its options', () => {
    const t = transport('x');
    expect(t.kind).toBe('ws');
    expect(wsTransportType.overheadBytes(4)).toBe(0);
    expect(() => transport('x', { listen: 'localhost:80' })).toThrow(/^cannot listen on localhost:80: .*not an IP address/);
    expect(() => transport('x', { pingIntervalMs: 0 })).toThrow(TransportError);
    expect(() => transport('x', { reconnectMinMs: 500, reconnectMaxMs: 100 })).toThrow(/reconnectMaxMs/);
  });

  it('carries packets both ways over the one connection a dial-out-only node makes', async () => {
    const { a, b, atA, atB, aUrl } = await pair();
    expect(sendAll(b, SLOT_A, [smallPacket(0)])).toBe(1); // not connected yet: peer_down
    await bothUp(a, b);
    expect(stat(a, 'connectionsOpen')).toBe(1);
    expect(stat(b, 'connectionsOpen')).toBe(1);
    expect(stat(a, 'inboundAccepted')).toBe(1);
    expect(stat(b, 'connectsOk')).toBe(1);

    const big = superPacket(1);
    const toB = [big, ...Array.from({ length: 200 }, (_, i) => smallPacket(i)), superPacket(2)];
    const toA = Array.from({ length: 50 }, (_, i) => smallPacket(1000 + i));
    expect(sendAll(a, SLOT_B, toB)).toBe(0); // A has no dial target: it answers over B's connection
    expect(sendAll(b, SLOT_A, toA)).toBe(0);
    await until('all packets', () => atB.got.length >= toB.length && atA.got.length >= toA.length);
    expect(atB.got.every((r) => r.vnetHdr) && atA.got.every((r) => r.vnetHdr)).toBe(true); // super-packets stay whole
    expect(atB.calls).toEqual([toB.length]); // one sink call per message
    expect(a.stats()).toMatchObject({ packetsOut: toB.length, messagesOut: 1 });
    expect(a.stats()['drop.peer_down']).toBeUndefined();
    expect(b.stats()).toMatchObject({ packetsIn: toB.length, messagesIn: 1, packetsOut: toA.length, 'drop.peer_down': 1 });

    await until('rtt', () => statusOf(b, SLOT_A).rttMs !== undefined && statusOf(a, SLOT_B).rttMs !== undefined);
    const s = statusOf(b, SLOT_A);
    expect(s).toMatchObject({ slot: SLOT_A, node: 'node-a', transport: 'ws', endpoint: aUrl, state: 'up' });
    expect(s.rttMs).toBeLessThan(50);
    expect(s.lastSeenMs).toBeGreaterThan(0);
    expect(statusOf(a, SLOT_B).endpoint).toBeUndefined();
    expect(lines.find((l) => l.msg === 'peer up' && l.obj['self'] === 'node-b')?.obj).toMatchObject({ peer: 'node-a', endpoint: aUrl });
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
  });

  it('splits a batch over maxPayloadBytes into several messages', async () => {
    const { a, b, atB } = await pair({ a: { maxPayloadBytes: 100_000 }, b: { maxPayloadBytes: 100_000 } });
    await bothUp(a, b);
    const packets = [superPacket(1), superPacket(2), superPacket(3), ...Array.from({ length: 100 }, (_, i) => smallPacket(i))];
    expect(sendAll(a, SLOT_B, packets)).toBe(0);
    await until('packets', () => atB.got.length >= packets.length);
    expect(atB.got.map((r) => r.packet)).toEqual(packets);
    expect(atB.calls.length).toBeGreaterThanOrEqual(3);
    expect(stat(b, 'oversized')).toBe(0);
  });

  it('refuses clients with a wrong secret (401), unknown names (401) and no headers (400)', async () => {
    const a = transport('node-a');
    const atA = collector();
    await a.start(atA.sink);
    a.setPeer(SLOT_B, spec('node-b', undefined));
    const url = `ws://127.0.0.1:${a.port}`;

    const wrong = transport('node-b', { listen: undefined, clusterSecret: OTHER_SECRET });
    const atWrong = collector();
    await wrong.start(atWrong.sink);
    wrong.setPeer(SLOT_A, spec('node-a', url));
    await until('refused twice', () => stat(a, 'authRejected') >= 2 && stat(wrong, 'connectsFailed') >= 2);
    expect(sendAll(wrong, SLOT_A, [smallPacket(1)])).toBe(1);
    expect(statusOf(wrong, SLOT_A).state).not.toBe('up');
    expect(statusOf(a, SLOT_B).state).not.toBe('up');
    expect(lines.find((l) => l.msg === 'connection refused')).toMatchObject({
      level: 'warn', obj: { peer: 'node-b', reason: 'bad auth tag', remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/) },
    });
    expect(lines.find((l) => l.msg === 'cannot connect' && l.obj['self'] === 'node-b')).toMatchObject({
      level: 'warn', obj: { peer: 'node-a', reason: 'server answered HTTP 401 Unauthorized' },
    });
    // Repeats of the same failure are logged at debug only.
    expect(lines.filter((l) => l.msg === 'cannot connect' && l.level === 'warn')).toHaveLength(1);
    await wrong.close();

    expect((await rawClient(url, clientHello(SECRET, 'node-x', 'node-a', Date.now()).headers)).status).toBe(401);
    expect((await rawClient(url, {})).status).toBe(400);
    expect(lines.filter((l) => l.msg === 'connection refused').map((l) => l.obj['reason']))
      .toEqual(expect.arrayContaining(['unknown node', 'missing authentication headers']));
    expect(atA.got).toEqual([]);
    expect(stat(a, 'inboundAccepted')).toBe(0);
  });

  it('refuses a replayed handshake', async () => {
    const a = transport('node-a');
    await a.start(() => {});
    a.setPeer(SLOT_B, spec('node-b', undefined));
    const url = `ws://127.0.0.1:${a.port}`;
    const hello = clientHello(SECRET, 'node-b', 'node-a', Date.now());
    expect((await rawClient(url, hello)).status).toBe(101);
    await until('b up at a', () => statusOf(a, SLOT_B).state === 'up');
    expect((await rawClient(url, hello)).status).toBe(401);
    expect(lines.find((l) => l.msg === 'connection refused')?.obj).toMatchObject({ peer: 'node-b', reason: 'replayed nonce' });
    expect(stat(a, 'inboundAccepted')).toBe(1);
  });

  it('drops garbled and text messages whole, counts them, and keeps the connection', async () => {
    const a = transport('node-a');
    const atA = collector();
    await a.start(atA.sink);
    a.setPeer(SLOT_B, spec('node-b', undefined));
    const { ws, status } = await rawClient(`ws://127.0.0.1:${a.port}`, clientHello(SECRET, 'node-b', 'node-a', Date.now()));
    expect(status).toBe(101);
    await until('proof taken', () => stat(a, 'inboundAccepted') === 1);
    const message = messageOf([smallPacket(1), smallPacket(2)]);
    ws.send('hello', { binary: false });
    ws.send(message.subarray(0, message.length - 3));
    ws.send(Buffer.from([0, 0, 0, 1, 9]));
    ws.send(message);
    await until('good message', () => atA.got.length >= 2);
    expect(atA.got.map((r) => r.packet)).toEqual([smallPacket(1), smallPacket(2)]);
    expect(a.stats()).toMatchObject({ badMessages: 3, 'drop.malformed': 3, messagesIn: 1, packetsIn: 2 });
    expect(ws.readyState).toBe(WebSocket.OPEN);
  });

  it('as a client, refuses a server without the secret or posing as another node', async () => {
    for (const [secret, node, reason] of [
      [OTHER_SECRET, 'node-a', /auth tag invalid/],
      [SECRET, 'node-z', /server is node "node-z", not "node-a"/],
    ] as const) {
      lines.length = 0;
      const fake = await fakeServer({ node, secret });
      const got: Buffer[] = [];
      const b = transport('node-b', { listen: undefined });
      await b.start(() => {});
      b.setPeer(SLOT_A, spec('node-a', fake.url));
      await until('two attempts', () => stat(b, 'serverAuthFailed') >= 2);
      for (const ws of fake.connections) ws.on('message', (d: Buffer) => got.push(d));
      expect(sendAll(b, SLOT_A, [smallPacket(1)])).toBe(1);
      expect(statusOf(b, SLOT_A).state).not.toBe('up');
      expect(stat(b, 'connectsOk')).toBe(0);
      expect(lines.find((l) => l.msg === 'cannot connect')?.obj).toMatchObject({ peer: 'node-a', reason: expect.stringMatching(reason) });
      await sleep(20);
      expect(got).toEqual([]);
      await b.close();
    }
  });

  it('with both listening and dialing, traffic flows once per packet', async () => {
    const { a, b, atA, atB } = await pair({ bListens: true });
    await bothUp(a, b);
    await until('two connections each', () => stat(a, 'connectionsOpen') === 2 && stat(b, 'connectionsOpen') === 2);
    const toB = Array.from({ length: 100 }, (_, i) => smallPacket(i));
    const toA = Array.from({ length: 100 }, (_, i) => smallPacket(500 + i));
    for (let i = 0; i < 10; i++) {
      expect(sendAll(a, SLOT_B, toB.slice(10 * i, 10 * i + 10))).toBe(0);
      expect(sendAll(b, SLOT_A, toA.slice(10 * i, 10 * i + 10))).toBe(0);
    }
    await until('all', () => atB.got.length >= 100 && atA.got.length >= 100);
    await sleep(50);
    expect(atB.got.map((r) => r.packet)).toEqual(toB);
    expect(atA.got.map((r) => r.packet)).toEqual(toA);
    expect(stat(a, 'messagesOut')).toBe(10);
    expect(stat(b, 'messagesIn')).toBe(10);
  });

  it('reconnects with backoff after the server goes away, and comes up again when it is back', async () => {
    const { a, b, atA } = await pair();
    await bothUp(a, b);
    const port = a.port;
    const downAt = performance.now();
    await a.close();
    await until('a down at b', () => statusOf(b, SLOT_A).state === 'down');
    expect(performance.now() - downAt).toBeLessThan(200); // a closed connection is noticed at once
    await until('several failed dials', () => stat(b, 'connectsFailed') >= 6, 5000);
    const failures = lines.filter((l) => l.msg === 'cannot connect' && l.obj['self'] === 'node-b').map((l) => l.atMs);
    const gaps = failures.slice(1).map((t, i) => t - (failures[i] ?? 0));
    for (const gap of gaps) {
      expect(gap).toBeGreaterThanOrEqual(RECONNECT_MIN_MS - 2);
      expect(gap).toBeLessThan(RECONNECT_MAX_MS + 100);
    }
    expect(failures[0]).toBeDefined();
    expect(lines.find((l) => l.msg === 'cannot connect')?.obj).toMatchObject({ reason: 'connection refused' });
    expect(stat(b, 'reconnects')).toBeGreaterThanOrEqual(6);

    const a2 = transport('node-a', { listen: `127.0.0.1:${port}` });
    const atA2 = collector();
    await a2.start(atA2.sink);
    a2.setPeer(SLOT_B, spec('node-b', undefined));
    await until('b up at a2', () => statusOf(a2, SLOT_B).state === 'up' && statusOf(b, SLOT_A).state === 'up', 2000);
    expect(sendAll(b, SLOT_A, [smallPacket(7)])).toBe(0);
    await until('packet at a2', () => atA2.got.length >= 1);
    expect(atA.got).toEqual([]);
    expect(lines.filter((l) => l.msg === 'peer up' && l.obj['self'] === 'node-b')).toHaveLength(2);
    expect(lines.find((l) => l.msg === 'peer down' && l.obj['self'] === 'node-b')?.level).toBe('warn');
  });

  it('marks a peer down when it stops answering pings, terminates and redials, and up again', async () => {
    let answering = true;
    const fake = await fakeServer({ node: 'node-a', secret: SECRET, autoPong: () => answering });
    const b = transport('node-b', { listen: undefined });
    await b.start(() => {});
    b.setPeer(SLOT_A, spec('node-a', fake.url));
    await until('up', () => statusOf(b, SLOT_A).state === 'up');
    await sleep(3 * PING_INTERVAL_MS);
    expect(statusOf(b, SLOT_A).state).toBe('up');
    expect(stat(b, 'pongsIn')).toBeGreaterThan(0);

    answering = false;
    const silentAt = performance.now();
    await until('down', () => statusOf(b, SLOT_A).state === 'down', 2000);
    expect(performance.now() - silentAt).toBeLessThan(DEAD_AFTER_MS + 2 * PING_INTERVAL_MS + 100);
    expect(stat(b, 'deadConnections')).toBe(1);
    expect(stat(b, 'connectsFailed')).toBe(0);
    expect(lines.find((l) => l.msg === 'connection closed')?.obj).toMatchObject({
      peer: 'node-a', reason: `no pong or data for ${DEAD_AFTER_MS} ms` });
    expect(lines.find((l) => l.msg === 'connection silent; terminating')?.obj).toMatchObject({ peer: 'node-a' });
    await until('old connection closed at the fake', () => fake.connections[0]?.readyState === WebSocket.CLOSED);

    answering = true;
    await until('up again', () => statusOf(b, SLOT_A).state === 'up', 2000);
    expect(fake.connections.length).toBeGreaterThanOrEqual(2);
  });

  it('drops whole batches for a peer that stops reading, bounded, while another peer gets everything', async () => {
    const MAX_BUFFERED = 256 * 1024;
    const stalled = await fakeServer({
      node: 'node-b', secret: SECRET, onConnection: (_ws, socket) => socket.pause(),
    });
    const a = transport('node-a', { listen: undefined, maxBufferedBytes: MAX_BUFFERED, deadAfterMs: 20_000 });
    const c = transport('node-c');
    const atC = collector();
    await c.start(atC.sink);
    c.setPeer(SLOT_A, spec('node-a', undefined));
    await a.start(() => {});
    a.setPeer(SLOT_B, spec('node-b', stalled.url));
    a.setPeer(SLOT_C, spec('node-c', `ws://127.0.0.1:${c.port}`));
    await until('both up', () => statusOf(a, SLOT_B).state === 'up' && statusOf(a, SLOT_C).state === 'up');

    const batch = [superPacket(1), superPacket(2), smallPacket(3)];
    let sentToC = 0;
    let droppedToB = 0;
    let maxBuffered = 0;
    for (let round = 0; round < 400; round++) {
      droppedToB += sendAll(a, SLOT_B, batch);
      maxBuffered = Math.max(maxBuffered, stat(a, 'bufferedBytes'));
      expect(sendAll(a, SLOT_C, [smallPacket(round)])).toBe(0);
      sentToC++;
      if (round % 10 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(droppedToB % batch.length).toBe(0); // whole batches only
    expect(droppedToB).toBeGreaterThan(100 * batch.length);
    expect(stat(a, 'drop.congested')).toBe(droppedToB);
    // The bound, plus frame headers and pings queued behind it.
    expect(maxBuffered).toBeLessThanOrEqual(MAX_BUFFERED + 1024);
    await until('everything at c', () => atC.got.length >= sentToC);
    expect(atC.got.map((r) => r.packet)).toEqual(Array.from({ length: sentToC }, (_, i) => smallPacket(i)));
    expect(statusOf(a, SLOT_C).state).toBe('up');
  });

  it('counts an oversized message, logs it once, and re-establishes the connection', async () => {
    const { a, b, atB } = await pair({ b: { maxPayloadBytes: 16 * 1024 } });
    await bothUp(a, b);
    const big = withVnetHdr(ipv4({ src: '10.244.1.2', dst: '10.244.2.2', payload: udp(1, 2, Buffer.alloc(20_000)) }));
    expect(sendAll(a, SLOT_B, [big])).toBe(0);
    await until('counted at both ends', () => stat(b, 'oversized') === 1 && stat(a, 'oversized') === 1);
    await until('reconnected', () => stat(b, 'connectsOk') === 2 && statusOf(a, SLOT_B).state === 'up'
      && statusOf(b, SLOT_A).state === 'up', 3000);
    expect(sendAll(a, SLOT_B, [smallPacket(1)])).toBe(0);
    expect(sendAll(b, SLOT_A, [big])).toBe(1); // over b's own maxPayloadBytes: never sent
    expect(stat(b, 'drop.too_big')).toBe(1);
    await until('small packet at b', () => atB.got.length >= 1);
    expect(atB.got.map((r) => r.packet)).toEqual([smallPacket(1)]);
    expect(lines.filter((l) => l.level === 'warn' && /too big|maxPayloadBytes/.test(l.msg)).map((l) => l.obj['self']).sort())
      .toEqual(['node-a', 'node-b']);
  });

  it('forgets a removed peer: closes its connections and stops redialing', async () => {
    const { a, b } = await pair();
    await bothUp(a, b);
    b.removePeer(SLOT_A);
    expect(b.peerStatus()).toEqual([]);
    await until('a sees b down', () => statusOf(a, SLOT_B).state === 'down');
    const dials = stat(b, 'reconnects') + stat(b, 'connectsOk');
    await sleep(3 * RECONNECT_MAX_MS);
    expect(stat(b, 'reconnects') + stat(b, 'connectsOk')).toBe(dials);
    expect(stat(b, 'connectionsOpen')).toBe(0);
  });

  it('fails to start with typed errors: port in use, unreadable TLS files', async () => {
    const a = transport('node-a');
    await a.start(() => {});
    const again = transport('node-c', { listen: `127.0.0.1:${a.port}` });
    const err: unknown = await again.start(() => {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect(err).toMatchObject({ code: 'ERR_PODTUN_WS_LISTEN', message: `cannot listen on 127.0.0.1:${a.port}: address in use` });
    expect((err as Error).cause).toBeDefined();
    await a.close();
    await again.start(() => {}); // the port is free again: a failed start can be retried
    expect(again.port).toBe(a.port);
    const noCert = transport('node-c', { tls: { certFile: '/nonexistent/cert.pem', keyFile: '/nonexistent/key.pem' } });
    await expect(noCert.start(() => {})).rejects.toMatchObject({
      code: 'ERR_PODTUN_WS_TLS', message: 'cannot read TLS certificate /nonexistent/cert.pem: no such file',
    });
  });

  describe('restricted networks', () => {
    let dir = '';

    function tempDir(): string {
      dir = mkdtempSync(join(tmpdir(), 'podtun-ws-'));
      chmodSync(dir, 0o777);
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      return dir;
    }

    /** tinyproxy on a loopback port, CONNECT only to `connectPort`, BasicAuth user/pass. Killed by PID. */
    async function startTinyproxy(connectPort: number): Promise<{ port: number; log: () => string }> {
      const work = tempDir();
      const port = await freePort();
      writeFileSync(join(work, 'tinyproxy.conf'), [
        `Port ${port}`, 'Listen 127.0.0.1', 'BindSame yes', 'Timeout 60', 'MaxClients 64', 'LogLevel Info',
        `LogFile "${work}/tinyproxy.log"`, `PidFile "${work}/tinyproxy.pid"`, 'Allow 127.0.0.1',
        'DisableViaHeader Yes', 'BasicAuth user pass', `ConnectPort ${connectPort}`, '',
      ].join('\n'));
      const child = spawn('timeout', ['120', 'tinyproxy', '-d', '-c', join(work, 'tinyproxy.conf')], { stdio: 'ignore' });
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      cleanups.push(async () => {
        if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
        await exited;
      });
      const deadline = Date.now() + 5000;
      for (;;) {
        const ok = await new Promise<boolean>((r) => {
          const s = netConnect(port, '127.0.0.1');
          s.once('connect', () => { s.destroy(); r(true); });
          s.once('error', () => r(false));
        });
        if (ok) break;
        if (Date.now() > deadline) throw new Error('tinyproxy did not start');
        await sleep(50);
      }
      return { port, log: () => readFileSync(join(work, 'tinyproxy.log'), 'utf8') };
    }

    it('dials through an HTTP CONNECT proxy with credentials from the proxy URL', async () => {
      const a = transport('node-a');
      const atA = collector();
      await a.start(atA.sink);
      a.setPeer(SLOT_B, spec('node-b', undefined));
      const proxy = await startTinyproxy(a.port);
      const target = `ws://127.0.0.1:${a.port}`;

      const asked: string[] = [];
      const denied = transport('node-b', {
        listen: undefined, proxyFor: (url) => { asked.push(url); return `http://user:wrong@127.0.0.1:${proxy.port}`; },
      });
      await denied.start(() => {});
      denied.setPeer(SLOT_A, spec('node-a', target));
      await until('refused by the proxy', () => stat(denied, 'connectsFailed') >= 1);
      expect(asked[0]).toBe(`${target}/`);
      const refusal = lines.find((l) => l.msg === 'cannot connect');
      expect(refusal?.obj['reason']).toMatch(/^server answered HTTP 40[17]/);
      expect(JSON.stringify(lines)).not.toContain('wrong'); // no proxy password in logs
      await denied.close();

      const b = transport('node-b', { listen: undefined, proxyFor: () => `http://user:pass@127.0.0.1:${proxy.port}` });
      const atB = collector();
      await b.start(atB.sink);
      b.setPeer(SLOT_A, spec('node-a', target));
      await until('up through the proxy', () => statusOf(b, SLOT_A).state === 'up' && statusOf(a, SLOT_B).state === 'up');
      expect(sendAll(b, SLOT_A, [superPacket(1), smallPacket(2)])).toBe(0);
      expect(sendAll(a, SLOT_B, [smallPacket(3)])).toBe(0);
      await until('packets', () => atA.got.length >= 2 && atB.got.length >= 1);
      expect(atA.got.map((r) => r.packet)).toEqual([superPacket(1), smallPacket(2)]);
      expect(atB.got.map((r) => r.packet)).toEqual([smallPacket(3)]);
      expect(proxy.log()).toMatch(new RegExp(`CONNECT.*127\\.0\\.0\\.1:${a.port}`));
      expect(lines.find((l) => l.msg === 'connected')?.obj['proxy']).toBe(`http://user:***@127.0.0.1:${proxy.port}/`);
    });

    it('speaks wss with a self-signed certificate trusted through caFile, also through the proxy', async () => {
      const work = tempDir();
      const certFile = join(work, 'cert.pem');
      const keyFile = join(work, 'key.pem');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1',
        '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });

      const { a, b, atA, atB, aUrl } = await pair({ a: { tls: { certFile, keyFile } }, b: { caFile: certFile } });
      expect(aUrl).toMatch(/^wss:/);
      await bothUp(a, b);
      expect(sendAll(b, SLOT_A, [superPacket(5)])).toBe(0);
      expect(sendAll(a, SLOT_B, [smallPacket(6)])).toBe(0);
      await until('packets', () => atA.got.length >= 1 && atB.got.length >= 1);
      expect(atA.got[0]?.packet).toEqual(superPacket(5));
      expect(atB.got[0]?.packet).toEqual(smallPacket(6));

      // Without the CA the certificate is refused: never up, reason logged.
      const c = transport('node-c', { listen: undefined });
      await c.start(() => {});
      c.setPeer(SLOT_A, spec('node-a', aUrl));
      await until('refused', () => stat(c, 'connectsFailed') >= 1);
      expect(lines.find((l) => l.msg === 'cannot connect' && l.obj['self'] === 'node-c')?.obj['reason'])
        .toMatch(/self[- ]signed certificate/);

      // wss through the CONNECT proxy: TLS end to end, the proxy sees only the tunnel.
      const proxy = await startTinyproxy(a.port);
      a.setPeer(SLOT_C, spec('node-d', undefined));
      const d = transport('node-d', { listen: undefined, caFile: certFile, proxyFor: () => `http://user:pass@127.0.0.1:${proxy.port}` });
      const atD = collector();
      await d.start(atD.sink);
      d.setPeer(SLOT_A, spec('node-a', aUrl));
      // a takes d's connection once d's proof has arrived, a moment after d counts it open.
      await until('d up at both ends', () => statusOf(d, SLOT_A).state === 'up' && statusOf(a, SLOT_C).state === 'up');
      expect(sendAll(a, SLOT_C, [smallPacket(8)])).toBe(0);
      await until('packet at d', () => atD.got.length >= 1);
      expect(proxy.log()).toMatch(new RegExp(`CONNECT.*127\\.0\\.0\\.1:${a.port}`));
    });
  });

  it('gives up on a proxy that never answers CONNECT, redials, and leaves nothing behind on close', async () => {
    await new Promise((r) => setImmediate(r));
    const before = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');
    const held: Socket[] = [];
    const hungProxy = createNetServer((s) => {
      held.push(s);
      s.resume();
    });
    await new Promise<void>((r) => hungProxy.listen(0, '127.0.0.1', r));
    const hungPort = (hungProxy.address() as { port: number }).port;
    const c = transport('node-c', { listen: undefined, proxyFor: () => `http://127.0.0.1:${hungPort}` });
    await c.start(() => {});
    c.setPeer(SLOT_A, spec('node-a', `ws://127.0.0.1:${await freePort()}`));
    await until('second attempt at the proxy', () => held.length >= 2, 3000);
    expect(lines.find((l) => l.msg === 'cannot connect')?.obj['reason']).toBe('opening handshake timed out after 1000 ms');
    await until('the abandoned CONNECT socket closed', () => held[0]?.readableEnded === true);
    await c.close();
    await until('proxy connections closed by c', () => held.every((s) => s.readableEnded));
    for (const s of held) s.destroy();
    await new Promise<void>((r) => hungProxy.close(() => r()));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    const after = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');
    const count = (list: string[], kind: string): number => list.filter((x) => x === kind).length;
    for (const kind of new Set(after)) {
      expect({ kind, n: count(after, kind) }).toEqual({ kind, n: Math.min(count(after, kind), count(before, kind)) });
    }
  });

  it('closes with two connections each and a redial pending, and leaves no handle or timer behind', async () => {
    await new Promise((r) => setImmediate(r));
    const before = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');
    const { a, b, atB } = await pair({ bListens: true });
    await bothUp(a, b);
    await until('two connections each', () => stat(a, 'connectionsOpen') === 2 && stat(b, 'connectionsOpen') === 2);
    expect(sendAll(a, SLOT_B, [smallPacket(1)])).toBe(0);
    await until('data at b', () => atB.got.length >= 1);
    // b also has a dial in backoff towards a dead endpoint.
    b.setPeer(9, spec('node-gone', `ws://127.0.0.1:${await freePort()}`));
    await until('a failed dial', () => stat(b, 'connectsFailed') >= 1);
    await a.close();
    await b.close();
    await expect(a.start(() => {})).rejects.toMatchObject({ code: 'ERR_PODTUN_WS_CLOSED' });
    const after = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');
    const count = (list: string[], kind: string): number => list.filter((x) => x === kind).length;
    for (const kind of new Set(after)) {
      expect({ kind, n: count(after, kind) }).toEqual({ kind, n: Math.min(count(after, kind), count(before, kind)) });
    }
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
  });

  it('writes messages from reused buffers; messages queued behind a paused reader arrive intact', async () => {
    let reader: Socket | undefined;
    const received: Buffer[] = [];
    const inbound = newInboundBatch();
    const fake = await fakeServer({
      node: 'node-b', secret: SECRET, onConnection: (ws, socket) => {
        reader = socket;
        socket.pause();
        ws.on('message', (data: Buffer) => {
          const n = decodeMessage(data, 0, inbound);
          for (let i = 0; i < n; i++) {
            const off = inbound.offs[2 * i] ?? 0;
            received.push(Buffer.from(data.subarray(off, off + (inbound.offs[2 * i + 1] ?? 0))));
          }
        });
      },
    });
    // Pings go unanswered while the reader is paused, and nothing may be dropped as congested.
    const a = transport('node-a', { listen: undefined, deadAfterMs: 20_000, maxBufferedBytes: 256 * 1024 * 1024 });
    await a.start(() => {});
    a.setPeer(SLOT_B, spec('node-b', fake.url));
    await until('up', () => statusOf(a, SLOT_B).state === 'up' && reader !== undefined);

    const sent: Buffer[] = [];
    let round = 0;
    const sendRound = (): void => {
      const batch = [superPacket(round), smallPacket(round)];
      expect(sendAll(a, SLOT_B, batch)).toBe(0);
      sent.push(...batch);
      round++;
    };
    // The socket fills up and ws starts to hold messages; then some more, while none is flushed.
    while (round < 2000 && stat(a, 'bufferedBytes') === 0) {
      sendRound();
      await new Promise((r) => setImmediate(r));
    }
    expect(stat(a, 'bufferedBytes')).toBeGreaterThan(0);
    for (let i = 0; i < 2 * SEND_POOL_BUFFERS; i++) sendRound();
    expect(stat(a, 'sendPoolEmpty')).toBeGreaterThan(0);

    reader?.resume();
    await until('flushed', () => stat(a, 'bufferedBytes') === 0, 5000);
    const reusedBefore = stat(a, 'sendBuffersReused');
    for (let i = 0; i < 200; i++) {
      sendRound();
      await new Promise((r) => setImmediate(r));
    }
    expect(stat(a, 'sendBuffersReused') - reusedBefore).toBeGreaterThan(150);
    expect(stat(a, 'sendBuffersPooled')).toBeLessThanOrEqual(SEND_POOL_BUFFERS);
    await until('everything received', () => received.length >= sent.length, 10_000);
    expect(received.length).toBe(sent.length);
    const wrong = sent.map((p, i) => (received[i]?.equals(p) === true ? -1 : i)).filter((i) => i >= 0);
    expect(wrong).toEqual([]);
    expect(a.stats()).toMatchObject({ packetsOut: sent.length, messagesOut: round });
    expect(a.drops()).toEqual({});
  });
});
