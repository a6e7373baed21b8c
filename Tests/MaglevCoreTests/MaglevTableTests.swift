import Testing

@testable import MaglevCore

/// Known answers and properties of Maglev's table (FACTS §1).
@Suite struct MaglevTableTests {
    static func backends(_ count: Int, prefix: String = "backend-") -> [BackendSpec] {
        (0..<count).map { BackendSpec(name: "\(prefix)\($0)") }
    }

    static func maglev(_ backends: [BackendSpec], _ size: Int) throws -> LookupTable {
        try LookupTableBuilder.build(.maglev, backends: backends, size: size)
    }

    /// Cilium-style run-length form: "A3B1A2" for [0,0,0,1,0,0] (backend index as a letter).
    static func runLength(_ entries: [Int32]) -> String {
        var out = ""
        var i = 0
        while i < entries.count {
            var j = i
            while j < entries.count && entries[j] == entries[i] { j += 1 }
            out += String(UnicodeScalar(UInt8(65 + entries[i]))) + String(j - i)
            i = j
        }
        return out
    }

    // MARK: Known answers

    @Test func paperTable1() {
        let full = MaglevTable.populate(offsets: [3, 0, 3], skips: [4, 2, 1], weights: nil, size: 7)
        #expect(full == [1, 0, 1, 0, 2, 2, 0])
        // Remove B1: the remaining B0 and B2 fill as indices 0 and 1; map back to 0 and 2.
        let after = MaglevTable.populate(offsets: [3, 3], skips: [4, 1], weights: nil, size: 7)
            .map { $0 == 1 ? Int32(2) : $0 }
        #expect(after == [0, 0, 0, 0, 2, 2, 2])
        // Besides B1's own slots (0 and 2), only slot 6 changes owner.
        let moved = (0..<7).filter { full[$0] != after[$0] && full[$0] != 1 }
        #expect(moved == [6])
    }

    @Test func envoyHostVector() throws {
        let hosts = (90...95).map { BackendSpec(name: "127.0.0.1:\($0)") }
        let table = try Self.maglev(hosts, 7)
        #expect(table.entries == [2, 4, 0, 1, 5, 0, 3])
        #expect(table.backends.map(\.name) == hosts.map(\.name))
    }

    @Test func envoyShortKeyVector() throws {
        let table = try Self.maglev((90...95).map { BackendSpec(name: "\($0)") }, 7)
        #expect(table.entries == [2, 5, 0, 3, 4, 1, 0])
    }

    @Test func envoyWeightsOneToTwo() throws {
        let table = try Self.maglev([BackendSpec(name: "a", weight: 1), BackendSpec(name: "b", weight: 2)], 65537)
        #expect(table.slotCounts() == [21846, 43691])
    }

    @Test func permutationIsEnvoys() {
        let p = MaglevTable.permutation(name: "127.0.0.1:90", size: 7)
        #expect(p.offset == Int(0xB6E9_805B_F489_0ED5 % 7 as UInt64))
        #expect(p.skip == Int(0x151E_AA9A_12EB_FFF5 % 6 as UInt64) + 1)
    }

    /// Pinned output for small cases, so any change to hashing or fill order shows up. Both
    /// strings were reproduced by an independent Python model of Envoy's rule (`xxhash` 4.1.0).
    @Test func goldenTable() throws {
        let table = try Self.maglev(Self.backends(3), 31)
        #expect(Self.runLength(table.entries) == "B1C1A2C1B3A1C1B2C1A1C1A2C2A2B1A1C1B2C2B1A2")
        let weighted = try Self.maglev(
            [BackendSpec(name: "a", weight: 3), BackendSpec(name: "b", weight: 1), BackendSpec(name: "c", weight: 0)], 13)
        #expect(Self.runLength(weighted.entries) == "A4B2A2B2A3")
    }

    // MARK: Properties

    @Test(arguments: [(1, 7), (2, 7), (7, 7), (3, 101), (10, 65537), (13, 4093), (1000, 65537)])
    func unweightedBalance(n: Int, size: Int) throws {
        let counts = try Self.maglev(Self.backends(n), size).slotCounts()
        #expect(counts.reduce(0, +) == size)
        #expect(counts.allSatisfy { $0 == size / n || $0 == (size + n - 1) / n }, "\(counts.min()!)...\(counts.max()!)")
        // The first M mod N backends in fill order take the extra slot.
        #expect(counts.filter { $0 > size / n }.count == size % n)
    }

    @Test func maxOverMeanAtPaperScale() throws {
        let table = try Self.maglev(Self.backends(1000), 65537)
        let ratio = table.maxOverMean()
        #expect(ratio > 1.006 && ratio < 1.008)  // 66 / 65.537
    }

    /// Envoy's rule: each backend's share stays within about one turn of its ideal share.
    @Test(arguments: [[1, 2, 3, 5, 8], [1, 1, 10], [100, 1, 37], [7, 0, 3], [4_000_000_000, 1]] as [[UInt32]])
    func weightedShares(weights: [UInt32]) throws {
        let size = 65537
        let backends = weights.enumerated().map { BackendSpec(name: "w\($0.offset)", weight: $0.element) }
        let counts = try Self.maglev(backends, size).slotCounts()
        let total = Double(weights.reduce(0) { $0 + UInt64($1) })
        #expect(counts.reduce(0, +) == size)
        for (i, w) in weights.enumerated() {
            let ideal = Double(size) * Double(w) / total
            #expect(abs(Double(counts[i]) - ideal) <= 2, "weight \(w): \(counts[i]) slots, ideal \(ideal)")
            if w == 0 { #expect(counts[i] == 0) }
        }
    }

    @Test func removingOneBackendMovesLittle() throws {
        // Within the paper's guideline M > 100 N (N = 50 at M = 4093 moves ~4%, at 16381 ~3%).
        for (n, size) in [(10, 65537), (100, 65537), (50, 65537), (20, 16381)] {
            let full = try Self.maglev(Self.backends(n), size)
            for victim in [0, n / 2, n - 1] {
                var rest = Self.backends(n)
                rest.remove(at: victim)
                let diff = TableDiff(old: full, new: try Self.maglev(rest, size))
                #expect(diff.changedAll <= 1.0 / Double(n) + 0.01, "n \(n) remove \(victim): \(diff.changedAll)")
                #expect(diff.changedAll >= diff.changedExtra)
                #expect(diff.changedAll >= Double(size / n) / Double(size))  // the victim's own slots
            }
        }
    }

    @Test func orderOfBackendsDoesNotMatter() throws {
        let backends = Self.backends(37) + [BackendSpec(name: "heavy", weight: 5), BackendSpec(name: "off", weight: 0)]
        let reference = try Self.maglev(backends, 4093)
        var rng = SplitMix64(seed: 9)
        for _ in 0..<3 {
            var shuffled = backends
            shuffled.shuffle(using: &rng)
            let table = try Self.maglev(shuffled, 4093)
            #expect(table.entries == reference.entries)
            #expect(table.backends == reference.backends)
        }
    }

    @Test func fillOrderIsByteWise() throws {
        // Swift's String order would put "é" (U+00E9) and "e\u{301}" together; bytes do not.
        let names = ["b", "a", "\u{E9}", "Z", "e\u{301}"]
        let table = try Self.maglev(names.map { BackendSpec(name: $0) }, 11)
        #expect(table.backends.map(\.name) == ["Z", "a", "b", "e\u{301}", "\u{E9}"])
    }

    // MARK: Errors

    @Test func validationErrors() {
        let two = Self.backends(2)
        #expect(throws: TableError.sizeNotPrime(65536)) { try Self.maglev(two, 65536) }
        #expect(throws: TableError.sizeNotPrime(1)) { try Self.maglev(two, 1) }
        #expect(throws: TableError.sizeTooSmall(size: 3, backends: 5)) { try Self.maglev(Self.backends(5), 3) }
        #expect(throws: TableError.sizeTooLarge(1 << 27)) { try Self.maglev(two, 1 << 27) }
        #expect(throws: TableError.noBackends) { try Self.maglev([], 7) }
        #expect(throws: TableError.duplicateBackend("x")) {
            try Self.maglev([BackendSpec(name: "x"), BackendSpec(name: "y"), BackendSpec(name: "x", weight: 2)], 7)
        }
        #expect(throws: TableError.allWeightsZero) {
            try Self.maglev([BackendSpec(name: "x", weight: 0), BackendSpec(name: "y", weight: 0)], 7)
        }
        #expect(throws: TableError.emptyBackendName) { try Self.maglev([BackendSpec(name: "")], 7) }
    }

    @Test func errorDescriptionsAreOneLineAndHelpful() {
        let errors: [TableError] = [
            .sizeNotPrime(65536), .sizeTooSmall(size: 7, backends: 10), .sizeTooLarge(1 << 27), .noBackends,
            .duplicateBackend("x"), .allWeightsZero, .emptyBackendName,
        ]
        for error in errors {
            #expect(!error.description.contains("\n"))
            #expect(error.description.count > 20)
        }
        #expect(TableError.sizeNotPrime(65536).description.contains("65537"))
        #expect(TableError.sizeTooSmall(size: 7, backends: 10).description.contains("1009"))
    }
}

@Suite struct MaglevFillOrderTests {
    /// The ASCII fast path (String's `<`) must agree with byte order on awkward ASCII names.
    @Test func asciiFastPathIsByteOrder() {
        let names = ["b", "B", "a-1", "a", "a_", "a~", "10.0.0.1:80", "10.0.0.10:80", "10.0.0.2:80", "", " x", "A"]
        let fast = LookupTableBuilder.sortedByName(names.map { BackendSpec(name: $0) }).map(\.name)
        let bytes = names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        #expect(fast == bytes)
    }
}
