/*
 * The sealed data plane: per-slot keypairs, the AEAD of transport data messages and their replay
 * window (tunnel/seal/sealed-format.ts has the wire format, WireGuard's section 5.4.6):
 *
 *   | version 2 | type 4 | reserved 0 (u16) | receiver index (u32 BE) | counter (u64 LE) | ciphertext | tag 16 |
 *
 * nonce = 4 zero bytes || counter (LE), additional data = the 16-byte header.
 *
 * Keypairs of a slot (WireGuard's current / previous / next, and one more, kept):
 * - current seals and opens; previous only opens (packets sealed before a rekey still arrive);
 * - next is a responder's keypair the initiator has not used yet: it only opens, and the first
 *   message that opens with it makes it current (the old current becomes previous), so a
 *   responder never seals with a keypair its peer may not hold;
 * - kept only opens: `last` after a rekey took it out of the three roles above.
 * `last` is the keypair the newest opened message used: the one the peer seals with. (A peer's
 * sending keypair only ever changes to a newer one, so a message under a keypair `last` moved on
 * from is one reordered behind the switch: it opens, and does not make that keypair `last`.)
 *
 * The rule: a rekey (an install, or the promotion of a next) never wipes `last`, unless it has
 * expired. A keypair leaving current / previous / next becomes kept if it is `last`, else is
 * wiped; at the next rekey a kept keypair is wiped once it is no longer `last` (the peer moved
 * on) or has expired. So at most PT_SEAL_KEYPAIRS keypairs: a rekey retires one role before it
 * takes one.
 *
 * Why: WireGuard (add_new_keypair) wipes the previous keypair at an initiator's install. After
 * crossed initiations (both nodes initiated at once, as nodes started together do: each seals
 * with the keypair it initiated and holds the other's as previous) that previous is the one the
 * peer seals with until the new keypair reaches it: its messages of that round trip would die.
 * With the rule, over in-order links, no valid message is refused at:
 * - a rekey: the initiator's old current (the peer's sender) becomes previous, as in WireGuard;
 * - a rekey after crossed initiations, by either side: the initiator's previous, the peer's
 *   sender, is kept; the responder promotes the new keypair as usual;
 * - both sides rekeying at once: a node installing its own keypair while the peer's is pending
 *   as next keeps that next as previous and its old current, when the peer's sender, as kept
 *   (WireGuard wipes it too); then they are crossed, as above.
 * This holds while a node starts a rekey at most once per round trip (the handshake engine's
 * intervals are far longer); native/rekey.test.ts runs these cases and random schedules.
 *
 * Two users hold a table: a sealed NativeUdp (one message per datagram) and a NativeSealer (one
 * message per WebSocket message, of any size up to PT_SEAL_MAX_PLAINTEXT). Both count what
 * happens in a pt_seal_counters, under the same names in stats().
 *
 * Every EVP context is keyed once when installed; a packet only sets its nonce. Nothing here
 * allocates per packet: keypairs live in a table allocated with its owner (address space only:
 * pages of slots never used stay unmapped), contexts are created when first installed and
 * re-keyed afterwards. Single-threaded (the JS thread).
 */
#ifndef PODTUN_SEAL_H
#define PODTUN_SEAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define PT_SEAL_VERSION 2
#define PT_SEAL_TYPE_DATA 4
#define PT_SEAL_OFFSET_RECEIVER 4
#define PT_SEAL_OFFSET_COUNTER 8
#define PT_SEAL_HEADER_LEN 16
#define PT_SEAL_TAG_LEN 16
#define PT_SEAL_OVERHEAD (PT_SEAL_HEADER_LEN + PT_SEAL_TAG_LEN)
#define PT_SEAL_KEY_LEN 32
/* Largest plaintext of one message: EVP takes lengths as int; 1 GiB keeps every sum far from it. */
#define PT_SEAL_MAX_PLAINTEXT (1u << 30)

/* Keypairs of a slot: current, previous, next, kept. */
#define PT_SEAL_KEYPAIRS 4

#define PT_SEAL_SLOT_BITS 12
#define PT_SEAL_SLOTS (1u << PT_SEAL_SLOT_BITS)
#define PT_SEAL_SLOT_MASK (PT_SEAL_SLOTS - 1)

#define PT_CIPHER_CHACHA20_POLY1305 0
#define PT_CIPHER_AES_256_GCM 1

/* WireGuard's limits: no keypair seals or opens past these. */
#define PT_REJECT_AFTER_MS 180000
#define PT_REJECT_AFTER_MESSAGES (UINT64_MAX - (UINT64_C(1) << 13)) /* 2^64 - 2^13 - 1 */

/* Why a data message did not open. The values are stable: NativeSealer.open() returns their
 * negation. */
typedef enum {
  PT_OPENED = 0,
  PT_OPEN_UNKNOWN_INDEX = 1,
  PT_OPEN_AUTH_FAILED = 2, /* tag does not verify, or shorter than header + tag */
  PT_OPEN_REPLAYED = 3,    /* counter seen already, or behind the window */
  PT_OPEN_EXPIRED = 4,     /* keypair older than PT_REJECT_AFTER_MS, or counter past its limit */
} pt_open_result;

/* A data message by its first two bytes (version, type): the only messages pt_seal_open takes. */
static inline int pt_seal_is_data(const uint8_t *d, uint32_t len) {
  return len >= 2 && d[0] == PT_SEAL_VERSION && d[1] == PT_SEAL_TYPE_DATA;
}

/* What the owner of a table counts; stats() names them noKeypairDrops, sealSealed, sealOpened,
 * sealUnknownIndex, sealAuthFailed, sealReplayed, sealExpired (seal-napi.h). */
typedef struct {
  uint64_t no_keypair_drops, sealed, opened, unknown_index, auth_failed, replayed, expired;
} pt_seal_counters;

/* Counts the result of one pt_seal_open: opened, or its reason. */
void pt_seal_count_open(pt_seal_counters *c, pt_open_result r);

typedef struct pt_keypair pt_keypair;
typedef struct pt_seal pt_seal;

/* A keypair table (all slots empty), or NULL without memory. */
pt_seal *pt_seal_new(void);
/* Wipes and frees every keypair, then the table. NULL is fine. */
void pt_seal_free(pt_seal *s);

/* CLOCK_MONOTONIC in milliseconds: the clock of keypair ages. */
uint64_t pt_seal_now_ms(void);

/*
 * Installs a keypair in `slot` (keys are only read; the contexts keep the expanded keys).
 * initiator: it becomes current at once; the old current (or, when a next was pending, that
 * next, the newer of the two) becomes previous; the old previous (and the old current when a
 * next was pending) is retired: kept if `last`, else wiped.
 * responder: it becomes next, replacing (wiping) an earlier next.
 * Returns 1, or 0 when the cipher could not be keyed: the keypair it would have replaced is
 * retired (and a stale kept one wiped), the others are as they were.
 */
int pt_seal_install(pt_seal *s, uint32_t slot, uint32_t local_index, uint32_t remote_index, const uint8_t *send_key,
                    const uint8_t *recv_key, int cipher, int initiator, uint64_t now_ms);

/* 1 when a keypair of `slot` already receives with `local_index`. */
int pt_seal_index_in_use(const pt_seal *s, uint32_t slot, uint32_t local_index);

/* Wipes every keypair of `slot`. */
void pt_seal_clear(pt_seal *s, uint32_t slot);

/* Wipes every keypair of every slot (the socket is closing: keys should not wait for the GC). */
void pt_seal_wipe(pt_seal *s);

typedef struct {
  int has_current;          /* installed and still allowed to seal (age, counter) */
  int64_t current_age_ms;   /* -1: none installed */
  uint64_t send_counter;    /* messages sealed with the current keypair */
  int has_next;
  int64_t last_receive_age_ms; /* since the last message that opened in this slot; -1: never */
  int confirmed;            /* a message opened with the current keypair: the peer holds it */
  int keypairs;             /* keypairs the slot holds, 0 to PT_SEAL_KEYPAIRS (expired ones too) */
} pt_seal_info;

void pt_seal_info_of(const pt_seal *s, uint32_t slot, uint64_t now_ms, pt_seal_info *info);

/* The keypair `slot` seals with, or NULL when it has none that may still seal. */
pt_keypair *pt_seal_sender(pt_seal *s, uint32_t slot, uint64_t now_ms);

/*
 * Seals one message with `kp`: the plaintext is the concatenation of `pieces` (`plen` bytes, at
 * most PT_SEAL_MAX_PLAINTEXT, only read), the sealed message (plen + PT_SEAL_OVERHEAD bytes) is
 * written to `out`, which must not overlap them, with one exception: a single piece lying exactly
 * at out + PT_SEAL_HEADER_LEN is sealed in place. Takes the next counter. Returns 1; 0 when the
 * keypair's counter is spent; -1 when the cipher failed (nothing usable in `out`).
 */
int pt_seal_message(pt_keypair *kp, const struct iovec *pieces, uint32_t npieces, uint32_t plen, uint8_t *out);

/*
 * Opens a data message in place (`d`, `len` bytes, pt_seal_is_data already checked): finds the
 * keypair by receiver index, verifies the tag, writes the plaintext over the ciphertext at
 * d + PT_SEAL_HEADER_LEN, then checks and updates the replay window. On PT_OPENED: `*slot` is
 * the sender's slot, a next keypair has become current, the keypair is `last`, and the slot's
 * receive time is `now_ms`.
 * A message that did not open changes no state (its bytes may be overwritten). A message longer
 * than PT_SEAL_MAX_PLAINTEXT + PT_SEAL_OVERHEAD cannot have been sealed: PT_OPEN_AUTH_FAILED.
 */
pt_open_result pt_seal_open(pt_seal *s, uint8_t *d, uint32_t len, uint64_t now_ms, uint32_t *slot);

/* Test seams: makes every keypair of `slot` `ms` older; sets the current keypair's counter. */
void pt_seal_age_for_test(pt_seal *s, uint32_t slot, uint64_t ms);
int pt_seal_set_counter_for_test(pt_seal *s, uint32_t slot, uint64_t counter);

#endif
