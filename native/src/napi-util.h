/* Argument checks and errors shared by the bindings. Every getter throws a JS error and returns
 * 0 on failure; the binding then returns NULL so the exception reaches the caller. */
#ifndef PODTUN_NAPI_UTIL_H
#define PODTUN_NAPI_UTIL_H

#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

#define PT_MAX_ARGS 8

/* Throws Error{code, message, errno} with message "<formatted>: <strerror(err)>". */
void pt_throw_errno(napi_env env, const char *code, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Throws Error{code, message}. */
void pt_throw(napi_env env, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Throws RangeError{ERR_OUT_OF_RANGE}. */
void pt_throw_range(napi_env env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Fetches `this`, the arguments (missing ones are undefined) and the native object wrapped in
 * `this`; throws when `this` wraps nothing (a method called on a foreign object). */
int pt_args(napi_env env, napi_callback_info info, size_t argc, napi_value *argv, void **self_native,
            napi_value *self);

/* Typed views: borrowed pointers into JS memory, valid while the JS value lives. */
int pt_get_bytes(napi_env env, napi_value v, const char *name, uint8_t **data, size_t *len);
int pt_get_i32s(napi_env env, napi_value v, const char *name, int32_t **data, size_t *len);
/* An integer in [min, max]. */
int pt_get_int(napi_env env, napi_value v, const char *name, int64_t min, int64_t max, int64_t *out);
int pt_get_bool(napi_env env, napi_value v, const char *name, int *out);
/* A string of at most size - 1 bytes, NUL-terminated. */
int pt_get_string(napi_env env, napi_value v, const char *name, char *buf, size_t size);
/* Property `key` of an options object. */
int pt_get_prop(napi_env env, napi_value obj, const char *key, napi_value *out);

/* A plain object {names[i]: values[i]} for stats(). */
napi_value pt_counters(napi_env env, const char *const *names, const uint64_t *values, size_t n);

#endif
