/**
 * Hand-built datagrams for injection tests, written from the wire contracts rather than from
 * the code that parses them (tunnel/udp/udp-header.ts, tunnel/seal/), so that a format drifting
 * from its contract fails a test.
 *
 * Unsealed (`encryption: none`; the README), 12 bytes, big endian: version 1 | type | flags (2) |
 * sender node id (4) | 4 bytes, 0 for data. A data datagram carries one IP packet with complete
 * checksums.
 *
 * Sealed (the default; the contract in tunnel/seal/sealed-format.ts): every message starts
 * version 2 | type | reserved 0 (2). Transport data (type 4): | receiver index (4, big endian) |
 * counter (8, little endian) | ciphertext | tag (16) |, the first 16 bytes authenticated as
 * additional data. A handshake initiation (type 1) is SEALED_INIT_LEN bytes: | common 4 |
 * sender index 4 | ephemeral 32 | sealed static 32+16 | sealed timestamp and capabilities
 * 13+16 | mac1 16 | mac2 16 |.
 */
import { nodeIdOf } from '../../tunnel/udp/node-id.js';

export const PODTUN_HEADER_LEN = 12;
export const SEALED_VERSION = 2;
export const SEALED_TYPE_INIT = 1;
export const SEALED_TYPE_DATA = 4;
export const SEALED_DATA_HEADER_LEN = 16;
export const SEALED_DATA_OFFSET_RECEIVER = 4;
export const SEALED_DATA_OFFSET_COUNTER = 8;
export const SEALED_TAG_LEN = 16;
export const SEALED_INIT_LEN = 4 + 4 + 32 + (32 + 16) + (13 + 16) + 16 + 16;
const TYPE_DATA = 1;
const IPV4_HEADER_LEN = 20;
const UDP_HEADER_LEN = 8;
const PROTO_UDP = 17;

/** The 12-byte podtun header of a data datagram from node `senderName`. */
export function podtunDataHeader(senderName: string): Buffer {
  const header = Buffer.alloc(PODTUN_HEADER_LEN);
  header.writeUInt8(1, 0);
  header.writeUInt8(TYPE_DATA, 1);
  header.writeUInt16BE(0, 2);
  header.writeUInt32BE(nodeIdOf(senderName), 4);
  header.writeUInt32BE(0, 8);
  return header;
}

function ipv4Bytes(address: string): Buffer {
  const parts = address.split('.').map((p) => Number.parseInt(p, 10));
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`not an IPv4 address: ${address}`);
  }
  return Buffer.from(parts);
}

/** RFC 1071 one's complement sum, folded and inverted. */
function checksum(...chunks: Buffer[]): number {
  let sum = 0;
  for (const chunk of chunks) {
    for (let i = 0; i < chunk.length; i += 2) {
      sum += ((chunk[i] ?? 0) << 8) | (chunk[i + 1] ?? 0);
    }
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export interface Ipv4UdpSpec {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  payload: Buffer;
  ttl?: number;
}

/** An IPv4 + UDP packet with both checksums complete. */
export function ipv4UdpPacket(spec: Ipv4UdpSpec): Buffer {
  const udpLen = UDP_HEADER_LEN + spec.payload.length;
  const total = IPV4_HEADER_LEN + udpLen;
  const packet = Buffer.alloc(total);
  packet.writeUInt8(0x45, 0);
  packet.writeUInt16BE(total, 2);
  packet.writeUInt16BE(0x1234, 4);
  packet.writeUInt16BE(0x4000, 6); // DF
  packet.writeUInt8(spec.ttl ?? 64, 8);
  packet.writeUInt8(PROTO_UDP, 9);
  const src = ipv4Bytes(spec.src);
  const dst = ipv4Bytes(spec.dst);
  src.copy(packet, 12);
  dst.copy(packet, 16);
  packet.writeUInt16BE(checksum(packet.subarray(0, IPV4_HEADER_LEN)), 10);

  const udp = packet.subarray(IPV4_HEADER_LEN);
  udp.writeUInt16BE(spec.srcPort, 0);
  udp.writeUInt16BE(spec.dstPort, 2);
  udp.writeUInt16BE(udpLen, 4);
  spec.payload.copy(udp, UDP_HEADER_LEN);
  const pseudo = Buffer.alloc(12);
  src.copy(pseudo, 0);
  dst.copy(pseudo, 4);
  pseudo.writeUInt8(PROTO_UDP, 9);
  pseudo.writeUInt16BE(udpLen, 10);
  const sum = checksum(pseudo, udp.length % 2 === 0 ? udp : Buffer.concat([udp, Buffer.alloc(1)]));
  udp.writeUInt16BE(sum === 0 ? 0xffff : sum, 6);
  return packet;
}

/** A complete podtun data datagram: header from `senderName`, then `inner`. */
export function podtunDataDatagram(senderName: string, inner: Buffer): Buffer {
  return Buffer.concat([podtunDataHeader(senderName), inner]);
}

/** A sealed transport data message as an attacker can make one: any index, counter, body and tag. */
export function sealedDataMessage(receiverIndex: number, counter: bigint, body: Buffer, tag: Buffer): Buffer {
  if (tag.length !== SEALED_TAG_LEN) throw new Error(`a tag is ${SEALED_TAG_LEN} bytes`);
  const header = Buffer.alloc(SEALED_DATA_HEADER_LEN);
  header.writeUInt8(SEALED_VERSION, 0);
  header.writeUInt8(SEALED_TYPE_DATA, 1);
  header.writeUInt32BE(receiverIndex >>> 0, SEALED_DATA_OFFSET_RECEIVER);
  header.writeBigUInt64LE(counter, SEALED_DATA_OFFSET_COUNTER);
  return Buffer.concat([header, body, tag]);
}

/** The sealed message type of a UDP payload (SEALED_TYPE_*), or undefined for another version. */
export function sealedTypeOf(payload: Buffer): number | undefined {
  return payload.length >= 4 && payload[0] === SEALED_VERSION ? payload[1] : undefined;
}

/** The receiver index of a sealed data message. */
export function receiverIndexOf(message: Buffer): number {
  return message.readUInt32BE(SEALED_DATA_OFFSET_RECEIVER);
}

/** A copy of `message` with bit `bit` (0 = the most significant bit of byte 0) flipped. */
export function withBitFlipped(message: Buffer, bit: number): Buffer {
  const out = Buffer.from(message);
  const byte = bit >> 3;
  if (byte >= out.length) throw new Error(`bit ${bit} is beyond a ${out.length}-byte message`);
  out[byte] = (out[byte] ?? 0) ^ (0x80 >> (bit & 7));
  return out;
}
