/**
 * The WebSocket listener under connections that do not authenticate: caps, deadlines and the
 * proof, against a real listener on loopback (127.0.0.0/8: a source address per "attacker").
 *
 *   strangers 127.0.0.2.. --- idle TCP / slow HTTP / upgrade without proof ---\
 *                                                                              v
 *   node-b (127.0.0.1, a peer's endpoint host) --- dial, hello, proof ---> node-a ws://127.0.0.1:pA
 */
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { PeerSpec } from '../../core/transport.js';
import { WS_SUBPROTOCOL } from './ws-framing.js';
import { checkServerProof, clientHello, clientProof } from './ws-handshake.js';
import { WsTransport } from './ws-transport.js';
import type { WsTransportOptions } from './ws-options.js';
import { defaultMaxUnauthenticated, openFilesSoftLimit } from './ws-fd-limit.js';
import { recordingLogger } from '../../test/recording-logger.js';
import type { LogLine } from '../../test/recording-logger.js';
import { collector } from '../../test/inbound-collector.js';

const SECRET = Buffer.from('podtun test cluster secret, 32 b');
const OTHER_SECRET = Buffer.from('some other cluster secret 32 byt');
const SLOT_B = 3;
const SLOT_A = 5;
/** Long enough that nothing times out unless a test says so. */
const NO_DEADLINE = { firstByteTimeoutMs: 60_000, authTimeoutMs: 60_000 };

/** node-b as node-a knows it: a UDP endpoint on 127.0.0.1 (so that address is a peer's), no ws endpoint to dial. */
const NODE_B: PeerSpec = { node: 'node-b', endpoints: { udp: '127.0.0.1:8285' }, transports: ['udp', 'ws'] };

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function until(what: string, cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A raw TCP client from `from`; when it closed, ms after connect (undefined while open). */
interface Held {
  socket: Socket;
  connected: Promise<void>;
  closedAfterMs: number | undefined;
}

describe('WebSocket listener admission', () => {
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
      pingIntervalMs: 50,
      deadAfterMs: 2000,
      reconnectMinMs: 20,
      reconnectMaxMs: 200,
      ...extra,
    });
    cleanups.push(() => t.close());
    return t;
  }

  /** node-a listening, knowing node-b (address 127.0.0.1). */
  async function listener(extra: Partial<WsTransportOptions>): Promise<{ a: WsTransport; url: string; atA: ReturnType<typeof collector> }> {
    const a = transport('node-a', extra);
    const atA = collector();
    await a.start(atA.sink);
    a.setPeer(SLOT_B, NODE_B);
    return { a, url: `ws://127.0.0.1:${a.port}`, atA };
  }

  /** The real node-b, dialing out only. */
  async function realPeer(url: string): Promise<WsTransport> {
    const b = transport('node-b', { listen: undefined });
    await b.start(() => {});
    b.setPeer(SLOT_A, { node: 'node-a', endpoints: { ws: url }, transports: ['ws'] });
    return b;
  }

  function hold(port: number, from: string): Held {
    const socket = netConnect({ port, host: '127.0.0.1', localAddress: from });
    cleanups.push(() => {
      socket.destroy();
    });
    let connectedAt = 0;
    const held: Held = {
      socket,
      connected: new Promise<void>((resolve) => socket.once('connect', () => {
        connectedAt = performance.now();
        resolve();
      })),
      closedAfterMs: undefined,
    };
    socket.on('error', () => {});
    socket.on('data', () => {});
    socket.once('close', () => {
      held.closedAfterMs = performance.now() - connectedAt;
    });
    return held;
  }

  const open = (list: Held[]): number => list.filter((h) => h.closedAfterMs === undefined).length;
  const stat = (t: WsTransport, name: string): number => t.stats()[name] ?? 0;
  const up = (t: WsTransport, slot: number): boolean => t.peerStatus().find((p) => p.slot === slot)?.state === 'up';

  /** An upgrade as node-b with a fresh hello; sends `proof` first (a real one unless given; none with null), then resolves open. */
  function upgrade(url: string, proof?: Buffer | null): Promise<{ ws: WebSocket; proof: Buffer; closed: Promise<number> }> {
    const hello = clientHello(SECRET, 'node-b', 'node-a', Date.now());
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, [WS_SUBPROTOCOL], { headers: hello.headers, perMessageDeflate: false });
      cleanups.push(() => ws.terminate());
      const closed = new Promise<number>((r) => ws.once('close', (code: number) => r(code)));
      let real: Buffer | undefined;
      ws.on('error', () => {});
      ws.on('upgrade', (res: IncomingMessage) => {
        const answer = checkServerProof(SECRET, 'node-b', 'node-a', hello.nonce, res.headers);
        if (answer.ok) real = answer.proof;
      });
      ws.on('unexpected-response', (_req, res: IncomingMessage) => reject(new Error(`HTTP ${res.statusCode ?? 0}`)));
      ws.on('open', () => {
        if (real === undefined) {
          reject(new Error('no valid server proof'));
          return;
        }
        const sent = proof === null ? undefined : proof ?? real;
        if (sent !== undefined) ws.send(sent);
        resolve({ ws, proof: real, closed });
      });
    });
  }

  it('reads the open-files soft limit and sizes the default global cap from it', () => {
    const limits = (soft: string): string =>
      `Limit                     Soft Limit           Hard Limit           Units\nMax open files            ${soft}                1048576              files\n`;
    expect(openFilesSoftLimit(limits('20000'))).toBe(20000);
    expect(openFilesSoftLimit(limits('unlimited'))).toBe(Number.POSITIVE_INFINITY);
    expect(openFilesSoftLimit('garbage')).toBe(1024);
    expect(openFilesSoftLimit()).toBeGreaterThan(0);
    const cases: Array<[number, number]> = [[20000, 1024], [4096, 1024], [1024, 256], [3, 1], [Number.POSITIVE_INFINITY, 1024]];
    for (const [limit, cap] of cases) expect({ limit, cap: defaultMaxUnauthenticated(limit) }).toEqual({ limit, cap });
    expect(() => transport('x', { maxUnauthenticated: 0 })).toThrow(/maxUnauthenticated must be a whole number >= 1/);
    expect(() => transport('x', { maxUnauthenticatedPerSource: 1.5 })).toThrow(/maxUnauthenticatedPerSource/);
    expect(() => transport('x', { authTimeoutMs: -1 })).toThrow(/authTimeoutMs/);
  });

  it('resets connections over the per-source cap at once, counts and logs them; other addresses still get in', async () => {
    const { a } = await listener({ ...NO_DEADLINE, maxUnauthenticatedPerSource: 3 });
    expect(stat(a, 'maxUnauthenticated')).toBe(defaultMaxUnauthenticated(openFilesSoftLimit()));
    const fromOne = Array.from({ length: 6 }, () => hold(a.port, '127.0.0.2'));
    await until('3 refused', () => stat(a, 'refused.perSourceCap') === 3 && open(fromOne) === 3);
    for (const h of fromOne.filter((x) => x.closedAfterMs !== undefined)) expect(h.closedAfterMs).toBeLessThan(500);
    expect(stat(a, 'unauthenticated')).toBe(3);

    const other = hold(a.port, '127.0.0.3');
    await other.connected;
    await until('other admitted', () => stat(a, 'unauthenticated') === 4);
    // A slot freed at the first address is taken again.
    fromOne.find((h) => h.closedAfterMs === undefined)?.socket.destroy();
    await until('slot freed', () => stat(a, 'unauthenticated') === 3);
    const again = hold(a.port, '127.0.0.2');
    await until('admitted again', () => stat(a, 'unauthenticated') === 4);
    await sleep(50);
    expect(again.closedAfterMs).toBeUndefined();
    expect(other.closedAfterMs).toBeUndefined();
    const logged = lines.filter((l) => l.msg === 'connections refused');
    expect(logged[0]).toMatchObject({ level: 'warn', obj: { remote: '127.0.0.2', reason: '3 unauthenticated connections from this address', count: 1 } });
    expect(logged.length).toBeLessThan(3); // rate-limited: one line a second
  });

  it('keeps a quarter of the global cap for peers: strangers beyond the rest are reset, the peer still connects', async () => {
    const { a, url, atA } = await listener({ ...NO_DEADLINE, maxUnauthenticated: 8, maxUnauthenticatedPerSource: 2 });
    expect(stat(a, 'maxUnauthenticated')).toBe(8);
    const strangers = [2, 3, 4, 5, 6].flatMap((n) => [hold(a.port, `127.0.0.${n}`), hold(a.port, `127.0.0.${n}`)]);
    await until('strangers hold 6, 4 refused', () => stat(a, 'refused.globalCap') === 4 && open(strangers) === 6);
    expect(stat(a, 'unauthenticated')).toBe(6);

    const b = await realPeer(url);
    await until('b up at both ends', () => up(b, SLOT_A) && up(a, SLOT_B));
    expect(stat(a, 'inboundAccepted')).toBe(1);
    expect(stat(a, 'unauthenticated')).toBe(6); // authenticated: no longer counted
    expect(atA.got).toEqual([]);

    // The peer's address may use the reserve, up to the whole cap; then everyone is refused.
    const fromPeer = [hold(a.port, '127.0.0.1'), hold(a.port, '127.0.0.1')];
    await until('peer address admitted', () => stat(a, 'unauthenticated') === 8);
    const late = [hold(a.port, '127.0.0.7'), hold(a.port, '127.0.0.1')];
    await until('late ones refused', () => open(late) === 0);
    expect(stat(a, 'refused.globalCap')).toBe(5);
    expect(stat(a, 'refused.perSourceCap')).toBe(1);
    expect(open(fromPeer)).toBe(2);
    expect(lines.find((l) => l.msg === 'connections refused')?.obj['reason']).toBe('6 unauthenticated connections (cap 8)');
  });

  it('closes connections that send nothing, or do not authenticate, at their deadlines; an authenticated one stays', async () => {
    const FIRST_BYTE_MS = 150;
    const AUTH_MS = 500;
    const { a, url } = await listener({ firstByteTimeoutMs: FIRST_BYTE_MS, authTimeoutMs: AUTH_MS });
    const silent = hold(a.port, '127.0.0.2');
    const slow = hold(a.port, '127.0.0.3');
    await slow.connected;
    slow.socket.write('GET / HTTP/1.1\r\nHost: x\r\n');
    const noProof = await upgrade(url, null);
    const b = await realPeer(url);
    await until('b up', () => up(b, SLOT_A) && up(a, SLOT_B));
    await until('all three closed', () => silent.closedAfterMs !== undefined && slow.closedAfterMs !== undefined, 3000);
    await noProof.closed;
    expect(silent.closedAfterMs).toBeGreaterThanOrEqual(FIRST_BYTE_MS - 20);
    expect(silent.closedAfterMs).toBeLessThan(AUTH_MS - 100);
    expect(slow.closedAfterMs).toBeGreaterThanOrEqual(AUTH_MS - 20);
    expect(slow.closedAfterMs).toBeLessThan(AUTH_MS + 500);
    expect(stat(a, 'handshakeTimeouts')).toBe(3);
    expect(stat(a, 'unauthenticated')).toBe(0);
    expect(lines.filter((l) => l.msg === 'handshake timed out').map((l) => l.obj['reason']))
      .toContain(`no data within ${FIRST_BYTE_MS} ms`);
    await sleep(AUTH_MS + 100);
    expect(up(a, SLOT_B) && up(b, SLOT_A)).toBe(true);
    expect(stat(b, 'connectsOk')).toBe(1);
    expect(stat(a, 'inboundAccepted')).toBe(1);
  });

  it('closes a connection whose first message is data or a proof that does not verify, and replaces nothing', async () => {
    const { a, url, atA } = await listener(NO_DEADLINE);
    const b = await realPeer(url);
    await until('b up', () => up(b, SLOT_A) && up(a, SLOT_B));

    const early = await upgrade(url, null);
    early.ws.send(Buffer.from([0, 0, 0, 30, ...Array<number>(30).fill(0)]));
    await early.closed;
    const wrong = await upgrade(url, clientProof(OTHER_SECRET, 'node-b', 'node-a', 'ab'.repeat(16), 'cd'.repeat(16)));
    await wrong.closed;
    expect(a.stats()).toMatchObject({ preProofMessages: 1, 'drop.unauthenticated': 1, proofFailures: 1, inboundAccepted: 1, unauthenticated: 0 });
    expect(atA.got).toEqual([]);
    expect(stat(b, 'connectsOk')).toBe(1);
    expect(up(a, SLOT_B)).toBe(true);
    expect(lines.some((l) => l.obj['reason'] === 'replaced by a newer connection from the peer')).toBe(false);
    expect(lines.filter((l) => l.msg === 'connection refused').map((l) => l.obj['reason']))
      .toEqual(['message before the proof', 'proof did not verify (replayed or forged handshake?)']);
  });

  it('refuses a handshake replayed after a restart (fresh nonce cache): its recorded proof is over the old server nonce', async () => {
    const first = await listener(NO_DEADLINE);
    const port = first.a.port;
    // The "capture": a real client's hello and proof, as they crossed plain ws://.
    const hello = clientHello(SECRET, 'node-b', 'node-a', Date.now());
    const recorded = await new Promise<Buffer>((resolve, reject) => {
      const ws = new WebSocket(first.url, [WS_SUBPROTOCOL], { headers: hello.headers, perMessageDeflate: false });
      cleanups.push(() => ws.terminate());
      ws.on('error', reject);
      ws.on('upgrade', (res: IncomingMessage) => {
        const answer = checkServerProof(SECRET, 'node-b', 'node-a', hello.nonce, res.headers);
        if (!answer.ok) reject(new Error(answer.reason));
        else ws.once('open', () => {
          ws.send(answer.proof);
          resolve(answer.proof);
        });
      });
    });
    await until('accepted', () => stat(first.a, 'inboundAccepted') === 1);
    await first.a.close();

    const { a, url } = await listener({ ...NO_DEADLINE, listen: `127.0.0.1:${port}` });
    const b = await realPeer(url);
    await until('b up at the restarted node', () => up(b, SLOT_A) && up(a, SLOT_B));
    const replay = await new Promise<{ status: number; closed: Promise<number> }>((resolve) => {
      const ws = new WebSocket(url, [WS_SUBPROTOCOL], { headers: hello.headers, perMessageDeflate: false });
      cleanups.push(() => ws.terminate());
      const closed = new Promise<number>((r) => ws.once('close', (code: number) => r(code)));
      ws.on('error', () => {});
      ws.on('unexpected-response', (_req, res: IncomingMessage) => resolve({ status: res.statusCode ?? 0, closed }));
      ws.on('open', () => {
        ws.send(recorded);
        resolve({ status: 101, closed });
      });
    });
    expect(replay.status).toBe(101); // the hello passes: the nonce cache did not survive the restart
    await replay.closed;
    expect(a.stats()).toMatchObject({ proofFailures: 1, inboundAccepted: 1 });
    expect(stat(b, 'connectsOk')).toBe(1);
    expect(up(a, SLOT_B)).toBe(true);
  });

  it('destroys connections still being admitted on close, and leaves no handle or timer behind', async () => {
    await new Promise((r) => setImmediate(r));
    const before = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');
    const { a, url } = await listener({ firstByteTimeoutMs: 10_000, authTimeoutMs: 20_000 });
    const idle = [hold(a.port, '127.0.0.2'), hold(a.port, '127.0.0.3')];
    const noProof = await upgrade(url, null);
    await until('three admitted', () => stat(a, 'unauthenticated') === 3);
    await a.close();
    await until('clients see the close', () => open(idle) === 0);
    await noProof.closed;
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    const after = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');
    const count = (list: string[], kind: string): number => list.filter((x) => x === kind).length;
    for (const kind of new Set(after)) {
      expect({ kind, n: count(after, kind) }).toEqual({ kind, n: Math.min(count(after, kind), count(before, kind)) });
    }
  });
});
