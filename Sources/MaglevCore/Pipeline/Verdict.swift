/// What the data plane decided for one packet.
public struct Verdict: Sendable, Equatable {
    public enum Action: UInt8, Sendable {
        /// Send `output` (outer IP + GRE + the inner packet) to `backend`.
        case forward
        /// Send `output` (an ICMP error) back to the client.
        case icmpReply
        /// Not our traffic (`reason` is `notIP` or `unknownVIP`): leave it to the host.
        case pass
        /// Dropped for `reason`.
        case drop
        /// Send `output` (outer IP + GRE with recursion control 1 + the fragment) to the
        /// forwarder group member `member`, which owns the fragment's datagram
        /// (`fragments: redirect`).
        case redirect
        /// A later fragment whose first fragment has not arrived: the data plane copied it
        /// into its fragment hold (the driver's buffer is free) and sends it from there
        /// (`Dataplane.releaseHeld`) once the first fragment arrives, or drops it on expiry.
        case held
    }

    public var action: Action
    /// Why it was passed or dropped; `nil` for forward and ICMP replies.
    public var reason: DropReason?
    /// Stable id of the matched VIP (`ForwardingSnapshot.vipNames`), or -1. In a snapshot built
    /// without `previous`, ids are config positions.
    public var vip: Int32
    /// Stable backend id, or -1.
    public var backend: Int32
    /// `redirect`: the index of the owner in `DataplaneConfig.forwarders`; else -1.
    public var member: Int32
    /// Where the bytes to send begin, as an offset from the buffer's base (may lie before the
    /// frame's own start: headers are written into headroom), and how many there are.
    public var outputOffset: Int
    public var outputLength: Int
    /// Whether the output is an IPv6 packet (else IPv4).
    public var outputIsIPv6: Bool
    /// How the backend was chosen (`none` when none was).
    public var selection: SelectionReason
    /// The packet was a tracer probe (`TraceMarker`): its `TraceRecord` waits in the data plane
    /// for `takeTraces`. Otherwise handled exactly like any packet.
    public var traced: Bool

    /// Inlinable with `PacketSlot.init`, which drivers call per packet (see there).
    @inlinable @inline(__always)
    public init(
        action: Action, reason: DropReason? = nil, vip: Int32 = -1, backend: Int32 = -1,
        outputOffset: Int = 0, outputLength: Int = 0, outputIsIPv6: Bool = false,
        selection: SelectionReason = .none, traced: Bool = false, member: Int32 = -1
    ) {
        self.action = action
        self.member = member
        self.reason = reason
        self.vip = vip
        self.backend = backend
        self.outputOffset = outputOffset
        self.outputLength = outputLength
        self.outputIsIPv6 = outputIsIPv6
        self.selection = selection
        self.traced = traced
    }

    @inline(__always)
    static func notForwarded(_ reason: DropReason, vip: Int32 = -1) -> Verdict {
        Verdict(action: reason.isPass ? .pass : .drop, reason: reason, vip: vip)
    }

    /// `forward`, `icmp`, `pass` or `drop:REASON`, as reports and CSV files write it.
    public var label: String {
        switch action {
        case .forward: "forward"
        case .icmpReply: "icmp"
        case .pass: "pass"
        case .drop: "drop:\(reason?.description ?? "unknown")"
        case .redirect: "redirect"
        case .held: "held"
        }
    }
}

/// One packet of a batch: where its frame is, and the verdict once processed.
public struct PacketSlot {
    /// The buffer; bytes before `offset` are headroom the data plane may write into.
    public var base: UnsafeMutableRawPointer
    public var offset: Int
    public var length: Int
    /// The frame's TCP/UDP checksum is unfinished (the sender left it to a NIC:
    /// `CHECKSUM_PARTIAL`, reported by the live driver's packet socket): the field holds the
    /// folded pseudo-header sum, and the data plane completes it before forwarding. Replay
    /// and tests leave it false.
    public var checksumPending: Bool
    public var verdict: Verdict

    /// Inlinable: drivers build a slot per received packet. As a call into MaglevCore it
    /// returned the 72-byte slot through memory, which the caller then copied with wider
    /// loads than the callee's stores (a store-forwarding stall per packet: ~20% of `maglev
    /// bench`'s samples were these copies).
    @inlinable @inline(__always)
    public init(base: UnsafeMutableRawPointer, offset: Int, length: Int, checksumPending: Bool = false) {
        self.base = base
        self.offset = offset
        self.length = length
        self.checksumPending = checksumPending
        self.verdict = Verdict(action: .drop)
    }
}
