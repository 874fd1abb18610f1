/*
 * Packet surgery between the TUN (virtio super-packets, partial checksums) and the wire (plain,
 * MTU-size IP packets with complete checksums). Pure functions over caller-owned memory: nothing
 * here allocates or does I/O.
 */
#ifndef PODTUN_OFFLOAD_H
#define PODTUN_OFFLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define PT_VNET_HDR_LEN 10
/* The largest packet a TUN read or write carries: a 64 KiB super-packet plus its header. */
#define PT_MAX_PACKET (65535 + PT_VNET_HDR_LEN)
/* Segments per re-built super-packet (the kernel's own GRO stops at 64 too). */
#define PT_MAX_MERGE_SEGS 64

/*
 * Free bytes the TUN read leaves in front of each packet's virtio header: a sender may write its
 * tunnel header there, over the virtio header it has read, and send the packet where it lies.
 * 22 puts the IP header of every packet on a 16-byte boundary after the 10-byte virtio header.
 */
#define PT_HEADROOM 22

#define PT_MALFORMED (-1)
#define PT_NO_ROOM (-2)

/*
 * Where split packets go. `reserve(sink, len)` lends `len` writable bytes (NULL: no room);
 * `commit(sink, len)` says the packet written there is complete. The sink owns the memory.
 */
typedef struct pt_sink pt_sink;
struct pt_sink {
  uint8_t *(*reserve)(pt_sink *sink, uint32_t len);
  void (*commit)(pt_sink *sink, uint32_t len);
};

/*
 * Emits the plain IP packet(s) of one virtio packet `v` (header + IP packet, `vlen` bytes; only
 * read): a TCP super-packet (gso_type TCPV4/TCPV6) is cut into gso_size segments with their own
 * headers and full checksums; a partial checksum (NEEDS_CSUM) is finished; other packets are
 * copied as they are. Everything is validated before the first byte is emitted.
 * Returns the number of packets emitted, PT_MALFORMED (nothing emitted) or PT_NO_ROOM.
 */
int pt_emit_plain(const uint8_t *v, uint32_t vlen, pt_sink *sink);

struct virtio_net_hdr;

/* Finishes a partial checksum (NEEDS_CSUM) of the IP packet `ip` in place; 0 when its offsets do
 * not fit `len` (nothing written). A packet without NEEDS_CSUM is left alone (1). */
int pt_finish_csum(uint8_t *ip, uint32_t len, const struct virtio_net_hdr *h);

/* A TCP super-packet cut into gso_size segments, planned once. */
typedef struct {
  const uint8_t *ip;
  uint8_t v6;
  uint16_t iphl, hlen; /* IP header, IP + TCP headers */
  uint32_t mss, nseg, payload;
} pt_tso;

/* Plans the split of super-packet `ip` (`len` bytes, header `h`); 0 when it is malformed. */
int pt_tso_plan(const uint8_t *ip, uint32_t len, const struct virtio_net_hdr *h, pt_tso *t);

/*
 * Writes segment i's IP + TCP headers (t->hlen bytes) into `d`, lengths, ids, sequence, flags and
 * both checksums done (the TCP one over the payload where it lies); points `payload` at its
 * payload in the super-packet (only read) and returns its length.
 */
uint32_t pt_tso_segment(const pt_tso *t, uint32_t i, uint8_t *d, const uint8_t **payload);

/* Packet i of a list, or 0 when the caller's offsets for it are out of bounds. */
typedef int (*pt_packet_at)(void *ctx, uint32_t i, const uint8_t **pkt, uint32_t *len);

/* A JS packet list (borrowed): packet i is pair idx[i] of offs, inside buf. */
typedef struct {
  const uint8_t *buf;
  size_t buf_len;
  const int32_t *offs;
  size_t offs_len;
  const int32_t *idx;
} pt_packet_list;

/* pt_packet_at over a pt_packet_list; checks every index and offset against the arrays. */
int pt_packet_list_at(void *list, uint32_t i, const uint8_t **pkt, uint32_t *len);

/*
 * Writes one TUN packet: `iov[0]` is its virtio header, the rest its IP packet; it stands for
 * `npkts` input packets. Returns 1 when the packet was taken.
 */
typedef int (*pt_write_fn)(void *ctx, const struct iovec *iov, int niov, uint32_t npkts);

typedef struct {
  uint64_t merged_supers;   /* super-packets built from 2+ segments */
  uint64_t merged_segments; /* segments that went into them */
  uint64_t invalid;         /* packets skipped: bad offsets */
} pt_coalesce_stats;

/*
 * Scratch of one coalescer (one per TUN device): the header of the super-packet being written
 * and its iovecs. Allocated once by the owner.
 */
typedef struct {
  uint8_t vnet[PT_VNET_HDR_LEN];
  uint8_t hdr[120]; /* IP (<= 60) + TCP (<= 60) header of a super-packet */
  struct iovec iov[2 + PT_MAX_MERGE_SEGS];
} pt_coalescer;

/*
 * Writes bare IP packets 0..count) of `at` in order, each behind a virtio header. Runs of
 * consecutive TCP segments of one flow (see offload.c for the exact rules) become one TSO
 * super-packet; everything else goes alone behind an all-zero header, so the kernel verifies it.
 * Packets are only read. Returns how many input packets `write` took.
 */
uint32_t pt_coalesce(pt_coalescer *co, pt_packet_at at, void *at_ctx, uint32_t count, pt_write_fn write,
                     void *write_ctx, pt_coalesce_stats *stats);

#endif
