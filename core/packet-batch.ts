/**
 * Packets move through podtun in batches that borrow one large buffer: no per-packet Buffer.
 *
 * `offs` holds pairs: packet i starts at `offs[2 * i]` and is `offs[2 * i + 1]` bytes long.
 * Whoever hands a batch to a callback owns `buf` and `offs`; the callee may read and patch
 * the packets in place but must not keep references after it returns (the next read
 * overwrites them).
 */
export interface PacketBatch {
  buf: Buffer;
  offs: Int32Array;
  count: number;
  /**
   * Free bytes in front of every packet that the callee may overwrite too: the TUN leaves room
   * there for a tunnel header, so a UDP send writes its header in place instead of copying the
   * packet (as wireguard-go reads at an offset). 0 when the producer left none.
   */
  headroom: number;
}

/**
 * Packets read from the TUN device start with this 10-byte `struct virtio_net_hdr`
 * (IFF_VNET_HDR): it carries TSO super-packets and partial checksums across podtun.
 */
export const VNET_HDR_LEN = 10;
export const VNET_OFFSET_FLAGS = 0;
export const VNET_OFFSET_GSO_TYPE = 1;
export const VNET_OFFSET_HDR_LEN = 2;
export const VNET_OFFSET_GSO_SIZE = 4;
export const VNET_OFFSET_CSUM_START = 6;
export const VNET_OFFSET_CSUM_OFFSET = 8;
export const VNET_F_NEEDS_CSUM = 1;
export const VNET_GSO_NONE = 0;
export const VNET_GSO_TCPV4 = 1;
export const VNET_GSO_UDP = 3;
export const VNET_GSO_TCPV6 = 4;

/** Packets delivered by a transport, each tagged with the router's slot of the peer that sent it. */
export interface InboundBatch extends PacketBatch {
  /** peers[i] is the peer slot (see Transport.setPeer) the packet i came from. */
  peers: Int32Array;
  /** true when each packet starts with a virtio header (WebSocket keeps super-packets whole). */
  vnetHdr: boolean;
}
