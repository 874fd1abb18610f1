/*
 * Sending on a NativeUdp socket. Every input packet (virtio header + IP) becomes one or more
 * datagrams, each the caller's tunnel header + a plain IP packet, gathered from iovecs so that
 * nothing of a packet's payload is copied:
 *
 *  - a plain packet (no TSO) is sent where it lies: its partial checksum is finished in place and
 *    the tunnel header written over its virtio header and the headroom before it (the TUN read
 *    leaves PT_HEADROOM free bytes there); without that room it is copied into the send scratch;
 *  - a TCP super-packet is cut into gso_size segments: each segment's tunnel, IP and TCP headers
 *    are built in the scratch, its payload is referenced in the super-packet.
 *
 * Sealed mode: no tunnel header; each plain packet or TSO segment (its headers built on the
 * stack, its payload where it lies) is sealed into the send scratch as one data message. Equal
 * plaintext sizes give equal sealed sizes, so GSO works as below.
 *
 * Consecutive datagrams of equal size (the last may be shorter) share one message sent with
 * UDP_SEGMENT (GSO); messages go out in sendmmsg batches, non-blocking: what the socket refuses is
 * dropped and counted.
 */
#include <errno.h>
#include <linux/virtio_net.h>
#include <string.h>
#include <sys/socket.h>

#include "udp.h"

/* Counts the input packets of message m as not sent whole (each packet once). */
static void mark_failed(pt_udp *u, const send_meta *m) {
  int64_t lo = m->pkt_lo > u->last_failed ? m->pkt_lo : u->last_failed + 1;
  if ((int64_t)m->pkt_hi >= lo) {
    u->failed += (uint32_t)((int64_t)m->pkt_hi - lo + 1);
    u->last_failed = m->pkt_hi;
  }
}

/* The datagrams of a GSO message one by one (GSO refused by the path): gathered into the bounce
 * buffer first, since a datagram's iovecs need not line up with the message's. 1 if all went. */
static int send_each(pt_udp *u, const send_meta *m) {
  uint32_t at = 0;
  for (uint32_t k = 0; k < m->niov; k++) {
    const struct iovec *v = &u->iovs[m->iov_lo + k];
    memcpy(u->bounce + at, v->iov_base, v->iov_len);
    at += (uint32_t)v->iov_len;
  }
  int ok = 1;
  for (uint32_t i = 0; i < m->nseg; i++) {
    uint32_t off = i * m->seg_size, len = m->bytes - off < m->seg_size ? m->bytes - off : m->seg_size;
    ssize_t r;
    do r = sendto(u->io.fd, u->bounce + off, len, MSG_DONTWAIT, &u->dst->u.sa, u->dst->len);
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
    h->msg_iov = &u->iovs[u->meta[k].iov_lo];
    h->msg_iovlen = u->meta[k].niov;
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
      if (!send_each(u, m)) mark_failed(u, m);
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
  u->niovs = 0;
  u->pos = 0;
}

/* 1 when a datagram of `dlen` bytes may join the last queued message as one more GSO segment. */
static int joins_last(const pt_udp *u, uint32_t dlen) {
  if (!u->gso || u->nmsgs == 0) return 0;
  const send_meta *m = &u->meta[u->nmsgs - 1];
  return !m->closed && dlen <= m->seg_size && m->nseg < GSO_MAX_SEGS && m->bytes + dlen <= GSO_MAX_BYTES;
}

/* Makes room for one datagram of `dlen` bytes in `niov` iovecs and `scratch` bytes of scratch:
 * flushes the queue first when any runs short, so nothing queued is overwritten later. */
static void make_room(pt_udp *u, uint32_t dlen, uint32_t niov, uint32_t scratch) {
  if (u->niovs + niov > SEND_IOVS || u->pos + scratch > SEND_SCRATCH_BYTES ||
      (u->nmsgs == SEND_MSGS && !joins_last(u, dlen)))
    flush(u);
}

/* Queues one datagram made of `parts` (room made beforehand). */
static void queue(pt_udp *u, const struct iovec *parts, uint32_t nparts, uint32_t dlen) {
  memcpy(&u->iovs[u->niovs], parts, nparts * sizeof *parts);
  if (joins_last(u, dlen)) { /* its iovecs follow the last message's at the end of the pool */
    send_meta *m = &u->meta[u->nmsgs - 1];
    m->nseg++;
    m->bytes += dlen;
    m->closed = dlen < m->seg_size;
    m->pkt_hi = u->cur_pkt;
    m->niov += nparts;
  } else {
    u->meta[u->nmsgs++] = (send_meta){u->cur_pkt, u->cur_pkt, dlen, 1, dlen, u->niovs, nparts, 0};
  }
  u->niovs += nparts;
}

/* A plain packet where it lies, the tunnel header written in the bytes before `ip`. */
static void send_in_place(pt_udp *u, uint8_t *ip, uint32_t len) {
  uint32_t dlen = u->hdr_len + len;
  make_room(u, dlen, 1, 0);
  uint8_t *d = ip - u->hdr_len;
  memcpy(d, u->hdr, u->hdr_len);
  struct iovec part = {d, dlen};
  queue(u, &part, 1, dlen);
}

/* A plain packet copied into the scratch behind a copy of the tunnel header (no room in front). */
static void send_copy(pt_udp *u, const uint8_t *ip, uint32_t len) {
  uint32_t dlen = u->hdr_len + len;
  make_room(u, dlen, 1, dlen);
  uint8_t *d = u->scratch + u->pos;
  memcpy(d, u->hdr, u->hdr_len);
  memcpy(d + u->hdr_len, ip, len);
  u->pos += dlen;
  struct iovec part = {d, dlen};
  queue(u, &part, 1, dlen);
}

/* One sealed datagram: the plain packet `pieces` (`plen` bytes) sealed into the scratch. */
static void send_sealed(pt_udp *u, const struct iovec *pieces, uint32_t npieces, uint32_t plen) {
  uint32_t dlen = plen + PT_SEAL_OVERHEAD;
  make_room(u, dlen, 1, dlen);
  uint8_t *d = u->scratch + u->pos;
  int r = pt_seal_message(u->kp, pieces, npieces, plen, d);
  if (r != 1) {
    /* Counter spent (2^64 - 2^13 messages) or the cipher failed: never in practice. The queue is
     * flushed first so that mark_failed still sees the packets in order. */
    flush(u);
    send_meta m = {.pkt_lo = u->cur_pkt, .pkt_hi = u->cur_pkt};
    mark_failed(u, &m);
    if (r == 0) u->sc.no_keypair_drops++;
    else u->error_drops++;
    return;
  }
  u->pos += dlen;
  u->sc.sealed++;
  struct iovec part = {d, dlen};
  queue(u, &part, 1, dlen);
}

/* A super-packet's segments, sealed: headers built on the stack, payloads read where they lie. */
static uint32_t send_tso_sealed(pt_udp *u, const pt_tso *t) {
  uint8_t hdrs[120]; /* IP (<= 60) + TCP (<= 60) headers */
  for (uint32_t i = 0; i < t->nseg; i++) {
    const uint8_t *payload;
    uint32_t seglen = pt_tso_segment(t, i, hdrs, &payload);
    struct iovec pieces[2] = {{hdrs, t->hlen}, {(void *)payload, seglen}};
    send_sealed(u, pieces, 2, t->hlen + seglen);
  }
  return t->nseg;
}

/* A super-packet's segments: headers built in the scratch, payloads referenced where they lie. */
static uint32_t send_tso(pt_udp *u, const pt_tso *t) {
  if (u->kp) return send_tso_sealed(u, t);
  for (uint32_t i = 0; i < t->nseg; i++) {
    uint32_t seglen = i + 1 < t->nseg ? t->mss : t->payload - i * t->mss;
    uint32_t hbytes = u->hdr_len + t->hlen, dlen = hbytes + seglen;
    make_room(u, dlen, 2, hbytes);
    uint8_t *d = u->scratch + u->pos;
    memcpy(d, u->hdr, u->hdr_len);
    const uint8_t *payload;
    pt_tso_segment(t, i, d + u->hdr_len, &payload);
    u->pos += hbytes;
    struct iovec parts[2] = {{d, hbytes}, {(void *)payload, seglen}};
    queue(u, parts, seglen ? 2 : 1, dlen);
  }
  return t->nseg;
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

uint32_t pt_udp_send_packets(pt_udp *u, const pt_addr *dst, const uint8_t *hdr, uint32_t hdr_len,
                             const pt_packet_list *list, uint32_t count, uint32_t headroom, pt_keypair *kp) {
  u->kp = kp;
  u->hdr = hdr;
  u->hdr_len = kp ? 0 : hdr_len;
  u->dst = dst;
  u->last_failed = -1;
  u->failed = 0;
  /* Room in front of the IP header: the headroom plus the virtio header, read before overwritten. */
  int in_place = headroom + PT_VNET_HDR_LEN >= hdr_len;
  uint32_t emitted = 0;
  for (uint32_t i = 0; i < count; i++) {
    const uint8_t *pkt;
    uint32_t vlen;
    if (!pt_packet_list_at((void *)list, i, &pkt, &vlen) || vlen <= PT_VNET_HDR_LEN || vlen - PT_VNET_HDR_LEN > 65535) {
      u->malformed_drops++;
      continue;
    }
    struct virtio_net_hdr h;
    memcpy(&h, pkt, sizeof h);
    /* The list is the caller's to patch (a borrowed batch): checksums and headers go in place. */
    uint8_t *ip = (uint8_t *)pkt + PT_VNET_HDR_LEN;
    uint32_t len = vlen - PT_VNET_HDR_LEN;
    uint8_t version = ip[0] >> 4;
    if ((version != 4 || len < 20) && (version != 6 || len < 40)) {
      u->malformed_drops++;
      continue;
    }
    u->cur_pkt = i;
    uint8_t gso = h.gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
    if (gso == VIRTIO_NET_HDR_GSO_NONE) {
      if (!pt_finish_csum(ip, len, &h)) {
        u->malformed_drops++;
        continue;
      }
      struct iovec piece = {ip, len};
      if (kp) send_sealed(u, &piece, 1, len);
      /* In place only where the room really is (the first packet of a buffer may lack it). */
      else if (in_place && (size_t)(ip - list->buf) >= hdr_len) send_in_place(u, ip, len);
      else send_copy(u, ip, len);
    } else {
      pt_tso t;
      if ((gso != VIRTIO_NET_HDR_GSO_TCPV4 && gso != VIRTIO_NET_HDR_GSO_TCPV6) || !pt_tso_plan(ip, len, &h, &t)) {
        u->malformed_drops++;
        continue;
      }
      u->split_supers += send_tso(u, &t) > 1;
    }
    emitted++;
  }
  flush(u);
  u->kp = NULL;
  return emitted - u->failed;
}
