/*
 * Life of one pollable fd owned by a JS object (a TUN queue or a UDP socket).
 *
 * - open: the owner fills a pt_io (first member of its struct) with pt_io_init.
 * - start: uv_poll on the fd; strong references pin `this`, the callback and the JS buffers the
 *   addon writes into, so they cannot be collected while polling.
 * - readable: `read` fills the JS buffers and returns a count; the JS callback gets that count,
 *   once per readiness, through napi_make_callback.
 * - close (JS, or environment teardown through an async cleanup hook): the poll stops at once,
 *   references are dropped, the fd closes in the uv_close callback (or at once when never
 *   started). Safe twice. Nothing is left on the loop afterwards.
 * - the owner's memory is freed when both the JS object was collected and the close finished.
 */
#ifndef PODTUN_IO_H
#define PODTUN_IO_H

#include <node_api.h>
#include <stdint.h>
#include <uv.h>

typedef struct pt_io pt_io;

struct pt_io {
  napi_env env;
  int fd;
  uint32_t (*read)(pt_io *io);  /* called when readable; returns the batch count (0: no call) */
  void (*destroy)(pt_io *io);   /* frees the owner */
  uv_poll_t poll;
  napi_async_cleanup_hook_handle hook;
  napi_ref self, callback, buf, offs; /* set while started */
  napi_ref aux; /* one more JS array the owner writes into while started (optional) */
  napi_async_context actx;
  uint8_t started, closed, close_pending, finalized, delivering;
  uint64_t poll_errors;
};

/* Takes ownership of `fd`; registers the teardown hook. Returns 0 after throwing. */
int pt_io_init(pt_io *io, napi_env env, int fd, uint32_t (*read)(pt_io *), void (*destroy)(pt_io *));

/* Starts polling; `buf`/`offs`/`callback` stay referenced until close. Returns 0 after throwing. */
int pt_io_start(pt_io *io, napi_value self, napi_value buf, napi_value offs, napi_value callback,
                const char *resource_name);

void pt_io_close(pt_io *io);

/* napi_wrap finalizer for owners built on pt_io. */
void pt_io_finalize(napi_env env, void *data, void *hint);

#endif
