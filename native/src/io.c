#include "io.h"

#include <unistd.h>

#include "napi-util.h"

static void on_teardown(napi_async_cleanup_hook_handle handle, void *arg) {
  (void)handle;
  pt_io_close(arg);
}

static void remove_hook(pt_io *io) {
  if (!io->hook) return;
  napi_remove_async_cleanup_hook(io->hook);
  io->hook = NULL;
}

int pt_io_init(pt_io *io, napi_env env, int fd, uint32_t (*read)(pt_io *), void (*destroy)(pt_io *)) {
  io->env = env;
  io->fd = fd;
  io->read = read;
  io->destroy = destroy;
  io->poll.data = io;
  if (napi_add_async_cleanup_hook(env, on_teardown, io, &io->hook) != napi_ok) {
    pt_throw(env, "ERR_PODTUN_INTERNAL", "cannot register a cleanup hook");
    return 0;
  }
  return 1;
}

static void drop_refs(pt_io *io) {
  napi_ref *refs[] = {&io->self, &io->callback, &io->buf, &io->offs, &io->aux};
  for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
    if (*refs[i]) napi_delete_reference(io->env, *refs[i]);
    *refs[i] = NULL;
  }
  if (io->actx) napi_async_destroy(io->env, io->actx);
  io->actx = NULL;
}

static void deliver(pt_io *io, uint32_t count) {
  napi_env env = io->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value recv, cb, arg;
  if (napi_get_reference_value(env, io->self, &recv) == napi_ok &&
      napi_get_reference_value(env, io->callback, &cb) == napi_ok && napi_create_uint32(env, count, &arg) == napi_ok) {
    io->delivering = 1;
    /* napi_make_callback opens the callback scope (async hooks, then nextTicks and microtasks
     * after the call). The receiver must be an object: undefined leaves a pending exception. */
    napi_status st = napi_make_callback(env, io->actx, recv, cb, 1, &arg, NULL);
    io->delivering = 0;
    if (st == napi_pending_exception) {
      napi_value error;
      if (napi_get_and_clear_last_exception(env, &error) == napi_ok) napi_fatal_exception(env, error);
    }
  }
  napi_close_handle_scope(env, scope);
  if (io->closed) drop_refs(io); /* close() ran inside the callback: its references were kept */
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  (void)events;
  pt_io *io = handle->data;
  if (status < 0) { /* e.g. the TUN device was deleted: libuv stopped the poll already */
    io->poll_errors++;
    uv_poll_stop(handle);
    return;
  }
  uint32_t count = io->read(io);
  if (count > 0 && !io->closed) deliver(io, count);
}

int pt_io_start(pt_io *io, napi_value self, napi_value buf, napi_value offs, napi_value callback,
                const char *resource_name) {
  napi_env env = io->env;
  if (io->closed) {
    pt_throw(env, "ERR_PODTUN_CLOSED", "start() after close()");
    return 0;
  }
  if (io->started) {
    pt_throw(env, "ERR_PODTUN_STARTED", "start() called twice");
    return 0;
  }
  napi_valuetype t;
  if (napi_typeof(env, callback, &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "onBatch must be a function");
    return 0;
  }
  uv_loop_t *loop;
  napi_value name;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok ||
      napi_create_string_utf8(env, resource_name, NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, self, name, &io->actx) != napi_ok || napi_create_reference(env, self, 1, &io->self) != napi_ok ||
      napi_create_reference(env, callback, 1, &io->callback) != napi_ok ||
      napi_create_reference(env, buf, 1, &io->buf) != napi_ok ||
      napi_create_reference(env, offs, 1, &io->offs) != napi_ok) {
    drop_refs(io);
    pt_throw(env, "ERR_PODTUN_INTERNAL", "cannot start polling");
    return 0;
  }
  int err = uv_poll_init(loop, &io->poll, io->fd);
  if (err == 0) {
    io->started = 1; /* from here on the fd is closed by the uv_close callback */
    err = uv_poll_start(&io->poll, UV_READABLE, on_poll);
  }
  if (err != 0) {
    drop_refs(io);
    pt_throw(env, "ERR_PODTUN_POLL", "cannot poll fd %d: %s", io->fd, uv_strerror(err));
    return 0;
  }
  return 1;
}

static void on_closed(uv_handle_t *handle) {
  pt_io *io = handle->data;
  close(io->fd);
  io->fd = -1;
  io->close_pending = 0;
  remove_hook(io);
  if (io->finalized) io->destroy(io);
}

void pt_io_close(pt_io *io) {
  if (io->closed) return;
  io->closed = 1;
  if (!io->delivering) drop_refs(io);
  if (io->started) {
    uv_poll_stop(&io->poll);
    io->close_pending = 1;
    uv_close((uv_handle_t *)&io->poll, on_closed);
  } else {
    close(io->fd);
    io->fd = -1;
    remove_hook(io);
  }
}

void pt_io_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  pt_io *io = data;
  io->finalized = 1;
  pt_io_close(io); /* collected without close(): it was never started (started pins `this`) */
  if (!io->close_pending) io->destroy(io);
}
