public import MaglevControl
public import MaglevCore

/// A worker's I/O counters (the data plane counts its own outcomes).
public struct IOCounters: Sendable, Equatable {
    /// Frames delivered by the packet socket.
    public var received: UInt64 = 0
    /// Frames longer than a receive buffer (cut short; the data plane sees them truncated).
    public var truncated: UInt64 = 0
    /// Frames the kernel could not hand over: the packet socket's receive queue was full (for
    /// `--io xdp`: a full RX ring, no free UMEM frame, or a frame larger than one)
    /// (`PACKET_STATISTICS`; read when statistics are published).
    public var kernelDrops: UInt64 = 0
    /// Receive completions with an error other than an empty buffer ring.
    public var receiveErrors: UInt64 = 0
    /// The provided-buffer ring ran dry (`-ENOBUFS`): every buffer was waiting for a send.
    public var bufferRingEmpty: UInt64 = 0
    /// Times the multishot receive had to be armed again.
    public var receiveRearms: UInt64 = 0
    /// Packets the kernel accepted from our send sockets (raw IP and AF_PACKET).
    public var sent: UInt64 = 0
    /// Of the GRE packets queued, those sent as whole frames through the AF_PACKET socket
    /// (`--send packet`), and those that took the raw IP socket because their backend's next hop
    /// was not resolved yet (or is not on an Ethernet interface).
    public var sentAsFrames: UInt64 = 0
    /// `--io ring`: of those, frames that went through the worker's transmit ring.
    public var sentThroughTxRing: UInt64 = 0
    public var nextHopFallbacks: UInt64 = 0
    /// Sends that failed (`lastSendErrno` says how).
    public var sendErrors: UInt64 = 0
    public var lastSendErrno: Int32 = 0
    /// IPv6 outputs dropped because this host has no IPv6 raw socket.
    public var noIPv6Socket: UInt64 = 0
    /// Turns of the loop (each one `io_uring_enter` at most) and batches processed.
    public var turns: UInt64 = 0
    public var batches: UInt64 = 0
    public var snapshotsInstalled: UInt64 = 0
    public var filterUpdateErrors: UInt64 = 0

    public init() {}

    /// Counts one send's completion: sent, or an error (and its errno).
    @inline(__always)
    mutating func countSend(result: Int32) {
        if result < 0 {
            sendErrors &+= 1
            lastSendErrno = -result
        } else {
            sent &+= 1
        }
    }

    public static func + (a: IOCounters, b: IOCounters) -> IOCounters {
        var s = a
        s.received += b.received
        s.truncated += b.truncated
        s.kernelDrops += b.kernelDrops
        s.receiveErrors += b.receiveErrors
        s.bufferRingEmpty += b.bufferRingEmpty
        s.receiveRearms += b.receiveRearms
        s.sent += b.sent
        s.sendErrors += b.sendErrors
        s.sentAsFrames += b.sentAsFrames
        s.sentThroughTxRing += b.sentThroughTxRing
        s.nextHopFallbacks += b.nextHopFallbacks
        if b.lastSendErrno != 0 { s.lastSendErrno = b.lastSendErrno }
        s.noIPv6Socket += b.noIPv6Socket
        s.turns += b.turns
        s.batches += b.batches
        s.snapshotsInstalled += b.snapshotsInstalled
        s.filterUpdateErrors += b.filterUpdateErrors
        return s
    }
}

/// One worker's counters at one moment.
public struct WorkerStatistics: Sendable {
    public var worker: Int
    /// The CPU it is pinned to, or nil when pinning failed or was off.
    public var cpu: Int?
    /// The io_uring setup mode the kernel accepted.
    public var ringMode: String
    /// Which kernel filter runs on the packet socket.
    public var filterMode: String
    public var dataplane: DataplaneStatistics
    public var io: IOCounters
    /// The worker's connection table: inserts, refused inserts, expirations, evictions.
    public var connections: ConnectionTableStatistics
    /// Live connection-table entries now, in all, and per backend id (counted when the
    /// statistics were taken: one scan of the table).
    public var liveConnections: Int = 0
    public var connectionsByBackend: [UInt64] = []
    /// Entries the connection table holds at most.
    public var connectionCapacity: Int = 0

    public init(
        worker: Int, cpu: Int?, ringMode: String, filterMode: String, dataplane: DataplaneStatistics,
        io: IOCounters = .init(), connections: ConnectionTableStatistics = .init()
    ) {
        self.worker = worker
        self.cpu = cpu
        self.ringMode = ringMode
        self.filterMode = filterMode
        self.dataplane = dataplane
        self.io = io
        self.connections = connections
    }
}

extension ConnectionTableStatistics {
    /// Counter-wise sum.
    public static func + (a: ConnectionTableStatistics, b: ConnectionTableStatistics) -> ConnectionTableStatistics {
        ConnectionTableStatistics(
            inserts: a.inserts + b.inserts, insertsRefused: a.insertsRefused + b.insertsRefused,
            expired: a.expired + b.expired, evictedHalfOpen: a.evictedHalfOpen + b.evictedHalfOpen,
            evictedDatagram: a.evictedDatagram + b.evictedDatagram, evictedClosing: a.evictedClosing + b.evictedClosing,
            evictedFragment: a.evictedFragment + b.evictedFragment,
            evictedEstablished: a.evictedEstablished + b.evictedEstablished)
    }

    /// Live entries pushed out of full buckets, whatever their state.
    public var evicted: UInt64 { evictedHalfOpen + evictedDatagram + evictedClosing + evictedFragment + evictedEstablished }
}

extension DataplaneStatistics {
    /// Counter-wise sum (backend and VIP lists padded to the longer one).
    public static func + (a: DataplaneStatistics, b: DataplaneStatistics) -> DataplaneStatistics {
        var s = a
        s.packets += b.packets
        s.bytes += b.bytes
        s.forwarded += b.forwarded
        s.icmpReplies += b.icmpReplies
        s.reselected += b.reselected
        s.checksumsCompleted += b.checksumsCompleted
        s.checksumsNotCompletable += b.checksumsNotCompletable
        s.traced += b.traced
        s.tracesOverflowed += b.tracesOverflowed
        s.fragmentsRedirected += b.fragmentsRedirected
        s.redirectsReceived += b.redirectsReceived
        s.fragmentsHeld += b.fragmentsHeld
        s.heldReleased += b.heldReleased
        for i in 0..<min(s.reasons.count, b.reasons.count) { s.reasons[i] += b.reasons[i] }
        func add(_ x: inout [Load], _ y: [Load]) {
            while x.count < y.count {
                var zero = y[x.count]
                zero.packets = 0
                zero.bytes = 0
                zero.newFlows = 0
                x.append(zero)
            }
            for i in 0..<y.count {
                x[i].packets += y[i].packets
                x[i].bytes += y[i].bytes
                x[i].newFlows += y[i].newFlows
            }
        }
        add(&s.vips, b.vips)
        if b.vipNames.count > s.vipNames.count { s.vipNames = b.vipNames }
        add(&s.backends, b.backends)
        return s
    }
}

/// Everything a stats line reports: per worker, the total, and names for VIP and backend ids.
public struct ForwarderStatistics: Sendable {
    /// Seconds since the forwarder started.
    public var elapsedSeconds: Double
    public var workers: [WorkerStatistics]
    /// VIP names by id (ids index `DataplaneStatistics.vips`), VIPs that left included.
    public var vipNames: [String]
    /// Per backend id: name and address.
    public var backendNames: [String]
    public var backendAddresses: [String]
    /// Process CPU time (user + system) since start, nanoseconds.
    public var cpuNanoseconds: UInt64
    /// How GRE leaves the workers (`packet` or `raw`).
    public var sendPath: String
    /// Per backend id on the `packet` send path: its next hop, or why it takes the raw socket.
    public var nextHops: [String]

    public init(
        elapsedSeconds: Double, workers: [WorkerStatistics], vipNames: [String], backendNames: [String],
        backendAddresses: [String], cpuNanoseconds: UInt64, sendPath: String = "raw", nextHops: [String] = []
    ) {
        precondition(!workers.isEmpty)
        self.elapsedSeconds = elapsedSeconds
        self.workers = workers
        self.vipNames = vipNames
        self.backendNames = backendNames
        self.backendAddresses = backendAddresses
        self.cpuNanoseconds = cpuNanoseconds
        self.sendPath = sendPath
        self.nextHops = nextHops
    }

    public var totalDataplane: DataplaneStatistics {
        workers.dropFirst().reduce(workers[0].dataplane) { $0 + $1.dataplane }
    }
    public var totalIO: IOCounters { workers.reduce(IOCounters()) { $0 + $1.io } }

    /// Load per (VIP, backend) pair with traffic, by name (empty when the pair matrix was too
    /// large to count: see `DataplaneStatistics.pairs`).
    public var vipBackendLoads: [(vip: String, backend: String, load: DataplaneStatistics.Load)] {
        let total = totalDataplane
        return total.pairs.compactMap { p in
            guard p.vip < total.vipNames.count, p.backend < backendNames.count else { return nil }
            return (total.vipNames[p.vip], backendNames[p.backend], p.load)
        }
    }
    public var totalConnections: ConnectionTableStatistics {
        workers.reduce(ConnectionTableStatistics()) { $0 + $1.connections }
    }

    /// CPU time per packet received, nanoseconds (0 before the first packet).
    public var cpuNanosecondsPerPacket: Double {
        let n = totalIO.received
        return n == 0 ? 0 : Double(cpuNanoseconds) / Double(n)
    }
}

/// Text and JSON renderings of forwarder statistics.
public enum StatisticsFormat {
    /// Several human-readable lines: total, each worker, each backend with traffic.
    public static func text(_ s: ForwarderStatistics, previous: ForwarderStatistics? = nil) -> String {
        let total = s.totalDataplane
        let io = s.totalIO
        var lines: [String] = []
        var rate = ""
        if let previous, s.elapsedSeconds > previous.elapsedSeconds {
            let dt = s.elapsedSeconds - previous.elapsedSeconds
            let pps = Double(io.received - min(io.received, previous.totalIO.received)) / dt
            let fps = Double(total.forwarded - min(total.forwarded, previous.totalDataplane.forwarded)) / dt
            rate = " rx_pps \(fixed(pps, 0)) fwd_pps \(fixed(fps, 0))"
        }
        lines.append(
            "[\(fixed(s.elapsedSeconds, 1))s] total: \(summary(total, io))\(rate) cpu_ns_per_packet \(fixed(s.cpuNanosecondsPerPacket, 0))"
        )
        for w in s.workers {
            let cpu = w.cpu.map { "cpu \($0)" } ?? "unpinned"
            lines.append(
                "  worker \(w.worker) (\(cpu), ring \(w.ringMode), filter \(w.filterMode)): \(summary(w.dataplane, w.io))")
        }
        let c = s.totalConnections
        lines.append(
            "  connections: inserts \(c.inserts) refused \(c.insertsRefused) expired \(c.expired) evicted \(c.evicted)"
                + " (established \(c.evictedEstablished))")
        let drops = DropReason.allCases.filter { !$0.isPass && total.count($0) > 0 }
        if !drops.isEmpty {
            lines.append("  drops: " + drops.map { "\($0) \(total.count($0))" }.joined(separator: ", "))
        }
        for (id, load) in total.backends.enumerated() where load.packets > 0 || load.newFlows > 0 {
            let name = id < s.backendNames.count ? s.backendNames[id] : "#\(id)"
            let address = id < s.backendAddresses.count ? s.backendAddresses[id] : "?"
            let hop = id < s.nextHops.count ? " next_hop \(s.nextHops[id])" : ""
            lines.append(
                "  backend \(name) (\(address)): packets \(load.packets) bytes \(load.bytes) new_flows \(load.newFlows)\(hop)")
        }
        return lines.joined(separator: "\n")
    }

    static func summary(_ d: DataplaneStatistics, _ io: IOCounters) -> String {
        "packets \(d.packets) forwarded \(d.forwarded) icmp \(d.icmpReplies) pass \(d.passed) dropped \(d.dropped)"
            + " sent \(io.sent) send_errors \(io.sendErrors) rx_errors \(io.receiveErrors) ring_empty \(io.bufferRingEmpty)"
            + " truncated \(io.truncated) kernel_drops \(io.kernelDrops) frames \(io.sentAsFrames)"
            + " next_hop_fallbacks \(io.nextHopFallbacks)"
            + " checksums_completed \(d.checksumsCompleted) checksums_not_completable \(d.checksumsNotCompletable)"
            + " tx_ring \(io.sentThroughTxRing) batches \(io.batches) turns \(io.turns)"
    }

    /// One JSON object on one line (keys in a fixed order), by the one JSON writer: a
    /// non-finite rate is `null`.
    public static func json(_ s: ForwarderStatistics) -> String {
        value(s).rendered()
    }

    /// The statistics as a JSON value (keys in a fixed order).
    public static func value(_ s: ForwarderStatistics) -> JSONValue {
        func dataplane(_ d: DataplaneStatistics) -> [(String, JSONValue)] {
            [
                ("packets", JSONValue(d.packets)), ("bytes", JSONValue(d.bytes)), ("forwarded", JSONValue(d.forwarded)),
                ("icmp_replies", JSONValue(d.icmpReplies)), ("passed", JSONValue(d.passed)),
                ("dropped", JSONValue(d.dropped)), ("reselected", JSONValue(d.reselected)),
                ("checksums_completed", JSONValue(d.checksumsCompleted)),
                ("checksums_not_completable", JSONValue(d.checksumsNotCompletable)),
                ("reasons", .object(DropReason.allCases.map { ("\($0)", JSONValue(d.count($0))) })),
            ]
        }
        func io(_ c: IOCounters) -> [(String, JSONValue)] {
            [
                ("received", JSONValue(c.received)), ("truncated", JSONValue(c.truncated)),
                ("kernel_drops", JSONValue(c.kernelDrops)), ("receive_errors", JSONValue(c.receiveErrors)),
                ("buffer_ring_empty", JSONValue(c.bufferRingEmpty)), ("receive_rearms", JSONValue(c.receiveRearms)),
                ("sent", JSONValue(c.sent)), ("sent_as_frames", JSONValue(c.sentAsFrames)),
                ("sent_through_tx_ring", JSONValue(c.sentThroughTxRing)),
                ("next_hop_fallbacks", JSONValue(c.nextHopFallbacks)), ("send_errors", JSONValue(c.sendErrors)),
                ("last_send_errno", JSONValue(c.lastSendErrno)), ("no_ipv6_socket", JSONValue(c.noIPv6Socket)),
                ("turns", JSONValue(c.turns)), ("batches", JSONValue(c.batches)),
                ("snapshots_installed", JSONValue(c.snapshotsInstalled)),
                ("filter_update_errors", JSONValue(c.filterUpdateErrors)),
            ]
        }
        let workers: [JSONValue] = s.workers.map { w in
            .object(
                [
                    ("worker", JSONValue(w.worker)), ("cpu", w.cpu.map { JSONValue($0) } ?? .null),
                    ("ring_mode", .string(w.ringMode)), ("filter", .string(w.filterMode)),
                ] + dataplane(w.dataplane) + io(w.io))
        }
        let total = s.totalDataplane
        let backends: [JSONValue] = total.backends.enumerated().map { id, load in
            var pairs: [(String, JSONValue)] = [
                ("id", JSONValue(id)), ("name", .string(id < s.backendNames.count ? s.backendNames[id] : "#\(id)")),
                ("address", .string(id < s.backendAddresses.count ? s.backendAddresses[id] : "")),
                ("packets", JSONValue(load.packets)), ("bytes", JSONValue(load.bytes)),
                ("new_flows", JSONValue(load.newFlows)),
            ]
            if id < s.nextHops.count { pairs.append(("next_hop", .string(s.nextHops[id]))) }
            return .object(pairs)
        }
        let vips: [JSONValue] = total.vips.enumerated().map { id, load in
            .object([
                ("id", JSONValue(id)), ("name", .string(id < s.vipNames.count ? s.vipNames[id] : "#\(id)")),
                ("packets", JSONValue(load.packets)), ("bytes", JSONValue(load.bytes)),
            ])
        }
        return .object([
            ("elapsed_s", .fixed(s.elapsedSeconds, digits: 3)), ("cpu_ns", JSONValue(s.cpuNanoseconds)),
            ("cpu_ns_per_packet", .fixed(s.cpuNanosecondsPerPacket, digits: 1)),
            ("total", .object(dataplane(total) + io(s.totalIO))), ("workers", .array(workers)),
            ("vips", .array(vips)), ("backends", .array(backends)), ("send_path", .string(s.sendPath)),
            ("connections", connections(s.totalConnections)),
        ])
    }

    static func connections(_ c: ConnectionTableStatistics) -> JSONValue {
        .object([
            ("inserts", JSONValue(c.inserts)), ("inserts_refused", JSONValue(c.insertsRefused)),
            ("expired", JSONValue(c.expired)), ("evicted_half_open", JSONValue(c.evictedHalfOpen)),
            ("evicted_datagram", JSONValue(c.evictedDatagram)), ("evicted_closing", JSONValue(c.evictedClosing)),
            ("evicted_fragment", JSONValue(c.evictedFragment)),
            ("evicted_established", JSONValue(c.evictedEstablished)),
        ])
    }

    /// Fixed precision for the text lines, by the JSON writer's rule; a non-finite value
    /// prints 0 here as before (and `null` in JSON).
    static func fixed(_ x: Double, _ digits: Int) -> String {
        x.isFinite ? JSONValue.number(x, digits: digits) : "0"
    }
}
