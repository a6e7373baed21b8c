#!/usr/bin/env python3
"""Fragmented UDP for the lab's fragment test (Tools/lab fragments). Bounded: a count and a time limit.

  lab-fragments.py sink --address VIP --port P --seconds S --out FILE
      a UDP sink on a backend: records every datagram it gets ("RUN FLOW SEQ", one line each)
      until S seconds have passed; the kernel reassembles fragments before it sees them.

  lab-fragments.py send --sources A,B,.. --destination VIP --port P --run R --datagrams N [--flows F]
                        [--seconds S] [--later-tos T]
      sends N UDP datagrams on F 5-tuples (source addresses in turn, source ports 40000 + flow)
      through a raw socket: every 4th small and whole, the others fragmented by hand into 2 or 3
      fragments, half of those in reverse order. Whole datagrams and first fragments carry TOS
      0, later fragments TOS T (default 0x10, inside the bits Linux policy routing matches), so that policy routing on the router can send
      them through another forwarder. Prints one line per datagram: "SEQ FLOW SRC SPORT KIND".
"""
import argparse
import os
import socket
import struct
import sys
import time


def sink(args):
    s = socket.socket(socket.AF_INET6 if ":" in args.address else socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((args.address, args.port))
    deadline = time.monotonic() + args.seconds
    with open(args.out, "w") as out:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(min(left, 0.5))
            try:
                data, _ = s.recvfrom(65535)
            except socket.timeout:
                continue
            words = data[:64].split(b" ")
            if len(words) >= 4 and words[0] == b"MGFRAG":
                out.write("%s %s %s %d\n" % (words[1].decode(), words[2].decode(), words[3].decode(), len(data)))
                out.flush()


def ipv4_header(tos, total, ident, flags_offset, src, dst):
    return struct.pack("!BBHHHBBH4s4s", 0x45, tos, total, ident, flags_offset, 64, 17, 0,
                       socket.inet_aton(src), socket.inet_aton(dst))


def ipv6_header(tclass, payload_length, next_header, src, dst):
    return struct.pack("!IHBB16s16s", 6 << 28 | tclass << 20, payload_length, next_header, 64,
                       socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst))


def udp6_checksum(src, dst, udp):
    pseudo = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
    pseudo += struct.pack("!IxxxB", len(udp), 17)
    data = pseudo + udp + (b"\0" if len(udp) % 2 else b"")
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total & 0xFFFF) or 0xFFFF


def send(args):
    sources = args.sources.split(",")
    ipv6 = ":" in args.destination
    raw = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    deadline = time.monotonic() + args.seconds
    ident_base = (os.getpid() * 7919 + args.run * 101) & 0x7FFF
    for seq in range(args.datagrams):
        if time.monotonic() > deadline:
            print("send: time limit reached after %d datagrams" % seq, file=sys.stderr)
            return 1
        flow = seq % args.flows
        src = sources[flow % len(sources)]
        sport = 40000 + flow
        # Every 5-tuple gets every kind.
        kind = ("whole", "two", "three-reversed", "three")[(seq // args.flows + flow) % 4]
        size = {"whole": 100, "two": 1600, "three-reversed": 2600, "three": 2600}[kind]
        text = b"MGFRAG %d %d %d " % (args.run, flow, seq)
        payload = (text + b"." * size)[:size]
        udp = struct.pack("!HHHH", sport, args.port, 8 + len(payload), 0) + payload
        ident = (ident_base + seq) & 0xFFFF or 1
        packets = []
        if ipv6:
            # UDP checksums are mandatory over IPv6; a fragment header (next header 44) on each
            # fragment, later fragments with traffic class T.
            udp = udp[:6] + struct.pack("!H", udp6_checksum(src, args.destination, udp)) + udp[8:]
            if kind == "whole":
                packets.append(ipv6_header(0, len(udp), 17, src, args.destination) + udp)
            else:
                chunk = 1200
                offsets = list(range(0, len(udp), chunk))
                for i, off in enumerate(offsets):
                    part = udp[off:off + chunk]
                    more = 1 if i < len(offsets) - 1 else 0
                    tclass = 0 if off == 0 else args.later_tos
                    fragment = struct.pack("!BBHI", 17, 0, off | more, 0x10000 + ident)
                    packets.append(ipv6_header(tclass, 8 + len(part), 44, src, args.destination) + fragment + part)
                if kind == "three-reversed":
                    packets.reverse()
            for p in packets:
                raw.sendto(p, (args.destination, 0))
            print("%d %d %s %d %s %d" % (seq, flow, src, sport, kind, len(packets)))
            time.sleep(args.gap)
            continue
        if kind == "whole":
            packets.append(ipv4_header(0, 20 + len(udp), ident, 0, src, args.destination) + udp)
        else:
            chunk = 1200  # a multiple of 8
            offsets = list(range(0, len(udp), chunk))
            for i, off in enumerate(offsets):
                part = udp[off:off + chunk]
                more = 0x2000 if i < len(offsets) - 1 else 0
                tos = 0 if off == 0 else args.later_tos
                packets.append(ipv4_header(tos, 20 + len(part), ident, more | (off // 8), src, args.destination) + part)
            if kind == "three-reversed":
                packets.reverse()
        for p in packets:
            raw.sendto(p, (args.destination, 0))
        print("%d %d %s %d %s %d" % (seq, flow, src, sport, kind, len(packets)))
        time.sleep(args.gap)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sink")
    s.add_argument("--address", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--seconds", type=float, required=True)
    s.add_argument("--out", required=True)
    t = sub.add_parser("send")
    t.add_argument("--sources", required=True)
    t.add_argument("--destination", required=True)
    t.add_argument("--port", type=int, required=True)
    t.add_argument("--run", type=int, required=True)
    t.add_argument("--datagrams", type=int, required=True)
    t.add_argument("--flows", type=int, default=8)
    t.add_argument("--seconds", type=float, default=20)
    t.add_argument("--gap", type=float, default=0.004)
    t.add_argument("--later-tos", type=lambda v: int(v, 0), default=0x10)
    args = p.parse_args()
    if args.command == "sink":
        sink(args)
        return 0
    if not 1 <= args.datagrams <= 100000:
        p.error("--datagrams must be 1 to 100000")
    return send(args)


if __name__ == "__main__":
    sys.exit(main())
