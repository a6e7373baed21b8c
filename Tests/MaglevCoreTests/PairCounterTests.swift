import Testing

@testable import MaglevCore

/// Per (VIP, backend) counters: a backend shared by two VIPs has its packets split by VIP,
/// the pairs sum to the per-backend and per-VIP totals, survive a reload that adds a backend
/// (the matrix grows), and are off (counted as such) past `CounterBlock.maxPairs`.
@Suite struct PairCounterTests {
    typealias H = DataplaneHarness
    typealias T = IncrementalSnapshotTests

    @Test func pairsSplitASharedBackendByVIP() throws {
        // The same three backends serve both VIPs.
        let a = T.vip("a", T.addresses[0], 3, first: 0)
        let b = T.vip("b", T.addresses[1], 3, first: 0)
        let s0 = try ForwardingSnapshot(config: T.config([a, b]))
        let dp = Dataplane(snapshot: s0)
        for i in 0..<40 { _ = H.run(dp, H.tcp(i, flags: TCPFlags.syn, vip: T.addresses[0]).bytes) }
        for i in 100..<125 { _ = H.run(dp, H.tcp(i, flags: TCPFlags.syn, vip: T.addresses[1]).bytes) }
        var s = dp.statistics
        #expect(s.pairsCounted)
        #expect(s.pairs.filter { $0.vip == 0 }.reduce(0) { $0 + $1.load.packets } == 40)
        #expect(s.pairs.filter { $0.vip == 1 }.reduce(0) { $0 + $1.load.packets } == 25)
        for backend in 0..<3 {
            let split = s.pairs.filter { $0.backend == backend }.reduce(0) { $0 + $1.load.packets }
            #expect(split == s.backends[backend].packets, "backend \(backend)")
        }
        #expect(s.pairs.count >= 4, "the flows spread over both VIPs' backends")

        // A reload adds a backend to VIP b: the matrix grows and keeps the counts.
        var b2 = b
        b2.backends.append(H.backend(7))
        let s1 = try ForwardingSnapshot(config: T.config([a, b2]), previous: s0)
        dp.install(s1)
        for i in 200..<230 { _ = H.run(dp, H.tcp(i, flags: TCPFlags.syn, vip: T.addresses[1]).bytes) }
        s = dp.statistics
        #expect(s.pairs.filter { $0.vip == 0 }.reduce(0) { $0 + $1.load.packets } == 40)
        #expect(s.pairs.filter { $0.vip == 1 }.reduce(0) { $0 + $1.load.packets } == 55)
        #expect(s.pairs.allSatisfy { $0.vip != 0 || $0.backend != 3 }, "VIP a never used the new backend")
    }

    @Test func pairsAreOffPastTheLimit() {
        let block = CounterBlock(vips: 2048, backends: 1024)
        defer { block.deallocate() }
        #expect(block.pairStride == 0)
        block.pair(5, 7, bytes: 100)  // a no-op, not a write out of bounds
        let s = block.statistics(vipNames: (0..<2048).map { "v\($0)" }, backends: 1024)
        #expect(!s.pairsCounted)
        #expect(s.pairs.isEmpty)
    }
}
