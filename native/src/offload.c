/*
 * TSO split (TUN -> wire) and TCP coalescing (wire -> TUN).
 *
 * Checksum rules (see checksum.h for byte order):
 * - split segments get a full TCP checksum and, for IPv4, a fresh header checksum;
 * - a re-built super-packet goes to the kernel as CHECKSUM_PARTIAL: its TCP checksum field holds
 *   the folded, NOT complemented pseudo-header sum over the whole TCP length, csum_start = IP
 *   header length, csum_offset = 16. The kernel then trusts the payload, which is why every
 *   segment's own checksum is verified before it is merged.
 */
#include "offload.h"

#include <arpa/inet.h>
#include <linux/virtio_net.h>
#include <netinet/in.h>
#include <string.h>

#include "checksum.h"

#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_CWR 0x80
#define IPV4_DF 0x40 /* in byte 6 */
#define MAX_IP_LEN 65535u

_Static_assert(sizeof(struct virtio_net_hdr) == PT_VNET_HDR_LEN, "virtio_net_hdr is 10 bytes");

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void wr16(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static void wr32(uint8_t *p, uint32_t v) {
  wr16(p, v >> 16);
  wr16(p + 2, v);
}

/* Where the TCP header of a plain IP packet is. */
typedef struct {
  uint8_t v6;
  uint16_t iphl; /* IP header length */
  uint16_t hlen; /* IP + TCP header length */
} tcp_layout;

/* 1 when `ip` (`len` bytes, the caller's length) is TCP over IPv4 (not a fragment) or over IPv6
 * without extension headers, with both headers inside `len`. */
static int tcp_layout_of(const uint8_t *ip, uint32_t len, tcp_layout *l) {
  if (len < 20) return 0;
  if (ip[0] >> 4 == 4) {
    l->v6 = 0;
    l->iphl = (uint16_t)((ip[0] & 15) * 4);
    if (l->iphl < 20 || ip[9] != IPPROTO_TCP || (rd16(ip + 6) & 0x3fff) != 0) return 0;
  } else if (ip[0] >> 4 == 6) {
    l->v6 = 1;
    l->iphl = 40;
    if (len < 40 || ip[6] != IPPROTO_TCP) return 0;
  } else {
    return 0;
  }
  if (len < (uint32_t)l->iphl + 20) return 0;
  uint16_t tcphl = (uint16_t)((ip[l->iphl + 12] >> 4) * 4);
  if (tcphl < 20 || len < (uint32_t)l->iphl + tcphl) return 0;
  l->hlen = (uint16_t)(l->iphl + tcphl);
  return 1;
}

/* Running sum of the TCP pseudo-header for a TCP length of `tcplen`. */
static uint64_t tcp_pseudo(const uint8_t *ip, int v6, uint32_t tcplen) {
  if (v6) return pt_csum_add(0, ip + 8, 32) + htonl(IPPROTO_TCP) + htonl(tcplen);
  return pt_csum_add(0, ip + 12, 8) + htons(IPPROTO_TCP) + htons((uint16_t)tcplen);
}

static void ipv4_set_csum(uint8_t *ip, uint16_t iphl) {
  pt_store16(ip + 10, 0);
  pt_store16(ip + 10, (uint16_t)~pt_csum_fold(pt_csum_add(0, ip, iphl)));
}

/* ---- split: virtio packet -> plain packets ---- */

int pt_finish_csum(uint8_t *ip, uint32_t len, const struct virtio_net_hdr *h) {
  if (!(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)) return 1;
  if (h->csum_start >= len || (uint32_t)h->csum_start + h->csum_offset + 2 > len) return 0;
  /* The field holds the pseudo-header sum: summing from csum_start over it completes it. */
  uint16_t c = (uint16_t)~pt_csum_fold(pt_csum_add(0, ip + h->csum_start, len - h->csum_start));
  pt_store16(ip + h->csum_start + h->csum_offset, c ? c : 0xffff); /* 0 means "none" for UDP */
  return 1;
}

static int emit_copy(const uint8_t *ip, uint32_t len, const struct virtio_net_hdr *h, pt_sink *sink) {
  if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
      (h->csum_start >= len || (uint32_t)h->csum_start + h->csum_offset + 2 > len))
    return PT_MALFORMED;
  uint8_t *d = sink->reserve(sink, len);
  if (!d) return PT_NO_ROOM;
  memcpy(d, ip, len);
  pt_finish_csum(d, len, h);
  sink->commit(sink, len);
  return 1;
}

int pt_tso_plan(const uint8_t *ip, uint32_t len, const struct virtio_net_hdr *h, pt_tso *t) {
  tcp_layout l;
  int v6 = (h->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN) == VIRTIO_NET_HDR_GSO_TCPV6;
  if (!tcp_layout_of(ip, len, &l) || l.v6 != v6 || h->gso_size == 0) return 0;
  t->ip = ip;
  t->v6 = (uint8_t)v6;
  t->iphl = l.iphl;
  t->hlen = l.hlen;
  t->mss = h->gso_size;
  uint32_t payload = len - l.hlen;
  t->nseg = payload ? (payload + t->mss - 1) / t->mss : 1;
  t->payload = payload;
  return 1;
}

uint32_t pt_tso_segment(const pt_tso *t, uint32_t i, uint8_t *d, const uint8_t **payload) {
  const uint8_t *ip = t->ip;
  uint32_t seglen = i + 1 < t->nseg ? t->mss : t->payload - i * t->mss;
  uint32_t n = t->hlen + seglen, tcplen = n - t->iphl;
  *payload = ip + t->hlen + i * t->mss;
  memcpy(d, ip, t->hlen);
  if (t->v6) {
    wr16(d + 4, n - 40);
  } else {
    wr16(d + 2, n);
    wr16(d + 4, (uint16_t)(rd16(ip + 4) + i));
    ipv4_set_csum(d, t->iphl);
  }
  uint8_t *tcp = d + t->iphl;
  wr32(tcp + 4, rd32(ip + t->iphl + 4) + i * t->mss);
  if (i + 1 < t->nseg) tcp[13] &= (uint8_t)~(TCP_FIN | TCP_PSH); /* end-of-data marks stay on the last */
  if (i > 0) tcp[13] &= (uint8_t)~TCP_CWR;                      /* congestion reply once, on the first */
  pt_store16(tcp + 16, 0);
  /* The TCP header length is a multiple of 4, so the payload's sum continues it word-aligned. */
  uint64_t sum = tcp_pseudo(d, t->v6, tcplen) + pt_csum_add(0, tcp, t->hlen - t->iphl) + pt_csum_add(0, *payload, seglen);
  pt_store16(tcp + 16, (uint16_t)~pt_csum_fold(sum));
  return seglen;
}

static int emit_tso(const uint8_t *ip, uint32_t len, const struct virtio_net_hdr *h, pt_sink *sink) {
  pt_tso t;
  if (!pt_tso_plan(ip, len, h, &t)) return PT_MALFORMED;
  for (uint32_t i = 0; i < t.nseg; i++) {
    uint32_t seglen = i + 1 < t.nseg ? t.mss : t.payload - i * t.mss;
    uint8_t *d = sink->reserve(sink, t.hlen + seglen);
    if (!d) return PT_NO_ROOM;
    const uint8_t *payload;
    pt_tso_segment(&t, i, d, &payload);
    memcpy(d + t.hlen, payload, seglen);
    sink->commit(sink, t.hlen + seglen);
  }
  return (int)t.nseg;
}

int pt_emit_plain(const uint8_t *v, uint32_t vlen, pt_sink *sink) {
  if (vlen <= PT_VNET_HDR_LEN || vlen - PT_VNET_HDR_LEN > MAX_IP_LEN) return PT_MALFORMED;
  struct virtio_net_hdr h;
  memcpy(&h, v, sizeof h);
  const uint8_t *ip = v + PT_VNET_HDR_LEN;
  uint32_t len = vlen - PT_VNET_HDR_LEN;
  uint8_t version = ip[0] >> 4;
  if ((version != 4 || len < 20) && (version != 6 || len < 40)) return PT_MALFORMED;
  switch (h.gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN) {
    case VIRTIO_NET_HDR_GSO_NONE:
      return emit_copy(ip, len, &h, sink);
    case VIRTIO_NET_HDR_GSO_TCPV4:
    case VIRTIO_NET_HDR_GSO_TCPV6:
      return emit_tso(ip, len, &h, sink);
    default: /* UDP fragmentation/segmentation offload is never enabled on our TUN */
      return PT_MALFORMED;
  }
}

int pt_packet_list_at(void *list, uint32_t i, const uint8_t **pkt, uint32_t *len) {
  const pt_packet_list *l = list;
  int32_t j = l->idx[i];
  if (j < 0 || (size_t)j >= l->offs_len / 2) return 0;
  int32_t off = l->offs[2 * j], n = l->offs[2 * j + 1];
  if (off < 0 || n < 0 || (size_t)off + (size_t)n > l->buf_len) return 0;
  *pkt = l->buf + off;
  *len = (uint32_t)n;
  return 1;
}

/* ---- coalesce: plain packets -> virtio super-packets ---- */

typedef struct {
  const uint8_t *p;
  uint32_t len;
  tcp_layout l;
  uint32_t seq;
  uint32_t payload;
  uint8_t flags;
  uint8_t mergeable; /* a TCP data segment that may take part in a super-packet */
} seg_info;

static void seg_inspect(seg_info *s, const uint8_t *p, uint32_t len) {
  s->p = p;
  s->len = len;
  s->mergeable = 0;
  if (!tcp_layout_of(p, len, &s->l)) return;
  if (s->l.v6) {
    if ((uint32_t)rd16(p + 4) + 40 != len) return;
  } else if (s->l.iphl != 20 || rd16(p + 2) != len || pt_csum_fold(pt_csum_add(0, p, 20)) != 0xffff) {
    return; /* options, trailing bytes or a bad header checksum: leave it to the kernel */
  }
  const uint8_t *t = p + s->l.iphl;
  s->flags = t[13];
  if (s->flags & (uint8_t)~(TCP_ACK | TCP_PSH) || !(s->flags & TCP_ACK)) return;
  s->payload = len - s->l.hlen;
  if (s->payload == 0) return;
  s->seq = rd32(t + 4);
  uint32_t tcplen = len - s->l.iphl;
  if (pt_csum_fold(tcp_pseudo(p, s->l.v6, tcplen) + pt_csum_add(0, t, tcplen)) != 0xffff) return;
  s->mergeable = 1;
}

/* 1 when `next` can extend the run first..last (nseg segments, IP length `total`): same flow and
 * IP/TCP header fields, contiguous sequence numbers, first's segment size for all but a shorter
 * last one, no PSH before the end. */
static int seg_follows(const seg_info *first, const seg_info *last, const seg_info *next, uint32_t nseg,
                       uint32_t total) {
  if (!next->mergeable || next->l.v6 != first->l.v6 || next->l.hlen != first->l.hlen) return 0;
  if (nseg >= PT_MAX_MERGE_SEGS || total + next->payload > MAX_IP_LEN) return 0;
  if (last->flags & TCP_PSH || last->payload != first->payload || next->payload > first->payload) return 0;
  if (next->seq != last->seq + last->payload) return 0;
  const uint8_t *a = first->p, *b = next->p;
  if (first->l.v6) {
    if (memcmp(a, b, 4) || a[7] != b[7] || memcmp(a + 8, b + 8, 32)) return 0; /* class/flow, hops, addrs */
  } else if (a[1] != b[1] || a[8] != b[8] || (a[6] & IPV4_DF) != (b[6] & IPV4_DF) || memcmp(a + 12, b + 12, 8)) {
    return 0; /* TOS, TTL, DF, addresses */
  }
  const uint8_t *ta = a + first->l.iphl, *tb = b + first->l.iphl;
  /* ports, ack, data offset, window, options (timestamps included) */
  return !memcmp(ta, tb, 4) && !memcmp(ta + 8, tb + 8, 4) && ta[12] == tb[12] && !memcmp(ta + 14, tb + 14, 2) &&
         !memcmp(ta + 20, tb + 20, (size_t)(first->l.hlen - first->l.iphl - 20));
}

/* Fills the coalescer's header and virtio header for the run first..last of IP length `total`. */
static void build_super(pt_coalescer *co, const seg_info *first, const seg_info *last, uint32_t total) {
  uint8_t *h = co->hdr;
  uint16_t iphl = first->l.iphl;
  memcpy(h, first->p, first->l.hlen);
  if (first->l.v6) {
    wr16(h + 4, total - 40);
  } else {
    wr16(h + 2, total);
    ipv4_set_csum(h, iphl);
  }
  uint8_t *t = h + iphl;
  t[13] |= last->flags & TCP_PSH;
  pt_store16(t + 16, pt_csum_fold(tcp_pseudo(h, first->l.v6, total - iphl)));
  struct virtio_net_hdr vh = {
      .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
      .gso_type = first->l.v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4,
      .hdr_len = first->l.hlen,
      .gso_size = (uint16_t)first->payload,
      .csum_start = iphl,
      .csum_offset = 16,
  };
  memcpy(co->vnet, &vh, sizeof vh);
}

static int seg_load(pt_packet_at at, void *ctx, uint32_t i, seg_info *s) {
  const uint8_t *p;
  uint32_t len;
  if (!at(ctx, i, &p, &len) || len == 0) return 0;
  seg_inspect(s, p, len);
  return 1;
}

uint32_t pt_coalesce(pt_coalescer *co, pt_packet_at at, void *at_ctx, uint32_t count, pt_write_fn write,
                     void *write_ctx, pt_coalesce_stats *stats) {
  uint32_t accepted = 0, i = 0;
  seg_info first, last, next;
  int have_next = 0; /* `next` already holds packet i (inspected once, used as the next run's start) */
  while (i < count) {
    if (have_next) {
      first = next;
      have_next = 0;
    } else if (!seg_load(at, at_ctx, i, &first)) {
      stats->invalid++;
      i++;
      continue;
    }
    last = first;
    uint32_t n = 1, total = first.len;
    co->iov[2] = (struct iovec){(void *)(first.p + first.l.hlen), first.payload};
    while (first.mergeable && i + n < count && seg_load(at, at_ctx, i + n, &next)) {
      if (!seg_follows(&first, &last, &next, n, total)) {
        have_next = 1;
        break;
      }
      co->iov[2 + n] = (struct iovec){(void *)(next.p + next.l.hlen), next.payload};
      total += next.payload;
      last = next;
      n++;
    }
    int niov;
    if (n > 1) {
      build_super(co, &first, &last, total);
      co->iov[1] = (struct iovec){co->hdr, first.l.hlen};
      niov = 2 + (int)n;
      stats->merged_supers++;
      stats->merged_segments += n;
    } else {
      memset(co->vnet, 0, sizeof co->vnet);
      co->iov[1] = (struct iovec){(void *)first.p, first.len};
      niov = 2;
    }
    co->iov[0] = (struct iovec){co->vnet, PT_VNET_HDR_LEN};
    if (write(write_ctx, co->iov, niov, n)) accepted += n;
    i += n;
  }
  return accepted;
}
