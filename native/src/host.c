/*
 * Facts about and settings of the host process, for the daemon's start: whether AES-GCM runs in
 * hardware here (advertised in the handshake, so peers pick the faster cipher), and the open-file
 * limit (one socket per peer connection, TUN queues, watchers).
 */
#include <errno.h>
#include <sys/resource.h>

#include "module.h"
#include "napi-util.h"

int pt_cpu_has_aes_hw(void) {
#if defined(__x86_64__) || defined(__i386__)
  /* AES-NI for the rounds, PCLMULQDQ for GHASH: without either, AES-GCM is slower than ChaCha20. */
  __builtin_cpu_init();
  return __builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul");
#else
  return 0;
#endif
}

/* raiseNofileLimit() -> { soft, hard }: the soft RLIMIT_NOFILE raised to the hard one. */
napi_value pt_raise_nofile_limit(napi_env env, napi_callback_info info) {
  (void)info;
  struct rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) < 0) {
    pt_throw_errno(env, "ERR_PODTUN_RLIMIT", errno, "cannot read the open-file limit");
    return NULL;
  }
  if (r.rlim_cur != r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &r) < 0) {
      pt_throw_errno(env, "ERR_PODTUN_RLIMIT", errno, "cannot raise the open-file limit to %llu",
                     (unsigned long long)r.rlim_max);
      return NULL;
    }
  }
  napi_value obj, soft, hard;
  double infinity = __builtin_inf();
  if (napi_create_object(env, &obj) != napi_ok ||
      napi_create_double(env, r.rlim_cur == RLIM_INFINITY ? infinity : (double)r.rlim_cur, &soft) != napi_ok ||
      napi_create_double(env, r.rlim_max == RLIM_INFINITY ? infinity : (double)r.rlim_max, &hard) != napi_ok ||
      napi_set_named_property(env, obj, "soft", soft) != napi_ok || napi_set_named_property(env, obj, "hard", hard) != napi_ok)
    return NULL;
  return obj;
}
