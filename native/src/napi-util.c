#include "napi-util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void throw_with(napi_env env, const char *code, const char *msg, int err, int range) {
  napi_value code_v, msg_v, error;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_v) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &msg_v) != napi_ok)
    return;
  napi_status st = range ? napi_create_range_error(env, code_v, msg_v, &error)
                         : napi_create_error(env, code_v, msg_v, &error);
  if (st != napi_ok) return;
  if (err) {
    napi_value errno_v;
    if (napi_create_int32(env, err, &errno_v) == napi_ok) napi_set_named_property(env, error, "errno", errno_v);
  }
  napi_throw(env, error);
}

void pt_throw_errno(napi_env env, const char *code, int err, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n >= 0 && (size_t)n < sizeof msg) snprintf(msg + n, sizeof msg - (size_t)n, ": %s", strerror(err));
  throw_with(env, code, msg, err, 0);
}

void pt_throw(napi_env env, const char *code, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  throw_with(env, code, msg, 0, 0);
}

void pt_throw_range(napi_env env, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  throw_with(env, "ERR_OUT_OF_RANGE", msg, 0, 1);
}

static int type_error(napi_env env, const char *name, const char *want) {
  char msg[128];
  snprintf(msg, sizeof msg, "%s must be %s", name, want);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return 0;
}

int pt_args(napi_env env, napi_callback_info info, size_t argc, napi_value *argv, void **self_native,
            napi_value *self) {
  napi_value this_v;
  size_t got = argc;
  if (napi_get_cb_info(env, info, &got, argv, &this_v, NULL) != napi_ok) return 0;
  if (self) *self = this_v;
  if (self_native && (napi_unwrap(env, this_v, self_native) != napi_ok || !*self_native)) {
    napi_throw_type_error(env, "ERR_INVALID_THIS", "method called on an object the addon did not create");
    return 0;
  }
  return 1;
}

int pt_get_bytes(napi_env env, napi_value v, const char *name, uint8_t **data, size_t *len) {
  bool is_ta = false;
  napi_typedarray_type type;
  void *p = NULL;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, v, &type, len, &p, NULL, NULL) != napi_ok || type != napi_uint8_array)
    return type_error(env, name, "a Buffer or Uint8Array");
  *data = p;
  return 1;
}

int pt_get_i32s(napi_env env, napi_value v, const char *name, int32_t **data, size_t *len) {
  bool is_ta = false;
  napi_typedarray_type type;
  void *p = NULL;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, v, &type, len, &p, NULL, NULL) != napi_ok || type != napi_int32_array)
    return type_error(env, name, "an Int32Array");
  *data = p;
  return 1;
}

int pt_get_int(napi_env env, napi_value v, const char *name, int64_t min, int64_t max, int64_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return type_error(env, name, "a number");
  if (d != d || d < (double)min || d > (double)max || d != (double)(int64_t)d) {
    pt_throw_range(env, "%s must be an integer in [%lld, %lld]", name, (long long)min, (long long)max);
    return 0;
  }
  *out = (int64_t)d;
  return 1;
}

int pt_get_bool(napi_env env, napi_value v, const char *name, int *out) {
  bool b;
  if (napi_get_value_bool(env, v, &b) != napi_ok) return type_error(env, name, "a boolean");
  *out = b;
  return 1;
}

int pt_get_string(napi_env env, napi_value v, const char *name, char *buf, size_t size) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return type_error(env, name, "a string");
  if (len >= size) {
    pt_throw_range(env, "%s must be at most %zu bytes", name, size - 1);
    return 0;
  }
  return napi_get_value_string_utf8(env, v, buf, size, &len) == napi_ok;
}

int pt_get_prop(napi_env env, napi_value obj, const char *key, napi_value *out) {
  napi_valuetype t;
  if (napi_typeof(env, obj, &t) != napi_ok || t != napi_object) return type_error(env, "options", "an object");
  return napi_get_named_property(env, obj, key, out) == napi_ok;
}

napi_value pt_counters(napi_env env, const char *const *names, const uint64_t *values, size_t n) {
  napi_value obj, v;
  if (napi_create_object(env, &obj) != napi_ok) return NULL;
  for (size_t i = 0; i < n; i++) {
    if (napi_create_double(env, (double)values[i], &v) != napi_ok ||
        napi_set_named_property(env, obj, names[i], v) != napi_ok)
      return NULL;
  }
  return obj;
}
