/** Types for the untyped npm `ip-packet` (IPv4 with a 20-byte header only), as the tests use it. */
declare module 'ip-packet' {
  interface IpPacketState {
    start: number;
    end: number;
    buffer: Buffer;
  }

  interface Ipv4Packet {
    version: 4;
    ihl?: number;
    dscp?: number;
    ecn?: number;
    identification?: number;
    /** 3 bits: 0b010 = DF, 0b001 = MF. */
    flags?: number;
    /** In 8-byte units. */
    fragmentOffset?: number;
    ttl: number;
    protocol: number;
    checksum?: number;
    sourceIp: string;
    destinationIp: string;
    data: Buffer;
  }

  interface DecodedIpv4Packet extends Required<Ipv4Packet> {
    length: number;
  }

  const ipPacket: {
    preencode(state: IpPacketState, packet: Ipv4Packet): void;
    encode(state: IpPacketState, packet: Ipv4Packet): void;
    decode(state: IpPacketState): DecodedIpv4Packet;
    /** Computes the header checksum of the packet at offset 0 and writes it in place. */
    checksum(packet: Buffer): number;
    addresses(state: IpPacketState): [string, string];
  };
  export = ipPacket;
}
