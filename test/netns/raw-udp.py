#!/usr/bin/env python3
"""raw-udp: IPv4/UDP datagrams with any source address and port, for the namespace tests.

Run inside an attacker namespace on the underlay (raw sockets need CAP_NET_RAW there): the
datagrams leave with the source the job names, e.g. a real node's underlay address and its
tunnel port, which no ordinary socket could bind. The kernel fills in the IPv4 header checksum,
total length and id (raw(7), IP_HDRINCL); the UDP checksum is computed here.

Reads one JSON job on stdin and prints one JSON line:

  {"mode": "send", "datagrams": [{"src", "sport", "dst", "dport", "hex"}, ...],
   "repeat": R, "intervalMs": I}
      sends the list R times (default 1), I ms apart (default 0); {"sent": N}
  {"mode": "flood", "src", "sport", "dst", "dport", "prefixHex", "length",
   "durationMs", "maxPps"}
      for durationMs, datagrams of `length` bytes: prefixHex, then random bytes (a pool of
      FLOOD_POOL made up front, sent round and round: the receiver checks each one as new); at
      most maxPps a second (0: as fast as it can); {"sent": N, "seconds": S}

Bounded: every mode ends by itself (a flood after durationMs, at most 120 s).
"""
import json
import os
import socket
import struct
import sys
import time

MAX_FLOOD_MS = 120_000
FLOOD_POOL = 4096
IPPROTO_UDP = 17


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def datagram(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    udp_len = 8 + len(payload)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    pseudo = s + d + struct.pack("!BBH", 0, IPPROTO_UDP, udp_len)
    csum = checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    # version/IHL, TOS, total length (kernel), id (kernel), DF, TTL, protocol, checksum (kernel)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 0, 0, 0x4000, 64, IPPROTO_UDP, 0, s, d)
    return ip + udp


def raw_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    return sock


def send(job: dict) -> dict:
    sock = raw_socket()
    packets = [
        (datagram(d["src"], d["dst"], int(d["sport"]), int(d["dport"]), bytes.fromhex(d["hex"])), d["dst"])
        for d in job["datagrams"]
    ]
    interval = float(job.get("intervalMs", 0)) / 1000
    sent = 0
    for _ in range(int(job.get("repeat", 1))):
        for packet, dst in packets:
            sock.sendto(packet, (dst, 0))
            sent += 1
            if interval > 0:
                time.sleep(interval)
    return {"sent": sent}


def flood(job: dict) -> dict:
    sock = raw_socket()
    prefix = bytes.fromhex(job["prefixHex"])
    length = int(job["length"])
    duration = min(float(job["durationMs"]), MAX_FLOOD_MS) / 1000
    max_pps = float(job.get("maxPps", 0))
    src, dst, sport, dport = job["src"], job["dst"], int(job["sport"]), int(job["dport"])
    pool = [datagram(src, dst, sport, dport, prefix + os.urandom(length - len(prefix))) for _ in range(FLOOD_POOL)]
    address = (dst, 0)
    start = time.monotonic()
    end = start + duration
    sent = 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if max_pps > 0 and sent >= (now - start) * max_pps:
            time.sleep(min(0.001, end - now))
            continue
        for packet in pool[sent % FLOOD_POOL : sent % FLOOD_POOL + 256]:
            try:
                sock.sendto(packet, address)
                sent += 1
            except OSError:
                # ENOBUFS when the qdisc is full: the flood goes on
                pass
    return {"sent": sent, "seconds": round(time.monotonic() - start, 3)}


def main() -> None:
    job = json.loads(sys.stdin.read())
    modes = {"send": send, "flood": flood}
    mode = modes.get(job.get("mode"))
    if mode is None:
        raise SystemExit(json.dumps({"error": "mode must be one of " + ", ".join(modes)}))
    print(json.dumps(mode(job)), flush=True)


if __name__ == "__main__":
    main()
