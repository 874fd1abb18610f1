/**
 * Packet captures for the namespace tests: tcpdump writing a pcap file in the run's dir, and a
 * reader for what it wrote (classic pcap, Ethernet frames), down to IPv4 and UDP.
 *
 * A capture on a bridge port in the underlay namespace (the veth `n1` is node n1's) sees every
 * frame to and from that node, as an attacker on the wire would. Frames sent with UDP GSO pass
 * the veths whole: one frame then carries several datagrams back to back and its UDP length
 * field does not match; `gso` marks such a frame (its payload is not one datagram).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Cluster } from '../../lab/cluster.js';
import { stopChild } from '../../lab/shell.js';

const PCAP_MAGIC_US = 0xa1b2c3d4;
const PCAP_MAGIC_NS = 0xa1b23c4d;
const PCAP_GLOBAL_HEADER_LEN = 24;
const PCAP_RECORD_HEADER_LEN = 16;
const LINKTYPE_ETHERNET = 1;
const ETH_HEADER_LEN = 14;
const ETHERTYPE_IPV4 = 0x0800;
const PROTO_UDP = 17;

export interface Frame {
  /** The whole captured frame (Ethernet header first). */
  bytes: Buffer;
  ipv4?: { src: string; dst: string; protocol: number; payload: Buffer };
  udp?: UdpDatagram;
}

export interface UdpDatagram {
  src: string;
  sport: number;
  dst: string;
  dport: number;
  /** Everything after the UDP header in the frame (several datagrams when `gso`). */
  payload: Buffer;
  /** The frame is a GSO super-datagram: payload is not one datagram. */
  gso: boolean;
}

function ipv4Text(buf: Buffer, at: number): string {
  return `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`;
}

/** The frames of a pcap file (Ethernet link type), parsed down to IPv4 and UDP where they are those. */
export function readPcap(file: string): Frame[] {
  const data = readFileSync(file);
  if (data.length < PCAP_GLOBAL_HEADER_LEN) return [];
  const magic = data.readUInt32LE(0);
  const le = magic === PCAP_MAGIC_US || magic === PCAP_MAGIC_NS;
  const u32 = (at: number): number => (le ? data.readUInt32LE(at) : data.readUInt32BE(at));
  if (!le && data.readUInt32BE(0) !== PCAP_MAGIC_US && data.readUInt32BE(0) !== PCAP_MAGIC_NS) {
    throw new Error(`${file}: not a pcap file (magic ${magic.toString(16)})`);
  }
  if (u32(20) !== LINKTYPE_ETHERNET) throw new Error(`${file}: link type ${u32(20)}, expected Ethernet`);
  const frames: Frame[] = [];
  for (let at = PCAP_GLOBAL_HEADER_LEN; at + PCAP_RECORD_HEADER_LEN <= data.length;) {
    const caplen = u32(at + 8);
    const start = at + PCAP_RECORD_HEADER_LEN;
    const bytes = data.subarray(start, Math.min(data.length, start + caplen));
    at = start + caplen;
    frames.push(parseFrame(bytes));
  }
  return frames;
}

function parseFrame(bytes: Buffer): Frame {
  const frame: Frame = { bytes };
  if (bytes.length < ETH_HEADER_LEN + 20 || bytes.readUInt16BE(12) !== ETHERTYPE_IPV4) return frame;
  const ip = ETH_HEADER_LEN;
  const ihl = ((bytes[ip] ?? 0) & 0x0f) * 4;
  const protocol = bytes[ip + 9] ?? 0;
  const src = ipv4Text(bytes, ip + 12);
  const dst = ipv4Text(bytes, ip + 16);
  frame.ipv4 = { src, dst, protocol, payload: bytes.subarray(ip + ihl) };
  const l4 = ip + ihl;
  if (protocol !== PROTO_UDP || bytes.length < l4 + 8) return frame;
  const payload = bytes.subarray(l4 + 8);
  frame.udp = {
    src,
    sport: bytes.readUInt16BE(l4),
    dst,
    dport: bytes.readUInt16BE(l4 + 2),
    payload,
    gso: bytes.readUInt16BE(l4 + 4) !== payload.length + 8,
  };
  return frame;
}

export interface Capture {
  file: string;
  /** Ends tcpdump (its buffered packets written) and reads the file. */
  stop(): Promise<Frame[]>;
}

/**
 * Starts `tcpdump -i iface -w <run dir>/<name>.pcap <filter>` in namespace `ns` and waits until
 * it listens. Each frame handed over and written at once (--immediate-mode, -U: else libpcap
 * holds frames in its ring for up to a second, and those are lost when tcpdump is stopped),
 * whole frames (-s 0), as root (-Z root: the run dir is root's).
 * Ended by stop(), or by the cluster's destroy() at the latest.
 */
export async function startCapture(c: Cluster, ns: string, iface: string, name: string, filter: readonly string[]): Promise<Capture> {
  const file = join(c.dir, `${name}.pcap`);
  const child: ChildProcess = c.spawnIn(ns, ['tcpdump', '-i', iface, '--immediate-mode', '-U', '-n', '-s', '0', '-Z', 'root', '-w', file, ...filter], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tcpdump on ${iface} in ${ns}: not listening after 10 s: ${stderr}`)), 10_000);
    child.stderr?.on('data', (d: string) => {
      stderr += d;
      if (stderr.includes('listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`tcpdump on ${iface} in ${ns} exited (${code}): ${stderr}`));
    });
  });
  return {
    file,
    async stop() {
      // Frames still in flight on the veths reach the capture within a moment.
      await new Promise((r) => setTimeout(r, 200));
      await stopChild(child, 3_000);
      return readPcap(file);
    },
  };
}
