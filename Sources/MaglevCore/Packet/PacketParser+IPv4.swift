// IPv4 header, then the transport header.

extension PacketParser {
    /// IPv4 at `l3`; `end` is the frame's end.
    @inline(__always)
    static func parseIPv4(_ p: UnsafeRawPointer, at l3: Int, end: Int, into packet: inout ParsedPacket) -> DropReason? {
        let available = end - l3
        guard available >= 20 else { return .truncatedIPv4Header }
        let versionAndIHL = p.loadBE8(l3)
        guard versionAndIHL >> 4 == 4 else { return .badIPVersion }
        let headerLength = Int(versionAndIHL & 0x0F) &* 4
        guard headerLength >= 20 else { return .badIPv4HeaderLength }
        guard available >= headerLength else { return .truncatedIPv4Header }

        let totalLength = Int(p.loadBE16(l3 + 2))
        let claimed: Int
        if totalLength == 0 {
            claimed = available  // TSO capture: the NIC fills the length in later.
        } else {
            guard totalLength >= headerLength else { return .badIPv4TotalLength }
            claimed = totalLength
        }
        let l3Length = min(claimed, available)

        let flagsAndOffset = p.loadBE16(l3 + 6)
        let dontFragment = flagsAndOffset & 0x4000 != 0
        let moreFragments = flagsAndOffset & 0x2000 != 0
        let fragment: FragmentKind =
            flagsAndOffset & 0x1FFF != 0 ? .nonFirst : (moreFragments ? .first : .none)
        let fragmentID: UInt32 = fragment == .none ? 0 : UInt32(p.loadBE16(l3 + 4))

        packet = ParsedPacket(
            l3Offset: l3, l3Length: l3Length, l3ClaimedLength: claimed, l4Offset: -1,
            key: FlowKey(
                source: IPAddress.loadIPv4(p, l3 + 12),
                destination: IPAddress.loadIPv4(p, l3 + 16),
                sourcePort: 0, destinationPort: 0, proto: p.loadBE8(l3 + 9)),
            tcpFlags: 0, fragment: fragment, fragmentID: fragmentID, dontFragment: dontFragment,
            isICMPError: false, trafficClass: p.loadBE8(l3 + 1),
            traceMarked: flagsAndOffset & TraceMarker.ipv4Flag != 0)
        if fragment == .nonFirst { return nil }
        return parseL4(
            p, &packet, at: l3 + headerLength, end: l3 + l3Length, claimedEnd: l3 + claimed)
    }

    /// A quoted IPv4 header at `q` inside an ICMP error, bounded by `end`; on success `key` is
    /// the quoted flow reversed.
    @inline(__always)
    static func parseQuotedIPv4(
        _ p: UnsafeRawPointer, at q: Int, end: Int, into key: inout FlowKey
    ) -> DropReason? {
        // The addresses end at byte 20; options may be cut, they only hide the ports.
        guard end - q >= 20 else { return .truncatedICMPQuote }
        let versionAndIHL = p.loadBE8(q)
        guard versionAndIHL >> 4 == 4, versionAndIHL & 0x0F >= 5 else { return .badICMPQuote }
        let proto = p.loadBE8(q + 9)
        key = FlowKey(
            source: IPAddress.loadIPv4(p, q + 16), destination: IPAddress.loadIPv4(p, q + 12),
            sourcePort: 0, destinationPort: 0, proto: proto)
        if p.loadBE16(q + 6) & 0x1FFF != 0 { return nil }  // Non-first fragment: no ports.
        readQuotedPorts(
            p, at: q + Int(versionAndIHL & 0x0F) &* 4, end: end, echoProto: IPProtocol.icmp,
            into: &key)
        return nil
    }
}
