/**
 * The sealed tunnel's messages: what a UDP datagram or a WebSocket binary message carries when
 * `encryption` is sealed (a WebSocket message seals one framed batch whole). Modeled on WireGuard's (Noise_IKpsk2 handshake, counter-nonce
 * AEAD data), with podtun's own version byte so a receiver tells them from the unsealed format
 * (udp-header.ts, version 1) by the first byte alone.
 *
 * Every message starts with the same 4 bytes:
 *
 * ```
 * | version = 2 (u8) | type (u8) | reserved = 0 (u16) |
 * ```
 *
 * Types (all integers big endian unless said otherwise):
 *
 * 1. Handshake initiation (SEALED_INIT_LEN bytes):
 *    `| common 4 | sender index 4 | ephemeral 32 | sealed static 32+16 | sealed payload 13+16 | mac1 16 | mac2 16 |`
 *    The sealed payload is a 12-byte TAI64N timestamp and one capability byte (bit 0: this node
 *    seals AES-256-GCM in hardware).
 * 2. Handshake response (SEALED_RESPONSE_LEN bytes):
 *    `| common 4 | sender index 4 | receiver index 4 | ephemeral 32 | sealed payload 1+16 | mac1 16 | mac2 16 |`
 *    The sealed payload is the cipher the responder chose for the session (CIPHER_*).
 * 3. Cookie reply (SEALED_COOKIE_LEN bytes), sent instead of a response when the responder is
 *    under load: `| common 4 | receiver index 4 | nonce 12 | sealed cookie 16+16 |`
 * 4. Transport data (SEALED_DATA_OVERHEAD + n bytes):
 *    `| common 4 | receiver index 4 | counter 8 (little endian) | ciphertext n | tag 16 |`
 *    AEAD with the session's receive key; nonce = 4 zero bytes + the counter (little endian);
 *    additional data = the first 16 bytes. The plaintext is one inner IP packet (first nibble 4
 *    or 6), a control message (first byte CONTROL_*), or nothing (a keepalive).
 *
 * Receiver indexes are chosen by the receiving node for each session: the low SLOT_INDEX_BITS
 * bits are the peer's slot, so the data path finds the session without a lookup table; the
 * rest is random, so an index does not outlive its session.
 */

export const SEALED_VERSION = 2;

export const SEALED_OFFSET_VERSION = 0;
export const SEALED_OFFSET_TYPE = 1;

export const SEALED_TYPE_INIT = 1;
export const SEALED_TYPE_RESPONSE = 2;
export const SEALED_TYPE_COOKIE = 3;
export const SEALED_TYPE_DATA = 4;

export const KEY_LEN = 32;
export const AEAD_TAG_LEN = 16;
export const MAC_LEN = 16;
export const TIMESTAMP_LEN = 12;

export const SEALED_INIT_LEN = 4 + 4 + KEY_LEN + (KEY_LEN + AEAD_TAG_LEN) + (TIMESTAMP_LEN + 1 + AEAD_TAG_LEN) + MAC_LEN + MAC_LEN;
export const SEALED_RESPONSE_LEN = 4 + 4 + 4 + KEY_LEN + (1 + AEAD_TAG_LEN) + MAC_LEN + MAC_LEN;
export const SEALED_COOKIE_LEN = 4 + 4 + 12 + (16 + AEAD_TAG_LEN);

/** Transport data: header (common 4 + receiver index 4 + counter 8), then ciphertext and tag. */
export const SEALED_DATA_HEADER_LEN = 16;
export const SEALED_DATA_OFFSET_RECEIVER = 4;
export const SEALED_DATA_OFFSET_COUNTER = 8;
export const SEALED_DATA_OVERHEAD = SEALED_DATA_HEADER_LEN + AEAD_TAG_LEN;
/** Bytes around each inner packet on the underlay: sealing + UDP 8 + IPv4 20 / IPv6 40. */
export const SEALED_UDP_OVERHEAD_IPV4 = SEALED_DATA_OVERHEAD + 8 + 20;
export const SEALED_UDP_OVERHEAD_IPV6 = SEALED_DATA_OVERHEAD + 8 + 40;

/** Capability bit of the initiation payload: AES-256-GCM runs in hardware here. */
export const CAP_AES_HW = 0x01;

/** Session ciphers, as the response payload and the addon name them. */
export const CIPHER_CHACHA20_POLY1305 = 0;
export const CIPHER_AES_256_GCM = 1;
export type SessionCipher = typeof CIPHER_CHACHA20_POLY1305 | typeof CIPHER_AES_256_GCM;

/** Low bits of a receiver index: the peer's slot (MAX_PEER_SLOTS = 4096 = 2^12). */
export const SLOT_INDEX_BITS = 12;
export const SLOT_INDEX_MASK = (1 << SLOT_INDEX_BITS) - 1;

/** First byte of a sealed control plaintext (never 0x4_ or 0x6_, the IP versions). */
export const CONTROL_PROBE = 0x01;
export const CONTROL_PROBE_REPLY = 0x02;

/**
 * Session lifetimes (WireGuard's, section 6.1 of its paper): the initiator rekeys after
 * REKEY_AFTER_MS or REKEY_AFTER_MESSAGES; no key is used past REJECT_AFTER_MS or
 * REJECT_AFTER_MESSAGES; a handshake unanswered after REKEY_TIMEOUT_MS is retried, and given
 * up after REKEY_ATTEMPT_MS.
 */
export const REKEY_AFTER_MS = 120_000;
export const REJECT_AFTER_MS = 180_000;
export const REKEY_TIMEOUT_MS = 5_000;
export const REKEY_ATTEMPT_MS = 90_000;
export const REKEY_AFTER_MESSAGES = 2 ** 60;
/* REJECT_AFTER_MESSAGES (2^64 - 2^13 - 1) is enforced by the addon, which holds the counters. */

/*
 * Offsets of the handshake messages' fields (layouts above), for tunnel/seal/noise.ts. mac1 and
 * mac2 are always the last 2 x MAC_LEN bytes: mac1 covers everything before it, mac2 everything
 * before mac2.
 */
export const SEALED_OFFSET_SENDER = 4;
export const SEALED_INIT_OFFSET_EPHEMERAL = 8;
export const SEALED_INIT_OFFSET_STATIC = SEALED_INIT_OFFSET_EPHEMERAL + KEY_LEN;
export const SEALED_INIT_OFFSET_PAYLOAD = SEALED_INIT_OFFSET_STATIC + KEY_LEN + AEAD_TAG_LEN;
/** The initiation's plaintext payload: timestamp, then the capability byte. */
export const SEALED_INIT_PAYLOAD_LEN = TIMESTAMP_LEN + 1;
export const SEALED_RESPONSE_OFFSET_RECEIVER = 8;
export const SEALED_RESPONSE_OFFSET_EPHEMERAL = 12;
export const SEALED_RESPONSE_OFFSET_PAYLOAD = SEALED_RESPONSE_OFFSET_EPHEMERAL + KEY_LEN;
/** The response's plaintext payload: the chosen cipher. */
export const SEALED_RESPONSE_PAYLOAD_LEN = 1;
export const SEALED_COOKIE_OFFSET_RECEIVER = 4;
export const SEALED_COOKIE_OFFSET_NONCE = 8;
export const SEALED_COOKIE_NONCE_LEN = 12;
export const SEALED_COOKIE_OFFSET_SEALED = SEALED_COOKIE_OFFSET_NONCE + SEALED_COOKIE_NONCE_LEN;
/** A cookie: what mac2 is keyed with. */
export const COOKIE_LEN = 16;
