/*
 * NativeUdp bindings: the socket, its peers, receiving (recvmmsg into the JS buffer given to
 * start(), 64 KiB per datagram slot; a UDP_GRO datagram is reported as its segments). Sending is
 * in udp-send.c.
 *
 * Sealed mode adds keypairs per peer slot (seal.c): data messages are opened in place as they
 * are reported, and only those that open reach JS; roaming follows authenticated sources only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "module.h"
#include "napi-util.h"
#include "seal-napi.h"
#include "udp.h"

/* ---- addresses ---- */

/* Parses a numeric host for this socket's family (an IPv4 host on an IPv6 socket becomes
 * ::ffff:a.b.c.d). Returns 0 when it is not an address the socket can reach. */
static int addr_parse(int family, const char *host, uint16_t port, pt_addr *a) {
  memset(a, 0, sizeof *a);
  struct in_addr v4;
  if (family == AF_INET) {
    if (inet_pton(AF_INET, host, &a->u.in4.sin_addr) != 1) return 0;
    a->u.in4.sin_family = AF_INET;
    a->u.in4.sin_port = htons(port);
    a->len = sizeof a->u.in4;
    return 1;
  }
  a->u.in6.sin6_family = AF_INET6;
  a->u.in6.sin6_port = htons(port);
  a->len = sizeof a->u.in6;
  if (inet_pton(AF_INET6, host, &a->u.in6.sin6_addr) == 1) return 1;
  if (inet_pton(AF_INET, host, &v4) != 1) return 0;
  a->u.in6.sin6_addr.s6_addr[10] = 0xff;
  a->u.in6.sin6_addr.s6_addr[11] = 0xff;
  memcpy(&a->u.in6.sin6_addr.s6_addr[12], &v4, 4);
  return 1;
}

/* {host, port} of a socket address; IPv4-mapped addresses are shown as IPv4. */
static napi_value addr_to_js(napi_env env, const struct sockaddr *ss) {
  char host[INET6_ADDRSTRLEN];
  uint16_t port;
  if (ss->sa_family == AF_INET) {
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
    port = ntohs(in4->sin_port);
  } else {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
      inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], host, sizeof host);
    else
      inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
  }
  napi_value obj, h, p;
  if (napi_create_object(env, &obj) != napi_ok || napi_create_string_utf8(env, host, NAPI_AUTO_LENGTH, &h) != napi_ok ||
      napi_create_uint32(env, port, &p) != napi_ok || napi_set_named_property(env, obj, "host", h) != napi_ok ||
      napi_set_named_property(env, obj, "port", p) != napi_ok)
    return NULL;
  return obj;
}

/* 1 when `a` holds the source `src` (as recvmmsg fills it for this socket's family). */
static int addr_is(const pt_addr *a, const struct sockaddr_storage *src) {
  if (a->len == 0 || a->u.sa.sa_family != src->ss_family) return 0;
  if (src->ss_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)src;
    return a->u.in4.sin_port == s4->sin_port && a->u.in4.sin_addr.s_addr == s4->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)src;
  return a->u.in6.sin6_port == s6->sin6_port && a->u.in6.sin6_scope_id == s6->sin6_scope_id &&
         !memcmp(&a->u.in6.sin6_addr, &s6->sin6_addr, sizeof s6->sin6_addr);
}

/* ---- receive ---- */

static uint32_t gro_size(const struct msghdr *h) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR((struct msghdr *)h, c)) {
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
      int v;
      memcpy(&v, CMSG_DATA(c), sizeof v);
      return v > 0 ? (uint32_t)v : 0;
    }
  }
  return 0;
}

/* A data message that opened from `src`: the slot follows the source when it may roam. Only
 * authenticated (and not replayed) messages get here, so a forger cannot steer the slot. */
static void roam(pt_udp *u, uint32_t slot, const struct sockaddr_storage *src) {
  if (!u->roam[slot] || addr_is(&u->peers[slot], src)) return;
  pt_addr *a = &u->peers[slot];
  memset(a, 0, sizeof *a);
  a->len = src->ss_family == AF_INET ? sizeof a->u.in4 : sizeof a->u.in6;
  memcpy(&a->u, src, a->len);
  u->seal_roams++;
}

/* Opens the data message at *at (*n bytes) of recv slot `s` in place; on success points *at and *n
 * at its plaintext and sets *peer. 0: dropped (counted by reason). */
static int open_data(pt_udp *u, uint32_t s, uint32_t *at, uint32_t *n, int32_t *peer) {
  uint32_t slot;
  pt_open_result r = pt_seal_open(u->seal, u->rbuf + *at, *n, u->now_ms, &slot);
  pt_seal_count_open(&u->sc, r);
  if (r != PT_OPENED) return 0;
  roam(u, slot, &u->rsrc[s]);
  *at += PT_SEAL_HEADER_LEN;
  *n -= PT_SEAL_OVERHEAD;
  *peer = (int32_t)slot;
  return 1;
}

/* Reports datagram `len` bytes at slot `s` as its GRO segments (or whole), within max_dgrams;
 * in sealed mode data messages are reported opened, or not at all. */
static uint32_t report(pt_udp *u, uint32_t count, uint32_t s, uint32_t len, uint32_t seg) {
  uint32_t base = s * RECV_SLOT_BYTES;
  if (seg == 0 || seg >= len) seg = len;
  else u->gro_datagrams++;
  for (uint32_t off = 0; off < len; off += seg) {
    if (count == u->max_dgrams) { /* more segments than a GRO datagram should hold: drop the rest */
      u->trunc_drops++;
      break;
    }
    uint32_t at = base + off, n = len - off < seg ? len - off : seg;
    int32_t peer = -1;
    u->recv_segments++;
    if (u->seal && pt_seal_is_data(u->rbuf + at, n) && !open_data(u, s, &at, &n, &peer)) continue;
    u->roffs[2 * count] = (int32_t)at;
    u->roffs[2 * count + 1] = (int32_t)n;
    u->src_of[count] = s;
    if (u->rpeer) u->rpeer[count] = peer;
    count++;
  }
  return count;
}

static uint32_t udp_read(pt_io *io) {
  pt_udp *u = (pt_udp *)io;
  uint32_t count = 0, slot = 0, per_msg = u->gro ? GRO_MAX_SEGS : 1;
  if (u->seal) u->now_ms = pt_seal_now_ms(); /* one clock read per batch */
  /* Every recv slot is used once per call: datagrams that report nothing (truncated, empty, or
   * sealed ones that did not open) still use theirs, so the slots bound the loop, not `count`. */
  while (slot < u->rslots) {
    uint32_t vlen = RECV_MSGS;
    if (vlen > u->rslots - slot) vlen = u->rslots - slot;
    if (vlen > (u->max_dgrams - count) / per_msg) vlen = (u->max_dgrams - count) / per_msg;
    if (vlen == 0 && count == 0) vlen = 1; /* a small budget still makes progress; report() caps it */
    if (vlen == 0) break;
    for (uint32_t k = 0; k < vlen; k++) {
      uint32_t s = slot + k;
      u->riov[k] = (struct iovec){u->rbuf + (size_t)s * RECV_SLOT_BYTES, RECV_SLOT_BYTES};
      u->rmsgs[k].msg_hdr = (struct msghdr){
          .msg_name = &u->rsrc[s],
          .msg_namelen = sizeof u->rsrc[s],
          .msg_iov = &u->riov[k],
          .msg_iovlen = 1,
          .msg_control = u->rctrl[s].buf,
          .msg_controllen = sizeof u->rctrl[s].buf,
      };
    }
    int r = recvmmsg(io->fd, u->rmsgs, vlen, MSG_DONTWAIT, NULL);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) u->recv_errors++;
      break;
    }
    for (uint32_t k = 0; k < (uint32_t)r; k++) {
      const struct msghdr *h = &u->rmsgs[k].msg_hdr;
      u->recv_datagrams++;
      if (h->msg_flags & MSG_TRUNC) {
        u->trunc_drops++;
        continue;
      }
      count = report(u, count, slot + k, u->rmsgs[k].msg_len, gro_size(h));
    }
    slot += (uint32_t)r;
    if ((uint32_t)r < vlen) break; /* the queue is empty */
  }
  if (count) u->recv_batches++;
  u->rcount = count;
  return count;
}

static void udp_destroy(pt_io *io) {
  pt_udp *u = (pt_udp *)io;
  free(u->scratch);
  free(u->bounce);
  free(u->rsrc);
  free(u->rctrl);
  free(u->src_of);
  pt_seal_free(u->seal);
  free(u);
}

/* ---- bindings ---- */

static void set_buffer(int fd, int force_opt, int opt, int64_t bytes) {
  if (bytes <= 0) return;
  int v = bytes > INT32_MAX ? INT32_MAX : (int)bytes;
  if (setsockopt(fd, SOL_SOCKET, force_opt, &v, sizeof v) < 0) /* FORCE needs CAP_NET_ADMIN */
    setsockopt(fd, SOL_SOCKET, opt, &v, sizeof v);
}

static pt_udp *udp_open_fd(napi_env env, const char *host, int64_t port, int64_t rcvbuf, int64_t sndbuf, int sealed) {
  int family = strchr(host, ':') ? AF_INET6 : AF_INET;
  pt_addr local;
  if (!addr_parse(family, host, (uint16_t)port, &local)) {
    pt_throw(env, "ERR_PODTUN_UDP_ADDRESS", "cannot bind UDP %s:%lld: not a numeric address", host, (long long)port);
    return NULL;
  }
  pt_udp *u = calloc(1, sizeof *u);
  uint8_t *scratch = malloc(SEND_SCRATCH_BYTES), *bounce = malloc(GSO_MAX_BYTES);
  pt_seal *seal = sealed ? pt_seal_new() : NULL;
  if (!u || !scratch || !bounce || (sealed && !seal)) {
    free(u);
    free(scratch);
    free(bounce);
    pt_seal_free(seal);
    pt_throw_errno(env, "ERR_PODTUN_UDP_OPEN", ENOMEM, "cannot open UDP %s:%lld", host, (long long)port);
    return NULL;
  }
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int off = 0, on = 1;
  if (fd >= 0 && family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  if (fd >= 0) {
    set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, rcvbuf);
    set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, sndbuf);
  }
  struct sockaddr_storage bound;
  socklen_t bound_len = sizeof bound;
  if (fd < 0 || bind(fd, &local.u.sa, local.len) < 0 || getsockname(fd, (struct sockaddr *)&bound, &bound_len) < 0) {
    int err = errno;
    if (fd >= 0) close(fd);
    free(u);
    free(scratch);
    free(bounce);
    pt_seal_free(seal);
    pt_throw_errno(env, "ERR_PODTUN_UDP_OPEN", err, "cannot bind UDP %s:%lld", host, (long long)port);
    return NULL;
  }
  u->family = family;
  u->seal = seal;
  u->scratch = scratch;
  u->bounce = bounce;
  u->port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port : ((struct sockaddr_in6 *)&bound)->sin6_port);
  u->gro = setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on) == 0;
  int seg;
  socklen_t seg_len = sizeof seg;
  u->gso = getsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, &seg_len) == 0; /* the option exists: GSO is known */
  if (!pt_io_init(&u->io, env, fd, udp_read, udp_destroy)) {
    close(fd);
    udp_destroy(&u->io);
    return NULL;
  }
  return u;
}

/* An optional boolean option: undefined (absent) is false. */
static int get_flag(napi_env env, napi_value opts, const char *key, int *out) {
  napi_value v;
  napi_valuetype t;
  *out = 0;
  if (!pt_get_prop(env, opts, key, &v) || napi_typeof(env, v, &t) != napi_ok) return 0;
  return t == napi_undefined || pt_get_bool(env, v, key, out);
}

/* openUdp({ host, port, recvBufferBytes, sendBufferBytes, sealed? }) */
napi_value pt_open_udp(napi_env env, napi_callback_info info) {
  napi_value argv[1], v, obj;
  char host[INET6_ADDRSTRLEN];
  int64_t port, rcvbuf, sndbuf;
  int sealed;
  pt_module *mod;
  if (!pt_args(env, info, 1, argv, NULL, NULL) || !pt_get_prop(env, argv[0], "host", &v) ||
      !pt_get_string(env, v, "host", host, sizeof host) || !pt_get_prop(env, argv[0], "port", &v) ||
      !pt_get_int(env, v, "port", 0, 65535, &port) || !pt_get_prop(env, argv[0], "recvBufferBytes", &v) ||
      !pt_get_int(env, v, "recvBufferBytes", 0, INT32_MAX, &rcvbuf) ||
      !pt_get_prop(env, argv[0], "sendBufferBytes", &v) || !pt_get_int(env, v, "sendBufferBytes", 0, INT32_MAX, &sndbuf) ||
      !get_flag(env, argv[0], "sealed", &sealed) || napi_get_instance_data(env, (void **)&mod) != napi_ok)
    return NULL;
  obj = pt_new_instance(env, mod->udp_class);
  if (!obj) return NULL;
  pt_udp *u = udp_open_fd(env, host, port, rcvbuf, sndbuf, sealed);
  if (!u) return NULL;
  if (napi_wrap(env, obj, u, pt_io_finalize, NULL, NULL) != napi_ok) {
    u->io.finalized = 1;
    pt_io_close(&u->io);
    udp_destroy(&u->io);
    pt_throw(env, "ERR_PODTUN_INTERNAL", "cannot wrap the UDP object");
    return NULL;
  }
  return obj;
}

static napi_value udp_get(napi_env env, napi_callback_info info, int which) {
  pt_udp *u;
  napi_value v;
  if (!pt_args(env, info, 0, NULL, (void **)&u, NULL)) return NULL;
  if (which == 0)
    napi_create_uint32(env, u->port, &v);
  else
    napi_get_boolean(env, which == 1 ? u->gso : u->gro, &v);
  return v;
}
static napi_value udp_port(napi_env env, napi_callback_info info) { return udp_get(env, info, 0); }
static napi_value udp_gso(napi_env env, napi_callback_info info) { return udp_get(env, info, 1); }
static napi_value udp_gro(napi_env env, napi_callback_info info) { return udp_get(env, info, 2); }

static int get_slot(napi_env env, napi_value v, int64_t *slot) {
  return pt_get_int(env, v, "slot", 0, PEER_SLOTS - 1, slot);
}

/* setPeer(slot, host, port) */
static napi_value udp_set_peer(napi_env env, napi_callback_info info) {
  pt_udp *u;
  napi_value argv[3];
  int64_t slot, port;
  char host[INET6_ADDRSTRLEN];
  if (!pt_args(env, info, 3, argv, (void **)&u, NULL) || !get_slot(env, argv[0], &slot) ||
      !pt_get_string(env, argv[1], "host", host, sizeof host) || !pt_get_int(env, argv[2], "port", 1, 65535, &port))
    return NULL;
  if (!addr_parse(u->family, host, (uint16_t)port, &u->peers[slot]))
    pt_throw(env, "ERR_PODTUN_UDP_ADDRESS", "peer %s is not a numeric address this %s socket can reach", host,
             u->family == AF_INET ? "IPv4" : "IPv6");
  return NULL;
}

static napi_value udp_clear_peer(napi_env env, napi_callback_info info) {
  pt_udp *u;
  napi_value argv[1];
  int64_t slot;
  if (!pt_args(env, info, 1, argv, (void **)&u, NULL) || !get_slot(env, argv[0], &slot)) return NULL;
  u->peers[slot].len = 0;
  return NULL;
}

static int check_open(napi_env env, pt_udp *u) {
  if (!u->io.closed) return 1;
  pt_throw(env, "ERR_PODTUN_CLOSED", "UDP socket used after close()");
  return 0;
}

/* sendPackets(slot, header, headerLen, buf, offs, idx, count, headroom) -> input packets sent whole */
static napi_value udp_send_packets(napi_env env, napi_callback_info info) {
  pt_udp *u;
  napi_value argv[8], result;
  int64_t slot, hdr_len, count, headroom;
  uint8_t *hdr, *buf;
  int32_t *offs, *idx;
  size_t hdr_size, buf_len, offs_len, idx_len;
  if (!pt_args(env, info, 8, argv, (void **)&u, NULL) || !get_slot(env, argv[0], &slot) ||
      !pt_get_bytes(env, argv[1], "header", &hdr, &hdr_size) ||
      !pt_get_int(env, argv[2], "headerLen", 0, hdr_size < MAX_TUNNEL_HEADER ? (int64_t)hdr_size : MAX_TUNNEL_HEADER,
                  &hdr_len) ||
      !pt_get_bytes(env, argv[3], "buf", &buf, &buf_len) || !pt_get_i32s(env, argv[4], "offs", &offs, &offs_len) ||
      !pt_get_i32s(env, argv[5], "idx", &idx, &idx_len) || !pt_get_int(env, argv[6], "count", 0, (int64_t)idx_len, &count) ||
      !pt_get_int(env, argv[7], "headroom", 0, 4096, &headroom) || !check_open(env, u))
    return NULL;
  uint32_t sent = 0;
  pt_keypair *kp = NULL;
  if (u->peers[slot].len == 0) {
    u->no_peer_drops += (uint64_t)count;
  } else if (u->seal && !(kp = pt_seal_sender(u->seal, (uint32_t)slot, pt_seal_now_ms()))) {
    u->sc.no_keypair_drops += (uint64_t)count;
  } else {
    pt_packet_list list = {buf, buf_len, offs, offs_len, idx};
    sent = pt_udp_send_packets(u, &u->peers[slot], hdr, (uint32_t)hdr_len, &list, (uint32_t)count, (uint32_t)headroom,
                               kp);
  }
  napi_create_uint32(env, sent, &result);
  return result;
}

static int get_data(napi_env env, napi_value dv, napi_value lv, uint8_t **data, int64_t *len) {
  size_t size;
  return pt_get_bytes(env, dv, "data", data, &size) && pt_get_int(env, lv, "len", 0, (int64_t)size, len);
}

/* sendTo(slot, data, len) -> sent */
static napi_value udp_send_to(napi_env env, napi_callback_info info) {
  pt_udp *u;
  napi_value argv[3], result;
  int64_t slot, len;
  uint8_t *data;
  if (!pt_args(env, info, 3, argv, (void **)&u, NULL) || !get_slot(env, argv[0], &slot) ||
      !get_data(env, argv[1], argv[2], &data, &len) || !check_open(env, u))
    return NULL;
  int ok = u->peers[slot].len != 0 && pt_udp_send_one(u, &u->peers[slot], data, (size_t)len);
  if (u->peers[slot].len == 0) u->no_peer_drops++;
  napi_get_boolean(env, ok, &result);
  return result;
}

/* sendToAddress(host, port, data, len) -> sent */
static napi_value udp_send_to_address(napi_env env, napi_callback_info info) {
  pt_udp *u;
  napi_value argv[4], result;
  char host[INET6_ADDRSTRLEN];
  int64_t port, len;
  uint8_t *data;
  pt_addr a;
  if (!pt_args(env, info, 4, argv, (void **)&u, NULL) || !pt_get_string(env, argv[0], "host", host, sizeof host) ||
      !pt_get_int(env, argv[1], "port", 1, 65535, &port) || !get_data(env, argv[2], argv[3], &data, &len) ||
      !check_open(env, u))
    return NULL;
  if (!addr_parse(u->family, host, (uint16_t)port, &a)) {
    pt_throw(env, "ERR_PODTUN_UDP_ADDRESS", "%s is not a numeric address this socket can reach", host);
    return NULL;
  }
  napi_get_boolean(env, pt_udp_send_one(u, &a, data, (size_t)len), &result);
  return result;
}

/* start(buf, offs, maxDatagrams, onBatch, slots?) */
static napi_value udp_start(napi_env env, napi_callback_info info) {
  pt_udp *u;
  napi_value argv[5], self;
  uint8_t *buf;
  int32_t *offs, *peer = NULL;
  size_t buf_len, offs_len, peer_len = 0;
  int64_t max_dgrams;
  napi_valuetype t;
  if (!pt_args(env, info, 5, argv, (void **)&u, &self) || !pt_get_bytes(env, argv[0], "buf", &buf, &buf_len) ||
      !pt_get_i32s(env, argv[1], "offs", &offs, &offs_len) ||
      !pt_get_int(env, argv[2], "maxDatagrams", 1, (int64_t)(offs_len / 2), &max_dgrams) ||
      napi_typeof(env, argv[4], &t) != napi_ok)
    return NULL;
  if (buf_len < RECV_SLOT_BYTES || buf_len > INT32_MAX) {
    pt_throw_range(env, "buf must hold one datagram slot of %d bytes and at most 2 GiB", RECV_SLOT_BYTES);
    return NULL;
  }
  /* slots: which peer each datagram opened for; a sealed socket cannot report without it. */
  if ((u->seal || t != napi_undefined) && !pt_get_i32s(env, argv[4], "slots", &peer, &peer_len)) return NULL;
  if (peer && peer_len < (size_t)max_dgrams) {
    pt_throw_range(env, "slots must hold maxDatagrams (%lld) entries", (long long)max_dgrams);
    return NULL;
  }
  if (!u->io.started && !u->io.closed) { /* pt_io_start refuses the other cases */
    uint32_t slots = (uint32_t)(buf_len / RECV_SLOT_BYTES);
    void *src = calloc(slots, sizeof *u->rsrc), *ctrl = calloc(slots, sizeof *u->rctrl),
         *src_of = calloc((size_t)max_dgrams, sizeof *u->src_of);
    if (!src || !ctrl || !src_of) {
      free(src);
      free(ctrl);
      free(src_of);
      pt_throw_errno(env, "ERR_PODTUN_UDP_START", ENOMEM, "cannot start receiving");
      return NULL;
    }
    free(u->rsrc);
    free(u->rctrl);
    free(u->src_of);
    u->rsrc = src;
    u->rctrl = ctrl;
    u->src_of = src_of;
    u->rbuf = buf;
    u->roffs = offs;
    u->rpeer = peer;
    u->rslots = slots;
    u->max_dgrams = (uint32_t)max_dgrams;
  }
  if (pt_io_start(&u->io, self, argv[0], argv[1], argv[3], "podtun:udp") && peer &&
      napi_create_reference(env, argv[4], 1, &u->io.aux) != napi_ok) {
    pt_io_close(&u->io);
    pt_throw(env, "ERR_PODTUN_INTERNAL", "cannot start receiving");
  }
  return NULL;
}

/* sourceOf(i) -> { host, port } of datagram i of the batch being delivered */
static napi_value udp_source_of(napi_env env, napi_callback_info info) {
  pt_udp *u;
  napi_value argv[1];
  int64_t i;
  if (!pt_args(env, info, 1, argv, (void **)&u, NULL)) return NULL;
  if (!u->io.delivering) {
    pt_throw(env, "ERR_PODTUN_NOT_IN_BATCH", "sourceOf() is only valid inside onBatch");
    return NULL;
  }
  if (!pt_get_int(env, argv[0], "i", 0, (int64_t)u->rcount - 1, &i)) return NULL;
  return addr_to_js(env, (const struct sockaddr *)&u->rsrc[u->src_of[i]]);
}

/* ---- sealed mode: keypairs and roaming (control path) ---- */

static int check_sealed(napi_env env, pt_udp *u) {
  if (u->seal) return 1;
  pt_throw(env, "ERR_PODTUN_NOT_SEALED", "this UDP socket was opened without sealed: true");
  return 0;
}

/* installKeypair(slot, localIndex, remoteIndex, sendKey, recvKey, cipher, initiator) */
static napi_value udp_install_keypair(napi_env env, napi_callback_info info) {
  pt_udp *u;
  napi_value argv[7];
  if (pt_args(env, info, 7, argv, (void **)&u, NULL) && check_sealed(env, u) && check_open(env, u))
    pt_seal_napi_install(env, u->seal, argv);
  return NULL;
}

static napi_value udp_clear_keypairs(napi_env env, napi_callback_info info) {
  pt_udp *u;
  napi_value argv[1];
  if (pt_args(env, info, 1, argv, (void **)&u, NULL) && check_sealed(env, u)) pt_seal_napi_clear(env, u->seal, argv[0]);
  return NULL;
}

/* keypairInfo(slot): also after close (the keys are wiped by then). */
static napi_value udp_keypair_info(napi_env env, napi_callback_info info) {
  pt_udp *u;
  napi_value argv[1];
  if (!pt_args(env, info, 1, argv, (void **)&u, NULL) || !check_sealed(env, u)) return NULL;
  return pt_seal_napi_info(env, u->seal, argv[0]);
}

/* sealTo(slot, plaintext, len) -> sent: one control message or keepalive (len 0), sealed. */
static napi_value udp_seal_to(napi_env env, napi_callback_info info) {
  pt_udp *u;
  napi_value argv[3], result;
  int64_t slot, len;
  uint8_t *data;
  if (!pt_args(env, info, 3, argv, (void **)&u, NULL) || !check_sealed(env, u) || !get_slot(env, argv[0], &slot) ||
      !get_data(env, argv[1], argv[2], &data, &len) || !check_open(env, u))
    return NULL;
  if (len > GSO_MAX_BYTES - PT_SEAL_OVERHEAD) {
    pt_throw_range(env, "len must be at most %d", GSO_MAX_BYTES - PT_SEAL_OVERHEAD);
    return NULL;
  }
  int ok = 0;
  pt_keypair *kp = NULL;
  if (u->peers[slot].len == 0) {
    u->no_peer_drops++;
  } else if (!(kp = pt_seal_sender(u->seal, (uint32_t)slot, pt_seal_now_ms()))) {
    u->sc.no_keypair_drops++;
  } else {
    /* The bounce buffer is free outside sendPackets. */
    struct iovec piece = {data, (size_t)len};
    int r = pt_seal_message(kp, &piece, 1, (uint32_t)len, u->bounce);
    if (r == 1) {
      u->sc.sealed++;
      ok = pt_udp_send_one(u, &u->peers[slot], u->bounce, (size_t)len + PT_SEAL_OVERHEAD);
    } else if (r == 0) {
      u->sc.no_keypair_drops++;
    } else {
      u->error_drops++;
    }
  }
  napi_get_boolean(env, ok, &result);
  return result;
}

/* allowRoam(slot, on) */
static napi_value udp_allow_roam(napi_env env, napi_callback_info info) {
  pt_udp *u;
  napi_value argv[2];
  int64_t slot;
  int on;
  if (!pt_args(env, info, 2, argv, (void **)&u, NULL) || !check_sealed(env, u) || !get_slot(env, argv[0], &slot) ||
      !pt_get_bool(env, argv[1], "on", &on))
    return NULL;
  u->roam[slot] = (uint8_t)on;
  return NULL;
}

/* peerAddressOf(slot) -> { host, port } | undefined */
static napi_value udp_peer_address_of(napi_env env, napi_callback_info info) {
  pt_udp *u;
  napi_value argv[1], undef;
  int64_t slot;
  if (!pt_args(env, info, 1, argv, (void **)&u, NULL) || !get_slot(env, argv[0], &slot)) return NULL;
  if (u->peers[slot].len != 0) return addr_to_js(env, &u->peers[slot].u.sa);
  napi_get_undefined(env, &undef);
  return undef;
}

pt_seal *pt_udp_seal_table(napi_env env, void *udp) {
  pt_udp *u = udp;
  return check_sealed(env, u) ? u->seal : NULL;
}

static napi_value udp_stats(napi_env env, napi_callback_info info) {
  pt_udp *u;
  napi_value obj, roams;
  if (!pt_args(env, info, 0, NULL, (void **)&u, NULL)) return NULL;
  static const char *const names[] = {
      "sends",         "sendCalls",      "gsoSends",    "eagainDrops",   "errorDrops",    "malformedDrops",
      "noPeerDrops",   "splitSupers",    "gsoFallbacks", "recvBatches",  "recvDatagrams", "groDatagrams",
      "recvSegments",  "truncatedDrops", "recvErrors",  "pollErrors",
  };
  const uint64_t values[] = {
      u->sends,          u->send_calls,    u->gso_sends,      u->eagain_drops, u->error_drops,   u->malformed_drops,
      u->no_peer_drops,  u->split_supers,  u->gso_fallbacks,  u->recv_batches, u->recv_datagrams, u->gro_datagrams,
      u->recv_segments,  u->trunc_drops,   u->recv_errors,    u->io.poll_errors,
  };
  _Static_assert(sizeof names / sizeof names[0] == sizeof values / sizeof values[0], "one name per counter");
  if (!(obj = pt_counters(env, names, values, sizeof values / sizeof values[0])) ||
      !pt_seal_napi_counters(env, obj, &u->sc) || napi_create_double(env, (double)u->seal_roams, &roams) != napi_ok ||
      napi_set_named_property(env, obj, "sealRoams", roams) != napi_ok)
    return NULL;
  return obj;
}

static napi_value udp_close(napi_env env, napi_callback_info info) {
  pt_udp *u;
  if (!pt_args(env, info, 0, NULL, (void **)&u, NULL)) return NULL;
  pt_io_close(&u->io);
  if (u->seal) pt_seal_wipe(u->seal);
  return NULL;
}

napi_value pt_udp_define_class(napi_env env) {
  napi_property_descriptor props[] = {
      {"port", NULL, NULL, udp_port, NULL, NULL, napi_enumerable, NULL},
      {"gso", NULL, NULL, udp_gso, NULL, NULL, napi_enumerable, NULL},
      {"gro", NULL, NULL, udp_gro, NULL, NULL, napi_enumerable, NULL},
      {"setPeer", NULL, udp_set_peer, NULL, NULL, NULL, napi_default, NULL},
      {"clearPeer", NULL, udp_clear_peer, NULL, NULL, NULL, napi_default, NULL},
      {"sendPackets", NULL, udp_send_packets, NULL, NULL, NULL, napi_default, NULL},
      {"sendTo", NULL, udp_send_to, NULL, NULL, NULL, napi_default, NULL},
      {"sendToAddress", NULL, udp_send_to_address, NULL, NULL, NULL, napi_default, NULL},
      {"start", NULL, udp_start, NULL, NULL, NULL, napi_default, NULL},
      {"sourceOf", NULL, udp_source_of, NULL, NULL, NULL, napi_default, NULL},
      {"installKeypair", NULL, udp_install_keypair, NULL, NULL, NULL, napi_default, NULL},
      {"clearKeypairs", NULL, udp_clear_keypairs, NULL, NULL, NULL, napi_default, NULL},
      {"keypairInfo", NULL, udp_keypair_info, NULL, NULL, NULL, napi_default, NULL},
      {"sealTo", NULL, udp_seal_to, NULL, NULL, NULL, napi_default, NULL},
      {"allowRoam", NULL, udp_allow_roam, NULL, NULL, NULL, napi_default, NULL},
      {"peerAddressOf", NULL, udp_peer_address_of, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, udp_stats, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, udp_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls;
  if (napi_define_class(env, "NativeUdp", NAPI_AUTO_LENGTH, pt_construct, NULL, sizeof props / sizeof props[0], props,
                        &cls) != napi_ok)
    return NULL;
  return cls;
}
