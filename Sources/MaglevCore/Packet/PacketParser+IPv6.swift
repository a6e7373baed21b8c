// IPv6 header, its extension header chain, then the transport header.

extension PacketParser {
    /// What walking an IPv6 extension header chain found.
    struct IPv6Chain {
        /// The upper-layer protocol (or, after a non-first fragment header, the fragment
        /// header's next-header value).
        var proto: UInt8
        /// Where the upper-layer header (or the fragment data) begins.
        var offset: Int
        var fragment: FragmentKind
        var hasFragmentHeader: Bool
        var fragmentID: UInt32
        /// Why the walk failed, or nil.
        var failure: DropReason?
    }

    /// Walks extension headers starting with `next` at `offset`, none of which may cross `end`.
    @inline(__always)
    static func walkIPv6Extensions(
        _ p: UnsafeRawPointer, next firstNext: UInt8, at firstOffset: Int, end: Int
    ) -> IPv6Chain {
        var chain = IPv6Chain(
            proto: firstNext, offset: firstOffset, fragment: .none, hasFragmentHeader: false,
            fragmentID: 0, failure: nil)
        var count = 0
        while true {
            let next = chain.proto
            let offset = chain.offset
            let length: Int
            switch next {
            // Fewer than 2 bytes left: assume the shortest header (8 bytes), which is cut.
            case 0, 43, 60:  // Hop-by-hop, routing, destination options: (n + 1) * 8 bytes.
                length = end - offset >= 2 ? (Int(p.loadBE8(offset + 1)) &+ 1) &* 8 : 8
            case 51:  // Authentication header: (n + 2) * 4 bytes.
                length = end - offset >= 2 ? (Int(p.loadBE8(offset + 1)) &+ 2) &* 4 : 8
            case 44:  // Fragment header: 8 bytes.
                length = 8
            default:
                return chain  // The upper-layer protocol.
            }
            count += 1
            guard count <= maxIPv6ExtensionHeaders else {
                chain.failure = .ipv6ExtensionChainTooLong
                return chain
            }
            guard end - offset >= length else {
                chain.failure = .truncatedIPv6ExtensionHeader
                return chain
            }
            chain.proto = p.loadBE8(offset)
            chain.offset = offset + length
            if next == 44 {
                let offsetAndFlags = p.loadBE16(offset + 2)
                chain.hasFragmentHeader = true
                chain.fragmentID = p.loadBE32(offset + 4)
                if offsetAndFlags & 0xFFF8 != 0 {
                    // What follows is the middle of the datagram, not headers.
                    chain.fragment = .nonFirst
                    return chain
                }
                chain.fragment = offsetAndFlags & 1 != 0 ? .first : .none  // .none: atomic.
            }
        }
    }

    /// IPv6 at `l3`; `end` is the frame's end.
    @inline(__always)
    static func parseIPv6(_ p: UnsafeRawPointer, at l3: Int, end: Int, into packet: inout ParsedPacket) -> DropReason? {
        let available = end - l3
        guard available >= 40 else { return .truncatedIPv6Header }
        let first = p.loadBE32(l3)
        guard first >> 28 == 6 else { return .badIPVersion }
        let payloadLength = Int(p.loadBE16(l3 + 4))
        // Payload length 0: a jumbogram or a TSO capture; the capture is the claim.
        let claimed = payloadLength == 0 ? available : 40 + payloadLength
        let l3Length = min(claimed, available)
        let l3End = l3 + l3Length

        let chain = walkIPv6Extensions(p, next: p.loadBE8(l3 + 6), at: l3 + 40, end: l3End)
        if let failure = chain.failure { return failure }

        packet = ParsedPacket(
            l3Offset: l3, l3Length: l3Length, l3ClaimedLength: claimed, l4Offset: -1,
            key: FlowKey(
                source: IPAddress.loadIPv6(p, l3 + 8),
                destination: IPAddress.loadIPv6(p, l3 + 24),
                sourcePort: 0, destinationPort: 0, proto: chain.proto),
            tcpFlags: 0, fragment: chain.fragment,
            fragmentID: chain.hasFragmentHeader ? chain.fragmentID : 0, dontFragment: true,
            isICMPError: false, trafficClass: UInt8(truncatingIfNeeded: first >> 20),
            traceMarked: first & 0xF_FFFF == TraceMarker.ipv6FlowLabel)
        if chain.fragment == .nonFirst || chain.proto == 59 { return nil }
        return parseL4(p, &packet, at: chain.offset, end: l3End, claimedEnd: l3 + claimed)
    }

    /// A quoted IPv6 header at `q` inside an ICMPv6 error, bounded by `end`; on success `key` is
    /// the quoted flow reversed.
    @inline(__always)
    static func parseQuotedIPv6(
        _ p: UnsafeRawPointer, at q: Int, end: Int, into key: inout FlowKey
    ) -> DropReason? {
        guard end - q >= 40 else { return .truncatedICMPQuote }
        guard p.loadBE8(q) >> 4 == 6 else { return .badICMPQuote }
        let chain = walkIPv6Extensions(p, next: p.loadBE8(q + 6), at: q + 40, end: end)
        switch chain.failure {
        case .none: break
        case .truncatedIPv6ExtensionHeader?: return .truncatedICMPQuote  // Protocol unknown.
        case .some: return .badICMPQuote
        }
        key = FlowKey(
            source: IPAddress.loadIPv6(p, q + 24), destination: IPAddress.loadIPv6(p, q + 8),
            sourcePort: 0, destinationPort: 0, proto: chain.proto)
        if chain.fragment == .nonFirst { return nil }
        readQuotedPorts(p, at: chain.offset, end: end, echoProto: IPProtocol.icmpv6, into: &key)
        return nil
    }
}
