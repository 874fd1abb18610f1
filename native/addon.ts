/**
 * Typed face of the C addon (native/src/*.c). The only file that loads it; the TUN device, the
 * UDP transport and the WebSocket transport (its sealer) use these types.
 *
 * Buffers handed to `start` belong to the addon from then on: it reads packets into them and
 * calls back with a count. JS reads the batch inside the callback only.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export interface TunOpenOptions {
  /** Interface name wanted ("podtun0"); the kernel may pick one for a "%d" pattern. */
  name: string;
  /** IFF_MULTI_QUEUE: several fds on one device, one per worker. */
  multiQueue: boolean;
  /** IFF_VNET_HDR + TUNSETOFFLOAD(CSUM|TSO4|TSO6): every packet carries a 10-byte virtio header. */
  vnetHdr: boolean;
}

export interface NativeTun {
  /** The interface name the kernel gave. */
  readonly name: string;
  /**
   * Starts readiness polling (uv_poll). When readable, reads until EAGAIN, or until `maxBatch`
   * packets, or until `buf` has no room for a 64 KiB super-packet; packet i is at
   * `offs[2i]`, length `offs[2i+1]` (virtio header included when vnetHdr). Then calls
   * `onBatch(count)` once.
   */
  start(buf: Buffer, offs: Int32Array, maxBatch: number, onBatch: (count: number) => void): void;
  /**
   * Writes packets `idx[0..count)` (indexes into the pairs of `offs`) of `buf`. With `bare`,
   * packets are plain IP: the addon prepends a virtio header, and merges consecutive TCP
   * segments of one flow (same 5-tuple, contiguous sequence numbers, equal segment sizes but the
   * last) into one super-packet (TSO) per write. Without `bare`, each packet already starts with
   * a virtio header and is written as is. Returns how many input packets the kernel accepted.
   */
  write(buf: Buffer, offs: Int32Array, idx: Int32Array, count: number, bare: boolean): number;
  /** Counters: readBatches, readPackets, readSupers, writePackets, mergedSupers, mergedSegments, ... */
  stats(): Record<string, number>;
  /** Stops polling, then closes the fd. Never blocks; safe twice. */
  close(): void;
}

export interface UdpOpenOptions {
  /** Local address to bind ("0.0.0.0", "::", "192.168.1.2"). */
  host: string;
  port: number;
  /** SO_RCVBUF / SO_SNDBUF wanted, bytes. */
  recvBufferBytes: number;
  sendBufferBytes: number;
  /**
   * Sealed data plane (tunnel/seal/sealed-format.ts): sendPackets seals every datagram with the
   * slot's current keypair, received data messages are opened before JS sees them. Absent or
   * false: the unsealed socket, exactly as before.
   */
  sealed?: boolean;
}

/** AEAD of a session: 0 = ChaCha20-Poly1305, 1 = AES-256-GCM (CIPHER_* of sealed-format.ts). */
export type SealCipher = 0 | 1;

/** A slot's keypairs as the rekey timers and liveness checks need them (control path). */
export interface KeypairInfo {
  /** A current keypair is installed and may still seal (younger than REJECT_AFTER_MS, counter below the limit). */
  hasCurrent: boolean;
  /** Age of the installed current keypair (even when expired); -1 when none. */
  currentAgeMs: number;
  /** Messages sealed with the current keypair so far (its next counter). */
  sendCounter: number;
  /** A responder's keypair is waiting for the initiator's first data message. */
  hasNext: boolean;
  /** Since the last data message that opened with any keypair of the slot; -1: never. */
  lastReceiveAgeMs: number;
  /** A data message opened with the current keypair: the peer holds it. */
  confirmed: boolean;
  /**
   * Keypairs the slot holds (expired ones too), at most 4: current, previous, next, and the
   * keypair the peer last sealed with when a rekey took it out of those three (receive-only,
   * wiped at the first rekey after a message opened with another keypair; native/src/seal.h).
   */
  keypairs: number;
}

export interface NativeUdp {
  /** The bound port (useful when 0 was asked). */
  readonly port: number;
  /** UDP_SEGMENT is usable for sends / UDP_GRO was enabled for receives. */
  readonly gso: boolean;
  readonly gro: boolean;
  /** Remembers a peer address in slot `slot` (0..4095) for later sends. */
  setPeer(slot: number, host: string, port: number): void;
  clearPeer(slot: number): void;
  /**
   * Sends packets `idx[0..count)` of `buf` (each starting with a virtio header, as read from the
   * TUN) to the peer in `slot`, each datagram = `header[0..headerLen)` + one IP packet. The
   * packets are patched in place: partial checksums finished and, with `headroom` free bytes in
   * front of each (headroom + 10 >= headerLen), the header written there and the packet sent
   * where it lies; TSO segments reference their payload in the super-packet.
   * Super-packets (gso_type TCPV4/TCPV6) are split at gso_size into MTU-size TCP segments with
   * correct headers and checksums; partial checksums (NEEDS_CSUM) are finished. Datagrams of equal
   * size go out as UDP GSO sends (<= ~64 KiB each) when `gso`, else in sendmmsg batches.
   * Non-blocking: what the socket refuses (EAGAIN) is dropped. Returns how many input packets
   * were sent whole.
   * Sealed sockets ignore `header`/`headerLen`: every wire datagram (each plain packet or TSO
   * segment) is sealed into a data message with the slot's current keypair (one counter each;
   * equal sizes still leave as GSO sends); without a usable keypair nothing is sent (0,
   * noKeypairDrops counts the input packets).
   */
  sendPackets(slot: number, header: Buffer, headerLen: number, buf: Buffer, offs: Int32Array,
    idx: Int32Array, count: number, headroom: number): number;
  /** Sends one datagram `data[0..len)` to the peer in `slot` (control messages; never sealed: handshakes). */
  sendTo(slot: number, data: Buffer, len: number): boolean;
  /** Sends one datagram to an address that is not in a slot (replies to probes). */
  sendToAddress(host: string, port: number, data: Buffer, len: number): boolean;
  /**
   * Starts receiving (recvmmsg, UDP_GRO). A GRO datagram is split into its segments, so datagram
   * i is at `offs[2i]`, length `offs[2i+1]`; `onBatch(count)` is called once per readiness.
   * Sealed sockets need `slots` (at least maxDatagrams entries): a data message (version 2,
   * type 4) is reported only when it opened, as its plaintext (`offs` point past its header,
   * possibly length 0: a keepalive) with `slots[i]` = the peer's slot; every other datagram
   * (handshakes, cookies, anything else) is reported raw with `slots[i]` = -1. Messages that do
   * not open are dropped and counted (sealUnknownIndex, sealAuthFailed, sealReplayed, sealExpired).
   */
  start(buf: Buffer, offs: Int32Array, maxDatagrams: number, onBatch: (count: number) => void, slots?: Int32Array): void;
  /** Source "host" and port of datagram i of the current batch (only valid inside onBatch). */
  sourceOf(i: number): { host: string; port: number };
  /**
   * Sealed sockets only (others throw ERR_PODTUN_NOT_SEALED). Installs a session's keys (copied
   * into pre-keyed cipher contexts; wiped when the keypair is dropped). `localIndex` is what
   * peers put in messages to us: its low 12 bits must be `slot` (RangeError otherwise), and no
   * other keypair of the slot may use it (ERR_PODTUN_SEAL_INDEX_IN_USE); `remoteIndex` goes into
   * the messages we send. `initiator`: becomes current at once (the old current, or a pending
   * next, becomes previous; the rest is wiped). Responder: becomes next (receive only) and is
   * promoted to current, the old current to previous, by the first data message that opens with
   * it; until then sends keep using the old current.
   */
  installKeypair(slot: number, localIndex: number, remoteIndex: number, sendKey: Buffer, recvKey: Buffer,
    cipher: SealCipher, initiator: boolean): void;
  /** Wipes every keypair of `slot` (its address stays: clearPeer is separate). */
  clearKeypairs(slot: number): void;
  keypairInfo(slot: number): KeypairInfo;
  /**
   * Seals `plaintext[0..len)` (a control message; len 0: a keepalive) with the slot's current
   * keypair and sends it to the slot's address. False (counted in noPeerDrops / noKeypairDrops /
   * eagainDrops) when it could not.
   */
  sealTo(slot: number, plaintext: Buffer, len: number): boolean;
  /** When on, a data message that opened (tag and replay check passed) from another source re-addresses the slot. */
  allowRoam(slot: number, on: boolean): void;
  /** The address the slot sends to (set by setPeer or by roaming), or undefined. */
  peerAddressOf(slot: number): { host: string; port: number } | undefined;
  /**
   * Counters: sends, gsoSends, eagainDrops, recvBatches, ...; sealed: noKeypairDrops (input
   * packets), sealSealed, sealOpened, sealUnknownIndex, sealAuthFailed, sealReplayed, sealExpired,
   * sealRoams.
   */
  stats(): Record<string, number>;
  close(): void;
}

/** Why `NativeSealer.open()` refused a message (it returns the negative code; each is counted in stats()). */
export const SEAL_OPEN_UNKNOWN_INDEX = -1; // sealUnknownIndex: no keypair receives with this index
export const SEAL_OPEN_AUTH_FAILED = -2; // sealAuthFailed: tag does not verify, or shorter than header + tag
export const SEAL_OPEN_REPLAYED = -3; // sealReplayed: counter seen already, or behind the replay window
export const SEAL_OPEN_EXPIRED = -4; // sealExpired: keypair older than REJECT_AFTER_MS, or counter past its limit
export const SEAL_OPEN_NOT_DATA = -5; // sealNotData: fewer than 2 bytes, or not version 2 / type 4
export type SealOpenFailure = -1 | -2 | -3 | -4 | -5;

/**
 * A keypair table without a socket: seals and opens whole transport data messages of
 * tunnel/seal/sealed-format.ts (`| 2 | 4 | 0 0 | receiver index u32 BE | counter u64 LE |
 * ciphertext | tag 16 |`) of any size up to 1 GiB, for transports that frame them themselves
 * (one WebSocket binary message = one sealed message). Same keypair rules, replay window, limits
 * and counter names as a sealed NativeUdp: the same C code.
 *
 * seal() and open() allocate nothing and never throw for a message: a message that cannot be
 * sealed or opened is counted and answered with a negative number. They throw (RangeError,
 * ERR_PODTUN_CLOSED) only on misuse. Single thread: the one that opened it.
 */
export interface NativeSealer {
  /** As NativeUdp.installKeypair (same checks and errors). Throws ERR_PODTUN_CLOSED after close(). */
  installKeypair(slot: number, localIndex: number, remoteIndex: number, sendKey: Buffer, recvKey: Buffer,
    cipher: SealCipher, initiator: boolean): void;
  clearKeypairs(slot: number): void;
  keypairInfo(slot: number): KeypairInfo;
  /**
   * Seals `src[srcOff, srcOff + len)` (len 0: a keepalive) with the slot's current keypair into
   * `dst` at `dstOff`: 16-byte header, ciphertext, tag, `len + 32` bytes, which is returned.
   * -1 when the slot has no keypair that may seal (none, only a next, expired, counter spent:
   * counted noKeypairDrops; a cipher failure, never expected, counts errorDrops).
   * Both buffers are borrowed for the call only. `dst` must not overlap `src`, except exactly in
   * place: the plaintext at `dstOff + 16` of the same memory (frame at offset 16, seal at 0).
   * RangeError: offsets or len out of their Buffer, len > 1 GiB, dst too small, overlap.
   */
  seal(slot: number, src: Buffer, srcOff: number, len: number, dst: Buffer, dstOff: number): number;
  /**
   * Opens the sealed message `buf[off, off + len)` in place: on success the plaintext is at
   * `off + 16`, `len - 32` bytes, and the slot whose keypair opened it is returned (>= 0), after
   * the replay check; a responder's `next` keypair that opens it becomes current, as on UDP.
   * Otherwise a SealOpenFailure (-1 unknown index, -2 authentication failed or truncated,
   * -3 replayed, -4 expired, -5 not a data message), counted in stats(); the bytes of a message
   * that did not open may have been overwritten. `buf` is borrowed for the call only.
   */
  open(buf: Buffer, off: number, len: number): number;
  /**
   * Counters: sealSealed, sealOpened, noKeypairDrops, sealUnknownIndex, sealAuthFailed,
   * sealReplayed, sealExpired (as NativeUdp), sealNotData, errorDrops. Still readable after close().
   */
  stats(): Record<string, number>;
  /** Wipes the keys and frees the table at once; every later call but stats() throws ERR_PODTUN_CLOSED. Safe twice. */
  close(): void;
}

export interface NativeAddon {
  /** Free bytes a TUN read leaves in front of each packet (see PacketBatch.headroom). */
  readonly tunHeadroom: number;
  /** AES-256-GCM runs in hardware here (x86: AES-NI and PCLMULQDQ; false elsewhere): CAP_AES_HW. */
  readonly cpuHasAesHw: boolean;
  /** Raises the soft RLIMIT_NOFILE to the hard limit; returns both (Infinity: unlimited). Throws ERR_PODTUN_RLIMIT. */
  raiseNofileLimit(): { soft: number; hard: number };
  openTun(opts: TunOpenOptions): NativeTun;
  openUdp(opts: UdpOpenOptions): NativeUdp;
  /** A keypair table of its own (its 17 MiB of address space cost memory only for the slots used). Throws ERR_PODTUN_SEALER_OPEN. */
  openSealer(): NativeSealer;
  /**
   * The offload code paths, exposed for tests. Splits one virtio packet into plain IP packets in
   * `out` (offs pairs) as sendPackets would; returns the count, or -1 when it is malformed.
   */
  splitForTest(pkt: Buffer, out: Buffer, outOffs: Int32Array): number;
  /** Merges bare packets into virtio super-packets like `write(bare)` would; returns the count. */
  mergeForTest(buf: Buffer, offs: Int32Array, count: number, out: Buffer, outOffs: Int32Array): number;
  /** Test seam: makes every keypair of a sealed socket's or a sealer's slot `ms` older (REJECT_AFTER_MS without waiting). */
  ageKeypairsForTest(owner: NativeUdp | NativeSealer, slot: number, ms: number): void;
  /** Test seam: sets the counter of the slot's current keypair (REJECT_AFTER_MESSAGES). */
  setSendCounterForTest(owner: NativeUdp | NativeSealer, slot: number, counter: bigint): void;
}

const here = dirname(fileURLToPath(import.meta.url));
// dist/native/addon.js and native/addon.ts both resolve the package root two levels up at most.
const packageRoot = here.includes(`${join('dist', 'native')}`) ? join(here, '..', '..') : join(here, '..');
const require = createRequire(import.meta.url);
const load = require('node-gyp-build') as (dir: string) => NativeAddon;

export const addon: NativeAddon = load(packageRoot);
