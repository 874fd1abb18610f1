/**
 * probe-agent: traffic endpoints for namespace tests, in plain Node (no ping or iperf needed).
 * Run inside a pod: `ip netns exec P node dist/lab/probe-agent.js MODE [--flag value]...`
 *
 * Output: JSON lines on stdout. Servers first print {"event":"listening","port":P}; every mode
 * ends with one result line (the last line). Errors: {"error":"..."} on stdout, exit code 1.
 * Every mode is bounded by --timeout-ms (default 30000).
 *
 * Modes:
 *   tcp-sink --port P                 accept one connection; {bytes, sha256, peerAddress, peerPort, seconds}
 *   tcp-send --to A --port P --bytes N --seed S [--bind A] [--rate-mbps R]
 *                                     deterministic pseudo-random bytes, paced to R Mbit/s if given;
 *                                     {bytes, sha256, seconds, localAddress}
 *   echo-server --port P [--connections N]
 *                                     echoes what it receives; ends after N connections (default 1000) or timeout
 *   tcp-rtt --to A --port P --count N [--size B]
 *                                     connect, then N round trips of B bytes (default 32); {connectMs, rttMs: {...}}
 *   udp-send --to A --port P (--hex H | --random N) [--count C] [--bind A] [--interval-ms I]
 *                                     raw datagrams; {datagrams, bytes}
 *   udp-listen --port P [--duration-ms D] [--max N]
 *                                     counts datagrams for D ms (default 2000) or until N; {datagrams, bytes, sources, firstHex}
 *   udp-flood --to A --port P --size B --duration-ms D
 *                                     sends as fast as it can; {datagrams, bytes, seconds}
 *   unix-forward --socket PATH --to A --port P
 *                                     listens on the Unix socket PATH and pipes each connection to
 *                                     A:P, so a process outside this namespace (it shares the file
 *                                     system, not the routes) reaches a server in it; {connections}
 *                                     when --timeout-ms ends it (exit 0: a bounded service)
 */
import { createHash } from 'node:crypto';
import { createServer, connect, isIPv6 } from 'node:net';
import type { Server, Socket } from 'node:net';
import { createSocket } from 'node:dgram';
import type { Socket as UdpSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { emit, int, runAgent, str } from './agent-cli.js';
import type { AgentMode, Flags } from './agent-cli.js';

const CHUNK_BYTES = 256 * 1024;

/** "::ffff:10.1.2.3" -> "10.1.2.3": dual-stack sockets report IPv4 peers mapped. */
function plainAddress(address: string | undefined): string {
  if (address === undefined) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** xorshift128: the same seed gives the same bytes on every run and machine. */
class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number) {
    this.a = (seed ^ 0x9e3779b9) >>> 0 || 1;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = (seed * 0x85ebca6b) >>> 0;
    for (let i = 0; i < 16; i++) this.next();
  }
  next(): number {
    const t = this.a ^ (this.a << 11);
    this.a = this.b;
    this.b = this.c;
    this.c = this.d;
    this.d = (this.d ^ (this.d >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    return this.d;
  }
  /** Fills buf[0..length); `buf` must start 4-byte aligned (Buffer.allocUnsafeSlow). Little endian words. */
  fill(buf: Buffer, length: number): void {
    const words = length >>> 2;
    const view = new Uint32Array(buf.buffer, buf.byteOffset, words);
    let { a, b, c, d } = this;
    for (let i = 0; i < words; i++) {
      const t = a ^ (a << 11);
      a = b;
      b = c;
      c = d;
      d = (d ^ (d >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
      view[i] = d;
    }
    this.a = a;
    this.b = b;
    this.c = c;
    this.d = d;
    let i = words * 4;
    if (i < length) {
      const last = this.next();
      for (let j = 0; i < length; i++, j++) buf[i] = (last >>> (8 * j)) & 0xff;
    }
  }
}

function listenTcp(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host: '::', ipv6Only: false }, () => {
      server.off('error', reject);
      emit({ event: 'listening', port });
      resolve();
    });
  });
}

function connectTcp(flags: Flags): Promise<Socket> {
  const host = str(flags, 'to');
  const port = int(flags, 'port');
  const bind = flags.get('bind');
  return new Promise((resolve, reject) => {
    const socket = connect({
      host,
      port,
      noDelay: true,
      ...(bind === undefined ? {} : { localAddress: bind }),
    });
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

async function tcpSink(flags: Flags): Promise<object> {
  const port = int(flags, 'port');
  const server = createServer();
  await listenTcp(server, port);
  return new Promise((resolve, reject) => {
    server.once('connection', (socket) => {
      server.close();
      const hash = createHash('sha256');
      let bytes = 0;
      const started = process.hrtime.bigint();
      socket.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        hash.update(chunk);
      });
      socket.once('error', reject);
      socket.once('end', () => {
        socket.end();
        resolve({
          bytes,
          sha256: hash.digest('hex'),
          peerAddress: plainAddress(socket.remoteAddress),
          peerPort: socket.remotePort ?? 0,
          seconds: Number(process.hrtime.bigint() - started) / 1e9,
        });
      });
    });
  });
}

async function tcpSend(flags: Flags): Promise<object> {
  const total = int(flags, 'bytes');
  const prng = new Prng(int(flags, 'seed', 1));
  const socket = await connectTcp(flags);
  const localAddress = plainAddress(socket.localAddress);
  const hash = createHash('sha256');
  const started = process.hrtime.bigint();
  let sent = 0;
  // Pacing: bytes allowed so far = elapsed * rate; chunks of at most 64 KiB so the rate is smooth.
  const rateBytesPerMs = int(flags, 'rate-mbps', 0) * 125;
  const chunkBytes = rateBytesPerMs > 0 ? 64 * 1024 : CHUNK_BYTES;
  const startMs = Date.now();
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    const pump = (): void => {
      while (sent < total) {
        if (rateBytesPerMs > 0) {
          const aheadMs = sent / rateBytesPerMs - (Date.now() - startMs);
          if (aheadMs > 0) {
            setTimeout(pump, Math.max(1, Math.ceil(aheadMs)));
            return;
          }
        }
        const n = Math.min(chunkBytes, total - sent);
        const chunk = Buffer.allocUnsafeSlow(n);
        prng.fill(chunk, n);
        hash.update(chunk);
        sent += n;
        if (!socket.write(chunk)) {
          socket.once('drain', pump);
          return;
        }
      }
      socket.end();
    };
    // Wait for the peer's FIN too: the sink has then read everything.
    socket.on('data', () => undefined);
    socket.once('close', (hadError) => (hadError ? reject(new Error('socket closed with error')) : resolve()));
    pump();
  });
  return {
    bytes: sent,
    sha256: hash.digest('hex'),
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
    localAddress,
  };
}

async function echoServer(flags: Flags): Promise<object> {
  const port = int(flags, 'port');
  const maxConnections = int(flags, 'connections', 1000);
  const server = createServer();
  let connections = 0;
  let closed = 0;
  await listenTcp(server, port);
  return new Promise((resolve) => {
    server.on('connection', (socket) => {
      connections++;
      socket.setNoDelay(true);
      socket.on('data', (chunk: Buffer) => socket.write(chunk));
      socket.on('error', () => socket.destroy());
      socket.once('end', () => socket.end());
      socket.once('close', () => {
        closed++;
        if (closed >= maxConnections) {
          server.close();
          resolve({ connections });
        }
      });
      if (connections >= maxConnections) server.close();
    });
  });
}

async function tcpRtt(flags: Flags): Promise<object> {
  const count = int(flags, 'count', 10);
  const size = Math.max(1, int(flags, 'size', 32));
  const t0 = process.hrtime.bigint();
  const socket = await connectTcp(flags);
  const connectMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const localAddress = plainAddress(socket.localAddress);
  const samples: number[] = [];
  const message = Buffer.alloc(size, 0x61);
  await new Promise<void>((resolve, reject) => {
    let pending = 0;
    let sentAt = 0n;
    const next = (): void => {
      if (samples.length >= count) {
        socket.end();
        resolve();
        return;
      }
      pending = size;
      sentAt = process.hrtime.bigint();
      socket.write(message);
    };
    socket.on('data', (chunk: Buffer) => {
      pending -= chunk.length;
      if (pending <= 0) {
        samples.push(Number(process.hrtime.bigint() - sentAt) / 1e6);
        next();
      }
    });
    socket.once('error', reject);
    socket.once('close', () => (samples.length >= count ? resolve() : reject(new Error('closed early'))));
    next();
  });
  const sorted = [...samples].sort((x, y) => x - y);
  const avg = samples.reduce((s, x) => s + x, 0) / Math.max(1, samples.length);
  return {
    count: samples.length,
    connectMs,
    rttMs: {
      min: sorted[0] ?? 0,
      median: sorted[Math.floor(sorted.length / 2)] ?? 0,
      avg,
      max: sorted[sorted.length - 1] ?? 0,
    },
    localAddress,
  };
}

function udpSocketFor(address: string): UdpSocket {
  return createSocket(isIPv6(address) ? 'udp6' : 'udp4');
}

async function udpSend(flags: Flags): Promise<object> {
  const to = str(flags, 'to');
  const port = int(flags, 'port');
  const count = Math.max(1, int(flags, 'count', 1));
  const intervalMs = int(flags, 'interval-ms', 0);
  const hex = flags.get('hex');
  const random = flags.get('random');
  const payloadFor = (): Buffer => {
    if (hex !== undefined) return Buffer.from(hex, 'hex');
    if (random !== undefined) return randomBytes(int(flags, 'random'));
    throw new Error('udp-send needs --hex or --random');
  };
  const socket = udpSocketFor(to);
  const bind = flags.get('bind');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(bind === undefined ? {} : { address: bind }, () => resolve());
  });
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const payload = payloadFor();
    await new Promise<void>((resolve, reject) =>
      socket.send(payload, port, to, (error) => (error ? reject(error) : resolve())),
    );
    bytes += payload.length;
    if (intervalMs > 0) await new Promise((r) => setTimeout(r, intervalMs));
  }
  socket.close();
  return { datagrams: count, bytes };
}

async function udpListen(flags: Flags): Promise<object> {
  const port = int(flags, 'port');
  const durationMs = int(flags, 'duration-ms', 2000);
  const max = int(flags, 'max', Number.MAX_SAFE_INTEGER);
  const socket = createSocket({ type: 'udp6', ipv6Only: false });
  let datagrams = 0;
  let bytes = 0;
  let firstHex = '';
  const sources = new Set<string>();
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ port, address: '::' }, () => resolve());
  });
  emit({ event: 'listening', port });
  return new Promise((resolve) => {
    const finish = (): void => {
      clearTimeout(timer);
      socket.close();
      resolve({ datagrams, bytes, sources: [...sources], firstHex });
    };
    const timer = setTimeout(finish, durationMs);
    socket.on('message', (msg, rinfo) => {
      datagrams++;
      bytes += msg.length;
      if (firstHex === '') firstHex = msg.subarray(0, 64).toString('hex');
      if (sources.size < 32) sources.add(plainAddress(rinfo.address));
      if (datagrams >= max) finish();
    });
  });
}

async function udpFlood(flags: Flags): Promise<object> {
  const to = str(flags, 'to');
  const port = int(flags, 'port');
  const size = int(flags, 'size', 64);
  const durationMs = int(flags, 'duration-ms', 3000);
  const socket = udpSocketFor(to);
  const payload = Buffer.alloc(size, 0x5a);
  let datagrams = 0;
  const started = Date.now();
  const inFlightMax = 64;
  await new Promise<void>((resolve) => {
    let inFlight = 0;
    let done = false;
    const pump = (): void => {
      while (!done && inFlight < inFlightMax) {
        if (Date.now() - started >= durationMs) {
          done = true;
          break;
        }
        inFlight++;
        socket.send(payload, port, to, () => {
          inFlight--;
          datagrams++;
          if (done && inFlight === 0) resolve();
          else if (!done) setImmediate(pump);
        });
      }
      if (done && inFlight === 0) resolve();
    };
    pump();
  });
  socket.close();
  return { datagrams, bytes: datagrams * size, seconds: (Date.now() - started) / 1000 };
}

/** Bridges a Unix socket to a TCP server in this namespace until the timeout ends it. */
async function unixForward(flags: Flags): Promise<object> {
  const path = str(flags, 'socket');
  const to = str(flags, 'to');
  const port = int(flags, 'port');
  const timeoutMs = int(flags, 'timeout-ms', 30_000);
  let connections = 0;
  const server = createServer((client) => {
    connections++;
    const upstream = connect(port, to);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  emit({ event: 'listening', socket: path });
  // Ends a little before the agent's own timer, so the result line is the normal one.
  await new Promise((r) => setTimeout(r, Math.max(0, timeoutMs - 500)));
  server.close();
  return { connections };
}

const MODES: Readonly<Record<string, AgentMode>> = {
  'unix-forward': unixForward,
  'tcp-sink': tcpSink,
  'tcp-send': tcpSend,
  'echo-server': echoServer,
  'tcp-rtt': tcpRtt,
  'udp-send': udpSend,
  'udp-listen': udpListen,
  'udp-flood': udpFlood,
};

runAgent('probe-agent', MODES, 30_000, process.argv.slice(2));
