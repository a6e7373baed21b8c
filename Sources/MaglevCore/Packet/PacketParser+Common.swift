// The common frame in one step, before the general walk.

extension PacketParser {
    /// Parses the frame most traffic consists of, without the general walk: untagged Ethernet,
    /// IPv4 without options (first byte 0x45), not a fragment (MF clear, offset 0), TCP or UDP
    /// with its whole header, the total length non-zero and within the frame (nothing
    /// truncated). For such a frame it writes exactly the `ParsedPacket` that
    /// `parse(_:linkType:into:)` writes through `parseEthernet`, `parseIPv4` and `parseL4`, and
    /// returns true; for any other frame it writes nothing and returns false (parse it the
    /// general way). `count` is the frame's length in bytes.
    @inline(__always)
    static func parseCommonEthernetIPv4(_ p: UnsafeRawPointer, count: Int, into packet: inout ParsedPacket) -> Bool {
        // 42 bytes: Ethernet, IPv4 and a UDP header, the least a frame taken here holds; the
        // total length check below then keeps every load inside the frame.
        guard count >= 42, p.loadBE16(12) == EtherType.ipv4, p.loadBE8(14) == 0x45 else { return false }
        let totalLength = Int(p.loadBE16(16))
        let flagsAndOffset = p.loadBE16(20)
        let proto = p.loadBE8(23)
        let isTCP = proto == IPProtocol.tcp
        let l4Header = isTCP ? 20 : 8
        guard isTCP || proto == IPProtocol.udp, flagsAndOffset & 0x3FFF == 0, totalLength >= 20 &+ l4Header,
            totalLength <= count &- 14
        else { return false }
        packet = ParsedPacket(
            l3Offset: 14, l3Length: totalLength, l3ClaimedLength: totalLength, l4Offset: 34,
            key: FlowKey(
                source: IPAddress.loadIPv4(p, 26), destination: IPAddress.loadIPv4(p, 30),
                sourcePort: p.loadBE16(34), destinationPort: p.loadBE16(36), proto: proto),
            tcpFlags: isTCP ? p.loadBE8(47) : 0, fragment: .none, fragmentID: 0,
            dontFragment: flagsAndOffset & 0x4000 != 0, isICMPError: false, trafficClass: p.loadBE8(15),
            traceMarked: flagsAndOffset & TraceMarker.ipv4Flag != 0)
        return true
    }
}
