import MaglevCore

/// Follows every flow and connection of a replay and turns what the data plane decided into a
/// `ReplayReport`. Memory grows with flows, not packets.
///
/// Definitions (docs/replay.md has them for readers of the report):
/// - a *flow* is a distinct key (5-tuple; 3-tuple for non-first fragments);
/// - a TCP *connection* runs from its SYN to FIN/RST or to its idle timeout (packets after the
///   FIN/RST, within the closing timeout, still belong to it but cannot break it); one seen
///   mid-stream counts from its first packet; a UDP (or other) connection is a
///   flow split by the datagram idle timeout;
/// - a connection is *broken* when a later packet of it reaches another backend than its earlier
///   packets did. The break is charged to the latest event since the connection began:
///   *unavoidable* when the connection's backend had been removed or failed, *collateral*
///   otherwise. ICMP errors and fragments count in the load figures but not in connections.
final class ReplayAnalysis {
    struct Connection {
        var backend: Int32
        /// The VIP's stable id.
        var vip: Int32
        var lastNs: UInt64
        var state: ConnectionState
        var broken: Bool
        /// Index of the latest event when the connection began (-1: none yet).
        var eventAtStart: Int
        var open: Bool
    }

    struct Flow {
        var key: FlowKey
        var connection: Connection
        /// The first backend this flow reached, and any others after it (usually none).
        var backend: Int32
        var laterBackends: [Int32]?

        func reached(_ b: Int32) -> Bool { backend == b || (laterBackends?.contains(b) ?? false) }
    }

    struct BackendTally {
        var flows = 0
        var connections = 0
        var packets = 0
        var bytes = 0
        var open = 0
        var peak = 0
    }

    /// What one event did per VIP and per backend, by id (names are given to `report`).
    struct EventBreakdown {
        /// VIPs present after the event, in config order, with their slot changes.
        var vipSlots: [(id: Int32, all: Double?, extra: Double?)] = []
        var brokenByBackend: [Int32: Int] = [:]
        var brokenByVIP: [Int32: Int] = [:]
        var atRiskByBackend: [Int32: Int] = [:]
        var atRiskByVIP: [Int32: Int] = [:]
        var aliveByVIP: [Int32: Int] = [:]
        var atRiskByVIPBackend: [Int32: [Int32: Int]] = [:]
        /// Capture times of the packets that revealed the breaks charged to the event, in the
        /// order seen, and how many of them came after a later event.
        var visibleNs: [UInt64] = []
        var visibleAfterLaterEvent = 0
    }

    /// A config event may change them.
    var timeouts: ConnectionTimeouts
    /// Every flow seen, keyed by our own flow hash (`FlowTable`; report order never depends on
    /// its order).
    var flows = FlowTable()
    var tallies: [BackendTally] = []
    var counts = ReplayReport.PacketCounts()
    var passed: [DropReason: Int] = [:]
    var dropped: [DropReason: Int] = [:]
    var connectionCount = 0
    var events: [ReplayReport.EventResult] = []
    /// Parallel to `events`.
    var breakdowns: [EventBreakdown] = []
    /// Backends whose connections are lost (removed or failed) as of now, by id.
    var unusable: Set<Int32> = []
    /// For each unusable backend id, the event that made it unusable: a break that shows only
    /// after later events (the connection was silent meanwhile) is charged to its cause.
    var unusableSince: [Int32: Int] = [:]
    var brokenWithoutEvent = 0
    /// VIPs (config indices) that forwarded at least one packet.
    var vipsWithTraffic: Set<Int32> = []
    /// `vipsWithTraffic` as flags by VIP id, so a packet of a VIP already in it costs no hashing.
    var vipSeen: [Bool] = []
    var firstNs: UInt64?
    var lastNs: UInt64 = 0
    var nextSweepNs: UInt64 = 0

    // Timeline: packets per backend per bucket; the bucket width doubles to keep <= 120 buckets.
    var bucketNs: UInt64 = 100_000_000
    /// The last packet's bucket and where it starts (offset from the first packet), kept so
    /// that most packets need no division; set from `bucketNs` each time.
    var timelineIndex = 0
    var timelineLow = UInt64.max
    var buckets: [[Int]] = []

    init(timeouts: ConnectionTimeouts) {
        self.timeouts = timeouts
    }

    func timeoutNs(_ state: ConnectionState) -> UInt64 { UInt64(timeouts.timeout(for: state)) * 1_000_000 }

    func tally(_ backend: Int32) -> Int {
        let i = Int(backend)
        while tallies.count <= i { tallies.append(BackendTally()) }
        return i
    }

    /// One packet and what the data plane did with it.
    func observe(timeNs: UInt64, packet: ParsedPacket?, verdict: Verdict) {
        var p = packet ?? .zero
        observe(timeNs: timeNs, packet: &p, parsed: packet != nil, verdict: verdict)
    }

    /// The same for the replay loop: `packet` (read in place, never written) holds meaning only
    /// when `parsed`.
    /// `flowHash`: `FlowTable.hash(packet.key)` when the caller has it already.
    func observe(timeNs: UInt64, packet: inout ParsedPacket, parsed: Bool, verdict: Verdict, flowHash: UInt64? = nil) {
        if firstNs == nil {
            firstNs = timeNs
            nextSweepNs = timeNs &+ 1_000_000_000
        }
        lastNs = max(lastNs, timeNs)
        counts.total += 1
        if timeNs >= nextSweepNs {
            sweep(now: timeNs)
            nextSweepNs = timeNs &+ 1_000_000_000
        }
        outcome(timeNs: timeNs, packet: &packet, parsed: parsed, verdict: verdict, flowHash: flowHash)
    }

    /// A held fragment's fate (`Dataplane.releaseHeld`): forwarded once its first fragment came,
    /// or dropped on expiry. Counted once as a packet already, when it was held.
    func released(timeNs: UInt64, packet: inout ParsedPacket, parsed: Bool, verdict: Verdict) {
        lastNs = max(lastNs, timeNs)
        outcome(timeNs: timeNs, packet: &packet, parsed: parsed, verdict: verdict)
    }

    func outcome(timeNs: UInt64, packet: inout ParsedPacket, parsed: Bool, verdict: Verdict, flowHash: UInt64? = nil) {
        switch verdict.action {
        // Held: its outcome comes with `released`. Redirects are resolved by the replay
        // (the owner's verdict is the one observed).
        case .held, .redirect: break
        case .pass: passed[verdict.reason ?? .unknownVIP, default: 0] += 1
        case .drop: dropped[verdict.reason ?? .noBackend, default: 0] += 1
        case .icmpReply: counts.icmpReplies += 1
        case .forward:
            counts.forwarded += 1
            let v = Int(verdict.vip)
            if v < 0 || v >= vipSeen.count || !vipSeen[v] {
                vipsWithTraffic.insert(verdict.vip)
                if v >= 0 {
                    if v >= vipSeen.count { vipSeen += Array(repeating: false, count: v + 1 - vipSeen.count) }
                    vipSeen[v] = true
                }
            }
            guard parsed else { return }
            forwarded(
                timeNs: timeNs, packet: &packet, backend: verdict.backend, vip: verdict.vip,
                hash: flowHash ?? FlowTable.hash(packet.key))
        }
    }

    func forwarded(timeNs: UInt64, packet: inout ParsedPacket, backend: Int32, vip: Int32, hash: UInt64) {
        let t = tally(backend)
        tallies[t].packets += 1
        tallies[t].bytes += packet.l3Length
        addToTimeline(timeNs: timeNs, backend: t)

        let countsAsConnection = packet.fragment == .none && !packet.isICMPError
        let isTCP = packet.key.proto == IPProtocol.tcp
        let flags = packet.tcpFlags
        let isSYN = isTCP && flags & (TCPFlags.syn | TCPFlags.ack) == TCPFlags.syn

        guard let index = flows.find(packet.key, hash: hash) else {
            tallies[t].flows += 1
            var c = Connection(
                backend: backend, vip: vip, lastNs: timeNs, state: .datagram, broken: false, eventAtStart: events.count - 1,
                open: false)
            if countsAsConnection { begin(&c, backend: backend, vip: vip, timeNs: timeNs, isTCP: isTCP, flags: flags) }
            flows.insert(Flow(key: packet.key, connection: c, backend: backend, laterBackends: nil), hash: hash)
            return
        }
        update(
            &flows[index], tally: t, backend: backend, vip: vip, timeNs: timeNs, countsAsConnection: countsAsConnection,
            isTCP: isTCP, isSYN: isSYN, flags: flags)
    }

    func update(
        _ flow: inout Flow, tally t: Int, backend: Int32, vip: Int32, timeNs: UInt64, countsAsConnection: Bool, isTCP: Bool, isSYN: Bool,
        flags: UInt8
    ) {
        if !flow.reached(backend) {
            flow.laterBackends = (flow.laterBackends ?? []) + [backend]
            tallies[t].flows += 1
        }
        guard countsAsConnection else { return }
        let c = flow.connection
        let alive = c.open && timeNs &- c.lastNs <= timeoutNs(c.state)
        if alive && c.state == .tcpClosing && !isSYN {
            // The connection ended at its FIN/RST; the last ACKs still belong to it but can
            // no longer break it.
            flow.connection.lastNs = timeNs
            return
        }
        if alive && !(isSYN && c.state == .tcpClosing) {
            if c.backend != backend {
                breakConnection(&flow.connection, to: backend, timeNs: timeNs)
            }
            flow.connection.lastNs = timeNs
            flow.connection.state = nextState(c.state, isTCP: isTCP, flags: flags)
        } else {
            if c.open { end(&flow.connection) }
            begin(&flow.connection, backend: backend, vip: vip, timeNs: timeNs, isTCP: isTCP, flags: flags)
        }
    }

    func begin(_ c: inout Connection, backend: Int32, vip: Int32, timeNs: UInt64, isTCP: Bool, flags: UInt8) {
        c = Connection(
            backend: backend, vip: vip, lastNs: timeNs, state: initialState(isTCP: isTCP, flags: flags), broken: false,
            eventAtStart: events.count - 1, open: true)
        connectionCount += 1
        let t = tally(backend)
        tallies[t].connections += 1
        tallies[t].open += 1
        tallies[t].peak = max(tallies[t].peak, tallies[t].open)
    }

    func end(_ c: inout Connection) {
        c.open = false
        tallies[tally(c.backend)].open -= 1
    }

    /// `timeNs`: the capture time of the packet that shows the break.
    func breakConnection(_ c: inout Connection, to backend: Int32, timeNs: UInt64) {
        if !c.broken {
            c.broken = true
            if events.count - 1 > c.eventAtStart {
                // The cause: the event that made the connection's backend unusable (if that
                // came after the connection began), else the latest event (a table change).
                var e = events.count - 1
                if unusable.contains(c.backend), let cause = unusableSince[c.backend], cause > c.eventAtStart {
                    e = cause
                }
                events[e].broken += 1
                breakdowns[e].visibleNs.append(timeNs)
                if e < events.count - 1 { breakdowns[e].visibleAfterLaterEvent += 1 }
                breakdowns[e].brokenByBackend[c.backend, default: 0] += 1
                breakdowns[e].brokenByVIP[c.vip, default: 0] += 1
                if unusable.contains(c.backend) {
                    events[e].brokenUnavoidable += 1
                } else {
                    events[e].brokenCollateral += 1
                }
            } else {
                brokenWithoutEvent += 1
            }
        }
        // The connection goes on at its new backend.
        tallies[tally(c.backend)].open -= 1
        let t = tally(backend)
        tallies[t].connections += 1
        tallies[t].open += 1
        tallies[t].peak = max(tallies[t].peak, tallies[t].open)
        c.backend = backend
    }

    func initialState(isTCP: Bool, flags: UInt8) -> ConnectionState {
        guard isTCP else { return .datagram }
        if flags & (TCPFlags.fin | TCPFlags.rst) != 0 { return .tcpClosing }
        if flags & (TCPFlags.syn | TCPFlags.ack) == TCPFlags.syn { return .tcpHalfOpen }
        return .tcpEstablished
    }

    func nextState(_ old: ConnectionState, isTCP: Bool, flags: UInt8) -> ConnectionState {
        guard isTCP else { return old }
        if flags & (TCPFlags.fin | TCPFlags.rst) != 0 { return .tcpClosing }
        if old == .tcpHalfOpen && flags & TCPFlags.ack != 0 { return .tcpEstablished }
        return old
    }

    /// Ends connections idle past their timeout; returns how many are still alive (open and
    /// not past their FIN/RST).
    @discardableResult
    func sweep(now: UInt64) -> Int {
        var open = 0
        for i in 0..<flows.count {
            let c = flows[i].connection
            if c.open {
                if now &- c.lastNs > timeoutNs(c.state) {
                    end(&flows[i].connection)
                } else if c.state != .tcpClosing {
                    open += 1  // a connection past its FIN/RST has ended, though not yet swept
                }
            }
        }
        return open
    }

    /// An event is about to take effect at `timeNs` (before packet `packet`).
    func beginEvent(_ event: ScenarioEvent, packet: Int, timeNs: UInt64) {
        var result = ReplayReport.EventResult(at: event.atText, action: event.action.name, target: event.target)
        result.packet = packet
        result.seconds = Double(timeNs &- (firstNs ?? timeNs)) / 1e9
        result.connectionsAlive = sweep(now: timeNs)
        events.append(result)
        breakdowns.append(EventBreakdown())
    }

    /// Every connection alive at `now` (open, not idle past its timeout, not past its FIN/RST),
    /// with the backend and VIP it is on. Call after `beginEvent` (which swept at `now`).
    func aliveConnections(now: UInt64) -> [(key: FlowKey, backend: Int32, vip: Int32)] {
        var out: [(key: FlowKey, backend: Int32, vip: Int32)] = []
        for i in 0..<flows.count {
            let c = flows[i].connection
            guard c.open && c.state != .tcpClosing && now &- c.lastNs <= timeoutNs(c.state) else { continue }
            out.append((flows[i].key, c.backend, c.vip))
        }
        return out
    }

    /// The event's what-if figures: connections alive at it that would move, by backend (the
    /// one they were on) and VIP; and the slot changes per VIP present after it.
    func recordImpact(
        atRisk: [(backend: Int32, vip: Int32)], aliveByVIP: [Int32: Int], vipSlots: [(id: Int32, all: Double?, extra: Double?)]
    ) {
        let e = events.count - 1
        events[e].atRisk = atRisk.count
        for r in atRisk {
            breakdowns[e].atRiskByBackend[r.backend, default: 0] += 1
            breakdowns[e].atRiskByVIP[r.vip, default: 0] += 1
            breakdowns[e].atRiskByVIPBackend[r.vip, default: [:]][r.backend, default: 0] += 1
        }
        breakdowns[e].aliveByVIP = aliveByVIP
        breakdowns[e].vipSlots = vipSlots
    }

    /// The capture ended before the event: it is listed, marked as never reached.
    func notReached(_ event: ScenarioEvent) {
        var result = ReplayReport.EventResult(at: event.atText, action: event.action.name, target: event.target)
        result.reached = false
        events.append(result)
        breakdowns.append(EventBreakdown())
    }

    /// The event took effect: the table moved this much, these backends now lose connections.
    func endEvent(slotsChangedAll: Double, slotsChangedExtra: Double, unusable: Set<Int32>) {
        events[events.count - 1].slotsChangedAll = slotsChangedAll
        events[events.count - 1].slotsChangedExtra = slotsChangedExtra
        for id in unusable where !self.unusable.contains(id) { unusableSince[id] = events.count - 1 }
        for id in self.unusable where !unusable.contains(id) { unusableSince[id] = nil }
        self.unusable = unusable
    }

    func addToTimeline(timeNs: UInt64, backend: Int) {
        let offset = timeNs &- (firstNs ?? timeNs)
        // The bucket of the packet before, most of the time: no division.
        var index: Int
        if offset >= timelineLow && offset &- timelineLow < bucketNs {
            index = timelineIndex
        } else {
            index = Int(offset / bucketNs)
        }
        while index >= 120 {
            // Halve the resolution: merge bucket pairs.
            var merged: [[Int]] = []
            var i = 0
            while i < buckets.count {
                var row = buckets[i]
                if i + 1 < buckets.count {
                    let next = buckets[i + 1]
                    if next.count > row.count { row += Array(repeating: 0, count: next.count - row.count) }
                    for j in 0..<next.count { row[j] += next[j] }
                }
                merged.append(row)
                i += 2
            }
            buckets = merged
            bucketNs *= 2
            index = Int(offset / bucketNs)
        }
        timelineIndex = index
        timelineLow = UInt64(index) &* bucketNs
        while buckets.count <= index { buckets.append([]) }
        if buckets[index].count <= backend { buckets[index] += Array(repeating: 0, count: backend + 1 - buckets[index].count) }
        buckets[index][backend] += 1
    }

    /// The report's analysed parts. `names`, `addresses` and `states` are indexed by backend
    /// id; `balanced` says which backends own slots at the end (the balance figures cover them).
    func report(
        names: [String], addresses: [String], states: [String], balanced: [Bool], skipped: [(reason: String, count: Int)],
        vipNames: [String] = []
    ) -> ReplayReport {
        var r = ReplayReport()
        r.packets = counts
        r.packets.passed = passed.map { ($0.key.description, $0.value) }.sorted { $0.0 < $1.0 }
        r.packets.dropped = dropped.map { ($0.key.description, $0.value) }.sorted { $0.0 < $1.0 }
        r.packets.skipped = skipped.sorted { $0.reason < $1.reason }
        r.packets.total += r.packets.skippedTotal
        r.flows = flows.count
        r.connections = connectionCount
        r.durationSeconds = Double(lastNs &- (firstNs ?? lastNs)) / 1e9
        r.events = events
        for (i, b) in breakdowns.enumerated() where i < r.events.count {
            func vipName(_ id: Int32) -> String { Int(id) < vipNames.count ? vipNames[Int(id)] : "vip-\(id)" }
            func backendName(_ id: Int32) -> String { id >= 0 && Int(id) < names.count ? names[Int(id)] : "(none)" }
            var vips: [(id: Int32, impact: ReplayReport.VIPImpact)] = []
            var listed = Set<Int32>()
            for v in b.vipSlots where listed.insert(v.id).inserted {
                vips.append((v.id, .init(name: vipName(v.id), slotsChangedAll: v.all, slotsChangedExtra: v.extra)))
            }
            // A VIP the event removed still had connections broken or at risk.
            for id in Set(b.brokenByVIP.keys).union(b.atRiskByVIP.keys).union(b.aliveByVIP.keys).sorted() where listed.insert(id).inserted {
                vips.append((id, .init(name: vipName(id), slotsChangedAll: nil, slotsChangedExtra: nil)))
            }
            r.events[i].byVIP = vips.map { id, v in
                var v = v
                v.broken = b.brokenByVIP[id] ?? 0
                v.atRisk = b.atRiskByVIP[id] ?? 0
                v.alive = b.aliveByVIP[id] ?? 0
                v.atRiskByBackend = (b.atRiskByVIPBackend[id] ?? [:])
                    .map { ReplayReport.BackendImpact(name: backendName($0.key), atRisk: $0.value) }.sorted { $0.name < $1.name }
                return v
            }
            if !b.visibleNs.isEmpty {
                let times = b.visibleNs.sorted()
                let start = firstNs ?? times[0]
                func seconds(_ t: UInt64) -> Double { Double(t &- start) / 1e9 }
                r.events[i].brokenVisible = ReplayReport.BreakVisibility(
                    firstSeconds: seconds(times[0]), medianSeconds: seconds(times[(times.count - 1) / 2]),
                    lastSeconds: seconds(times[times.count - 1]), afterLaterEvent: b.visibleAfterLaterEvent)
            }
            r.events[i].byBackend = Set(b.brokenByBackend.keys).union(b.atRiskByBackend.keys)
                .map { ReplayReport.BackendImpact(name: backendName($0), broken: b.brokenByBackend[$0] ?? 0, atRisk: b.atRiskByBackend[$0] ?? 0) }
                .sorted { $0.name < $1.name }
        }

        // Backends sorted by name; the timeline follows the same order.
        let ids = names.indices.sorted { names[$0] < names[$1] }
        var loads: [ReplayReport.BackendLoad] = []
        for id in ids {
            var b = ReplayReport.BackendLoad(name: names[id], address: addresses[id], state: states[id])
            if id < tallies.count {
                let t = tallies[id]
                b.flows = t.flows
                b.connections = t.connections
                b.packets = t.packets
                b.bytes = t.bytes
                b.peakConnections = t.peak
            }
            loads.append(b)
        }
        r.backends = loads
        r.balance = ReplayAnalysis.balance(loads.enumerated().filter { balanced[ids[$0.offset]] }.map(\.element))
        r.timeline = buckets.enumerated().map { i, row in
            ReplayReport.TimeBucket(
                startSeconds: Double(UInt64(i) * bucketNs) / 1e9, packets: ids.map { $0 < row.count ? row[$0] : 0 })
        }
        if brokenWithoutEvent > 0 {
            r.warnings.append(
                "\(brokenWithoutEvent) connections changed backend with no event since they began (connection table full or evicted)")
        }
        return r
    }

    static func balance(_ loads: [ReplayReport.BackendLoad]) -> ReplayReport.Balance {
        // Over zero backends, or a load with a mean of 0, a figure is undefined (nil): never
        // 0 or 1, which would read as perfect balance.
        var b = ReplayReport.Balance()
        guard !loads.isEmpty else { return b }
        func maxOverMean(_ v: [Double]) -> Double? {
            let mean = v.reduce(0, +) / Double(v.count)
            return mean > 0 ? v.max()! / mean : nil
        }
        let flows = loads.map { Double($0.flows) }
        b.flowsMaxOverMean = maxOverMean(flows)
        b.packetsMaxOverMean = maxOverMean(loads.map { Double($0.packets) })
        b.bytesMaxOverMean = maxOverMean(loads.map { Double($0.bytes) })
        let mean = flows.reduce(0, +) / Double(flows.count)
        if mean > 0 {
            let variance = flows.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(flows.count)
            b.flowsCoV = variance.squareRoot() / mean
            let sumSquares = flows.map { $0 * $0 }.reduce(0, +)
            b.jain = (flows.reduce(0, +) * flows.reduce(0, +)) / (Double(flows.count) * sumSquares)
        }
        return b
    }
}
