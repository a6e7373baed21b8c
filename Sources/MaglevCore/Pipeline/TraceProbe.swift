// The packet tracer (the Maglev paper's packet tracer): marked probe
// packets make every forwarder that handles them report what it decided. The data plane only
// recognises a probe and hands back a fixed-size record; the driver sends the report.

/// Why the data plane chose the backend it chose (or `none` when it chose none).
public enum SelectionReason: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// No backend was selected (pass, or a drop before selection).
    case none = 0
    /// The connection table had the flow, on a usable backend.
    case connectionHit
    /// The VIP's lookup table: a new flow (connection-table miss), or connection tracking off.
    case tableLookup
    /// The connection table had the flow on a backend that is gone or down (or a SYN reopened a
    /// closing entry): the lookup table chose again.
    case reselected
    /// A later fragment found its datagram in the fragment table (`fragment-table` policy).
    case fragmentTableHit
    /// A fragment hashed on its 3-tuple (`three-tuple` policy, or a fragment-table miss).
    case threeTupleFragment
    /// An ICMP error following the flow it quotes (its connection entry, else the table).
    case icmpQuote
    /// A fragment sent on to the group member that owns its 3-tuple (`fragments: redirect`).
    case fragmentRedirect
    /// A later fragment held until its first fragment arrived, then sent its way.
    case fragmentHeld

    public var description: String {
        switch self {
        case .none: "none"
        case .connectionHit: "connection-hit"
        case .tableLookup: "table-lookup"
        case .reselected: "reselected"
        case .fragmentTableHit: "fragment-table-hit"
        case .threeTupleFragment: "three-tuple-fragment"
        case .icmpQuote: "icmp-quote"
        case .fragmentRedirect: "fragment-redirect"
        case .fragmentHeld: "fragment-held"
        }
    }

    public init?(name: String) {
        guard let r = SelectionReason.allCases.first(where: { $0.description == name }) else { return nil }
        self = r
    }
}

/// What a probe asks for: where to send the report, and its id.
public struct TraceProbe: Sendable, Hashable {
    /// The collector's address and UDP port (the report goes there).
    public var collector: IPAddress
    public var collectorPort: UInt16
    /// Chosen by the prober; echoed in the report.
    public var id: UInt64

    public init(collector: IPAddress, collectorPort: UInt16, id: UInt64) {
        self.collector = collector
        self.collectorPort = collectorPort
        self.id = id
    }
}

/// The tracer's marker (docs/maglev.md, "The packet tracer", has the byte diagram).
///
/// A probe is an IP packet that carries both:
/// 1. the marker bit in its IP header: the IPv4 reserved flag (0x8000 of the flags/fragment
///    field), or the IPv6 flow label `ipv6FlowLabel`; the parser notes it (`traceMarked`) at no
///    extra cost, and unmarked packets pay one branch in the data plane;
/// 2. a 40-byte trailer as the last bytes of the IP packet (for `maglev probe`'s TCP SYN and UDP
///    datagrams, the whole payload): the magic "MGTRACE1", the collector's family, port and
///    address, and the probe id. Only a marked packet's trailer is read.
///
/// A marked packet without a valid trailer (or cut short by the capture) is an ordinary packet:
/// decided the same, not traced.
public enum TraceMarker {
    /// The IPv4 flags/fragment-offset bit (RFC 791's reserved bit, RFC 3514's "evil bit").
    public static let ipv4Flag: UInt16 = 0x8000
    /// The IPv6 flow label of a probe ("7ACED", traced).
    public static let ipv6FlowLabel: UInt32 = 0x7_ACED
    /// "MGTRACE1", big-endian.
    public static let magic: UInt64 = 0x4D47_5452_4143_4531
    public static let trailerLength = 40

    /// The probe trailer of the IP packet at `packet` of `length` bytes, or nil when its last
    /// `trailerLength` bytes are not one (wrong magic, family not 4 or 6).
    @inline(__always)
    public static func read(_ packet: UnsafeRawPointer, length: Int) -> TraceProbe? {
        guard length >= trailerLength else { return nil }
        let t = length &- trailerLength
        guard packet.loadBE64(t) == magic else { return nil }
        let family = packet.loadBE8(t &+ 8)
        let port = packet.loadBE16(t &+ 10)
        let address: IPAddress
        switch family {
        case 4: address = IPAddress.loadIPv4(packet, t &+ 12)
        case 6: address = IPAddress.loadIPv6(packet, t &+ 12)
        default: return nil
        }
        return TraceProbe(collector: address, collectorPort: port, id: packet.loadBE64(t &+ 28))
    }

    /// Writes `probe`'s trailer at `p` (`trailerLength` bytes): for probers and tests.
    public static func write(_ probe: TraceProbe, to p: UnsafeMutableRawPointer) {
        p.initializeMemory(as: UInt8.self, repeating: 0, count: trailerLength)
        p.storeBE64(magic, 0)
        p.storeBE8(probe.collector.isIPv6 ? 6 : 4, 8)
        p.storeBE16(probe.collectorPort, 10)
        if probe.collector.isIPv6 {
            p.storeBE64(probe.collector.high, 12)
            p.storeBE64(probe.collector.low, 20)
        } else {
            p.storeBE32(probe.collector.ipv4Value, 12)
        }
        p.storeBE64(probe.id, 28)
    }

    /// The trailer as bytes (control side: allocates).
    public static func trailer(_ probe: TraceProbe) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: trailerLength)
        bytes.withUnsafeMutableBytes { write(probe, to: $0.baseAddress!) }
        return bytes
    }
}

/// What a data plane did with one probe: a fixed-size value the driver copies out between
/// batches and turns into a report off the data path.
public struct TraceRecord: Sendable, Equatable {
    public var probe: TraceProbe
    /// The packet's flow key (for an ICMP error, the quoted flow reversed; for a non-first
    /// fragment, ports 0).
    public var key: FlowKey
    /// VIP id (`ForwardingSnapshot.vipNames`) or -1; backend id or -1.
    public var vip: Int32
    public var backend: Int32
    public var action: Verdict.Action
    public var dropReason: DropReason?
    public var reason: SelectionReason
    public var fragment: FragmentKind

    public init(
        probe: TraceProbe, key: FlowKey, vip: Int32, backend: Int32, action: Verdict.Action,
        dropReason: DropReason?, reason: SelectionReason, fragment: FragmentKind
    ) {
        self.probe = probe
        self.key = key
        self.vip = vip
        self.backend = backend
        self.action = action
        self.dropReason = dropReason
        self.reason = reason
        self.fragment = fragment
    }
}

extension Dataplane {
    /// The most trace records kept between two `takeTraces` calls; more are counted in
    /// `tracesOverflowed` and lost.
    public static let traceCapacity = 64

    /// The records of traced packets since the last call, handed to `body` (driver, between
    /// batches), then forgotten. Allocates nothing.
    @inline(__always)
    public func takeTraces(_ body: (UnsafeBufferPointer<TraceRecord>) -> Void) {
        if traceCount == 0 { return }
        body(UnsafeBufferPointer(start: traceRecords, count: traceCount))
        traceCount = 0
    }

    /// Records pending for `takeTraces`.
    public var pendingTraces: Int { traceCount }

    /// The slow path of a marked packet: a trailer makes it a probe; it is decided exactly like
    /// any packet, then recorded.
    @inline(never)
    func decideMarked(
        _ packet: inout ParsedPacket, flowHash: UInt64, base: UnsafeMutableRawPointer, offset: Int, length: Int,
        checksumPending: Bool, now: UInt64
    ) -> Verdict {
        let probe =
            packet.isTruncated
            ? nil : TraceMarker.read(UnsafeRawPointer(base + offset + packet.l3Offset), length: packet.l3Length)
        var v = decideParsed(
            &packet, flowHash: flowHash, base: base, offset: offset, length: length,
            checksumPending: checksumPending, now: now)
        guard let probe else { return v }
        v.traced = true
        counters.add(CounterBlock.traced)
        if traceCount < Dataplane.traceCapacity {
            traceRecords[traceCount] = TraceRecord(
                probe: probe, key: packet.key, vip: v.vip, backend: v.backend, action: v.action,
                dropReason: v.reason, reason: v.selection, fragment: packet.fragment)
            traceCount &+= 1
        } else {
            counters.add(CounterBlock.tracesOverflowed)
        }
        return v
    }
}

extension TraceMarker {
    /// A whole probe as `maglev probe` sends it (allocates: for probers and tests, never the data
    /// path): an IP packet from `source`:`sourcePort` to `destination`:`destinationPort`
    /// carrying the marker, whose payload is the trailer. TCP (`proto` 6): a SYN (window 64240,
    /// sequence `sequence`, no options); UDP (17): a datagram. IPv4: TTL 64, DF, the reserved
    /// flag, identification `identification`; IPv6: hop limit 64, flow label `ipv6FlowLabel`.
    /// Checksums are filled in.
    public static func probePacket(
        source: IPAddress, destination: IPAddress, sourcePort: UInt16, destinationPort: UInt16, proto: UInt8,
        probe: TraceProbe, identification: UInt16 = 0, sequence: UInt32 = 0
    ) -> [UInt8] {
        precondition(source.isIPv6 == destination.isIPv6, "a probe's addresses are of one family")
        precondition(proto == IPProtocol.tcp || proto == IPProtocol.udp, "probes are TCP or UDP")
        let ipv6 = destination.isIPv6
        let ipLength = ipv6 ? 40 : 20
        let l4Length = (proto == IPProtocol.tcp ? 20 : 8) + trailerLength
        var bytes = [UInt8](repeating: 0, count: ipLength + l4Length)
        bytes.withUnsafeMutableBytes { raw in
            let p = raw.baseAddress!
            if ipv6 {
                p.storeBE32(0x6000_0000 | ipv6FlowLabel, 0)
                p.storeBE16(UInt16(l4Length), 4)
                p.storeBE8(proto, 6)
                p.storeBE8(64, 7)
                p.storeBE64(source.high, 8)
                p.storeBE64(source.low, 16)
                p.storeBE64(destination.high, 24)
                p.storeBE64(destination.low, 32)
            } else {
                p.storeBE8(0x45, 0)
                p.storeBE16(UInt16(ipLength + l4Length), 2)
                p.storeBE16(identification, 4)
                p.storeBE16(ipv4Flag | 0x4000, 6)  // The marker, and DF.
                p.storeBE8(64, 8)
                p.storeBE8(proto, 9)
                p.storeBE32(source.ipv4Value, 12)
                p.storeBE32(destination.ipv4Value, 16)
                p.storeBE16(internetChecksum(UnsafeRawPointer(p), count: 20), 10)
            }
            let l4 = p + ipLength
            l4.storeBE16(sourcePort, 0)
            l4.storeBE16(destinationPort, 2)
            let checksumAt: Int
            if proto == IPProtocol.tcp {
                l4.storeBE32(sequence, 4)
                l4.storeBE8(5 << 4, 12)  // Data offset: 5 words.
                l4.storeBE8(TCPFlags.syn, 13)
                l4.storeBE16(64240, 14)
                checksumAt = 16
            } else {
                l4.storeBE16(UInt16(l4Length), 4)
                checksumAt = 6
            }
            write(probe, to: l4 + (l4Length - trailerLength))
            // Pseudo-header: addresses, protocol, length.
            var pseudo: UInt32 = UInt32(proto) &+ UInt32(l4Length)
            let addressBytes = ipv6 ? 32 : 8
            pseudo = internetChecksumSum(UnsafeRawPointer(p + (ipv6 ? 8 : 12)), count: addressBytes, initial: pseudo)
            var sum = internetChecksum(UnsafeRawPointer(l4), count: l4Length, initial: pseudo)
            if proto == IPProtocol.udp && sum == 0 { sum = 0xFFFF }
            l4.storeBE16(sum, checksumAt)
        }
        return bytes
    }
}
