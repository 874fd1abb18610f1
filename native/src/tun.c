/*
 * NativeTun: one TUN queue. Reads go into the JS buffer given to start() (borrowed by the addon
 * until close); writes read from the caller's buffer and never keep it.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "io.h"
#include "module.h"
#include "napi-util.h"
#include "offload.h"

typedef struct {
  pt_io io; /* first: pt_io callbacks cast back to pt_tun */
  char name[IFNAMSIZ];
  int vnet;
  /* Set by start(): the JS read buffer and offsets (pinned by io references). */
  uint8_t *buf;
  size_t buf_len;
  int32_t *offs;
  uint32_t max_batch;
  pt_coalescer co;
  pt_coalesce_stats cstats;
  uint64_t read_batches, read_packets, read_supers, read_errors;
  uint64_t write_packets, write_calls, write_errors;
} pt_tun;

static uint32_t tun_read(pt_io *io) {
  pt_tun *t = (pt_tun *)io;
  size_t off = 0;
  uint32_t n = 0;
  /* Each packet is read PT_HEADROOM bytes after the previous one ends: a sender writes its tunnel
   * header there and sends the packet without copying it. */
  while (n < t->max_batch && t->buf_len - off >= PT_HEADROOM + PT_MAX_PACKET) {
    size_t at = off + PT_HEADROOM;
    ssize_t r = read(io->fd, t->buf + at, PT_MAX_PACKET);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (r < 0 && errno != EAGAIN) t->read_errors++;
      break;
    }
    t->offs[2 * n] = (int32_t)at;
    t->offs[2 * n + 1] = (int32_t)r;
    if (t->vnet && r > 1 && t->buf[at + 1] != 0) t->read_supers++;
    off = at + (size_t)r;
    n++;
  }
  if (n) {
    t->read_batches++;
    t->read_packets += n;
  }
  return n;
}

static void tun_destroy(pt_io *io) { free(io); }

static pt_tun *tun_open_fd(napi_env env, const char *name, int multi_queue, int vnet) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    pt_throw_errno(env, "ERR_PODTUN_TUN_OPEN", errno, "cannot open TUN %s", name);
    return NULL;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, strlen(name)); /* fits: the name was read into IFNAMSIZ bytes */
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  if (vnet) ifr.ifr_flags |= IFF_VNET_HDR;
  if (multi_queue) ifr.ifr_flags |= IFF_MULTI_QUEUE;
  int hdr_size = PT_VNET_HDR_LEN;
  const char *what = NULL;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0)
    what = "cannot open TUN";
  else if (vnet && ioctl(fd, TUNSETVNETHDRSZ, &hdr_size) < 0)
    what = "cannot set the virtio header size of TUN";
  else if (vnet && ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) < 0)
    what = "cannot enable offloads on TUN";
  pt_tun *t = what ? NULL : calloc(1, sizeof *t);
  if (!t) {
    int err = what ? errno : ENOMEM;
    close(fd);
    pt_throw_errno(env, "ERR_PODTUN_TUN_OPEN", err, "%s %s", what ? what : "cannot open TUN", name);
    return NULL;
  }
  memcpy(t->name, ifr.ifr_name, IFNAMSIZ);
  t->name[IFNAMSIZ - 1] = 0;
  t->vnet = vnet;
  if (!pt_io_init(&t->io, env, fd, tun_read, tun_destroy)) {
    close(fd);
    free(t);
    return NULL;
  }
  return t;
}

/* openTun({ name, multiQueue, vnetHdr }) */
napi_value pt_open_tun(napi_env env, napi_callback_info info) {
  napi_value argv[1], v, obj;
  char name[IFNAMSIZ];
  int multi_queue, vnet;
  pt_module *mod;
  if (!pt_args(env, info, 1, argv, NULL, NULL) || !pt_get_prop(env, argv[0], "name", &v) ||
      !pt_get_string(env, v, "name", name, sizeof name) || !pt_get_prop(env, argv[0], "multiQueue", &v) ||
      !pt_get_bool(env, v, "multiQueue", &multi_queue) || !pt_get_prop(env, argv[0], "vnetHdr", &v) ||
      !pt_get_bool(env, v, "vnetHdr", &vnet) || napi_get_instance_data(env, (void **)&mod) != napi_ok)
    return NULL;
  obj = pt_new_instance(env, mod->tun_class);
  if (!obj) return NULL;
  pt_tun *t = tun_open_fd(env, name, multi_queue, vnet);
  if (!t) return NULL;
  if (napi_wrap(env, obj, t, pt_io_finalize, NULL, NULL) != napi_ok) {
    t->io.finalized = 1;
    pt_io_close(&t->io);
    free(t);
    pt_throw(env, "ERR_PODTUN_INTERNAL", "cannot wrap the TUN object");
    return NULL;
  }
  return obj;
}

static napi_value tun_name(napi_env env, napi_callback_info info) {
  pt_tun *t;
  napi_value v;
  if (!pt_args(env, info, 0, NULL, (void **)&t, NULL)) return NULL;
  napi_create_string_utf8(env, t->name, NAPI_AUTO_LENGTH, &v);
  return v;
}

/* start(buf, offs, maxBatch, onBatch) */
static napi_value tun_start(napi_env env, napi_callback_info info) {
  pt_tun *t;
  napi_value argv[4], self;
  uint8_t *buf;
  int32_t *offs;
  size_t buf_len, offs_len;
  int64_t max_batch;
  if (!pt_args(env, info, 4, argv, (void **)&t, &self) || !pt_get_bytes(env, argv[0], "buf", &buf, &buf_len) ||
      !pt_get_i32s(env, argv[1], "offs", &offs, &offs_len) ||
      !pt_get_int(env, argv[2], "maxBatch", 1, (int64_t)(offs_len / 2), &max_batch))
    return NULL;
  if (buf_len < PT_MAX_PACKET || buf_len > INT32_MAX) {
    pt_throw_range(env, "buf must hold one packet of %d bytes and at most 2 GiB", PT_MAX_PACKET);
    return NULL;
  }
  if (!t->io.started && !t->io.closed) { /* pt_io_start refuses the other cases */
    t->buf = buf;
    t->buf_len = buf_len;
    t->offs = offs;
    t->max_batch = (uint32_t)max_batch;
  }
  pt_io_start(&t->io, self, argv[0], argv[1], argv[3], "podtun:tun");
  return NULL;
}

static int tun_writev(void *ctx, const struct iovec *iov, int niov, uint32_t npkts) {
  pt_tun *t = ctx;
  ssize_t r;
  do r = writev(t->io.fd, iov, niov);
  while (r < 0 && errno == EINTR);
  t->write_calls++;
  if (r < 0) {
    t->write_errors++;
    return 0;
  }
  t->write_packets += npkts;
  return 1;
}

/* write(buf, offs, idx, count, bare) -> accepted */
static napi_value tun_write(napi_env env, napi_callback_info info) {
  pt_tun *t;
  napi_value argv[5], result;
  pt_packet_list l;
  size_t idx_len;
  int64_t count;
  int bare;
  if (!pt_args(env, info, 5, argv, (void **)&t, NULL) ||
      !pt_get_bytes(env, argv[0], "buf", (uint8_t **)&l.buf, &l.buf_len) ||
      !pt_get_i32s(env, argv[1], "offs", (int32_t **)&l.offs, &l.offs_len) ||
      !pt_get_i32s(env, argv[2], "idx", (int32_t **)&l.idx, &idx_len) ||
      !pt_get_int(env, argv[3], "count", 0, (int64_t)idx_len, &count) || !pt_get_bool(env, argv[4], "bare", &bare))
    return NULL;
  if (t->io.closed) {
    pt_throw(env, "ERR_PODTUN_CLOSED", "write() after close()");
    return NULL;
  }
  if (!t->vnet && !bare) {
    pt_throw(env, "ERR_PODTUN_NO_VNET", "TUN %s has no virtio header: write bare packets", t->name);
    return NULL;
  }
  uint32_t accepted = 0;
  if (bare && t->vnet) {
    accepted = pt_coalesce(&t->co, pt_packet_list_at, &l, (uint32_t)count, tun_writev, t, &t->cstats);
  } else {
    for (uint32_t i = 0; i < (uint32_t)count; i++) {
      struct iovec iov;
      uint32_t len;
      if (!pt_packet_list_at(&l, i, (const uint8_t **)&iov.iov_base, &len)) {
        t->cstats.invalid++;
        continue;
      }
      iov.iov_len = len;
      accepted += (uint32_t)tun_writev(t, &iov, 1, 1);
    }
  }
  napi_create_uint32(env, accepted, &result);
  return result;
}

static napi_value tun_close(napi_env env, napi_callback_info info) {
  pt_tun *t;
  if (!pt_args(env, info, 0, NULL, (void **)&t, NULL)) return NULL;
  pt_io_close(&t->io);
  return NULL;
}

static napi_value tun_stats(napi_env env, napi_callback_info info) {
  pt_tun *t;
  if (!pt_args(env, info, 0, NULL, (void **)&t, NULL)) return NULL;
  static const char *const names[] = {
      "readBatches", "readPackets",  "readSupers",     "readErrors",     "writePackets", "writeCalls",
      "writeErrors", "mergedSupers", "mergedSegments", "invalidPackets", "pollErrors",
  };
  const uint64_t values[] = {
      t->read_batches, t->read_packets, t->read_supers, t->read_errors,
      t->write_packets, t->write_calls, t->write_errors, t->cstats.merged_supers,
      t->cstats.merged_segments, t->cstats.invalid, t->io.poll_errors,
  };
  _Static_assert(sizeof names / sizeof names[0] == sizeof values / sizeof values[0], "one name per counter");
  return pt_counters(env, names, values, sizeof values / sizeof values[0]);
}

napi_value pt_tun_define_class(napi_env env) {
  napi_property_descriptor props[] = {
      {"name", NULL, NULL, tun_name, NULL, NULL, napi_enumerable, NULL},
      {"start", NULL, tun_start, NULL, NULL, NULL, napi_default, NULL},
      {"write", NULL, tun_write, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, tun_close, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, tun_stats, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls;
  if (napi_define_class(env, "NativeTun", NAPI_AUTO_LENGTH, pt_construct, NULL, sizeof props / sizeof props[0], props, &cls) !=
      napi_ok)
    return NULL;
  return cls;
}
