import MaglevControl
import MaglevCore
import MaglevLinux

/// The in-memory benchmarks behind `maglev bench`.
struct DataplaneBench {
    /// Packets per batch, as one io_uring completion drain would hand a worker.
    static let batchSize = 64
    let flows: Int
    let connections: Int
    let backends: Int
    let ipv6Share: Double
    let payload: Int
    let seconds: Double
    let hugePages: Bool
    /// Why allocations cannot be counted in this process (AllocationCounter), or nil.
    var allocationsNotCounted: String? = nil

    var memory: TableMemory {
        hugePages ? TableMemory(allocate: HugePageMemory.allocate, deallocate: HugePageMemory.deallocate, zeroFilled: true) : .heap
    }

    struct Results {
        var hitPackets = 0
        var hitSeconds = 0.0
        var missPackets = 0
        var missSeconds = 0.0
        var tableBuildMs = 0.0
        var tableBuildLargeMs = 0.0
        var allocations: UInt64 = 0
        /// Why allocations were not counted (the counter library is not preloaded), or nil.
        var allocationsNotCounted: String?
        var bytesPerEntry = 0
        var connectionCapacity = 0
        var flows = 0
        var backends = 0
        var hugePages = false
        var refusedInserts: UInt64 = 0

        var hitMpps: Double { Double(hitPackets) / hitSeconds / 1e6 }
        var missMpps: Double { Double(missPackets) / missSeconds / 1e6 }
        var allocationsPerPacket: Double? {
            allocationsNotCounted == nil ? Double(allocations) / Double(max(1, hitPackets + missPackets)) : nil
        }

        var json: JSONValue {
            .object([
                ("dataplane_hit_mpps", .fixed(hitMpps, digits: 3)),
                ("dataplane_hit_ns_per_packet", .fixed(1000 / hitMpps, digits: 1)),
                ("dataplane_miss_mpps", .fixed(missMpps, digits: 3)),
                ("dataplane_miss_ns_per_packet", .fixed(1000 / missMpps, digits: 1)),
                ("table_build_ms", .fixed(tableBuildMs, digits: 3)),
                ("table_build_large_ms", .fixed(tableBuildLargeMs, digits: 3)),
                ("conntrack_bytes_per_entry", JSONValue(bytesPerEntry)),
                ("conntrack_capacity", JSONValue(connectionCapacity)),
                ("allocations_per_packet", allocationsPerPacket.map { JSONValue.fixed($0, digits: 6) } ?? .null),
                ("conntrack_refused_inserts", JSONValue(refusedInserts)),
                ("flows", JSONValue(flows)),
                ("backends", JSONValue(backends)),
                ("huge_pages", .bool(hugePages)),
                ("build", .string(DataplaneBench.buildKind)),
            ] + (allocationsNotCounted.map { [("allocations_not_counted", JSONValue.string($0))] } ?? []))
        }

        var text: String {
            func f(_ v: Double, _ d: Int) -> String { JSONValue.number(v, digits: d) }
            var lines = [
                "maglev bench (\(DataplaneBench.buildKind) build, one thread, in memory)",
                "  established flows  \(f(hitMpps, 2)) Mpps  \(f(1000 / hitMpps, 1)) ns/packet  (\(flows) flows, table \(connectionCapacity) entries\(hugePages ? ", huge pages" : ""))",
                "  new flows          \(f(missMpps, 2)) Mpps  \(f(1000 / missMpps, 1)) ns/packet",
                "  table build        \(f(tableBuildMs, 2)) ms at M=65537, \(f(tableBuildLargeMs, 2)) ms at M=655373 (N=1000)",
                "  connection entry   \(bytesPerEntry) bytes",
                "  allocations        "
                    + (allocationsPerPacket.map { "\(f($0, 6)) per packet" } ?? "not counted: \(allocationsNotCounted ?? "")"),
            ]
            if DataplaneBench.buildKind == "debug" {
                lines.append("  note: debug build; run `swift build -c release` and .build/release/maglev bench for real figures")
            }
            return lines.joined(separator: "\n")
        }
    }

    static var buildKind: String {
        #if DEBUG
            "debug"
        #else
            "release"
        #endif
    }

    func run(progress: Bool) throws -> Results {
        var results = Results()
        results.flows = flows
        results.backends = backends
        results.hugePages = hugePages
        results.bytesPerEntry = ConnectionTable.bytesPerEntry
        results.allocationsNotCounted = allocationsNotCounted

        let vip4 = IPAddress("198.19.0.10")!
        let vip6 = IPAddress("2001:db8:1::10")!
        var pool: [BackendConfig] = []
        for i in 0..<backends {
            pool.append(BackendConfig(name: "backend-\(i)", address: IPAddress(ipv4: 0xC612_8000 | UInt32(i))))
        }
        let config = DataplaneConfig(
            vips: [
                VIPConfig(name: "web4", address: vip4, proto: IPProtocol.tcp, port: 80, backends: pool),
                VIPConfig(name: "web6", address: vip6, proto: IPProtocol.tcp, port: 80, backends: pool),
            ],
            encapSourceIPv4: IPAddress("198.18.0.2")!)
        let snapshot = try ForwardingSnapshot(config: config)
        let clock = ContinuousClock()

        let batch = UnsafeMutableBufferPointer<PacketSlot>.allocate(capacity: DataplaneBench.batchSize)
        defer { batch.deallocate() }

        // Established flows: one warm-up pass records them, then passes until time is up.
        do {
            let frames = BenchFrames(ipv6Share: ipv6Share, payload: payload, flags: TCPFlags.ack, vip4: vip4, vip6: vip6)
            defer { frames.deallocate() }
            let dataplane = Dataplane(snapshot: snapshot, connectionCapacity: connections, memory: memory)
            results.connectionCapacity = dataplane.connections.capacity
            var now: UInt64 = 1_000_000_000
            _ = pass(dataplane, frames, batch: batch, now: now, flows: flows, firstFlow: 0)
            let before = AllocationCounter.count()
            let start = clock.now
            var packets = 0
            var forwarded = 0
            while true {
                now &+= 1_000_000
                forwarded += pass(dataplane, frames, batch: batch, now: now, flows: flows, firstFlow: 0)
                packets += flows
                if (clock.now - start).seconds >= seconds { break }
            }
            results.hitSeconds = (clock.now - start).seconds
            results.allocations += AllocationCounter.count() - before
            results.hitPackets = packets
            results.refusedInserts = dataplane.connections.statistics.insertsRefused
            guard forwarded == packets else { throw CLIError("bench: only \(forwarded) of \(packets) packets were forwarded") }
        }

        // New flows: every packet belongs to a flow never seen before.
        do {
            let frames = BenchFrames(ipv6Share: ipv6Share, payload: payload, flags: TCPFlags.syn, vip4: vip4, vip6: vip6)
            defer { frames.deallocate() }
            let dataplane = Dataplane(snapshot: snapshot, connectionCapacity: connections, memory: memory)
            var now: UInt64 = 1_000_000_000
            var nextFlow: UInt32 = 0
            let before = AllocationCounter.count()
            let start = clock.now
            var packets = 0
            var forwarded = 0
            while true {
                now &+= 1_000_000
                forwarded += pass(dataplane, frames, batch: batch, now: now, flows: 65_536, firstFlow: nextFlow)
                nextFlow &+= 65_536
                packets += 65_536
                if (clock.now - start).seconds >= seconds { break }
            }
            results.missSeconds = (clock.now - start).seconds
            results.allocations += AllocationCounter.count() - before
            results.missPackets = packets
            guard forwarded == packets else { throw CLIError("bench: only \(forwarded) of \(packets) packets were forwarded") }
        }

        // Table builds: the median of several.
        results.tableBuildMs = try medianBuildMs(size: 65537, runs: 9, clock: clock)
        results.tableBuildLargeMs = try medianBuildMs(size: 655_373, runs: 5, clock: clock)
        return results
    }

    /// Sends one packet of each flow `firstFlow ..< firstFlow + flows` (wrapping), in batches
    /// of `batchSize` through the receive-buffer ring, as a worker would; returns how many were
    /// forwarded.
    func pass(
        _ dataplane: Dataplane, _ frames: BenchFrames, batch: UnsafeMutableBufferPointer<PacketSlot>, now: UInt64,
        flows: Int, firstFlow: UInt32
    ) -> Int {
        var forwarded = 0
        BenchFrames.ethernetIPv4.withUnsafeBytes { eth4 in
            BenchFrames.ethernetIPv6.withUnsafeBytes { eth6 in
                var sent = 0
                var ring = 0
                while sent < flows {
                    let n = min(batch.count, flows - sent)
                    for j in 0..<n {
                        frames.stamp(ring, flow: firstFlow &+ UInt32(truncatingIfNeeded: sent + j), eth4: eth4.baseAddress!, eth6: eth6.baseAddress!)
                        batch[j] = PacketSlot(base: frames.frame(ring), offset: BenchFrames.headroom, length: frames.lengths[ring])
                        ring = ring + 1 == BenchFrames.ringSize ? 0 : ring + 1
                    }
                    let slots = UnsafeMutableBufferPointer(rebasing: batch[0..<n])
                    dataplane.process(batch: slots, linkType: .ethernet, now: now)
                    for j in 0..<n where slots[j].verdict.action == .forward { forwarded &+= 1 }
                    sent += n
                }
            }
        }
        return forwarded
    }

    func medianBuildMs(size: Int, runs: Int, clock: ContinuousClock) throws -> Double {
        let specs = (0..<1000).map { BackendSpec(name: "backend-\($0)") }
        var times: [Double] = []
        for _ in 0..<runs {
            let start = clock.now
            let table = try LookupTableBuilder.build(.maglev, backends: specs, size: size)
            times.append((clock.now - start).seconds * 1000)
            precondition(table.entries.count == size)
        }
        return times.sorted()[runs / 2]
    }
}

extension Duration {
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
