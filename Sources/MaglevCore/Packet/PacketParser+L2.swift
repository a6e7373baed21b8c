// Link layer: Ethernet II, VLAN tags, MPLS label stacks, PPPoE sessions.

extension PacketParser {
    /// Ethertypes the link layer walks.
    enum EtherType {
        static let ipv4: UInt16 = 0x0800
        static let ipv6: UInt16 = 0x86DD
        static let vlan: UInt16 = 0x8100
        static let qinq: UInt16 = 0x88A8
        static let qinqLegacy: UInt16 = 0x9100
        static let mplsUnicast: UInt16 = 0x8847
        static let mplsMulticast: UInt16 = 0x8848
        /// PPPoE session stage (RFC 2516); discovery (0x8863) is not IP.
        static let pppoeSession: UInt16 = 0x8864
    }

    /// PPP protocol numbers a PPPoE session carries IP in.
    enum PPPProtocol {
        static let ipv4: UInt16 = 0x0021
        static let ipv6: UInt16 = 0x0057
    }

    /// Ethernet II: destination MAC, source MAC, ethertype (14 bytes); then tags and labels,
    /// or a PPPoE session header (6 bytes: version/type, code, session, length) and the PPP
    /// protocol (2 bytes), IPv4 (0x0021) or IPv6 (0x0057); other PPP protocols (LCP, ...) are
    /// not IP.
    @inline(__always)
    static func parseEthernet(_ p: UnsafeRawPointer, end: Int, into packet: inout ParsedPacket) -> DropReason? {
        guard end >= 14 else { return .truncatedL2 }
        var etherType = p.loadBE16(12)
        // Untagged IPv4, the common case, before the walk's compare tree.
        if etherType == EtherType.ipv4 { return parseIPv4(p, at: 14, end: end, into: &packet) }
        var offset = 14
        var headers = 0
        while true {
            switch etherType {
            case EtherType.ipv4:
                return parseIPv4(p, at: offset, end: end, into: &packet)
            case EtherType.ipv6:
                return parseIPv6(p, at: offset, end: end, into: &packet)
            case EtherType.vlan, EtherType.qinq, EtherType.qinqLegacy:
                // Tag control information (2 bytes), then the next ethertype.
                headers += 1
                guard headers <= maxL2Headers else { return .tooManyL2Headers }
                guard end - offset >= 4 else { return .truncatedL2 }
                etherType = p.loadBE16(offset + 2)
                offset += 4
            case EtherType.mplsUnicast, EtherType.mplsMulticast:
                // Label (20 bits), traffic class (3), bottom of stack (1), TTL (8).
                while true {
                    headers += 1
                    guard headers <= maxL2Headers else { return .tooManyL2Headers }
                    guard end - offset >= 4 else { return .truncatedL2 }
                    let bottomOfStack = p.loadBE8(offset + 2) & 1 != 0
                    offset += 4
                    if bottomOfStack { break }
                }
                // MPLS does not say what it carries: the IP version nibble does. Anything else
                // (an Ethernet pseudowire's control word begins with 0) is not ours.
                guard offset < end else { return .truncatedPacket }
                switch p.loadBE8(offset) >> 4 {
                case 4: return parseIPv4(p, at: offset, end: end, into: &packet)
                case 6: return parseIPv6(p, at: offset, end: end, into: &packet)
                default: return .notIP
                }
            case EtherType.pppoeSession:
                // Version 1, type 1, code 0 (session data); the length field is not needed:
                // the IP header says how long the packet is.
                guard end - offset >= 8 else { return .truncatedL2 }
                guard p.loadBE8(offset) == 0x11, p.loadBE8(offset + 1) == 0 else { return .notIP }
                let proto = p.loadBE16(offset + 6)
                offset += 8
                switch proto {
                case PPPProtocol.ipv4: return parseIPv4(p, at: offset, end: end, into: &packet)
                case PPPProtocol.ipv6: return parseIPv6(p, at: offset, end: end, into: &packet)
                default: return .notIP
                }
            default:
                return .notIP
            }
        }
    }
}
