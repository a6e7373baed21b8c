/// Writes outer IP + GRE headers in front of an inner IP packet, in place (the headers go into
/// the bytes just before the inner packet; the payload is never copied).
///
///     Outer IPv4 (20 bytes) + GRE (4 bytes), RFC 791 / RFC 2784:
///      0                   1                   2                   3
///     +-------+-------+---------------+-------------------------------+
///     |Ver=4  |IHL=5  | TOS (inner's) |  Total length = 24 + inner    |
///     +-------+-------+---------------+-----+-------------------------+
///     |        Identification = 0     |0|1|0|   Fragment offset = 0   |  (DF set)
///     +---------------+---------------+-----+-------------------------+
///     |    TTL = 64   |  Proto = 47   |        Header checksum        |
///     +---------------+---------------+-------------------------------+
///     |                Source = forwarder's IPv4 address              |
///     |                Destination = backend's IPv4 address           |
///     +---------------------------------------------------------------+
///     |C|   Reserved0 = 0   |Ver=0|  Protocol = 0x0800 or 0x86DD    |  GRE
///     +---------------------------------------------------------------+
///     |                inner IP packet, byte-identical                |
///
///     Outer IPv6 (40 bytes) + GRE (4 bytes), RFC 8200 / RFC 7676:
///     | Ver=6 | Traffic class (inner's) | Flow label = flow hash, 20 bits |
///     | Payload length = 4 + inner | Next header = 47 | Hop limit = 64 |
///     | Source = forwarder's IPv6 address (16) | Destination = backend (16) |
///     | GRE: 0x0000, protocol 0x0800 or 0x86DD | inner IP packet |
///
/// The IPv6 flow label carries 20 bits of the flow hash so that routers and backends that
/// hash on it spread flows; the outer IPv4 header has no such field and stays constant per
/// backend (backends receive all flows from one source address).
public enum GREEncapsulator {
    public static let ipv4Overhead = 24
    public static let ipv6Overhead = 44

    @inline(__always)
    public static func overhead(outerIPv6: Bool) -> Int { outerIPv6 ? ipv6Overhead : ipv4Overhead }

    /// The part of an outer IPv4 header's checksum sum that does not change from packet to
    /// packet between `source` and `destination`: version/IHL, DF, TTL, protocol and the two
    /// addresses, as an unfolded sum of 16-bit words (below 2^19). Snapshots keep it per backend.
    static func ipv4HeaderPartialSum(source: IPAddress, destination: IPAddress) -> UInt32 {
        let src = source.ipv4Value
        let dst = destination.ipv4Value
        return 0x4500 &+ 0x4000 &+ (64 << 8 | UInt32(IPProtocol.gre)) &+ (src >> 16) &+ (src & 0xFFFF)
            &+ (dst >> 16) &+ (dst & 0xFFFF)
    }

    /// Writes the outer headers ending at `innerStart`; returns the offset where they begin.
    /// The caller guarantees `innerStart >= overhead(outerIPv6:)`. `ipv4PartialSum` is
    /// `ipv4HeaderPartialSum(source:destination:)` (read only for an IPv4 destination).
    @inline(__always)
    static func encapsulate(
        _ base: UnsafeMutableRawPointer, innerStart: Int, innerLength: Int, innerIPv6: Bool,
        trafficClass: UInt8, source: IPAddress, destination: IPAddress, flowHash: UInt64, ipv4PartialSum: UInt32
    ) -> Int {
        if destination.isIPv6 {
            return encapsulateIPv6(
                base, innerStart: innerStart, innerLength: innerLength, innerIPv6: innerIPv6,
                trafficClass: trafficClass, source: source, destination: destination, flowHash: flowHash)
        }
        return encapsulateIPv4(
            base, innerStart: innerStart, innerLength: innerLength, innerIPv6: innerIPv6, trafficClass: trafficClass,
            source: source.ipv4Value, destination: destination.ipv4Value, partialSum: ipv4PartialSum)
    }

    /// `encapsulate` to an IPv6 destination (outer IPv6 from `source`).
    @inline(__always)
    static func encapsulateIPv6(
        _ base: UnsafeMutableRawPointer, innerStart: Int, innerLength: Int, innerIPv6: Bool,
        trafficClass: UInt8, source: IPAddress, destination: IPAddress, flowHash: UInt64
    ) -> Int {
        let start = innerStart &- ipv6Overhead
        let p = base + start
        let label = UInt32(truncatingIfNeeded: flowHash) & 0xF_FFFF
        p.storeBE32(0x6000_0000 | UInt32(trafficClass) << 20 | label, 0)
        p.storeBE16(UInt16(truncatingIfNeeded: innerLength &+ 4), 4)
        p.storeBE8(IPProtocol.gre, 6)
        p.storeBE8(64, 7)
        source.store(to: p, 8)
        destination.store(to: p, 24)
        p.storeBE16(0, 40)
        p.storeBE16(innerIPv6 ? 0x86DD : 0x0800, 42)
        return start
    }

    /// `encapsulate` to an IPv4 destination, the addresses as 32-bit host-order values and
    /// `partialSum` their `ipv4HeaderPartialSum` (the data plane passes the backend's, kept in
    /// the snapshot, and never chooses between address families at run time here).
    @inline(__always)
    static func encapsulateIPv4(
        _ base: UnsafeMutableRawPointer, innerStart: Int, innerLength: Int, innerIPv6: Bool,
        trafficClass: UInt8, source: UInt32, destination: UInt32, partialSum: UInt32
    ) -> Int {
        let start = innerStart &- ipv4Overhead
        let p = base + start
        let totalLength = UInt16(truncatingIfNeeded: innerLength &+ 24)
        p.storeBE8(0x45, 0)
        p.storeBE8(trafficClass, 1)
        p.storeBE16(totalLength, 2)
        p.storeBE32(0x0000_4000, 4)  // id 0, DF
        p.storeBE8(64, 8)
        p.storeBE8(IPProtocol.gre, 9)
        p.storeBE32(source, 12)
        p.storeBE32(destination, 16)
        // The header checksum without reading the header back (RFC 1071: the same value as
        // `internetChecksum` over the 20 bytes): the constant words' sum plus TOS and length,
        // below 2^20, so two folds leave 16 bits.
        var sum = partialSum &+ UInt32(trafficClass) &+ UInt32(totalLength)
        sum = (sum & 0xFFFF) &+ (sum >> 16)
        sum = (sum & 0xFFFF) &+ (sum >> 16)
        p.storeBE16(~UInt16(truncatingIfNeeded: sum), 10)
        p.storeBE16(0, 20)
        p.storeBE16(innerIPv6 ? 0x86DD : 0x0800, 22)
        return start
    }

    /// The control side's entry (health probes, replay): the same outer headers as forwarded
    /// traffic, with traffic class 0 and flow label 0. Returns the offset where they begin;
    /// the caller guarantees `innerStart >= overhead(outerIPv6: destination.isIPv6)`.
    public static func encapsulate(
        _ base: UnsafeMutableRawPointer, innerStart: Int, innerLength: Int, innerIPv6: Bool, source: IPAddress,
        destination: IPAddress
    ) -> Int {
        let partial = destination.isIPv6 ? 0 : ipv4HeaderPartialSum(source: source, destination: destination)
        return encapsulate(
            base, innerStart: innerStart, innerLength: innerLength, innerIPv6: innerIPv6, trafficClass: 0,
            source: source, destination: destination, flowHash: 0, ipv4PartialSum: partial)
    }

    /// Rewrites the length of the outer header at `p` (IPv4 total length, with its header
    /// checksum redone; IPv6 payload length) to cover `total` bytes: replay's records of
    /// packets the capture cut short say what was really sent.
    public static func setOuterLength(_ p: UnsafeMutableRawPointer, outerIPv6: Bool, total: Int) {
        if outerIPv6 {
            p.storeBE16(UInt16(truncatingIfNeeded: total - 40), 4)
            return
        }
        p.storeBE16(UInt16(truncatingIfNeeded: total), 2)
        p.storeBE16(0, 10)
        p.storeBE16(internetChecksum(p, count: Int(UnsafeRawPointer(p).loadBE8(0) & 0x0F) * 4), 10)
    }
}
