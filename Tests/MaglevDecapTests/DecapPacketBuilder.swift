import MaglevCore

/// Builds GRE packets as a forwarder sends them (docs/maglev.md §6), for the decapsulator tests.
enum DecapPacketBuilder {
    static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }

    static func checksum(_ bytes: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        var i = 0
        while i + 1 < bytes.count {
            sum += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1])
            i += 2
        }
        if i < bytes.count { sum += UInt32(bytes[i]) << 8 }
        while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
        return ~UInt16(sum)
    }

    static func ipv4(_ text: String) -> [UInt8] { text.split(separator: ".").map { UInt8($0)! } }

    /// 16 bytes of an IPv6 address.
    static func ipv6(_ text: String) -> [UInt8] {
        let a = IPAddress(text)!
        return (0..<8).map { UInt8(truncatingIfNeeded: a.high >> (56 - 8 * UInt64($0))) }
            + (0..<8).map { UInt8(truncatingIfNeeded: a.low >> (56 - 8 * UInt64($0))) }
    }

    /// An IPv4 header (valid checksum, TTL 64) in front of `payload`.
    static func ipv4Packet(source: String, destination: String, protocol proto: UInt8, payload: [UInt8], options: [UInt8] = []) -> [UInt8] {
        let headerLength = 20 + options.count
        var h: [UInt8] = [0x40 | UInt8(headerLength / 4), 0] + be16(UInt16(headerLength + payload.count)) + [0, 1, 0x40, 0, 64, proto, 0, 0]
        h += ipv4(source) + ipv4(destination) + options
        let c = checksum(h)
        h[10] = UInt8(c >> 8)
        h[11] = UInt8(c & 0xFF)
        return h + payload
    }

    /// A UDP datagram (checksum 0, allowed over IPv4) inside IPv4.
    static func ipv4UDP(source: String, destination: String, sourcePort: UInt16 = 40000, port: UInt16, payload: [UInt8]) -> [UInt8] {
        let udp = be16(sourcePort) + be16(port) + be16(UInt16(8 + payload.count)) + [0, 0] + payload
        return ipv4Packet(source: source, destination: destination, protocol: 17, payload: udp)
    }

    /// A UDP datagram with its mandatory checksum inside IPv6.
    static func ipv6UDP(source: String, destination: String, sourcePort: UInt16 = 40000, port: UInt16, payload: [UInt8]) -> [UInt8] {
        var udp = be16(sourcePort) + be16(port) + be16(UInt16(8 + payload.count)) + [0, 0] + payload
        let pseudo = ipv6(source) + ipv6(destination) + [0, 0] + be16(UInt16(udp.count)) + [0, 0, 0, 17] + udp
        var c = checksum(pseudo)
        if c == 0 { c = 0xFFFF }
        udp[6] = UInt8(c >> 8)
        udp[7] = UInt8(c & 0xFF)
        return [0x60, 0, 0, 0] + be16(UInt16(udp.count)) + [17, 64] + ipv6(source) + ipv6(destination) + udp
    }

    /// A GRE header (flags/version word, protocol) in front of `inner`.
    static func gre(_ inner: [UInt8], flags: UInt16 = 0, protocol proto: UInt16? = nil) -> [UInt8] {
        let p = proto ?? (inner.first.map { $0 >> 4 == 6 ? 0x86DD : 0x0800 } ?? 0x0800)
        return be16(flags) + be16(p) + inner
    }
}
