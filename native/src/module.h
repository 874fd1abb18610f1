/* Per-environment state of the addon (one per main thread or worker that loads it). */
#ifndef PODTUN_MODULE_H
#define PODTUN_MODULE_H

#include <node_api.h>

typedef struct {
  napi_ref tun_class;
  napi_ref udp_class;
} pt_module;

/* The class constructors; each binding creates its instances through these. */
napi_value pt_tun_define_class(napi_env env);
napi_value pt_udp_define_class(napi_env env);

/* Exported functions. */
napi_value pt_open_tun(napi_env env, napi_callback_info info);
napi_value pt_open_udp(napi_env env, napi_callback_info info);
napi_value pt_raise_nofile_limit(napi_env env, napi_callback_info info);
napi_value pt_age_keypairs_for_test(napi_env env, napi_callback_info info);
napi_value pt_set_send_counter_for_test(napi_env env, napi_callback_info info);

/* 1 when AES-256-GCM runs in hardware here (x86: AES-NI and PCLMULQDQ). */
int pt_cpu_has_aes_hw(void);

/* Constructor of both classes: instances only come from openTun/openUdp, which wrap them. */
napi_value pt_construct(napi_env env, napi_callback_info info);

/* A new, unwrapped instance of the class in `ref`. */
napi_value pt_new_instance(napi_env env, napi_ref ref);

#endif
