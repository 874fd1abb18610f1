/*
 * Keypairs, AEAD and replay window of the sealed data plane (see seal.h for the contracts).
 *
 * Open, per message:
 * 1. receiver index -> slot (its low bits) -> the slot's keypair with that local index;
 * 2. reject an expired keypair before spending work on it;
 * 3. decrypt in place and verify the tag;
 * 4. only then: replay window, promotion of a next keypair, the slot's `last` and receive time.
 *
 * libcrypto is Node's own: compiled against the OpenSSL headers Node ships (include/node/openssl)
 * and not linked, so the EVP symbols resolve against the node binary at load. One OpenSSL in the
 * process, the one Node is tested with; no libssl package needed to build or run the addon.
 */
#include "seal.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

/*
 * Replay window, RFC 6479 style as in WireGuard: a ring of 64-bit blocks; moving past the newest
 * counter clears whole blocks. Accepts any counter not seen yet that is at most REPLAY_WINDOW
 * behind the newest: 8128 messages, room for GSO bursts and reordering between queues.
 */
#define REPLAY_BLOCKS 128 /* a power of two */
#define REPLAY_WINDOW ((REPLAY_BLOCKS - 1) * 64)

typedef struct {
  uint64_t last; /* newest counter accepted */
  uint64_t ring[REPLAY_BLOCKS];
} replay_window;

struct pt_keypair {
  EVP_CIPHER_CTX *seal_ctx, *open_ctx; /* created at the first install, re-keyed afterwards */
  uint32_t local_index, remote_index;
  int64_t created_ms;
  uint64_t send_counter;
  uint8_t live, confirmed;
  uint8_t superseded; /* was `last`, then another keypair was: the peer has moved on from it */
  replay_window replay;
};

/* A role names one of a slot's PT_SEAL_KEYPAIRS keypairs: 1 + its index, or NONE. NONE is 0 so
 * that the zero-filled table needs no initialising write: a slot never used is never touched,
 * and its pages are never made resident. */
#define NONE 0
#define KP(sl, role) (&(sl)->kp[(role) - 1])

typedef struct {
  pt_keypair kp[PT_SEAL_KEYPAIRS];
  uint8_t cur, prev, next, kept; /* the roles (seal.h); a keypair has one role or is wiped */
  uint8_t last;                  /* the keypair the newest opened message used: the peer's sender */
  uint8_t received;
  int64_t last_recv_ms;
} seal_slot;

struct pt_seal {
  uint64_t keyed[PT_SEAL_SLOTS / 64]; /* slots that have cipher contexts: the only ones to visit */
  seal_slot slots[PT_SEAL_SLOTS];
};

_Static_assert(PT_SEAL_SLOTS == 4096, "the slot is the low 12 bits of a receiver index");

static void wr_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}
static uint32_t rd_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t rd_le64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}
static void wr_le64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++, v >>= 8) p[i] = (uint8_t)v;
}

/* 1 when `counter` is new and inside the window; records it. */
static int replay_accept(replay_window *w, uint64_t counter) {
  uint64_t block = counter >> 6;
  if (counter > w->last) {
    uint64_t cur = w->last >> 6, diff = block - cur;
    if (diff > REPLAY_BLOCKS) diff = REPLAY_BLOCKS;
    for (uint64_t i = cur + 1; i <= cur + diff; i++) w->ring[i & (REPLAY_BLOCKS - 1)] = 0;
    w->last = counter;
  } else if (w->last - counter > REPLAY_WINDOW) {
    return 0;
  }
  uint64_t *slot = &w->ring[block & (REPLAY_BLOCKS - 1)], bit = UINT64_C(1) << (counter & 63);
  if (*slot & bit) return 0;
  *slot |= bit;
  return 1;
}

uint64_t pt_seal_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void pt_seal_count_open(pt_seal_counters *c, pt_open_result r) {
  switch (r) {
    case PT_OPENED:
      c->opened++;
      break;
    case PT_OPEN_UNKNOWN_INDEX:
      c->unknown_index++;
      break;
    case PT_OPEN_AUTH_FAILED:
      c->auth_failed++;
      break;
    case PT_OPEN_REPLAYED:
      c->replayed++;
      break;
    case PT_OPEN_EXPIRED:
      c->expired++;
      break;
  }
}

static int is_keyed(const pt_seal *s, uint32_t slot) { return (s->keyed[slot / 64] >> (slot % 64)) & 1; }

pt_seal *pt_seal_new(void) {
  /* ~17 MiB of address space, mapped anonymous: a page stays unbacked until a slot on it is
   * written, so only slots in use cost memory. (calloc may serve this much from the heap when
   * glibc's mmap threshold has grown, and then zeroes, so touches, all of it.) */
  void *p = mmap(NULL, sizeof(pt_seal), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

/* Forgets a keypair: the contexts' key schedules are cleansed by OpenSSL on reset. */
static void drop(pt_keypair *kp) {
  if (kp->seal_ctx) EVP_CIPHER_CTX_reset(kp->seal_ctx);
  if (kp->open_ctx) EVP_CIPHER_CTX_reset(kp->open_ctx);
  EVP_CIPHER_CTX *seal_ctx = kp->seal_ctx, *open_ctx = kp->open_ctx;
  OPENSSL_cleanse(kp, sizeof *kp);
  kp->seal_ctx = seal_ctx;
  kp->open_ctx = open_ctx;
}

void pt_seal_free(pt_seal *s) {
  if (!s) return;
  for (uint32_t i = 0; i < PT_SEAL_SLOTS; i++) {
    if (!is_keyed(s, i)) continue;
    for (int k = 0; k < PT_SEAL_KEYPAIRS; k++) {
      pt_keypair *kp = &s->slots[i].kp[k];
      EVP_CIPHER_CTX_free(kp->seal_ctx); /* resets (cleanses) first */
      EVP_CIPHER_CTX_free(kp->open_ctx);
      OPENSSL_cleanse(kp, sizeof *kp);
    }
  }
  munmap(s, sizeof *s);
}

static void drop_role(seal_slot *sl, uint8_t *role) {
  if (*role == NONE) return;
  if (*role == sl->last) sl->last = NONE;
  drop(KP(sl, *role));
  *role = NONE;
}

static int64_t age_of(const pt_keypair *kp, uint64_t now_ms) { return (int64_t)now_ms - kp->created_ms; }

/*
 * The two steps of every rekey (an install, or the promotion of a next), which together are the
 * rule of seal.h: a keypair the peer may still seal with is never wiped by a rekey.
 *
 * First, a kept keypair is wiped once a message opened with another keypair since (the peer
 * moved on: it seals with that one now, and its own keypairs only ever get newer) or once it
 * expired. So `kept`, when there is one, is `last`.
 */
static void drop_stale_kept(seal_slot *sl, uint64_t now_ms) {
  if (sl->kept != NONE && (sl->kept != sl->last || age_of(KP(sl, sl->kept), now_ms) >= PT_REJECT_AFTER_MS))
    drop_role(sl, &sl->kept);
}

/* Then, a keypair leaving current / previous / next becomes `kept` when it is `last` (and has not
 * expired), else it is wiped. `last` is one keypair, so at most one is kept. */
static void retire(seal_slot *sl, uint8_t *role, uint64_t now_ms) {
  if (*role == NONE) return;
  if (*role != sl->last || age_of(KP(sl, *role), now_ms) >= PT_REJECT_AFTER_MS) {
    drop_role(sl, role);
    return;
  }
  drop_role(sl, &sl->kept); /* none after drop_stale_kept: `kept` would be `last` too */
  sl->kept = *role;
  *role = NONE;
}

/* A keypair no role holds. */
static uint8_t free_role(const seal_slot *sl) {
  for (uint8_t r = 1; r <= PT_SEAL_KEYPAIRS; r++)
    if (r != sl->cur && r != sl->prev && r != sl->next && r != sl->kept) return r;
  return NONE;
}

static int key_ctx(EVP_CIPHER_CTX **ctx, const EVP_CIPHER *cipher, const uint8_t *key, int enc) {
  if (!*ctx && !(*ctx = EVP_CIPHER_CTX_new())) return 0;
  /* Both ciphers default to the 12-byte nonce of the wire format; checked anyway. */
  return EVP_CipherInit_ex(*ctx, cipher, NULL, key, NULL, enc) == 1 && EVP_CIPHER_CTX_get_iv_length(*ctx) == 12;
}

int pt_seal_install(pt_seal *s, uint32_t slot, uint32_t local_index, uint32_t remote_index, const uint8_t *send_key,
                    const uint8_t *recv_key, int cipher, int initiator, uint64_t now_ms) {
  seal_slot *sl = &s->slots[slot];
  s->keyed[slot / 64] |= UINT64_C(1) << (slot % 64);
  /* The keypair this one replaces in any case leaves its role first: then at most three roles
   * are taken (current, next, kept or current, previous, kept), so one of the four is free. */
  drop_stale_kept(sl, now_ms);
  retire(sl, initiator ? &sl->prev : &sl->next, now_ms);
  uint8_t k = free_role(sl);
  if (k == NONE) return 0; /* cannot happen (see above) */
  pt_keypair *kp = KP(sl, k);
  const EVP_CIPHER *c = cipher == PT_CIPHER_AES_256_GCM ? EVP_aes_256_gcm() : EVP_chacha20_poly1305();
  if (!c || !key_ctx(&kp->seal_ctx, c, send_key, 1) || !key_ctx(&kp->open_ctx, c, recv_key, 0)) {
    drop(kp);
    return 0;
  }
  kp->local_index = local_index;
  kp->remote_index = remote_index;
  kp->created_ms = (int64_t)now_ms;
  kp->live = 1;
  if (!initiator) {
    sl->next = k;
    return 1;
  }
  if (sl->next != NONE) { /* a pending next is newer than current: it is the previous to keep */
    retire(sl, &sl->cur, now_ms);
    sl->prev = sl->next;
    sl->next = NONE;
  } else {
    sl->prev = sl->cur;
  }
  sl->cur = k;
  return 1;
}

int pt_seal_index_in_use(const pt_seal *s, uint32_t slot, uint32_t local_index) {
  const seal_slot *sl = &s->slots[slot];
  for (int k = 0; k < PT_SEAL_KEYPAIRS; k++)
    if (sl->kp[k].live && sl->kp[k].local_index == local_index) return 1;
  return 0;
}

void pt_seal_clear(pt_seal *s, uint32_t slot) {
  seal_slot *sl = &s->slots[slot];
  drop_role(sl, &sl->cur);
  drop_role(sl, &sl->prev);
  drop_role(sl, &sl->next);
  drop_role(sl, &sl->kept);
  sl->last = NONE;
  sl->received = 0;
  sl->last_recv_ms = 0;
}

void pt_seal_wipe(pt_seal *s) {
  for (uint32_t i = 0; i < PT_SEAL_SLOTS; i++)
    if (is_keyed(s, i)) pt_seal_clear(s, i);
}

static int may_seal(const pt_keypair *kp, uint64_t now_ms) {
  return age_of(kp, now_ms) < PT_REJECT_AFTER_MS && kp->send_counter < PT_REJECT_AFTER_MESSAGES;
}

void pt_seal_info_of(const pt_seal *s, uint32_t slot, uint64_t now_ms, pt_seal_info *info) {
  const seal_slot *sl = &s->slots[slot];
  const pt_keypair *cur = sl->cur != NONE ? KP(sl, sl->cur) : NULL;
  info->has_current = cur && may_seal(cur, now_ms);
  info->current_age_ms = cur ? age_of(cur, now_ms) : -1;
  info->send_counter = cur ? cur->send_counter : 0;
  info->has_next = sl->next != NONE;
  info->last_receive_age_ms = sl->received ? (int64_t)now_ms - sl->last_recv_ms : -1;
  info->confirmed = cur && cur->confirmed;
  info->keypairs = 0;
  for (int k = 0; k < PT_SEAL_KEYPAIRS; k++) info->keypairs += sl->kp[k].live;
}

pt_keypair *pt_seal_sender(pt_seal *s, uint32_t slot, uint64_t now_ms) {
  seal_slot *sl = &s->slots[slot];
  if (sl->cur == NONE) return NULL;
  pt_keypair *kp = KP(sl, sl->cur);
  return may_seal(kp, now_ms) ? kp : NULL;
}

static void nonce_of(uint8_t nonce[12], const uint8_t *counter_le) {
  memset(nonce, 0, 4);
  memcpy(nonce + 4, counter_le, 8);
}

int pt_seal_message(pt_keypair *kp, const struct iovec *pieces, uint32_t npieces, uint32_t plen, uint8_t *out) {
  if (kp->send_counter >= PT_REJECT_AFTER_MESSAGES) return 0;
  if (plen > PT_SEAL_MAX_PLAINTEXT) return -1; /* the (int) lengths below stay exact */
  /* The counter is taken before anything can fail: a nonce is never used twice. */
  uint64_t counter = kp->send_counter++;
  out[0] = PT_SEAL_VERSION;
  out[1] = PT_SEAL_TYPE_DATA;
  out[2] = out[3] = 0;
  wr_be32(out + PT_SEAL_OFFSET_RECEIVER, kp->remote_index);
  wr_le64(out + PT_SEAL_OFFSET_COUNTER, counter);
  uint8_t nonce[12];
  nonce_of(nonce, out + PT_SEAL_OFFSET_COUNTER);
  EVP_CIPHER_CTX *c = kp->seal_ctx;
  int n;
  if (EVP_EncryptInit_ex(c, NULL, NULL, NULL, nonce) != 1 || EVP_EncryptUpdate(c, NULL, &n, out, PT_SEAL_HEADER_LEN) != 1)
    return -1;
  uint8_t *p = out + PT_SEAL_HEADER_LEN;
  for (uint32_t i = 0; i < npieces; i++) {
    if (pieces[i].iov_len == 0) continue;
    if (EVP_EncryptUpdate(c, p, &n, pieces[i].iov_base, (int)pieces[i].iov_len) != 1) return -1;
    p += n;
  }
  if (EVP_EncryptFinal_ex(c, p, &n) != 1) return -1;
  p += n;
  if (p != out + PT_SEAL_HEADER_LEN + plen) return -1;
  return EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, PT_SEAL_TAG_LEN, p) == 1 ? 1 : -1;
}

/* 1 when the tag of message `d` verifies; the plaintext is then at d + PT_SEAL_HEADER_LEN. */
static int open_in_place(pt_keypair *kp, uint8_t *d, uint32_t len) {
  uint32_t plen = len - PT_SEAL_OVERHEAD;
  uint8_t nonce[12];
  nonce_of(nonce, d + PT_SEAL_OFFSET_COUNTER);
  EVP_CIPHER_CTX *c = kp->open_ctx;
  uint8_t *p = d + PT_SEAL_HEADER_LEN;
  int n, m;
  if (EVP_DecryptInit_ex(c, NULL, NULL, NULL, nonce) != 1 ||
      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, PT_SEAL_TAG_LEN, p + plen) != 1 ||
      EVP_DecryptUpdate(c, NULL, &n, d, PT_SEAL_HEADER_LEN) != 1)
    return 0;
  n = 0;
  if (plen && EVP_DecryptUpdate(c, p, &n, p, (int)plen) != 1) return 0;
  return EVP_DecryptFinal_ex(c, p + n, &m) == 1 && (uint32_t)(n + m) == plen;
}

pt_open_result pt_seal_open(pt_seal *s, uint8_t *d, uint32_t len, uint64_t now_ms, uint32_t *slot) {
  if (len < PT_SEAL_OVERHEAD || len - PT_SEAL_OVERHEAD > PT_SEAL_MAX_PLAINTEXT) return PT_OPEN_AUTH_FAILED;
  uint32_t index = rd_be32(d + PT_SEAL_OFFSET_RECEIVER);
  seal_slot *sl = &s->slots[index & PT_SEAL_SLOT_MASK];
  const uint8_t roles[PT_SEAL_KEYPAIRS] = {sl->cur, sl->next, sl->prev, sl->kept};
  uint8_t k = NONE;
  for (int r = 0; r < PT_SEAL_KEYPAIRS && k == NONE; r++)
    if (roles[r] != NONE && KP(sl, roles[r])->local_index == index) k = roles[r];
  if (k == NONE) return PT_OPEN_UNKNOWN_INDEX;
  pt_keypair *kp = KP(sl, k);
  if (age_of(kp, now_ms) >= PT_REJECT_AFTER_MS) return PT_OPEN_EXPIRED;
  if (!open_in_place(kp, d, len)) return PT_OPEN_AUTH_FAILED;
  uint64_t counter = rd_le64(d + PT_SEAL_OFFSET_COUNTER);
  if (counter >= PT_REJECT_AFTER_MESSAGES) return PT_OPEN_EXPIRED;
  if (!replay_accept(&kp->replay, counter)) return PT_OPEN_REPLAYED;
  kp->confirmed = 1;
  if (k == sl->next) {
    /* The initiator sealed with it: it holds the keypair, so it is safe to seal with now. The
     * retired previous is kept (it was `last`) or frees its cipher state: once per rekey, not
     * per packet. */
    drop_stale_kept(sl, now_ms);
    retire(sl, &sl->prev, now_ms);
    sl->prev = sl->cur;
    sl->cur = k;
    sl->next = NONE;
  }
  /* The peer's sending keypair only ever changes to a newer one: a message under one it moved on
   * from was reordered behind the switch, and does not make it `last` again. */
  if (k != sl->last && !kp->superseded) {
    if (sl->last != NONE) KP(sl, sl->last)->superseded = 1;
    sl->last = k;
  }
  sl->received = 1;
  sl->last_recv_ms = (int64_t)now_ms;
  *slot = index & PT_SEAL_SLOT_MASK;
  return PT_OPENED;
}

void pt_seal_age_for_test(pt_seal *s, uint32_t slot, uint64_t ms) {
  seal_slot *sl = &s->slots[slot];
  for (int k = 0; k < PT_SEAL_KEYPAIRS; k++)
    if (sl->kp[k].live) sl->kp[k].created_ms -= (int64_t)ms;
}

int pt_seal_set_counter_for_test(pt_seal *s, uint32_t slot, uint64_t counter) {
  seal_slot *sl = &s->slots[slot];
  if (sl->cur == NONE) return 0;
  KP(sl, sl->cur)->send_counter = counter;
  return 1;
}
