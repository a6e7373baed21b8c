/// Builds the ICMP "fragmentation needed" (IPv4, type 3 code 4, RFC 1191) or ICMPv6 "packet
/// too big" (type 2, RFC 8201) reply for a packet that would exceed the path MTU once
/// encapsulated. Written in place: the reply's headers go just before the offending packet,
/// which becomes the quote.
///
///     IPv4 reply: [IPv4 20: src = VIP, dst = client, proto 1, TTL 64]
///                 [ICMP 8: type 3 | code 4 | checksum | unused 16 | next-hop MTU 16]
///                 [quote: the packet's first min(len, 548) bytes]          (576 in all)
///     IPv6 reply: [IPv6 40: src = VIP, dst = client, next header 58, hop limit 64]
///                 [ICMPv6 8: type 2 | code 0 | checksum | MTU 32]
///                 [quote: the packet's first min(len, 1232) bytes]         (1280 in all)
public enum ICMPTooBig {
    public static let ipv4HeaderRoom = 28
    public static let ipv6HeaderRoom = 48

    /// Writes the reply ending at `packetStart`; returns (start, length) of the reply.
    /// `mtu` is the largest inner packet that fits once encapsulated.
    @inline(__always)
    static func write(
        _ base: UnsafeMutableRawPointer, packetStart: Int, packetLength: Int, ipv6: Bool,
        client: IPAddress, vip: IPAddress, mtu: Int
    ) -> (start: Int, length: Int) {
        if ipv6 {
            let quote = min(packetLength, 1280 &- ipv6HeaderRoom)
            let start = packetStart &- ipv6HeaderRoom
            let p = base + start
            let icmpLength = 8 &+ quote
            p.storeBE32(0x6000_0000, 0)
            p.storeBE16(UInt16(truncatingIfNeeded: icmpLength), 4)
            p.storeBE8(IPProtocol.icmpv6, 6)
            p.storeBE8(64, 7)
            vip.store(to: p, 8)
            client.store(to: p, 24)
            p.storeBE8(2, 40)
            p.storeBE8(0, 41)
            p.storeBE16(0, 42)
            p.storeBE32(UInt32(truncatingIfNeeded: mtu), 44)
            // Pseudo-header: source, destination, upper-layer length, next header.
            var pseudo = internetChecksumSum(UnsafeRawPointer(p + 8), count: 32)
            pseudo &+= UInt32(truncatingIfNeeded: icmpLength) &+ UInt32(IPProtocol.icmpv6)
            p.storeBE16(internetChecksum(UnsafeRawPointer(p + 40), count: icmpLength, initial: pseudo), 42)
            return (start, 40 &+ icmpLength)
        }
        let quote = min(packetLength, 576 &- ipv4HeaderRoom)
        let start = packetStart &- ipv4HeaderRoom
        let p = base + start
        let total = 28 &+ quote
        p.storeBE8(0x45, 0)
        p.storeBE8(0, 1)
        p.storeBE16(UInt16(truncatingIfNeeded: total), 2)
        p.storeBE32(0, 4)
        p.storeBE8(64, 8)
        p.storeBE8(IPProtocol.icmp, 9)
        p.storeBE16(0, 10)
        p.storeBE32(vip.ipv4Value, 12)
        p.storeBE32(client.ipv4Value, 16)
        p.storeBE16(internetChecksum(UnsafeRawPointer(p), count: 20), 10)
        p.storeBE8(3, 20)
        p.storeBE8(4, 21)
        p.storeBE16(0, 22)
        p.storeBE16(0, 24)
        p.storeBE16(UInt16(truncatingIfNeeded: mtu), 26)
        p.storeBE16(internetChecksum(UnsafeRawPointer(p + 20), count: 8 &+ quote), 22)
        return (start, total)
    }
}
