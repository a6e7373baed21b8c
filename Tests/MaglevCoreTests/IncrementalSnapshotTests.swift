// Incremental snapshots: per-VIP tables shared between snapshots (reused, never rebuilt, when
// their inputs are unchanged), stable VIP ids for per-VIP counters, per-VIP table sizes, and the
// lineage rule of `Dataplane.install`.

import Testing

@testable import MaglevCore

private typealias H = DataplaneHarness

@Suite struct IncrementalSnapshotTests {
    static let addresses = ["198.18.0.10", "198.18.0.11", "198.18.0.12", "198.18.0.13"]

    /// A TCP VIP on port 80 at `address` over backends `be-first ... be-(first+count-1)`.
    static func vip(_ name: String, _ address: String, _ count: Int, first: Int, tableSize: Int? = nil) -> VIPConfig {
        VIPConfig(
            name: name, address: FrameBuilder.address(address), proto: IPProtocol.tcp, port: 80,
            backends: H.backends(count, first: first), tableSize: tableSize)
    }

    static func config(_ vips: [VIPConfig], tracking: Bool = true, edit: (inout DataplaneConfig) -> Void = { _ in })
        -> DataplaneConfig
    {
        var c = DataplaneConfig(
            vips: vips, tableSize: 4099, hashSeed: 0x5EED, encapSourceIPv4: H.encapSource4,
            encapSourceIPv6: H.encapSource6, connectionTracking: tracking)
        edit(&c)
        return c
    }

    static let web = vip("web", addresses[0], 5, first: 0)
    static let api = vip("api", addresses[1], 5, first: 10)
    static let db = vip("db", addresses[2], 3, first: 20)

    // MARK: Shared tables

    @Test func anUnchangedVIPKeepsItsTableObjectAndAChangedOneGetsANewOne() throws {
        let s0 = try ForwardingSnapshot(config: Self.config([Self.web, Self.api, Self.db]))
        var api = Self.api
        api.backends.removeLast()
        let s1 = try ForwardingSnapshot(config: Self.config([Self.web, api, Self.db]), previous: s0)
        #expect(s1.vipTables[0] === s0.vipTables[0])
        #expect(s1.vipTables[1] !== s0.vipTables[1])
        #expect(s1.vipTables[2] === s0.vipTables[2])
        // The control-side table of a reused VIP is the same value (entries not copied).
        let t0 = try #require(s0.tables[0])
        let t1 = try #require(s1.tables[0])
        #expect(t0.entries.withUnsafeBufferPointer { $0.baseAddress } == t1.entries.withUnsafeBufferPointer { $0.baseAddress })
        #expect(s1.tables[1]?.backends.count == 4)

        // Reordered: tables follow their VIPs by name.
        let s2 = try ForwardingSnapshot(config: Self.config([Self.db, api, Self.web]), previous: s1)
        #expect(s2.vipTables[0] === s1.vipTables[2])
        #expect(s2.vipTables[1] === s1.vipTables[1])
        #expect(s2.vipTables[2] === s1.vipTables[0])
    }

    @Test func vipsWithEqualInputsShareOneTableBuiltOnce() throws {
        // Two VIPs over the same pool (as the catch-all config's IPv4 and IPv6 VIPs), one over
        // the same pool with another table size.
        let other = Self.vip("web-b", Self.addresses[1], 5, first: 0)
        let sized = Self.vip("web-c", Self.addresses[2], 5, first: 0, tableSize: 4093)
        let s0 = try ForwardingSnapshot(config: Self.config([Self.web, other, sized]))
        #expect(s0.vipTables[1] === s0.vipTables[0])
        #expect(s0.vipTables[2] !== s0.vipTables[0])
        // The same table as built alone.
        let alone = try ForwardingSnapshot(config: Self.config([other]))
        #expect(s0.tables[1]?.entries == alone.tables[0]?.entries)

        // One of them changes: it gets its own table, the other keeps the shared object.
        var changed = other
        changed.backends.removeLast()
        let s1 = try ForwardingSnapshot(config: Self.config([Self.web, changed, sized]), previous: s0)
        #expect(s1.vipTables[0] === s0.vipTables[0])
        #expect(s1.vipTables[1] !== s0.vipTables[0])
        #expect(s1.tables[1]?.backends.count == 4)
        // And back: equal to its neighbour's inputs again, it gets the same table (built anew:
        // only tables built in the same snapshot are shared).
        let s2 = try ForwardingSnapshot(config: Self.config([Self.web, other, sized]), previous: s1)
        #expect(s2.vipTables[0] === s0.vipTables[0])
        #expect(s2.tables[1]?.entries == s2.tables[0]?.entries)
        // Both changed in one reload: built once, shared.
        var web = Self.web
        web.backends.removeFirst()
        changed = other
        changed.backends.removeFirst()
        let s3 = try ForwardingSnapshot(config: Self.config([web, changed, sized]), previous: s2)
        #expect(s3.vipTables[1] === s3.vipTables[0])
        #expect(s3.vipTables[0] !== s2.vipTables[0])
    }

    @Test func everyInputOfATableRebuildsIt() throws {
        let s0 = try ForwardingSnapshot(config: Self.config([Self.web, Self.api]))
        func rebuilt(_ edit: (inout DataplaneConfig) -> Void) throws -> Bool {
            let s = try ForwardingSnapshot(config: Self.config([Self.web, Self.api], edit: edit), previous: s0)
            #expect(s.vipTables[1] === s0.vipTables[1] || s.vipTables[0] !== s0.vipTables[0])
            return s.vipTables[0] !== s0.vipTables[0]
        }
        #expect(try !rebuilt { _ in })
        #expect(try rebuilt { $0.vips[0].backends[1].weight = 2 })
        #expect(try rebuilt { $0.vips[0].backends[1].state = .draining })
        #expect(try rebuilt { $0.vips[0].backends.swapAt(0, 1) })
        #expect(try rebuilt { $0.vips[0].tableSize = 4093 })
        #expect(try rebuilt { $0.tableSize = 4093 })
        #expect(try rebuilt { $0.algorithm = .ring })
        #expect(try rebuilt { $0.tableOptions.seed = 9 })
        #expect(try rebuilt { $0.tableOptions.ringViews = 10 })
        // Not inputs of a table: addresses, ports, the flow hash seed.
        #expect(try !rebuilt { $0.vips[0].backends[1].address = FrameBuilder.address("198.19.9.9") })
        #expect(try !rebuilt { $0.vips[0].port = 8080 })
        #expect(try !rebuilt { $0.hashSeed = 1 })
        // A down backend owns no slots, as before: its table is rebuilt without it.
        #expect(try rebuilt { $0.vips[0].backends[1].state = .down })
    }

    @Test func aReusedTableSelectsWhatAFreshBuildSelects() throws {
        var api = Self.api
        api.backends.append(H.backend(30))
        let s0 = try ForwardingSnapshot(config: Self.config([Self.web, Self.api]))
        let s1 = try ForwardingSnapshot(config: Self.config([api, Self.web]), previous: s0)
        let fresh = try ForwardingSnapshot(config: Self.config([api, Self.web]))
        for n in UInt64(0)..<2000 {
            let h = n &* 0x9E37_79B9_7F4A_7C15
            for v in 0..<2 {
                #expect(
                    s1.backendID(vip: v, hash: h).map { s1.backendNames[$0] }
                        == fresh.backendID(vip: v, hash: h).map { fresh.backendNames[$0] })
            }
        }
    }

    @Test func aFlowKeepsItsBackendWhenAnUnrelatedVIPChanges() throws {
        // Without connection tracking every packet is routed by the table alone: the flow's
        // backend after the reload is the table's doing.
        let s0 = try ForwardingSnapshot(config: Self.config([Self.web, Self.api], tracking: false))
        let dp = Dataplane(snapshot: s0)
        let flows = 0..<300
        let before = flows.map { H.run(dp, H.tcp($0, flags: TCPFlags.syn, vip: Self.addresses[0]).bytes).verdict }
        var api = Self.api
        api.backends = H.backends(2, first: 10)
        let s1 = try ForwardingSnapshot(config: Self.config([Self.db, api, Self.web], tracking: false), previous: s0)
        dp.install(s1)
        let after = flows.map { H.run(dp, H.tcp($0, flags: TCPFlags.ack, vip: Self.addresses[0]).bytes).verdict }
        #expect(before.allSatisfy { $0.action == .forward })
        #expect(before.map(\.backend) == after.map(\.backend))
        // The verdict names the VIP by its stable id, wherever it now sits in the config.
        #expect(after.allSatisfy { $0.vip == 0 })
        #expect(s1.vipIDs == [2, 1, 0])
    }

    // MARK: Stable VIP ids

    @Test func perVIPCountersFollowTheirVIPAcrossReorderAddAndRemove() throws {
        let s0 = try ForwardingSnapshot(config: Self.config([Self.web, Self.api]))
        #expect(s0.vipNames == ["web", "api"])
        #expect(s0.vipPresent == [true, true])
        let dp = Dataplane(snapshot: s0)
        func send(_ count: Int, to address: String, from first: Int, expecting action: Verdict.Action = .forward) {
            for i in first..<(first + count) {
                #expect(H.run(dp, H.tcp(i, flags: TCPFlags.syn, vip: address).bytes).verdict.action == action)
            }
        }
        send(3, to: Self.addresses[0], from: 0)  // web
        send(5, to: Self.addresses[1], from: 100)  // api

        // web removed, db added before api: api keeps id 1, db gets id 2, web's id stays taken.
        let s1 = try ForwardingSnapshot(config: Self.config([Self.db, Self.api]), previous: s0)
        #expect(s1.vipNames == ["web", "api", "db"])
        #expect(s1.vipPresent == [false, true, true])
        #expect(s1.vipIDs == [2, 1])
        dp.install(s1)
        send(2, to: Self.addresses[1], from: 200)  // api
        send(4, to: Self.addresses[2], from: 300)  // db
        send(1, to: Self.addresses[0], from: 400, expecting: .pass)  // web's address: no VIP now
        var s = dp.statistics
        #expect(s.vipNames == ["web", "api", "db"])
        #expect(s.vips.map(\.packets) == [3, 7, 4])
        #expect(s.vip(named: "api")?.packets == 7)
        #expect(s.count(.unknownVIP) == 1)

        // web back, now last: its old id and counts again.
        let s2 = try ForwardingSnapshot(config: Self.config([Self.api, Self.db, Self.web]), previous: s1)
        #expect(s2.vipIDs == [1, 2, 0])
        #expect(s2.vipPresent == [true, true, true])
        dp.install(s2)
        send(6, to: Self.addresses[0], from: 500)
        s = dp.statistics
        #expect(s.vips.map(\.packets) == [9, 7, 4])
        #expect(s.vip(named: "web")?.packets == 9)
        #expect(s.vip(named: "gone") == nil)
    }

    // MARK: Per-VIP table sizes

    @Test func perVIPTableSizesAreHonoured() throws {
        let small = Self.vip("small", Self.addresses[0], 3, first: 0, tableSize: 7)
        let big = Self.vip("big", Self.addresses[1], 3, first: 10, tableSize: 65537)
        let plain = Self.vip("plain", Self.addresses[2], 3, first: 20)
        let s = try ForwardingSnapshot(config: Self.config([small, big, plain]))
        #expect(s.tables.map { $0?.size } == [7, 65537, 4099])
        #expect(s.vipTables.map(\.slotCount) == [7, 65537, 4099])
        #expect(s.vipTables[0].tableBytes == 7 * 8)
        // Every slot of the small table is reachable through the per-packet path.
        var seen: Set<Int> = []
        for n in UInt64(0)..<5000 {
            if let id = s.backendID(vip: 0, hash: n &* 0x9E37_79B9_7F4A_7C15) { seen.insert(id) }
        }
        #expect(seen == [0, 1, 2])

        var bad = Self.config([small, plain])
        bad.vips[0].tableSize = 9
        #expect(throws: SnapshotError.table(vip: "small", .sizeNotPrime(9))) { try ForwardingSnapshot(config: bad) }
        bad.vips[0].tableSize = 2
        #expect(throws: SnapshotError.table(vip: "small", .sizeTooSmall(size: 2, backends: 3))) {
            try ForwardingSnapshot(config: bad)
        }
    }

    // MARK: Lineage

    @Test func descendantsAreLaterGenerationsOfTheSameLineage() throws {
        let a0 = try ForwardingSnapshot(config: Self.config([Self.web]))
        let a1 = try ForwardingSnapshot(config: Self.config([Self.web, Self.api]), previous: a0)
        let a2 = try ForwardingSnapshot(config: Self.config([Self.api]), previous: a1)
        let b0 = try ForwardingSnapshot(config: Self.config([Self.web]))
        #expect(a0.generation == 0 && a1.generation == 1 && a2.generation == 2)
        #expect(a1.lineage == a0.lineage && a2.lineage == a0.lineage)
        #expect(b0.lineage != a0.lineage)
        #expect(a1.descends(from: a0) && a2.descends(from: a0) && a2.descends(from: a1))
        #expect(!a0.descends(from: a1) && !a1.descends(from: a1) && !b0.descends(from: a0) && !a1.descends(from: b0))

        // Skipping generations is fine (a worker only sees the latest publication); the
        // installed snapshot again is a no-op.
        let dp = Dataplane(snapshot: a0)
        dp.install(a2)
        dp.install(a2)
        #expect(dp.snapshot === a2)
    }

    @Test func installRefusesASnapshotOfAnotherLineage() async {
        await #expect(processExitsWith: .failure) {
            let config = IncrementalSnapshotTests.config([IncrementalSnapshotTests.web])
            let dp = Dataplane(snapshot: try! ForwardingSnapshot(config: config))
            dp.install(try! ForwardingSnapshot(config: config))
        }
    }

    @Test func installRefusesAnOlderGeneration() async {
        await #expect(processExitsWith: .failure) {
            let config = IncrementalSnapshotTests.config([IncrementalSnapshotTests.web])
            let s0 = try! ForwardingSnapshot(config: config)
            let s1 = try! ForwardingSnapshot(config: config, previous: s0)
            let dp = Dataplane(snapshot: s1)
            dp.install(s0)
        }
    }
}
