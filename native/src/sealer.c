/*
 * NativeSealer: a keypair table (seal.c) with no socket, for transports that carry sealed
 * messages over something else (the WebSocket transport seals each WebSocket message as one
 * transport data message). The keys, counters, replay windows and rules are those of a sealed
 * NativeUdp; only the framing around a message differs.
 *
 * Data path, per call: argument views (no copies), one clock read, one AEAD pass over the
 * message, a small integer back. Nothing is allocated and nothing thrown for a message that does
 * not open or seal: it is counted and answered with a negative number. Misuse (offsets out of
 * range, overlapping buffers, use after close) throws.
 *
 * close() frees the table at once: the cipher contexts are cleansed by OpenSSL, the rest unmapped.
 */
#include <stdint.h>
#include <stdlib.h>

#include "module.h"
#include "napi-util.h"
#include "seal-napi.h"

typedef struct {
  pt_seal *seal; /* NULL once closed */
  pt_seal_counters sc;
  uint64_t not_data, error_drops;
} pt_sealer;

_Static_assert(PT_OPEN_UNKNOWN_INDEX == 1 && PT_OPEN_AUTH_FAILED == 2 && PT_OPEN_REPLAYED == 3 && PT_OPEN_EXPIRED == 4,
               "open() returns the negated reason: -1 .. -4 in addon.ts");
#define OPEN_NOT_DATA (-5)

static int check_open(napi_env env, const pt_sealer *s) {
  if (s->seal) return 1;
  pt_throw(env, "ERR_PODTUN_CLOSED", "sealer used after close()");
  return 0;
}

/* A byte range [off, off + len) of a Buffer argument; `len` at most `max_len`. */
static int get_range(napi_env env, napi_value buf_v, napi_value off_v, napi_value len_v, const char *name, int64_t max_len,
                     uint8_t **p, int64_t *len) {
  uint8_t *data;
  size_t size;
  int64_t off;
  if (!pt_get_bytes(env, buf_v, name, &data, &size) || !pt_get_int(env, off_v, "offset", 0, (int64_t)size, &off)) return 0;
  int64_t room = (int64_t)size - off;
  if (!pt_get_int(env, len_v, "len", 0, room < max_len ? room : max_len, len)) return 0;
  *p = data + off;
  return 1;
}

static napi_value int_result(napi_env env, int32_t v) {
  napi_value r;
  return napi_create_int32(env, v, &r) == napi_ok ? r : NULL;
}

/* seal(slot, src, srcOff, len, dst, dstOff) -> bytes written (len + 32), or -1 */
static napi_value sealer_seal(napi_env env, napi_callback_info info) {
  pt_sealer *s;
  napi_value argv[6];
  int64_t slot, len, dst_off;
  uint8_t *src, *dst;
  size_t dst_size;
  if (!pt_args(env, info, 6, argv, (void **)&s, NULL) || !check_open(env, s) || !pt_get_seal_slot(env, argv[0], &slot) ||
      !get_range(env, argv[1], argv[2], argv[3], "src", PT_SEAL_MAX_PLAINTEXT, &src, &len) ||
      !pt_get_bytes(env, argv[4], "dst", &dst, &dst_size) ||
      !pt_get_int(env, argv[5], "dstOff", 0, (int64_t)dst_size, &dst_off))
    return NULL;
  if ((int64_t)dst_size - dst_off < len + PT_SEAL_OVERHEAD) {
    pt_throw_range(env, "dst has %lld bytes from dstOff, the sealed message needs %lld", (long long)dst_size - dst_off,
                   (long long)len + PT_SEAL_OVERHEAD);
    return NULL;
  }
  uint8_t *out = dst + dst_off;
  /* In place (the plaintext where the ciphertext goes) is fine; any other overlap is not. */
  uintptr_t in_at = (uintptr_t)src, out_at = (uintptr_t)out;
  if (len > 0 && in_at != out_at + PT_SEAL_HEADER_LEN && in_at < out_at + (uint64_t)len + PT_SEAL_OVERHEAD &&
      out_at < in_at + (uint64_t)len) {
    pt_throw_range(env, "dst overlaps src: seal into another region, or in place (src at dstOff + %d)",
                   PT_SEAL_HEADER_LEN);
    return NULL;
  }
  pt_keypair *kp = pt_seal_sender(s->seal, (uint32_t)slot, pt_seal_now_ms());
  struct iovec piece = {src, (size_t)len};
  int r = kp ? pt_seal_message(kp, &piece, 1, (uint32_t)len, out) : 0;
  if (r == 1) {
    s->sc.sealed++;
    return int_result(env, (int32_t)(len + PT_SEAL_OVERHEAD));
  }
  if (r == 0) s->sc.no_keypair_drops++;
  else s->error_drops++;
  return int_result(env, -1);
}

/* open(buf, off, len) -> the slot (>= 0), or -1 .. -5 */
static napi_value sealer_open(napi_env env, napi_callback_info info) {
  pt_sealer *s;
  napi_value argv[3];
  uint8_t *d;
  int64_t len;
  if (!pt_args(env, info, 3, argv, (void **)&s, NULL) || !check_open(env, s) ||
      !get_range(env, argv[0], argv[1], argv[2], "buf", UINT32_MAX, &d, &len))
    return NULL;
  if (!pt_seal_is_data(d, (uint32_t)len)) {
    s->not_data++;
    return int_result(env, OPEN_NOT_DATA);
  }
  uint32_t slot;
  pt_open_result r = pt_seal_open(s->seal, d, (uint32_t)len, pt_seal_now_ms(), &slot);
  pt_seal_count_open(&s->sc, r);
  return int_result(env, r == PT_OPENED ? (int32_t)slot : -(int32_t)r);
}

/* installKeypair(slot, localIndex, remoteIndex, sendKey, recvKey, cipher, initiator) */
static napi_value sealer_install_keypair(napi_env env, napi_callback_info info) {
  pt_sealer *s;
  napi_value argv[7];
  if (pt_args(env, info, 7, argv, (void **)&s, NULL) && check_open(env, s)) pt_seal_napi_install(env, s->seal, argv);
  return NULL;
}

static napi_value sealer_clear_keypairs(napi_env env, napi_callback_info info) {
  pt_sealer *s;
  napi_value argv[1];
  if (pt_args(env, info, 1, argv, (void **)&s, NULL) && check_open(env, s)) pt_seal_napi_clear(env, s->seal, argv[0]);
  return NULL;
}

static napi_value sealer_keypair_info(napi_env env, napi_callback_info info) {
  pt_sealer *s;
  napi_value argv[1];
  if (!pt_args(env, info, 1, argv, (void **)&s, NULL) || !check_open(env, s)) return NULL;
  return pt_seal_napi_info(env, s->seal, argv[0]);
}

/* stats(): also after close (final counters). */
static napi_value sealer_stats(napi_env env, napi_callback_info info) {
  pt_sealer *s;
  if (!pt_args(env, info, 0, NULL, (void **)&s, NULL)) return NULL;
  static const char *const names[] = {"sealNotData", "errorDrops"};
  const uint64_t values[] = {s->not_data, s->error_drops};
  napi_value obj = pt_counters(env, names, values, sizeof values / sizeof values[0]);
  return obj && pt_seal_napi_counters(env, obj, &s->sc) ? obj : NULL;
}

static napi_value sealer_close(napi_env env, napi_callback_info info) {
  pt_sealer *s;
  if (!pt_args(env, info, 0, NULL, (void **)&s, NULL)) return NULL;
  pt_seal_free(s->seal);
  s->seal = NULL;
  return NULL;
}

pt_seal *pt_sealer_seal_table(napi_env env, void *sealer) {
  pt_sealer *s = sealer;
  return check_open(env, s) ? s->seal : NULL;
}

static void sealer_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  pt_sealer *s = data;
  pt_seal_free(s->seal);
  free(s);
}

/* openSealer() -> NativeSealer */
napi_value pt_open_sealer(napi_env env, napi_callback_info info) {
  (void)info;
  pt_module *mod;
  if (napi_get_instance_data(env, (void **)&mod) != napi_ok) return NULL;
  napi_value obj = pt_new_instance(env, mod->sealer_class);
  if (!obj) return NULL;
  pt_sealer *s = calloc(1, sizeof *s);
  pt_seal *seal = s ? pt_seal_new() : NULL;
  if (!seal) {
    free(s);
    pt_throw(env, "ERR_PODTUN_SEALER_OPEN", "cannot open a sealer: out of memory");
    return NULL;
  }
  s->seal = seal;
  if (napi_wrap(env, obj, s, sealer_finalize, NULL, NULL) != napi_ok) {
    sealer_finalize(env, s, NULL);
    pt_throw(env, "ERR_PODTUN_INTERNAL", "cannot wrap the sealer object");
    return NULL;
  }
  return obj;
}

napi_value pt_sealer_define_class(napi_env env) {
  napi_property_descriptor props[] = {
      {"installKeypair", NULL, sealer_install_keypair, NULL, NULL, NULL, napi_default, NULL},
      {"clearKeypairs", NULL, sealer_clear_keypairs, NULL, NULL, NULL, napi_default, NULL},
      {"keypairInfo", NULL, sealer_keypair_info, NULL, NULL, NULL, napi_default, NULL},
      {"seal", NULL, sealer_seal, NULL, NULL, NULL, napi_default, NULL},
      {"open", NULL, sealer_open, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, sealer_stats, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, sealer_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls;
  if (napi_define_class(env, "NativeSealer", NAPI_AUTO_LENGTH, pt_construct, NULL, sizeof props / sizeof props[0], props,
                        &cls) != napi_ok)
    return NULL;
  return cls;
}
