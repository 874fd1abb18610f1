/* Per-environment state of the addon (one per main thread or worker that loads it). */
#ifndef PODTUN_MODULE_H
#define PODTUN_MODULE_H

#include <node_api.h>

#include "seal.h"

typedef struct {
  napi_ref tun_class;
  napi_ref udp_class;
  napi_ref sealer_class;
} pt_module;

/* The class constructors; each binding creates its instances through these. */
napi_value pt_tun_define_class(napi_env env);
napi_value pt_udp_define_class(napi_env env);
napi_value pt_sealer_define_class(napi_env env);

/* Exported functions. */
napi_value pt_open_tun(napi_env env, napi_callback_info info);
napi_value pt_open_udp(napi_env env, napi_callback_info info);
napi_value pt_open_sealer(napi_env env, napi_callback_info info);
napi_value pt_raise_nofile_limit(napi_env env, napi_callback_info info);

/* The keypair table of an unwrapped NativeUdp / NativeSealer, for the test seams; NULL after
 * throwing (ERR_PODTUN_NOT_SEALED / ERR_PODTUN_CLOSED). */
pt_seal *pt_udp_seal_table(napi_env env, void *udp);
pt_seal *pt_sealer_seal_table(napi_env env, void *sealer);

/* 1 when AES-256-GCM runs in hardware here (x86: AES-NI and PCLMULQDQ). */
int pt_cpu_has_aes_hw(void);

/* Constructor of every class: instances only come from openTun/openUdp/openSealer, which wrap them. */
napi_value pt_construct(napi_env env, napi_callback_info info);

/* A new, unwrapped instance of the class in `ref`. */
napi_value pt_new_instance(napi_env env, napi_ref ref);

#endif
