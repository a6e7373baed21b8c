/// A copy of a data plane's counters, taken between batches (control side; allocates).
public struct DataplaneStatistics: Sendable, Equatable {
    public struct Load: Sendable, Equatable {
        public var packets: UInt64 = 0
        public var bytes: UInt64 = 0
        /// Connections this forwarder selected the backend for (table misses recorded or not).
        public var newFlows: UInt64 = 0
        public init(packets: UInt64 = 0, bytes: UInt64 = 0, newFlows: UInt64 = 0) {
            self.packets = packets
            self.bytes = bytes
            self.newFlows = newFlows
        }
    }

    public var packets: UInt64 = 0
    public var bytes: UInt64 = 0
    public var forwarded: UInt64 = 0
    public var icmpReplies: UInt64 = 0
    /// Connection-table hits whose backend was no longer usable, sent to a new backend.
    public var reselected: UInt64 = 0
    /// Forwarded packets whose unfinished TCP/UDP checksum (`PacketSlot.checksumPending`) the
    /// data plane completed before encapsulating them.
    public var checksumsCompleted: UInt64 = 0
    /// Forwarded packets marked `checksumPending` that it could not complete (fragments, other
    /// protocols, packets cut short): forwarded unchanged all the same.
    public var checksumsNotCompletable: UInt64 = 0
    /// Tracer probes seen (marker and trailer), and those whose record was lost because
    /// `Dataplane.traceCapacity` records were already waiting.
    public var traced: UInt64 = 0
    public var tracesOverflowed: UInt64 = 0
    /// `fragments: redirect`: fragments sent on to the group member that owns them, redirected
    /// fragments received from group members, later fragments held for their first fragment,
    /// and held fragments forwarded once it came (the rest expired: `fragment_hold_expired`).
    public var fragmentsRedirected: UInt64 = 0
    public var redirectsReceived: UInt64 = 0
    public var fragmentsHeld: UInt64 = 0
    public var heldReleased: UInt64 = 0
    /// Count per drop or pass reason, indexed by `DropReason.rawValue`.
    public var reasons: [UInt64] = Array(repeating: 0, count: DropReason.allCases.count)
    /// Per VIP id (`ForwardingSnapshot.vipNames`): stable across reloads, so a VIP's counts
    /// stay with it when VIPs are reordered, added or removed. A VIP that left keeps its counts.
    public var vips: [Load] = []
    /// VIP names by id, alongside `vips`.
    public var vipNames: [String] = []
    /// Per backend id.
    public var backends: [Load] = []
    /// Per (VIP id, backend id) pair with traffic, sorted by VIP id then backend id. Counted
    /// while VIP ids x backend ids stay within `CounterBlock.maxPairs`; beyond that
    /// `pairsCounted` is false and this stays empty (per-VIP and per-backend totals still count).
    public var pairs: [PairLoad] = []
    public var pairsCounted = true

    public struct PairLoad: Sendable, Equatable {
        public var vip: Int
        public var backend: Int
        public var load: Load
        public init(vip: Int, backend: Int, load: Load) {
            self.vip = vip
            self.backend = backend
            self.load = load
        }
    }

    public init() {}

    public func count(_ reason: DropReason) -> UInt64 { reasons[Int(reason.rawValue)] }
    /// The counts of the VIP named `name`, or nil when no VIP id has that name.
    public func vip(named name: String) -> Load? {
        guard let id = vipNames.firstIndex(of: name), id < vips.count else { return nil }
        return vips[id]
    }
    public var dropped: UInt64 { DropReason.allCases.filter { !$0.isPass }.reduce(0) { $0 + count($1) } }
    public var passed: UInt64 { count(.notIP) + count(.unknownVIP) }
}

/// Counter storage: one flat block of UInt64, sized when a snapshot is installed, so the
/// per-packet path only adds to memory it already owns. Per-VIP counters are indexed by VIP id,
/// per-backend ones by backend id: both stable within a snapshot lineage.
struct CounterBlock {
    static let packets = 0
    static let bytes = 1
    static let forwarded = 2
    static let icmpReplies = 3
    static let reselected = 4
    static let checksumsCompleted = 5
    static let checksumsNotCompletable = 6
    static let traced = 7
    static let tracesOverflowed = 8
    static let fragmentsRedirected = 9
    static let redirectsReceived = 10
    static let fragmentsHeld = 11
    static let heldReleased = 12
    static let reasonBase = 13
    static let vipBase = reasonBase + DropReason.allCases.count
    static let perVIP = 2
    static let perBackend = 3
    static let perPair = 2
    /// Most (VIP, backend) cells counted: 1 Mi cells, 16 MiB per worker.
    static let maxPairs = 1 << 20

    var storage: UnsafeMutableBufferPointer<UInt64>
    var vipCapacity: Int
    var backendCapacity: Int
    /// Backend ids per VIP row of the pair matrix; 0 when pairs are not counted.
    var pairStride: Int
    /// Where the per-backend counters begin, then the pair matrix (kept, not recomputed per
    /// packet).
    var backendBase: Int
    var pairBase: Int

    init(vips: Int, backends: Int) {
        vipCapacity = vips
        backendCapacity = backends
        pairStride = vips * backends <= CounterBlock.maxPairs ? backends : 0
        backendBase = CounterBlock.vipBase + vips * CounterBlock.perVIP
        pairBase = backendBase + backends * CounterBlock.perBackend
        let count =
            CounterBlock.vipBase + vips * CounterBlock.perVIP + backends * CounterBlock.perBackend
            + vips * pairStride * CounterBlock.perPair
        storage = .allocate(capacity: count)
        storage.initialize(repeating: 0)
    }

    @inline(__always) func add(_ index: Int, _ value: UInt64 = 1) { storage[index] &+= value }
    @inline(__always) func reason(_ r: DropReason) { storage[CounterBlock.reasonBase &+ Int(r.rawValue)] &+= 1 }
    @inline(__always) func vip(_ v: Int, bytes: Int) {
        let i = CounterBlock.vipBase &+ v &* CounterBlock.perVIP
        storage[i] &+= 1
        storage[i &+ 1] &+= UInt64(truncatingIfNeeded: bytes)
    }
    @inline(__always) func backend(_ b: Int, bytes: Int) {
        let i = backendBase &+ b &* CounterBlock.perBackend
        storage[i] &+= 1
        storage[i &+ 1] &+= UInt64(truncatingIfNeeded: bytes)
    }
    @inline(__always) func pair(_ v: Int, _ b: Int, bytes: Int) {
        if pairStride == 0 { return }
        let i = pairBase &+ (v &* pairStride &+ b) &* CounterBlock.perPair
        storage[i] &+= 1
        storage[i &+ 1] &+= UInt64(truncatingIfNeeded: bytes)
    }
    @inline(__always) func newFlow(_ b: Int) { storage[backendBase &+ b &* CounterBlock.perBackend &+ 2] &+= 1 }

    /// A block large enough for a new snapshot, carrying the counts over (control side).
    func resized(vips: Int, backends: Int) -> CounterBlock {
        let bigger = CounterBlock(vips: max(vips, vipCapacity), backends: max(backends, backendCapacity))
        for i in 0..<CounterBlock.vipBase { bigger.storage[i] = storage[i] }
        for i in 0..<(vipCapacity * CounterBlock.perVIP) {
            bigger.storage[CounterBlock.vipBase + i] = storage[CounterBlock.vipBase + i]
        }
        for i in 0..<(backendCapacity * CounterBlock.perBackend) {
            bigger.storage[bigger.backendBase + i] = storage[backendBase + i]
        }
        if pairStride > 0 && bigger.pairStride > 0 {
            for v in 0..<vipCapacity {
                for b in 0..<backendCapacity {
                    let from = pairBase + (v * pairStride + b) * CounterBlock.perPair
                    let to = bigger.pairBase + (v * bigger.pairStride + b) * CounterBlock.perPair
                    for k in 0..<CounterBlock.perPair { bigger.storage[to + k] = storage[from + k] }
                }
            }
        }
        return bigger
    }

    /// `vipNames`: by VIP id, as many as the snapshot has ids.
    func statistics(vipNames: [String], backends: Int) -> DataplaneStatistics {
        let vips = vipNames.count
        var s = DataplaneStatistics()
        s.packets = storage[CounterBlock.packets]
        s.bytes = storage[CounterBlock.bytes]
        s.forwarded = storage[CounterBlock.forwarded]
        s.icmpReplies = storage[CounterBlock.icmpReplies]
        s.reselected = storage[CounterBlock.reselected]
        s.checksumsCompleted = storage[CounterBlock.checksumsCompleted]
        s.checksumsNotCompletable = storage[CounterBlock.checksumsNotCompletable]
        s.traced = storage[CounterBlock.traced]
        s.tracesOverflowed = storage[CounterBlock.tracesOverflowed]
        s.fragmentsRedirected = storage[CounterBlock.fragmentsRedirected]
        s.redirectsReceived = storage[CounterBlock.redirectsReceived]
        s.fragmentsHeld = storage[CounterBlock.fragmentsHeld]
        s.heldReleased = storage[CounterBlock.heldReleased]
        for r in DropReason.allCases { s.reasons[Int(r.rawValue)] = storage[CounterBlock.reasonBase + Int(r.rawValue)] }
        for v in 0..<min(vips, vipCapacity) {
            let i = CounterBlock.vipBase + v * CounterBlock.perVIP
            s.vips.append(.init(packets: storage[i], bytes: storage[i + 1]))
        }
        s.vipNames = Array(vipNames.prefix(s.vips.count))
        for b in 0..<min(backends, backendCapacity) {
            let i = backendBase + b * CounterBlock.perBackend
            s.backends.append(.init(packets: storage[i], bytes: storage[i + 1], newFlows: storage[i + 2]))
        }
        s.pairsCounted = pairStride > 0
        if pairStride > 0 {
            for v in 0..<min(vips, vipCapacity) {
                for b in 0..<min(backends, backendCapacity) {
                    let i = pairBase + (v * pairStride + b) * CounterBlock.perPair
                    if storage[i] != 0 {
                        s.pairs.append(.init(vip: v, backend: b, load: .init(packets: storage[i], bytes: storage[i + 1])))
                    }
                }
            }
        }
        return s
    }

    func deallocate() { storage.deallocate() }
}
