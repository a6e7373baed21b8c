import Testing

@testable import MaglevCore

/// The paper's Fig. 12 at M = 65537, N = 1000 (FACTS §1 reproductions): removing k backends.
@Suite struct MaglevDisruptionTests {
    static let backends = (0..<1000).map { BackendSpec(name: "backend-\($0)") }

    @Test func removeOneOfAThousand() throws {
        let study = try RemovalStudy.run(.maglev, backends: Self.backends, size: 65537, removing: 1, trials: 8, seed: 7)
        // FACTS: extra 0.58%, all 0.68%.
        #expect(abs(study.changedExtra - 0.0058) < 0.0015, "extra \(study.changedExtra)")
        #expect(abs(study.changedAll - 0.0068) < 0.0015, "all \(study.changedAll)")
        // "all" = "extra" + the removed backend's own ~65.5 slots.
        #expect(abs(study.changedAll - study.changedExtra - 65.5 / 65537) < 0.0000_2)
    }

    @Test func removeTenOfAThousand() throws {
        let study = try RemovalStudy.run(.maglev, backends: Self.backends, size: 65537, removing: 10, trials: 8, seed: 7)
        // FACTS: extra 2.40%, all 3.40%.
        #expect(abs(study.changedExtra - 0.0240) < 0.0015, "extra \(study.changedExtra)")
        #expect(abs(study.changedAll - 0.0340) < 0.0015, "all \(study.changedAll)")
    }

    @Test func sameSeedSameResult() throws {
        let small = Array(Self.backends.prefix(50))
        let a = try RemovalStudy.run(.maglev, backends: small, size: 4093, removing: 3, trials: 4, seed: 1)
        let b = try RemovalStudy.run(.maglev, backends: small, size: 4093, removing: 3, trials: 4, seed: 1)
        let c = try RemovalStudy.run(.maglev, backends: small, size: 4093, removing: 3, trials: 4, seed: 2)
        #expect(a == b)
        #expect(a != c)
    }

    @Test func diffComparesByName() throws {
        let names = ["a", "b", "c", "d"].map { BackendSpec(name: $0) }
        let full = try LookupTableBuilder.build(.maglev, backends: names, size: 101)
        #expect(TableDiff(old: full, new: full) == TableDiff(old: full, new: full))
        #expect(TableDiff(old: full, new: full).changedAll == 0)
        // Dropping "a" shifts every index by one; a diff by index would report ~all slots.
        let withoutA = try LookupTableBuilder.build(.maglev, backends: Array(names.dropFirst()), size: 101)
        let diff = TableDiff(old: full, new: withoutA)
        let aSlots = Double(full.slotCounts()[0]) / 101
        #expect(diff.changedAll - diff.changedExtra == aSlots)
        #expect(diff.changedAll < 0.5)
        // Draining "b" to weight 0 keeps it listed, but its slots count as not "extra".
        var drained = names
        drained[1].weight = 0
        let drainDiff = TableDiff(old: full, new: try LookupTableBuilder.build(.maglev, backends: drained, size: 101))
        #expect(abs(drainDiff.changedAll - drainDiff.changedExtra - Double(full.slotCounts()[1]) / 101) < 1e-12)
    }
}
