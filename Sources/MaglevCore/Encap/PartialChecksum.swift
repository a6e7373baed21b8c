extension ChecksumCompletion {
    /// Whether the TCP or UDP checksum of the untagged Ethernet frame at `frame` was left to a
    /// NIC (`CHECKSUM_PARTIAL`), judged from the bytes alone: for engines whose kernel interface
    /// does not say (AF_XDP has no such flag; AF_PACKET's auxiliary data does).
    ///
    /// Such a checksum field holds the folded sum of the pseudo-header. A field that equals it is
    /// taken as partial only when the segment's checksum does not verify as it stands, so a
    /// complete checksum is never touched (one packet in 65,536 has a field equal to its
    /// pseudo-header sum by chance; those verify and are left alone). Cheap when the field does
    /// not match (the common case: a pseudo-header sum of a few words); the segment is summed
    /// only when it does. IPv4 without fragments, IPv6 with TCP or UDP right after the fixed
    /// header; anything else is false. No allocation.
    @inline(__always)
    public static func isLeftToTheNIC(_ frame: UnsafeRawPointer, length: Int) -> Bool {
        guard length >= 14 + 20 else { return false }
        let etherType = frame.loadBE16(12)
        var sum: UInt32
        let proto: UInt8
        let l4: Int
        let l4Length: Int
        if etherType == 0x0800 {
            let ihl = Int(frame.loadBE8(14) & 0x0F) &* 4
            guard frame.loadBE8(14) >> 4 == 4, ihl >= 20 else { return false }
            // Not a fragment (MF clear, offset 0).
            guard frame.loadBE16(14 + 6) & 0x3FFF == 0 else { return false }
            let total = Int(frame.loadBE16(14 + 2))
            guard total <= length &- 14, total >= ihl else { return false }
            proto = frame.loadBE8(14 + 9)
            l4 = 14 &+ ihl
            l4Length = total &- ihl
            sum = internetChecksumSum(frame + (14 + 12), count: 8)
        } else if etherType == 0x86DD {
            guard length >= 14 + 40, frame.loadBE8(14) >> 4 == 6 else { return false }
            proto = frame.loadBE8(14 + 6)
            l4 = 14 + 40
            l4Length = Int(frame.loadBE16(14 + 4))
            guard l4Length <= length &- l4 else { return false }
            sum = internetChecksumSum(frame + (14 + 8), count: 32)
        } else {
            return false
        }
        let field: Int
        switch proto {
        case IPProtocol.tcp: field = tcpField
        case IPProtocol.udp: field = udpField
        default: return false
        }
        guard l4Length >= field &+ 2 else { return false }
        sum = fold(sum &+ UInt32(proto) &+ UInt32(truncatingIfNeeded: l4Length))
        // The kernel writes the folded sum itself (never 0: the protocol number is in it), so a
        // UDP checksum of 0 ("none") never matches.
        guard frame.loadBE16(l4 &+ field) == UInt16(sum) else { return false }
        // The pseudo-header plus the segment (field included) folds to 0xFFFF when complete.
        let whole = internetChecksumSum(frame + l4, count: l4Length, initial: sum)
        return whole != 0xFFFF
    }

    @inline(__always)
    static func fold(_ s: UInt32) -> UInt32 {
        var sum = s
        while sum > 0xFFFF { sum = (sum & 0xFFFF) &+ (sum >> 16) }
        return sum
    }
}
