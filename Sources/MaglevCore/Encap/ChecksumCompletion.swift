/// Finishes a TCP or UDP checksum that the sender left to its NIC (`CHECKSUM_PARTIAL`).
///
/// Such a packet's checksum field holds only the folded ones'-complement sum of the
/// pseudo-header. Summing the whole L4 segment (header and payload, that field included)
/// therefore adds the pseudo-header exactly once; the complement of the folded result is the
/// checksum a NIC would have written. The field sits at offset 16 of a TCP header and 6 of a
/// UDP header; a UDP result of 0 is written as 0xFFFF (0 means "no checksum", RFC 768).
///
/// A packet the data plane forwards otherwise unchanged; only its two checksum bytes change.
public enum ChecksumCompletion {
    /// TCP: checksum at byte 16 of the header.
    static let tcpField = 16
    /// UDP: checksum at byte 6 of the header.
    static let udpField = 6

    /// Completes the checksum of `packet`, parsed from the frame at `frame`, in place. Returns
    /// false, bytes untouched, when it cannot: not TCP or UDP (ICMP errors quoting TCP or UDP
    /// included), a fragment (the segment is not all here), or a packet cut short of its
    /// claimed length. No allocation; reads the segment once.
    @inline(__always)
    static func complete(_ frame: UnsafeMutableRawPointer, _ packet: ParsedPacket) -> Bool {
        guard packet.fragment == .none, !packet.isICMPError, !packet.isTruncated, packet.l4Offset >= 0 else {
            return false
        }
        let proto = packet.key.proto
        let field: Int
        switch proto {
        case IPProtocol.tcp: field = tcpField
        case IPProtocol.udp: field = udpField
        default: return false
        }
        let count = packet.l3Offset &+ packet.l3Length &- packet.l4Offset
        // The parser checked the fixed header (20 / 8 bytes) is present; say it again here.
        guard count >= field &+ 2 else { return false }
        var checksum = internetChecksum(UnsafeRawPointer(frame + packet.l4Offset), count: count)
        if checksum == 0 && proto == IPProtocol.udp { checksum = 0xFFFF }
        frame.storeBE16(checksum, packet.l4Offset &+ field)
        return true
    }
}
