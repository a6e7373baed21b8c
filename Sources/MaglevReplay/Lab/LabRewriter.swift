public import MaglevCore

/// Rewrites a capture's client-to-VIP packets onto the namespace lab (`Tools/lab replay`): each
/// TCP packet to any destination becomes a packet to the lab's TCP VIP of its family, each UDP
/// packet one to the lab's UDP VIP of its family (address and port), in an untagged Ethernet
/// frame with the given MAC addresses, with correct IPv4 header and TCP/UDP checksums.
/// Fragments of TCP and UDP datagrams go to the same VIP address: a first fragment gets the
/// VIP's port and its checksum adjusted for what changed (RFC 1624: the checksum covers the
/// whole datagram, which one fragment does not hold), a later fragment only the addresses.
/// Everything else is skipped with a named reason.
///
/// Sources stay as they are, except those inside the lab's own subnets (198.18.0.0/23 and
/// 2001:db8::/47: the client's, router's, forwarders' and backends' links), which move to the
/// neighbouring /23 or /47 (198.18.2.0/23, 2001:db8:2::/47) so that the router never sees its
/// own address as a source; and sources that no router forwards (multicast, broadcast,
/// loopback, unspecified, link-local) are skipped.
public struct LabRewriter: Sendable {
    /// The TCP VIPs.
    public var vip4: (address: IPAddress, port: UInt16)?
    public var vip6: (address: IPAddress, port: UInt16)?
    /// The UDP VIPs.
    public var udpVIP4: (address: IPAddress, port: UInt16)?
    public var udpVIP6: (address: IPAddress, port: UInt16)?
    public var sourceMAC: [UInt8]
    public var destinationMAC: [UInt8]
    /// The largest IP packet the lab's links carry (their MTU); longer ones are skipped.
    public var maximumIPLength: Int

    public init(
        vip4: (address: IPAddress, port: UInt16)?, vip6: (address: IPAddress, port: UInt16)?,
        udpVIP4: (address: IPAddress, port: UInt16)? = nil, udpVIP6: (address: IPAddress, port: UInt16)? = nil,
        sourceMAC: [UInt8], destinationMAC: [UInt8], maximumIPLength: Int = 1500
    ) {
        precondition(sourceMAC.count == 6 && destinationMAC.count == 6)
        self.vip4 = vip4
        self.vip6 = vip6
        self.udpVIP4 = udpVIP4
        self.udpVIP6 = udpVIP6
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
        let proto = parsed.key.proto
        let isTCP = proto == IPProtocol.tcp
        guard isTCP || proto == IPProtocol.udp else { return .skipped("not TCP or UDP") }
        let name = isTCP ? "TCP" : "UDP"
        if parsed.isTruncated { return .skipped("truncated by the capture") }
        if parsed.fragment != .nonFirst && parsed.l4Offset < 0 { return .skipped("no \(name) header") }
        guard let vip = parsed.isIPv6 ? (isTCP ? vip6 : udpVIP6) : (isTCP ? vip4 : udpVIP4) else {
            if parsed.isIPv6 && vip6 == nil && udpVIP6 == nil { return .skipped("IPv6 (the lab has no IPv6 VIP)") }
            if !parsed.isIPv6 && vip4 == nil && udpVIP4 == nil { return .skipped("IPv4 (no IPv4 VIP)") }
            return .skipped("\(name) (no \(name) VIP of its family)")
        }
        if parsed.l3Length > maximumIPLength { return .skipped("longer than the lab's MTU") }
        if !Self.isRoutableSource(parsed.key.source) { return .skipped("source not routable") }

        let ip = 14
        let end = ip + parsed.l3Length
        var out = [UInt8](repeating: 0, count: end)
        out.replaceSubrange(0..<6, with: destinationMAC)
        out.replaceSubrange(6..<12, with: sourceMAC)
        out[12] = parsed.isIPv6 ? 0x86 : 0x08
        out[13] = parsed.isIPv6 ? 0xDD : 0x00
        let packet = UnsafeRawBufferPointer(rebasing: frame[parsed.l3Offset..<(parsed.l3Offset + parsed.l3Length)])
        out.replaceSubrange(ip..<end, with: packet)

        // Where the addresses are, the same in `packet` (from 0) and `out` (from `ip`).
        let addresses = parsed.isIPv6 ? 8..<40 : 12..<20
        let source = Self.movedOutOfLabSubnets(parsed.key.source)
        Self.store(source, into: &out, at: ip + addresses.lowerBound)
        Self.store(vip.address, into: &out, at: ip + addresses.lowerBound + (parsed.isIPv6 ? 16 : 4))
        if !parsed.isIPv6 {
            let headerLength = Int(out[ip] & 0x0F) * 4
            out[ip + 10] = 0
            out[ip + 11] = 0
            let sum = Self.checksum(out[ip..<(ip + headerLength)])
            out[ip + 10] = UInt8(sum >> 8)
            out[ip + 11] = UInt8(sum & 0xFF)
        }
        // A later fragment carries no transport header: the addresses were all there was.
        if parsed.fragment == .nonFirst { return .frame(out) }

        let l4 = ip + (parsed.l4Offset - parsed.l3Offset)
        let checksumAt = l4 + (isTCP ? 16 : 6)
        // TCP: the segment is the rest of the packet; UDP: the length field says (padding after
        // it is not covered). A first fragment holds only the start of either.
        var l4Length = end - l4
        if !isTCP && parsed.fragment == .none {
            let claimed = Int(out[l4 + 4]) << 8 | Int(out[l4 + 5])
            guard claimed >= 8 && claimed <= l4Length else { return .skipped("bad UDP length") }
            l4Length = claimed
        }
        guard l4Length >= (isTCP ? 20 : 8) else { return .skipped("no \(name) header") }
        out[l4 + 2] = UInt8(vip.port >> 8)
        out[l4 + 3] = UInt8(vip.port & 0xFF)

        let oldChecksum = UInt16(out[checksumAt]) << 8 | UInt16(out[checksumAt + 1])
        var sum: UInt16
        if parsed.fragment == .first {
            // IPv4 UDP without a checksum (0) stays without one.
            if !isTCP && !parsed.isIPv6 && oldChecksum == 0 { return .frame(out) }
            let offset = l4 - ip
            let old = Array(packet[addresses]) + Array(packet[(offset + 2)..<(offset + 4)])
            let new = Array(out[(ip + addresses.lowerBound)..<(ip + addresses.upperBound)]) + Array(out[(l4 + 2)..<(l4 + 4)])
            sum = Self.adjustedChecksum(oldChecksum, old: old, new: new)
        } else {
            // Over the pseudo header (addresses, protocol, length) and the segment or datagram.
            out[checksumAt] = 0
            out[checksumAt + 1] = 0
            var pseudo = Array(out[(ip + addresses.lowerBound)..<(ip + addresses.upperBound)])
            if parsed.isIPv6 {
                pseudo += [UInt8(l4Length >> 24 & 0xFF), UInt8(l4Length >> 16 & 0xFF), UInt8(l4Length >> 8 & 0xFF)]
                pseudo += [UInt8(l4Length & 0xFF), 0, 0, 0, proto]
            } else {
                pseudo += [0, proto, UInt8(l4Length >> 8), UInt8(l4Length & 0xFF)]
            }
            sum = Self.checksum(pseudo + out[l4..<(l4 + l4Length)])
        }
        // UDP sends a computed 0 as 0xFFFF (RFC 768): 0 means "no checksum".
        if !isTCP && sum == 0 { sum = 0xFFFF }
        out[checksumAt] = UInt8(sum >> 8)
        out[checksumAt + 1] = UInt8(sum & 0xFF)
        return .frame(out)
    }

    /// `checksum` updated for 16-bit-aligned bytes `old` replaced by `new` (RFC 1624, eqn. 3:
    /// HC' = ~(~HC + ~m + m')), without the rest of what it covers.
    static func adjustedChecksum(_ checksum: UInt16, old: [UInt8], new: [UInt8]) -> UInt16 {
        precondition(old.count == new.count && old.count % 2 == 0)
        var sum = UInt32(~checksum)
        for i in stride(from: 0, to: old.count, by: 2) {
            sum += UInt32(~(UInt16(old[i]) << 8 | UInt16(old[i + 1])))
            sum += UInt32(UInt16(new[i]) << 8 | UInt16(new[i + 1]))
        }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        return ~UInt16(sum)
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
