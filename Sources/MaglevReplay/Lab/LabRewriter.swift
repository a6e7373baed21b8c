public import MaglevCore

/// Rewrites a capture's client-to-VIP packets onto the namespace lab (`Tools/lab replay`): each
/// TCP packet to any destination becomes a packet to the lab's VIP of its family (address and
/// port), in an untagged Ethernet frame with the given MAC addresses, with correct IPv4 header
/// and TCP checksums. Everything else is skipped with a named reason: the lab serves TCP only.
///
/// Sources stay as they are, except those inside the lab's own subnets (198.18.0.0/23 and
/// 2001:db8::/47: the client's, router's, forwarders' and backends' links), which move to the
/// neighbouring /23 or /47 (198.18.2.0/23, 2001:db8:2::/47) so that the router never sees its
/// own address as a source; and sources that no router forwards (multicast, broadcast,
/// loopback, unspecified, link-local) are skipped.
public struct LabRewriter: Sendable {
    public var vip4: (address: IPAddress, port: UInt16)?
    public var vip6: (address: IPAddress, port: UInt16)?
    public var sourceMAC: [UInt8]
    public var destinationMAC: [UInt8]
    /// The largest IP packet the lab's links carry (their MTU); longer ones are skipped.
    public var maximumIPLength: Int

    public init(
        vip4: (address: IPAddress, port: UInt16)?, vip6: (address: IPAddress, port: UInt16)?,
        sourceMAC: [UInt8], destinationMAC: [UInt8], maximumIPLength: Int = 1500
    ) {
        precondition(sourceMAC.count == 6 && destinationMAC.count == 6)
        self.vip4 = vip4
        self.vip6 = vip6
        self.sourceMAC = sourceMAC
        self.destinationMAC = destinationMAC
        self.maximumIPLength = maximumIPLength
    }

    public enum Outcome: Equatable {
        case frame([UInt8])
        case skipped(String)
    }

    /// The rewritten frame, or why the packet is skipped.
    public func rewrite(_ frame: UnsafeRawBufferPointer, linkType: LinkType) -> Outcome {
        let parsed: ParsedPacket
        switch PacketParser.parse(frame, linkType: linkType) {
        case .parsed(let p): parsed = p
        case .notIP: return .skipped("not IP")
        case .malformed(let reason): return .skipped("malformed (\(reason))")
        }
        if parsed.isICMPError { return .skipped("ICMP error") }
        if parsed.key.proto != IPProtocol.tcp { return .skipped(parsed.fragment == .nonFirst ? "fragment" : "not TCP") }
        if parsed.fragment != .none { return .skipped("fragment") }
        if parsed.isTruncated { return .skipped("truncated by the capture") }
        if parsed.l4Offset < 0 { return .skipped("no TCP header") }
        guard let vip = parsed.isIPv6 ? vip6 : vip4 else {
            return .skipped(parsed.isIPv6 ? "IPv6 (the lab has no IPv6 VIP)" : "IPv4 (no IPv4 VIP)")
        }
        if parsed.l3Length > maximumIPLength { return .skipped("longer than the lab's MTU") }
        if !Self.isRoutableSource(parsed.key.source) { return .skipped("source not routable") }

        let ip = 14
        let l4 = ip + (parsed.l4Offset - parsed.l3Offset)
        let end = ip + parsed.l3Length
        let tcpLength = end - l4
        guard tcpLength >= 20 else { return .skipped("no TCP header") }
        var out = [UInt8](repeating: 0, count: end)
        out.replaceSubrange(0..<6, with: destinationMAC)
        out.replaceSubrange(6..<12, with: sourceMAC)
        out[12] = parsed.isIPv6 ? 0x86 : 0x08
        out[13] = parsed.isIPv6 ? 0xDD : 0x00
        let packet = UnsafeRawBufferPointer(rebasing: frame[parsed.l3Offset..<(parsed.l3Offset + parsed.l3Length)])
        out.replaceSubrange(ip..<end, with: packet)

        let source = Self.movedOutOfLabSubnets(parsed.key.source)
        if parsed.isIPv6 {
            Self.store(source, into: &out, at: ip + 8)
            Self.store(vip.address, into: &out, at: ip + 24)
        } else {
            Self.store(source, into: &out, at: ip + 12)
            Self.store(vip.address, into: &out, at: ip + 16)
            let headerLength = Int(out[ip] & 0x0F) * 4
            out[ip + 10] = 0
            out[ip + 11] = 0
            let sum = Self.checksum(out[ip..<(ip + headerLength)])
            out[ip + 10] = UInt8(sum >> 8)
            out[ip + 11] = UInt8(sum & 0xFF)
        }
        out[l4 + 2] = UInt8(vip.port >> 8)
        out[l4 + 3] = UInt8(vip.port & 0xFF)
        // TCP checksum over the pseudo header (addresses, protocol, length) and the segment.
        out[l4 + 16] = 0
        out[l4 + 17] = 0
        var pseudo: [UInt8] = []
        if parsed.isIPv6 {
            pseudo += out[(ip + 8)..<(ip + 40)]
            pseudo += [UInt8(tcpLength >> 24 & 0xFF), UInt8(tcpLength >> 16 & 0xFF), UInt8(tcpLength >> 8 & 0xFF)]
            pseudo += [UInt8(tcpLength & 0xFF), 0, 0, 0, IPProtocol.tcp]
        } else {
            pseudo += out[(ip + 12)..<(ip + 20)]
            pseudo += [0, IPProtocol.tcp, UInt8(tcpLength >> 8), UInt8(tcpLength & 0xFF)]
        }
        let sum = Self.checksum(pseudo + out[l4..<end])
        out[l4 + 16] = UInt8(sum >> 8)
        out[l4 + 17] = UInt8(sum & 0xFF)
        return .frame(out)
    }

    /// The Internet checksum (RFC 1071) of `bytes`.
    public static func checksum<C: Collection<UInt8>>(_ bytes: C) -> UInt16 {
        var sum: UInt32 = 0
        var high = true
        for byte in bytes {
            sum += high ? UInt32(byte) << 8 : UInt32(byte)
            high.toggle()
        }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        return ~UInt16(sum)
    }

    /// 198.18.0.0/23 -> 198.18.2.0/23 and 2001:db8::/47 -> 2001:db8:2::/47; others unchanged.
    public static func movedOutOfLabSubnets(_ address: IPAddress) -> IPAddress {
        if address.isIPv6 {
            if address.isIn(network: IPAddress("2001:db8::")!, prefixLength: 47) {
                return IPAddress(high: address.high | 0x0000_0000_0002_0000, low: address.low, isIPv6: true)
            }
        } else if address.isIn(network: IPAddress("198.18.0.0")!, prefixLength: 23) {
            return IPAddress(ipv4: address.ipv4Value | 0x0000_0200)
        }
        return address
    }

    /// Whether a router forwards packets from `address` (not multicast, broadcast, loopback,
    /// unspecified, link-local or class E).
    public static func isRoutableSource(_ address: IPAddress) -> Bool {
        if address.isIPv6 {
            let top = address.high >> 48
            if address.high == 0 && (address.low == 0 || address.low == 1) { return false }
            if top >> 8 == 0xFF { return false }  // ff00::/8 multicast
            if top & 0xFFC0 == 0xFE80 { return false }  // fe80::/10 link-local
            return true
        }
        let v = address.ipv4Value
        let first = v >> 24
        return first != 0 && first != 127 && first < 224 && !(first == 169 && (v >> 16) & 0xFF == 254)
    }

    static func store(_ address: IPAddress, into out: inout [UInt8], at offset: Int) {
        if address.isIPv6 {
            for i in 0..<8 {
                out[offset + i] = UInt8(truncatingIfNeeded: address.high >> (56 - 8 * UInt64(i)))
                out[offset + 8 + i] = UInt8(truncatingIfNeeded: address.low >> (56 - 8 * UInt64(i)))
            }
        } else {
            let v = address.ipv4Value
            for i in 0..<4 { out[offset + i] = UInt8(truncatingIfNeeded: v >> (24 - 8 * UInt32(i))) }
        }
    }
}
