import Testing

@testable import MaglevCore

/// The paper's §5.3 comparison at N = 1000, M = 65537, and basics of the comparison algorithms.
@Suite struct LookupTableComparisonTests {
    static let thousand = (0..<1000).map { BackendSpec(name: "backend-\($0)") }

    @Test func balanceAtPaperScale() throws {
        let maglev = try LookupTableBuilder.build(.maglev, backends: Self.thousand, size: 65537).maxOverMean()
        let ring = try LookupTableBuilder.build(.ring, backends: Self.thousand, size: 65537).maxOverMean()
        let rendezvous = try LookupTableBuilder.build(.rendezvous, backends: Self.thousand, size: 65537).maxOverMean()
        // FACTS: Maglev ~1.007, ring (1000 views) ~1.297, rendezvous ~1.495.
        #expect(maglev <= 1.01)
        #expect(ring > 1.2 && ring < 1.7, "ring \(ring)")
        #expect(rendezvous > 1.2 && rendezvous < 1.7, "rendezvous \(rendezvous)")
    }

    @Test(arguments: [TableAlgorithm.ring, .rendezvous, .modulo])
    func everySlotOwnedAndDeterministic(algorithm: TableAlgorithm) throws {
        let backends = (0..<20).map { BackendSpec(name: "b\($0)") }
        let a = try LookupTableBuilder.build(algorithm, backends: backends, size: 4093)
        let b = try LookupTableBuilder.build(algorithm, backends: backends.reversed(), size: 4093)
        #expect(a.entries == b.entries)
        #expect(a.entries.allSatisfy { $0 >= 0 && $0 < 20 })
        #expect(a.slotCounts().allSatisfy { $0 > 0 })
        let reseeded = try LookupTableBuilder.build(algorithm, backends: backends, size: 4093, options: .init(seed: 5))
        #expect(reseeded.entries != a.entries)
    }

    /// Weighted shares come out near the ideal for every algorithm; zero weight owns nothing.
    @Test(arguments: TableAlgorithm.allCases)
    func weightedShares(algorithm: TableAlgorithm) throws {
        let backends = [
            BackendSpec(name: "a", weight: 1), BackendSpec(name: "b", weight: 3),
            BackendSpec(name: "c", weight: 0), BackendSpec(name: "d", weight: 4),
        ]
        let counts = try LookupTableBuilder.build(algorithm, backends: backends, size: 65537, options: .init(ringViews: 400))
            .slotCounts()
        #expect(counts[2] == 0)
        for (i, share) in [(0, 1.0 / 8), (1, 3.0 / 8), (3, 4.0 / 8)] {
            let got = Double(counts[i]) / 65537
            #expect(abs(got - share) < 0.03, "\(algorithm) backend \(i): \(got), want \(share)")
        }
    }

    @Test func ringPointCounts() {
        let backends = [BackendSpec(name: "a", weight: 2), BackendSpec(name: "b", weight: 6), BackendSpec(name: "c", weight: 0)]
        #expect(RingTable.pointCounts(for: backends, ringViews: 100) == [100, 300, 0])
        #expect(RingTable.pointCounts(for: backends, ringViews: 0) == [1, 3, 0])
        // Extreme ratios are capped at 2^24 points in total.
        let extreme = [BackendSpec(name: "a", weight: 1), BackendSpec(name: "b", weight: 4_000_000_000)]
        let capped = RingTable.pointCounts(for: extreme, ringViews: 1000)
        #expect(capped[0] == 1 && capped[1] <= 1 << 24)
    }

    /// Disruption ordering of the paper: Maglev and rendezvous move few slots, modulo nearly all.
    @Test func disruptionOrdering() throws {
        let backends = Array(Self.thousand.prefix(100))
        func study(_ algorithm: TableAlgorithm) throws -> RemovalStudy {
            try RemovalStudy.run(algorithm, backends: backends, size: 16381, options: .init(ringViews: 100), removing: 1, trials: 3, seed: 3)
        }
        let rendezvous = try study(.rendezvous)
        #expect(rendezvous.changedExtra == 0)  // rendezvous is perfectly consistent
        #expect(try study(.ring).changedExtra == 0)  // so is the ring
        #expect(try study(.maglev).changedExtra < 0.02)
        #expect(try study(.modulo).changedAll > 0.9)
    }
}
