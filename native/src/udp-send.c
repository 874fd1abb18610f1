/*
 * Sending on a NativeUdp socket. Every input packet (virtio header + IP) becomes one or more
 * datagrams, each the caller's tunnel header + a plain IP packet, built in the socket's send
 * scratch (offload.c does the splitting through the sink below). Consecutive datagrams of equal
 * size share one message sent with UDP_SEGMENT (GSO); messages go out in sendmmsg batches,
 * non-blocking: what the socket refuses is dropped and counted.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "udp.h"

#define UDP_OF_SINK(s) ((pt_udp *)((char *)(s) - offsetof(pt_udp, sink)))

/* Counts the input packets of message m as not sent whole (each packet once). */
static void mark_failed(pt_udp *u, const send_meta *m) {
  int64_t lo = m->pkt_lo > u->last_failed ? m->pkt_lo : u->last_failed + 1;
  if ((int64_t)m->pkt_hi >= lo) {
    u->failed += (uint32_t)((int64_t)m->pkt_hi - lo + 1);
    u->last_failed = m->pkt_hi;
  }
}

/* The datagrams of a GSO message one by one (GSO refused by the path). Returns 1 if all went. */
static int send_each(pt_udp *u, const send_meta *m, const uint8_t *base) {
  int ok = 1;
  for (uint32_t i = 0; i < m->nseg; i++) {
    uint32_t off = i * m->seg_size, len = m->bytes - off < m->seg_size ? m->bytes - off : m->seg_size;
    ssize_t r;
    do r = sendto(u->io.fd, base + off, len, MSG_DONTWAIT, &u->dst->u.sa, u->dst->len);
    while (r < 0 && errno == EINTR);
    u->send_calls++;
    if (r < 0) {
      ok = 0;
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
        u->eagain_drops++;
      else
        u->error_drops++;
    } else {
      u->sends++;
    }
  }
  return ok;
}

/* Sends the queued messages; what the socket refuses is dropped and counted. Empties the queue. */
static void flush(pt_udp *u) {
  for (uint32_t k = 0; k < u->nmsgs; k++) {
    struct msghdr *h = &u->msgs[k].msg_hdr;
    memset(h, 0, sizeof *h);
    h->msg_name = (void *)&u->dst->u.sa;
    h->msg_namelen = u->dst->len;
    h->msg_iov = &u->iov[k];
    h->msg_iovlen = 1;
    if (u->meta[k].nseg > 1) {
      struct cmsghdr *c = &u->ctrl[k].align;
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t seg = (uint16_t)u->meta[k].seg_size;
      memcpy(CMSG_DATA(c), &seg, sizeof seg);
      h->msg_control = u->ctrl[k].buf;
      h->msg_controllen = sizeof u->ctrl[k].buf;
    }
  }
  uint32_t done = 0;
  while (done < u->nmsgs) {
    int r = sendmmsg(u->io.fd, &u->msgs[done], u->nmsgs - done, MSG_DONTWAIT);
    u->send_calls++;
    if (r > 0) {
      for (uint32_t k = done; k < done + (uint32_t)r; k++) {
        u->sends += u->meta[k].nseg;
        u->gso_sends += u->meta[k].nseg > 1;
      }
      done += (uint32_t)r;
      continue;
    }
    int err = errno;
    if (r < 0 && err == EINTR) continue;
    send_meta *m = &u->meta[done];
    if (m->nseg > 1 && (err == EIO || err == EINVAL)) {
      /* EIO: the route's device cannot checksum GSO datagrams, give GSO up for good.
       * EINVAL: this message does not fit the path (segment larger than its MTU): send it whole. */
      if (err == EIO) u->gso = 0;
      u->gso_fallbacks++;
      if (!send_each(u, m, u->iov[done].iov_base)) mark_failed(u, m);
      done++;
      continue;
    }
    if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) {
      for (; done < u->nmsgs; done++) { /* the socket is full: the rest would fail too */
        u->eagain_drops += u->meta[done].nseg;
        mark_failed(u, &u->meta[done]);
      }
      break;
    }
    u->error_drops += m->nseg;
    mark_failed(u, m);
    done++;
  }
  u->nmsgs = 0;
  u->pos = 0;
}

/* 1 when a datagram of `dlen` bytes may join the last queued message as one more GSO segment. */
static int joins_last(const pt_udp *u, uint32_t dlen) {
  if (!u->gso || u->nmsgs == 0) return 0;
  const send_meta *m = &u->meta[u->nmsgs - 1];
  return !m->closed && dlen <= m->seg_size && m->nseg < GSO_MAX_SEGS && m->bytes + dlen <= GSO_MAX_BYTES;
}

/* Sink for pt_emit_plain: lends room for one IP packet right after a copy of the tunnel header. */
static uint8_t *udp_reserve(pt_sink *s, uint32_t len) {
  pt_udp *u = UDP_OF_SINK(s);
  uint32_t dlen = u->hdr_len + len;
  if (u->pos + dlen > SEND_SCRATCH_BYTES || (u->nmsgs == SEND_MSGS && !joins_last(u, dlen))) flush(u);
  uint8_t *d = u->scratch + u->pos;
  memcpy(d, u->hdr, u->hdr_len);
  return d + u->hdr_len;
}

static void udp_commit(pt_sink *s, uint32_t len) {
  pt_udp *u = UDP_OF_SINK(s);
  uint32_t dlen = u->hdr_len + len;
  if (joins_last(u, dlen)) { /* it is contiguous: the last message ends at pos */
    send_meta *m = &u->meta[u->nmsgs - 1];
    m->nseg++;
    m->bytes += dlen;
    m->closed = dlen < m->seg_size;
    m->pkt_hi = u->cur_pkt;
    u->iov[u->nmsgs - 1].iov_len += dlen;
  } else {
    u->meta[u->nmsgs] = (send_meta){u->cur_pkt, u->cur_pkt, dlen, 1, dlen, 0};
    u->iov[u->nmsgs] = (struct iovec){u->scratch + u->pos, dlen};
    u->nmsgs++;
  }
  u->pos += dlen;
}

int pt_udp_send_one(pt_udp *u, const pt_addr *a, const uint8_t *data, size_t len) {
  ssize_t r;
  do r = sendto(u->io.fd, data, len, MSG_DONTWAIT, &a->u.sa, a->len);
  while (r < 0 && errno == EINTR);
  u->send_calls++;
  if (r >= 0) u->sends++;
  else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) u->eagain_drops++;
  else u->error_drops++;
  return r >= 0;
}

void pt_udp_send_init(pt_udp *u) { u->sink = (pt_sink){udp_reserve, udp_commit}; }

uint32_t pt_udp_send_packets(pt_udp *u, const pt_addr *dst, const uint8_t *hdr, uint32_t hdr_len,
                             const pt_packet_list *list, uint32_t count) {
  u->hdr = hdr;
  u->hdr_len = hdr_len;
  u->dst = dst;
  u->last_failed = -1;
  u->failed = 0;
  uint32_t emitted = 0;
  for (uint32_t i = 0; i < count; i++) {
    const uint8_t *pkt;
    uint32_t len;
    if (!pt_packet_list_at((void *)list, i, &pkt, &len) || len == 0) {
      u->malformed_drops++;
      continue;
    }
    u->cur_pkt = i;
    int n = pt_emit_plain(pkt, len, &u->sink); /* never PT_NO_ROOM: reserve flushes */
    if (n < 0) {
      u->malformed_drops++;
      continue;
    }
    u->split_supers += n > 1;
    emitted++;
  }
  flush(u);
  return emitted - u->failed;
}
