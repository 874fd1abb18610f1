/* Bindings of a keypair table, shared by NativeUdp and NativeSealer (see seal-napi.h). */
#include "seal-napi.h"

#include "napi-util.h"

int pt_get_seal_slot(napi_env env, napi_value v, int64_t *slot) {
  return pt_get_int(env, v, "slot", 0, PT_SEAL_SLOTS - 1, slot);
}

static int get_key(napi_env env, napi_value v, const char *name, uint8_t **key) {
  size_t len;
  if (!pt_get_bytes(env, v, name, key, &len)) return 0;
  if (len == PT_SEAL_KEY_LEN) return 1;
  pt_throw_range(env, "%s must be %d bytes, not %zu", name, PT_SEAL_KEY_LEN, len);
  return 0;
}

void pt_seal_napi_install(napi_env env, pt_seal *s, const napi_value *argv) {
  int64_t slot, local, remote, cipher;
  uint8_t *send_key, *recv_key;
  int initiator;
  if (!pt_get_seal_slot(env, argv[0], &slot) || !pt_get_int(env, argv[1], "localIndex", 0, UINT32_MAX, &local) ||
      !pt_get_int(env, argv[2], "remoteIndex", 0, UINT32_MAX, &remote) || !get_key(env, argv[3], "sendKey", &send_key) ||
      !get_key(env, argv[4], "recvKey", &recv_key) ||
      !pt_get_int(env, argv[5], "cipher", PT_CIPHER_CHACHA20_POLY1305, PT_CIPHER_AES_256_GCM, &cipher) ||
      !pt_get_bool(env, argv[6], "initiator", &initiator))
    return;
  /* The data path finds the slot from the index alone (no lookup table). */
  if (((uint32_t)local & PT_SEAL_SLOT_MASK) != (uint32_t)slot) {
    pt_throw_range(env, "localIndex 0x%08x does not name slot %lld: its low %d bits must equal the slot", (uint32_t)local,
                   (long long)slot, PT_SEAL_SLOT_BITS);
    return;
  }
  if (pt_seal_index_in_use(s, (uint32_t)slot, (uint32_t)local)) {
    pt_throw(env, "ERR_PODTUN_SEAL_INDEX_IN_USE", "localIndex 0x%08x is already used by a keypair of slot %lld",
             (uint32_t)local, (long long)slot);
    return;
  }
  if (!pt_seal_install(s, (uint32_t)slot, (uint32_t)local, (uint32_t)remote, send_key, recv_key, (int)cipher, initiator,
                       pt_seal_now_ms()))
    pt_throw(env, "ERR_PODTUN_SEAL_KEY", "cannot key the %s cipher of slot %lld",
             cipher == PT_CIPHER_AES_256_GCM ? "AES-256-GCM" : "ChaCha20-Poly1305", (long long)slot);
}

void pt_seal_napi_clear(napi_env env, pt_seal *s, napi_value slot_v) {
  int64_t slot;
  if (pt_get_seal_slot(env, slot_v, &slot)) pt_seal_clear(s, (uint32_t)slot);
}

static int set_number(napi_env env, napi_value obj, const char *key, double v) {
  napi_value n;
  return napi_create_double(env, v, &n) == napi_ok && napi_set_named_property(env, obj, key, n) == napi_ok;
}

static int set_bool(napi_env env, napi_value obj, const char *key, int v) {
  napi_value b;
  return napi_get_boolean(env, v, &b) == napi_ok && napi_set_named_property(env, obj, key, b) == napi_ok;
}

napi_value pt_seal_napi_info(napi_env env, const pt_seal *s, napi_value slot_v) {
  int64_t slot;
  napi_value obj;
  if (!pt_get_seal_slot(env, slot_v, &slot)) return NULL;
  pt_seal_info i;
  pt_seal_info_of(s, (uint32_t)slot, pt_seal_now_ms(), &i);
  if (napi_create_object(env, &obj) != napi_ok || !set_bool(env, obj, "hasCurrent", i.has_current) ||
      !set_number(env, obj, "currentAgeMs", (double)i.current_age_ms) ||
      !set_number(env, obj, "sendCounter", (double)i.send_counter) || !set_bool(env, obj, "hasNext", i.has_next) ||
      !set_number(env, obj, "lastReceiveAgeMs", (double)i.last_receive_age_ms) ||
      !set_bool(env, obj, "confirmed", i.confirmed) || !set_number(env, obj, "keypairs", i.keypairs))
    return NULL;
  return obj;
}

int pt_seal_napi_counters(napi_env env, napi_value obj, const pt_seal_counters *c) {
  const char *const names[] = {
      "noKeypairDrops", "sealSealed", "sealOpened", "sealUnknownIndex", "sealAuthFailed", "sealReplayed", "sealExpired",
  };
  const uint64_t values[] = {
      c->no_keypair_drops, c->sealed, c->opened, c->unknown_index, c->auth_failed, c->replayed, c->expired,
  };
  _Static_assert(sizeof names / sizeof names[0] == sizeof values / sizeof values[0], "one name per counter");
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
    if (!set_number(env, obj, names[i], (double)values[i])) return 0;
  return 1;
}
