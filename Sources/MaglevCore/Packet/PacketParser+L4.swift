// Transport headers: TCP, UDP, SCTP, ICMP and ICMPv6 (echo and errors).

extension PacketParser {
    /// The transport header at `l4` of an unfragmented packet or first fragment. `end` bounds
    /// what is present (the IP packet, as captured), `claimedEnd` what the IP header claims.
    @inline(__always)
    static func parseL4(
        _ p: UnsafeRawPointer, _ packet: inout ParsedPacket, at l4: Int, end: Int,
        claimedEnd: Int
    ) -> DropReason? {
        let proto = packet.key.proto
        let isIPv6 = packet.key.destination.isIPv6
        let headerLength: Int
        switch proto {
        case IPProtocol.tcp: headerLength = 20
        case IPProtocol.udp: headerLength = 8
        case IPProtocol.sctp: headerLength = 12
        case IPProtocol.icmp where !isIPv6, IPProtocol.icmpv6 where isIPv6: headerLength = 8
        default:
            // No ports; say where the header begins if any of it is there.
            packet.l4Offset = l4 < end ? l4 : -1
            return nil
        }
        guard end - l4 >= headerLength else {
            if packet.fragment == .first && claimedEnd - l4 < headerLength {
                return .firstFragmentTooShort
            }
            return .truncatedL4Header
        }
        packet.l4Offset = l4
        switch proto {
        case IPProtocol.tcp:
            packet.key.sourcePort = p.loadBE16(l4)
            packet.key.destinationPort = p.loadBE16(l4 + 2)
            packet.tcpFlags = p.loadBE8(l4 + 13)
        case IPProtocol.udp, IPProtocol.sctp:
            packet.key.sourcePort = p.loadBE16(l4)
            packet.key.destinationPort = p.loadBE16(l4 + 2)
        default:
            return parseICMP(p, &packet, at: l4, end: end, isIPv6: isIPv6)
        }
        return nil
    }

    /// ICMP or ICMPv6 at `l4` (8 bytes present).
    @inline(__always)
    static func parseICMP(
        _ p: UnsafeRawPointer, _ packet: inout ParsedPacket, at l4: Int, end: Int, isIPv6: Bool
    ) -> DropReason? {
        let type = p.loadBE8(l4)
        if isICMPEcho(type, isIPv6: isIPv6) {
            packet.key.sourcePort = p.loadBE16(l4 + 4)  // Identifier.
            return nil
        }
        let isError =
            isIPv6 ? (type >= 1 && type <= 4) : (type == 3 || type == 11 || type == 12)
        guard isError else { return nil }
        packet.isICMPError = true
        let failure =
            isIPv6
            ? parseQuotedIPv6(p, at: l4 + 8, end: end, into: &packet.key)
            : parseQuotedIPv4(p, at: l4 + 8, end: end, into: &packet.key)
        if let failure { return failure }
        return nil
    }

    @inline(__always)
    static func isICMPEcho(_ type: UInt8, isIPv6: Bool) -> Bool {
        isIPv6 ? (type == 128 || type == 129) : (type == 8 || type == 0)
    }

    /// Fills in the ports of a quoted packet's transport header at `l4` (key already reversed:
    /// the quoted source port goes to `destinationPort`), when its first bytes are present.
    @inline(__always)
    static func readQuotedPorts(
        _ p: UnsafeRawPointer, at l4: Int, end: Int, echoProto: UInt8, into key: inout FlowKey
    ) {
        guard l4 <= end else { return }  // Options or extension headers cut.
        switch key.proto {
        case IPProtocol.tcp, IPProtocol.udp, IPProtocol.sctp:
            guard end - l4 >= 4 else { return }
            key.sourcePort = p.loadBE16(l4 + 2)
            key.destinationPort = p.loadBE16(l4)
        case echoProto:
            // An echo's key has the identifier as source port in both directions, so the
            // reversed key keeps it there.
            guard end - l4 >= 6, isICMPEcho(p.loadBE8(l4), isIPv6: echoProto == IPProtocol.icmpv6)
            else { return }
            key.sourcePort = p.loadBE16(l4 + 4)
        default:
            return
        }
    }
}
