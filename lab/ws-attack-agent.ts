/**
 * Attacks on a node's WebSocket listener, run inside a namespace by the netns tests
 * (test/netns/podtun-ws-flood.test.ts, podtun-ws-replay.test.ts, podtun-ws-auth.test.ts) through
 * ws-attack.ts. Compiled with the build (dist/lab/ws-attack-agent.js); plain TCP and a hand-made
 * WebSocket client, so it shows what the wire allows, not what podtun's own client does.
 * Every mode is bounded (--timeout-ms, counts) and prints one JSON result line at the end (also
 * on SIGTERM); progress lines carry "event".
 *
 *   flood --to A --port P --sources A1,A2,.. --count N [--hold-ms M] [--reopen-per-s R] [--max-opens K]
 *       N idle TCP connections, round-robin over the source addresses; those the server closes
 *       are opened again (at most R a second, K in all) until --hold-ms. {"event":"holding"} once
 *       all N were tried; {"event":"progress"} every second.
 *       {attempts, connected, closedByServer, resets, maxOpen, open, errors}
 *   relay --listen A:P --to A:P --record PREFIX
 *       a TCP relay; the first 64 KiB each client sends are written to PREFIX-<n>.bin (n from 1).
 *       {connections}
 *   replay --to A --port P --file F [--hold-ms M]
 *       sends the bytes of F (a recorded handshake) and reads what comes back until the server
 *       closes or --hold-ms: {status, closedByServer, closedAfterMs, bytesIn}
 *   client --to A --port P --secret S --node N --target T [--junk J] [--oversize B] [--early 1] [--hold-ms M]
 *       podtun's handshake done by hand: hello as N to T, the server's proof checked, our proof
 *       sent first (with --early 1: a data message first instead); then J junk binary messages,
 *       one message of B bytes: {status, junkSent, oversizeSent, closeCode, closedAfterMs}
 */
import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';
import { createWriteStream, readFileSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { checkServerProof, clientHello } from '../tunnel/ws/ws-handshake.js';
import { WS_SUBPROTOCOL } from '../tunnel/ws/ws-framing.js';
import { emit, int, runAgent, str } from './agent-cli.js';
import type { AgentMode, Flags } from './agent-cli.js';

const RECORD_BYTES = 64 * 1024;
const PROGRESS_INTERVAL_MS = 1000;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves on SIGTERM (the test ending a mode early): the mode then reports what it has. */
const terminated = new Promise<void>((resolve) => process.once('SIGTERM', () => resolve()));

// --- flood ---

async function flood(flags: Flags): Promise<object> {
  const to = str(flags, 'to');
  const port = int(flags, 'port');
  const sources = str(flags, 'sources').split(',').filter((s) => s !== '');
  const count = int(flags, 'count');
  const holdMs = int(flags, 'hold-ms', 30_000);
  const reopenPerS = int(flags, 'reopen-per-s', 2000);
  const maxOpens = int(flags, 'max-opens', 10 * count);
  if (sources.length === 0) throw new Error('--sources: none given');
  const started = Date.now();
  let attempts = 0;
  let connected = 0;
  let closedByServer = 0;
  let resets = 0;
  let open = 0;
  let maxOpen = 0;
  let live = 0;
  let stopping = false;
  const errors: Record<string, number> = {};
  const sockets = new Set<Socket>();
  /** Connections to open again (their slot freed), oldest first. */
  let owed = 0;

  const openOne = (): void => {
    const localAddress = sources[attempts % sources.length] ?? sources[0] ?? '';
    attempts++;
    live++;
    const socket = connect({ host: to, port, localAddress });
    sockets.add(socket);
    let wasOpen = false;
    socket.once('connect', () => {
      wasOpen = true;
      connected++;
      open++;
      if (open > maxOpen) maxOpen = open;
    });
    socket.on('data', () => undefined);
    socket.on('error', (err: Error & { code?: string }) => {
      const code = err.code ?? 'error';
      errors[code] = (errors[code] ?? 0) + 1;
      if (code === 'ECONNRESET') resets++;
    });
    socket.once('close', () => {
      sockets.delete(socket);
      live--;
      if (wasOpen) {
        open--;
        if (!stopping) closedByServer++;
      }
      if (!stopping) owed++;
    });
  };

  // The first `count`, in slices so that the attacker's own kernel keeps up.
  const SLICE = 500;
  while (attempts < count && !stopping) {
    for (let i = 0; i < SLICE && attempts < count; i++) openOne();
    await sleep(20);
  }
  emit({ event: 'holding', attempts, connected, open, closedByServer, resets, ms: Date.now() - started });

  const report = (): object => ({ attempts, connected, closedByServer, resets, maxOpen, open, live, errors });
  const progress = setInterval(() => emit({ event: 'progress', ...report() }), PROGRESS_INTERVAL_MS);
  const tickMs = 50;
  const perTick = Math.max(1, Math.floor((reopenPerS * tickMs) / 1000));
  const reopen = setInterval(() => {
    for (let i = 0; i < perTick && owed > 0 && attempts < maxOpens && live < count; i++) {
      owed--;
      openOne();
    }
  }, tickMs);
  await Promise.race([sleep(Math.max(0, holdMs - (Date.now() - started))), terminated]);
  stopping = true;
  clearInterval(progress);
  clearInterval(reopen);
  const result = report();
  for (const s of sockets) s.destroy();
  return result;
}

// --- relay ---

async function relay(flags: Flags): Promise<object> {
  const [listenHost, listenPort] = hostPort(str(flags, 'listen'));
  const [toHost, toPort] = hostPort(str(flags, 'to'));
  const prefix = str(flags, 'record');
  let connections = 0;
  const open = new Set<Socket>();
  const server = createServer((client) => {
    connections++;
    const n = connections;
    const upstream = connect({ host: toHost, port: toPort });
    open.add(client);
    open.add(upstream);
    let recorded = 0;
    let file: WriteStream | undefined = createWriteStream(`${prefix}-${n}.bin`);
    client.on('data', (chunk: Buffer) => {
      if (file !== undefined) {
        const take = chunk.subarray(0, RECORD_BYTES - recorded);
        file.write(take);
        recorded += take.length;
        if (recorded >= RECORD_BYTES) {
          file.end();
          file = undefined;
        }
      }
    });
    client.pipe(upstream);
    upstream.pipe(client);
    const done = (): void => {
      file?.end();
      file = undefined;
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', done);
    upstream.on('error', done);
    client.once('close', done);
    upstream.once('close', done);
  });
  await new Promise<void>((resolve) => server.listen(listenPort, listenHost, resolve));
  emit({ event: 'listening' });
  await terminated;
  for (const s of open) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return { connections };
}

// --- replay ---

async function replay(flags: Flags): Promise<object> {
  const bytes = readFileSync(str(flags, 'file'));
  const holdMs = int(flags, 'hold-ms', 5000);
  const socket = connect({ host: str(flags, 'to'), port: int(flags, 'port') });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  let received = Buffer.alloc(0);
  let closedAfterMs = -1;
  const sentAt = Date.now();
  const closed = new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      if (received.length < 4096) received = Buffer.concat([received, chunk]);
    });
    socket.on('error', () => undefined);
    socket.once('close', () => {
      closedAfterMs = Date.now() - sentAt;
      resolve();
    });
  });
  socket.write(bytes);
  const byServer = await Promise.race([closed.then(() => true), sleep(holdMs).then(() => false)]);
  socket.destroy();
  return { status: statusOf(received), closedByServer: byServer, closedAfterMs, bytesIn: received.length };
}

// --- client ---

/** A client frame: FIN, `opcode`, masked with a zero key (the payload goes out as is). */
function wsFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const frame = Buffer.alloc(head + 4 + len);
  frame[0] = 0x80 | opcode;
  if (len < 126) {
    frame[1] = 0x80 | len;
  } else if (len < 65536) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(len, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(len), 2);
  }
  payload.copy(frame, head + 4);
  return frame;
}

const OPCODE_BINARY = 0x2;
const OPCODE_CLOSE = 0x8;

async function client(flags: Flags): Promise<object> {
  const to = str(flags, 'to');
  const port = int(flags, 'port');
  const node = str(flags, 'node');
  const target = str(flags, 'target');
  const secret = Buffer.from(str(flags, 'secret'), 'utf8');
  const junk = int(flags, 'junk', 0);
  const oversize = int(flags, 'oversize', 0);
  const early = int(flags, 'early', 0) === 1;
  const holdMs = int(flags, 'hold-ms', 3000);
  const hello = clientHello(secret, node, target, Date.now());
  const socket = connect({ host: to, port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  socket.setNoDelay(true);
  socket.on('error', () => undefined);
  let closedAt = 0;
  const closed = new Promise<void>((resolve) => socket.once('close', () => {
    closedAt = Date.now();
    resolve();
  }));
  let buffered = Buffer.alloc(0);
  let closeCode = -1;
  const head = new Promise<string>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      if (buffered.length < RECORD_BYTES) buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) return;
      resolve(buffered.subarray(0, end).toString('latin1'));
      closeCode = closeCodeIn(buffered.subarray(end + 4));
    });
    void closed.then(() => resolve(buffered.toString('latin1')));
  });
  socket.write([
    'GET / HTTP/1.1',
    `Host: ${to}:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    'Sec-WebSocket-Version: 13',
    `Sec-WebSocket-Protocol: ${WS_SUBPROTOCOL}`,
    ...Object.entries(hello.headers).map(([k, v]) => `${k}: ${v}`),
    '',
    '',
  ].join('\r\n'));
  const response = await head;
  const status = statusOf(Buffer.from(response, 'latin1'));
  let junkSent = 0;
  let oversizeSent = false;
  let proofSent = false;
  const sentAt = Date.now();
  if (status === 101) {
    const answer = checkServerProof(secret, node, target, hello.nonce, headersOf(response));
    if (!answer.ok) throw new Error(`server proof: ${answer.reason}`);
    if (early) socket.write(wsFrame(OPCODE_BINARY, Buffer.from([0, 0, 0, 30, ...new Array<number>(30).fill(0)])));
    socket.write(wsFrame(OPCODE_BINARY, answer.proof));
    proofSent = true;
    for (let i = 0; i < junk && !socket.destroyed; i++) {
      socket.write(wsFrame(OPCODE_BINARY, randomBytes(1 + (i * 97) % 2048)));
      junkSent++;
      await sleep(5);
    }
    if (oversize > 0 && !socket.destroyed) {
      await new Promise<void>((resolve) => socket.write(wsFrame(OPCODE_BINARY, Buffer.alloc(oversize, 0x5a)), () => resolve()));
      oversizeSent = true;
    }
  }
  await Promise.race([closed, sleep(holdMs)]);
  socket.destroy();
  return { status, proofSent, junkSent, oversizeSent, closeCode, closedAfterMs: closedAt === 0 ? -1 : closedAt - sentAt };
}

// --- helpers ---

/** The code of the first close frame among the server's (unmasked) frames in `data`, or -1. */
function closeCodeIn(data: Buffer): number {
  let at = 0;
  while (at + 2 <= data.length) {
    const opcode = (data[at] ?? 0) & 0x0f;
    let len = (data[at + 1] ?? 0) & 0x7f;
    let start = at + 2;
    if (len === 126) {
      if (start + 2 > data.length) return -1;
      len = data.readUInt16BE(start);
      start += 2;
    } else if (len === 127) {
      if (start + 8 > data.length) return -1;
      len = Number(data.readBigUInt64BE(start));
      start += 8;
    }
    if (opcode === OPCODE_CLOSE) return len >= 2 && start + 2 <= data.length ? data.readUInt16BE(start) : 1005;
    at = start + len;
  }
  return -1;
}

function hostPort(text: string): [string, number] {
  const colon = text.lastIndexOf(':');
  return [text.slice(0, colon).replace(/^\[|\]$/g, ''), Number(text.slice(colon + 1))];
}

function statusOf(response: Buffer): number {
  const m = /^HTTP\/1\.1 (\d{3})/.exec(response.subarray(0, 64).toString('latin1'));
  return m?.[1] === undefined ? 0 : Number(m[1]);
}

function headersOf(head: string): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const line of head.split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) out[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return out;
}

const MODES: Readonly<Record<string, AgentMode>> = { flood, relay, replay, client };

runAgent('ws-attack-agent', MODES, 60_000, process.argv.slice(2));
