/*
 * Node-API registration: openTun, openUdp, openSealer, host facts (cpuHasAesHw, raiseNofileLimit),
 * and the pure split/merge paths and keypair seams for tests.
 * Context aware (NAPI_MODULE_INIT): every thread that loads it gets its own pt_module.
 */
#include <stdlib.h>
#include <string.h>

#include "module.h"
#include "napi-util.h"
#include "offload.h"
#include "seal-napi.h"

napi_value pt_construct(napi_env env, napi_callback_info info) {
  napi_value self;
  if (napi_get_cb_info(env, info, NULL, NULL, &self, NULL) != napi_ok) return NULL;
  return self;
}

napi_value pt_new_instance(napi_env env, napi_ref ref) {
  napi_value cls, obj;
  if (napi_get_reference_value(env, ref, &cls) != napi_ok || napi_new_instance(env, cls, 0, NULL, &obj) != napi_ok)
    return NULL;
  return obj;
}

/* Output of the test paths: packets laid end to end in `out`, pairs in `offs`. */
typedef struct {
  pt_sink sink; /* first: the sink callbacks cast back */
  uint8_t *out;
  size_t out_len, pos;
  int32_t *offs;
  size_t offs_len;
  uint32_t count;
  int full;
} test_out;

static int test_out_has_room(test_out *o, size_t len) {
  if (o->pos + len <= o->out_len && 2 * (size_t)o->count + 1 < o->offs_len) return 1;
  o->full = 1;
  return 0;
}

static void test_out_commit(pt_sink *s, uint32_t len) {
  test_out *o = (test_out *)s;
  o->offs[2 * o->count] = (int32_t)o->pos;
  o->offs[2 * o->count + 1] = (int32_t)len;
  o->pos += len;
  o->count++;
}

static uint8_t *test_out_reserve(pt_sink *s, uint32_t len) {
  test_out *o = (test_out *)s;
  return test_out_has_room(o, len) ? o->out + o->pos : NULL;
}

static int get_out(napi_env env, napi_value out, napi_value offs, test_out *o) {
  memset(o, 0, sizeof *o);
  o->sink = (pt_sink){test_out_reserve, test_out_commit};
  return pt_get_bytes(env, out, "out", &o->out, &o->out_len) && pt_get_i32s(env, offs, "outOffs", &o->offs, &o->offs_len);
}

/* splitForTest(pkt, out, outOffs) -> segments, or -1 when the packet is malformed */
static napi_value split_for_test(napi_env env, napi_callback_info info) {
  napi_value argv[3], result;
  uint8_t *pkt;
  size_t len;
  test_out o;
  if (!pt_args(env, info, 3, argv, NULL, NULL) || !pt_get_bytes(env, argv[0], "pkt", &pkt, &len) ||
      !get_out(env, argv[1], argv[2], &o))
    return NULL;
  int n = pt_emit_plain(pkt, (uint32_t)len, &o.sink);
  if (n == PT_NO_ROOM) {
    pt_throw_range(env, "out or outOffs too small");
    return NULL;
  }
  napi_create_int32(env, n < 0 ? -1 : n, &result);
  return result;
}

typedef struct {
  const uint8_t *buf;
  size_t buf_len;
  const int32_t *offs;
  size_t offs_len;
} test_in;

static int test_in_at(void *ctx, uint32_t i, const uint8_t **pkt, uint32_t *len) {
  const test_in *in = ctx;
  if (2 * (size_t)i + 1 >= in->offs_len) return 0;
  int32_t off = in->offs[2 * i], n = in->offs[2 * i + 1];
  if (off < 0 || n < 0 || (size_t)off + (size_t)n > in->buf_len) return 0;
  *pkt = in->buf + off;
  *len = (uint32_t)n;
  return 1;
}

/* Copies what write(bare) would hand to the kernel: one packet from the iovecs. */
static int test_out_writev(void *ctx, const struct iovec *iov, int niov, uint32_t npkts) {
  (void)npkts;
  test_out *o = ctx;
  size_t len = 0;
  for (int i = 0; i < niov; i++) len += iov[i].iov_len;
  if (!test_out_has_room(o, len)) return 0;
  uint8_t *d = o->out + o->pos;
  for (int i = 0; i < niov; i++) {
    memcpy(d, iov[i].iov_base, iov[i].iov_len);
    d += iov[i].iov_len;
  }
  test_out_commit(&o->sink, (uint32_t)len);
  return 1;
}

/* mergeForTest(buf, offs, count, out, outOffs) -> virtio packets written to out */
static napi_value merge_for_test(napi_env env, napi_callback_info info) {
  napi_value argv[5], result;
  test_in in;
  int64_t count;
  test_out o;
  if (!pt_args(env, info, 5, argv, NULL, NULL) ||
      !pt_get_bytes(env, argv[0], "buf", (uint8_t **)&in.buf, &in.buf_len) ||
      !pt_get_i32s(env, argv[1], "offs", (int32_t **)&in.offs, &in.offs_len) ||
      !pt_get_int(env, argv[2], "count", 0, (int64_t)(in.offs_len / 2), &count) || !get_out(env, argv[3], argv[4], &o))
    return NULL;
  pt_coalescer co;
  pt_coalesce_stats stats = {0};
  pt_coalesce(&co, test_in_at, &in, (uint32_t)count, test_out_writev, &o, &stats);
  if (o.full) {
    pt_throw_range(env, "out or outOffs too small");
    return NULL;
  }
  napi_create_uint32(env, o.count, &result);
  return result;
}

/* The keypair table of the NativeUdp or NativeSealer `v` (argv[0] of a seam), or NULL after throwing. */
static pt_seal *seal_table_of(napi_env env, napi_value v) {
  pt_module *mod;
  napi_value udp_cls, sealer_cls;
  bool is_udp = false, is_sealer = false;
  void *obj = NULL;
  if (napi_get_instance_data(env, (void **)&mod) == napi_ok &&
      napi_get_reference_value(env, mod->udp_class, &udp_cls) == napi_ok &&
      napi_get_reference_value(env, mod->sealer_class, &sealer_cls) == napi_ok &&
      napi_instanceof(env, v, udp_cls, &is_udp) == napi_ok && napi_instanceof(env, v, sealer_cls, &is_sealer) == napi_ok &&
      (is_udp || is_sealer) && napi_unwrap(env, v, &obj) == napi_ok && obj)
    return is_udp ? pt_udp_seal_table(env, obj) : pt_sealer_seal_table(env, obj);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "owner must be a NativeUdp or a NativeSealer");
  return NULL;
}

/* ageKeypairsForTest(owner, slot, ms): the expiry seam (REJECT_AFTER_MS without waiting 3 min). */
static napi_value age_keypairs_for_test(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int64_t slot, ms;
  pt_seal *t;
  if (!pt_args(env, info, 3, argv, NULL, NULL) || !(t = seal_table_of(env, argv[0])) ||
      !pt_get_seal_slot(env, argv[1], &slot) || !pt_get_int(env, argv[2], "ms", 0, INT32_MAX, &ms))
    return NULL;
  pt_seal_age_for_test(t, (uint32_t)slot, (uint64_t)ms);
  return NULL;
}

/* setSendCounterForTest(owner, slot, counter: bigint): the REJECT_AFTER_MESSAGES seam. */
static napi_value set_send_counter_for_test(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int64_t slot;
  uint64_t counter;
  bool lossless;
  pt_seal *t;
  if (!pt_args(env, info, 3, argv, NULL, NULL) || !(t = seal_table_of(env, argv[0])) ||
      !pt_get_seal_slot(env, argv[1], &slot))
    return NULL;
  if (napi_get_value_bigint_uint64(env, argv[2], &counter, &lossless) != napi_ok || !lossless) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "counter must be a bigint in [0, 2^64)");
    return NULL;
  }
  if (!pt_seal_set_counter_for_test(t, (uint32_t)slot, counter))
    pt_throw(env, "ERR_PODTUN_NO_KEYPAIR", "slot %lld has no current keypair", (long long)slot);
  return NULL;
}

static void module_free(napi_env env, void *data, void *hint) {
  (void)hint;
  pt_module *mod = data;
  napi_delete_reference(env, mod->tun_class);
  napi_delete_reference(env, mod->udp_class);
  napi_delete_reference(env, mod->sealer_class);
  free(mod);
}

NAPI_MODULE_INIT() {
  pt_module *mod = calloc(1, sizeof *mod);
  napi_value tun_cls = pt_tun_define_class(env), udp_cls = pt_udp_define_class(env),
             sealer_cls = pt_sealer_define_class(env);
  if (!mod || !tun_cls || !udp_cls || !sealer_cls || napi_create_reference(env, tun_cls, 1, &mod->tun_class) != napi_ok ||
      napi_create_reference(env, udp_cls, 1, &mod->udp_class) != napi_ok ||
      napi_create_reference(env, sealer_cls, 1, &mod->sealer_class) != napi_ok ||
      napi_set_instance_data(env, mod, module_free, NULL) != napi_ok) {
    free(mod);
    napi_throw_error(env, "ERR_PODTUN_INTERNAL", "cannot initialise the podtun addon");
    return NULL;
  }
  napi_value headroom, aes_hw;
  if (napi_create_uint32(env, PT_HEADROOM, &headroom) != napi_ok ||
      napi_get_boolean(env, pt_cpu_has_aes_hw(), &aes_hw) != napi_ok)
    return NULL;
  napi_property_descriptor fns[] = {
      {"tunHeadroom", NULL, NULL, NULL, NULL, headroom, napi_enumerable, NULL},
      {"cpuHasAesHw", NULL, NULL, NULL, NULL, aes_hw, napi_enumerable, NULL},
      {"raiseNofileLimit", NULL, pt_raise_nofile_limit, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ageKeypairsForTest", NULL, age_keypairs_for_test, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setSendCounterForTest", NULL, set_send_counter_for_test, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openTun", NULL, pt_open_tun, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openUdp", NULL, pt_open_udp, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openSealer", NULL, pt_open_sealer, NULL, NULL, NULL, napi_enumerable, NULL},
      {"splitForTest", NULL, split_for_test, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mergeForTest", NULL, merge_for_test, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns) != napi_ok) return NULL;
  return exports;
}
