/* One NativeUdp socket: its state, shared by the bindings (udp.c) and the send path (udp-send.c). */
#ifndef PODTUN_UDP_H
#define PODTUN_UDP_H

#include <netinet/in.h>
#include <netinet/udp.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "io.h"
#include "offload.h"
#include "seal.h"

#define PEER_SLOTS 4096
#define SEND_SCRATCH_BYTES (2u << 20)
#define SEND_MSGS 256
/* iovecs of the queued messages: a datagram is one (a packet in place, or a copy) or two (a TSO
 * segment's headers + its payload where it lies). */
#define SEND_IOVS 2048
/* One UDP_SEGMENT send carries at most 64 segments and must stay under the 64 KiB IP limit. */
#define GSO_MAX_SEGS 64
#define GSO_MAX_BYTES 64000
#define MAX_TUNNEL_HEADER 256
#define RECV_SLOT_BYTES 65536
#define RECV_MSGS 32
#define GRO_MAX_SEGS 64

typedef struct {
  union {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
  } u;
  socklen_t len; /* 0: empty slot */
} pt_addr;

/* One queued message: `nseg` datagrams of `seg_size` bytes (the last may be shorter), gathered
 * from iovs[iov_lo .. iov_lo + niov). */
typedef struct {
  uint32_t pkt_lo, pkt_hi; /* ordinals (in this sendPackets call) of the input packets it carries */
  uint32_t seg_size, nseg, bytes;
  uint32_t iov_lo, niov;
  uint8_t closed; /* ended by a shorter datagram: nothing may join */
} send_meta;

typedef union {
  struct cmsghdr align;
  char buf[CMSG_SPACE(sizeof(uint16_t))];
} gso_ctrl;

typedef union {
  struct cmsghdr align;
  char buf[CMSG_SPACE(sizeof(int))];
} gro_ctrl;

typedef struct {
  pt_io io; /* first: pt_io callbacks cast back to pt_udp */
  int family;
  int gso, gro;
  uint16_t port;
  pt_addr peers[PEER_SLOTS];

  /* Send scratch for built headers and copies, and the bounce buffer of the no-GSO fallback
   * (allocated at open, owned here). */
  uint8_t *scratch;
  uint8_t *bounce;
  size_t pos;
  uint32_t nmsgs, niovs;
  struct mmsghdr msgs[SEND_MSGS];
  struct iovec iovs[SEND_IOVS];
  send_meta meta[SEND_MSGS];
  gso_ctrl ctrl[SEND_MSGS];
  /* The sendPackets call in progress. */
  const uint8_t *hdr;
  uint32_t hdr_len;
  const pt_addr *dst;
  uint32_t cur_pkt;
  int64_t last_failed; /* highest ordinal already counted in `failed` */
  uint32_t failed;

  /* Sealed mode (seal.h): the keypair table (NULL: unsealed), which slots may roam, and the
   * keypair sealing the sendPackets call in progress. */
  pt_seal *seal;
  uint8_t roam[PEER_SLOTS];
  pt_keypair *kp;

  /* Receive side: the JS buffer, offsets and (sealed) slots (pinned by io references) and
   * arrays sized at start; the clock of the batch being read. */
  uint8_t *rbuf;
  int32_t *roffs;
  int32_t *rpeer; /* per reported datagram: the slot it opened for, -1: raw; NULL when not given */
  uint64_t now_ms;
  uint32_t rslots, max_dgrams, rcount;
  struct mmsghdr rmsgs[RECV_MSGS];
  struct iovec riov[RECV_MSGS];
  struct sockaddr_storage *rsrc; /* per slot */
  gro_ctrl *rctrl;               /* per slot */
  uint32_t *src_of;              /* per reported datagram: its slot */

  uint64_t sends, send_calls, gso_sends, eagain_drops, error_drops, malformed_drops, no_peer_drops, split_supers,
      gso_fallbacks, recv_batches, recv_datagrams, gro_datagrams, recv_segments, trunc_drops, recv_errors;
  pt_seal_counters sc;
  uint64_t seal_roams;
} pt_udp;

_Static_assert(PEER_SLOTS == PT_SEAL_SLOTS, "a receiver index names a peer slot");

/*
 * Sends the packets of `list` (each virtio header + IP) to `dst`, each datagram being
 * hdr[0..hdr_len) + one plain IP packet. The packets are the caller's to patch: partial checksums
 * are finished in place, and with `headroom` free bytes before each packet (headroom + 10 >=
 * hdr_len) the tunnel header is written there and the packet sent where it lies.
 * With a keypair `kp` (sealed mode) `hdr` is ignored: each plain packet or TSO segment is sealed
 * into the send scratch as one data message. Returns how many input packets were sent whole.
 */
uint32_t pt_udp_send_packets(pt_udp *u, const pt_addr *dst, const uint8_t *hdr, uint32_t hdr_len,
                             const pt_packet_list *list, uint32_t count, uint32_t headroom, pt_keypair *kp);

/* One datagram, non-blocking; counted. Returns 1 when sent. */
int pt_udp_send_one(pt_udp *u, const pt_addr *a, const uint8_t *data, size_t len);

#endif
