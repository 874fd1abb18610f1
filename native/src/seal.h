/*
 * The sealed data plane: per-slot keypairs, the AEAD of transport data messages and their replay
 * window (tunnel/seal/sealed-format.ts has the wire format, WireGuard's section 5.4.6):
 *
 *   | version 2 | type 4 | reserved 0 (u16) | receiver index (u32 BE) | counter (u64 LE) | ciphertext | tag 16 |
 *
 * nonce = 4 zero bytes || counter (LE), additional data = the 16-byte header.
 *
 * Keypairs of a slot (WireGuard's current / previous / next):
 * - current seals and opens; previous only opens (packets sealed before a rekey still arrive);
 * - next is a responder's keypair the initiator has not used yet: it only opens, and the first
 *   message that opens with it makes it current (the old current becomes previous), so a
 *   responder never seals with a keypair its peer may not hold.
 *
 * Every EVP context is keyed once when installed; a packet only sets its nonce. Nothing here
 * allocates per packet: keypairs live in a table allocated with the socket, contexts are created
 * when first installed and re-keyed afterwards. Single-threaded (the JS thread).
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

#define PT_SEAL_SLOT_BITS 12
#define PT_SEAL_SLOTS (1u << PT_SEAL_SLOT_BITS)
#define PT_SEAL_SLOT_MASK (PT_SEAL_SLOTS - 1)

#define PT_CIPHER_CHACHA20_POLY1305 0
#define PT_CIPHER_AES_256_GCM 1

/* WireGuard's limits: no keypair seals or opens past these. */
#define PT_REJECT_AFTER_MS 180000
#define PT_REJECT_AFTER_MESSAGES (UINT64_MAX - (UINT64_C(1) << 13)) /* 2^64 - 2^13 - 1 */

/* Why a data message did not open. */
typedef enum {
  PT_OPENED = 0,
  PT_OPEN_UNKNOWN_INDEX,
  PT_OPEN_AUTH_FAILED, /* tag does not verify, or shorter than header + tag */
  PT_OPEN_REPLAYED,    /* counter seen already, or behind the window */
  PT_OPEN_EXPIRED,     /* keypair older than PT_REJECT_AFTER_MS, or counter past its limit */
} pt_open_result;

typedef struct pt_keypair pt_keypair;
typedef struct pt_seal pt_seal;

/* The keypair table of one socket (all slots empty), or NULL without memory. */
pt_seal *pt_seal_new(void);
/* Wipes and frees every keypair, then the table. */
void pt_seal_free(pt_seal *s);

/* CLOCK_MONOTONIC in milliseconds: the clock of keypair ages. */
uint64_t pt_seal_now_ms(void);

/*
 * Installs a keypair in `slot` (keys are only read; the contexts keep the expanded keys).
 * initiator: it becomes current at once; the old current (or, when a next was pending, that
 * next, the newer of the two) becomes previous, the rest is wiped.
 * responder: it becomes next, replacing (wiping) an earlier next.
 * Returns 1, or 0 when the cipher could not be keyed: the keypair it would have replaced is gone,
 * the others are as they were.
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
} pt_seal_info;

void pt_seal_info_of(const pt_seal *s, uint32_t slot, uint64_t now_ms, pt_seal_info *info);

/* The keypair `slot` seals with, or NULL when it has none that may still seal. */
pt_keypair *pt_seal_sender(pt_seal *s, uint32_t slot, uint64_t now_ms);

/*
 * Seals one message with `kp`: the plaintext is the concatenation of `pieces` (`plen` bytes,
 * only read), the sealed message (plen + PT_SEAL_OVERHEAD bytes) is written to `out`, which must
 * not overlap them. Takes the next counter. Returns 1; 0 when the keypair's counter is spent;
 * -1 when the cipher failed (nothing usable in `out`).
 */
int pt_seal_message(pt_keypair *kp, const struct iovec *pieces, uint32_t npieces, uint32_t plen, uint8_t *out);

/*
 * Opens a data message in place (`d`, `len` bytes, version and type already checked): finds the
 * keypair by receiver index, verifies the tag, writes the plaintext over the ciphertext at
 * d + PT_SEAL_HEADER_LEN, then checks and updates the replay window. On PT_OPENED: `*slot` is
 * the sender's slot, a next keypair has become current, and the slot's receive time is `now_ms`.
 * A message that did not open changes no state (its bytes may be overwritten).
 */
pt_open_result pt_seal_open(pt_seal *s, uint8_t *d, uint32_t len, uint64_t now_ms, uint32_t *slot);

/* Test seams: makes every keypair of `slot` `ms` older; sets the current keypair's counter. */
void pt_seal_age_for_test(pt_seal *s, uint32_t slot, uint64_t ms);
int pt_seal_set_counter_for_test(pt_seal *s, uint32_t slot, uint64_t counter);

#endif
