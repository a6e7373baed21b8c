/// How much of a table changed between two builds of the same size. Owners are compared BY
/// BACKEND NAME, so the two tables may list different backends (a removal shifts indices).
public struct TableDiff: Sendable, Equatable {
    /// Fraction of slots whose owner changed (includes the slots of removed backends).
    public let changedAll: Double
    /// Fraction of slots whose owner changed although the old owner is still in the new table
    /// (listed there with a positive weight): the avoidable disruption of Fig. 12.
    public let changedExtra: Double

    /// - Precondition: `old.size == new.size`.
    public init(old: LookupTable, new: LookupTable) {
        precondition(old.size == new.size, "TableDiff compares tables of the same size")
        let (mapping, survives) = TableDiff.mapping(old: old, new: new)
        var all = 0
        var extra = 0
        for s in 0..<old.size {
            let oldOwner = old.entries[s]
            let mapped: Int32 = oldOwner >= 0 ? mapping[Int(oldOwner)] : -1
            if mapped != new.entries[s] || oldOwner < 0 {
                all += 1
                if oldOwner >= 0 && survives[Int(oldOwner)] { extra += 1 }
            }
        }
        let size = Double(max(old.size, 1))
        changedAll = Double(all) / size
        changedExtra = Double(extra) / size
    }

    /// Between two tables of any sizes and hash seeds (a reload that changes `table_size` or
    /// `hash_seed`): the fractions of all flows (of the flow-hash space) whose owner changes,
    /// and of those whose old owner survives. Same seed and size: exactly `init(old:new:)`.
    /// Same seed, other size: exact, over the 2^32 values of the hash's high half that pick a
    /// slot (`FlowHash.slot`). Other seed: a flow's old and new slots are independent, so the
    /// owner stays with probability sum over backends of old share x new share (an expectation
    /// over uniformly spread flows, as slot fractions are).
    public init(old: LookupTable, oldSeed: UInt64, new: LookupTable, newSeed: UInt64) {
        if oldSeed == newSeed && old.size == new.size {
            self.init(old: old, new: new)
            return
        }
        let (mapping, survives) = TableDiff.mapping(old: old, new: new)
        func owner(_ s: Int) -> Int32 { old.entries[s] >= 0 ? mapping[Int(old.entries[s])] : -1 }
        var all = 0.0
        var extra = 0.0
        if oldSeed == newSeed {
            // Slot i of a table of size M holds the hashes h with floor(h * M / 2^32) == i, i.e.
            // h in [ceil(i * 2^32 / M), ceil((i + 1) * 2^32 / M)). Walk both tables' boundaries.
            func start(_ i: Int, _ m: Int) -> UInt64 { (UInt64(i) << 32 + UInt64(m) - 1) / UInt64(m) }
            let end: UInt64 = 1 << 32
            var i = 0
            var j = 0
            var at: UInt64 = 0
            while at < end {
                let nextOld = i + 1 < old.size ? start(i + 1, old.size) : end
                let nextNew = j + 1 < new.size ? start(j + 1, new.size) : end
                let next = min(nextOld, nextNew)
                let width = Double(next - at)
                let was = old.entries[i]
                if was < 0 || owner(i) != new.entries[j] {
                    all += width
                    if was >= 0 && survives[Int(was)] { extra += width }
                }
                at = next
                if next == nextOld { i += 1 }
                if next == nextNew { j += 1 }
            }
            all /= Double(end)
            extra /= Double(end)
        } else {
            var oldShare = [Double](repeating: 0, count: old.backends.count)
            var newShare = [Double](repeating: 0, count: new.backends.count)
            for e in old.entries where e >= 0 { oldShare[Int(e)] += 1 / Double(max(old.size, 1)) }
            for e in new.entries where e >= 0 { newShare[Int(e)] += 1 / Double(max(new.size, 1)) }
            var stays = 0.0
            for (b, p) in oldShare.enumerated() {
                let q = mapping[b] >= 0 ? newShare[Int(mapping[b])] : 0
                stays += p * q
                if survives[b] { extra += p * (1 - q) }
            }
            all = 1 - stays
        }
        self.init(changedAll: min(1, max(0, all)), changedExtra: min(1, max(0, extra)))
    }

    init(changedAll: Double, changedExtra: Double) {
        self.changedAll = changedAll
        self.changedExtra = changedExtra
    }

    /// Old backend index -> new backend index (by name, -1 when gone), and whether the old
    /// backend survives (listed in the new table with a positive weight).
    static func mapping(old: LookupTable, new: LookupTable) -> (mapping: [Int32], survives: [Bool]) {
        // Both backend lists are sorted by name (byte-wise): a merge maps old index -> new index.
        var mapping = [Int32](repeating: -1, count: old.backends.count)
        var survives = [Bool](repeating: false, count: old.backends.count)
        var j = 0
        for (i, backend) in old.backends.enumerated() {
            while j < new.backends.count && LookupTableBuilder.nameOrder(new.backends[j].name, backend.name) {
                j += 1
            }
            if j < new.backends.count && new.backends[j].name.utf8.elementsEqual(backend.name.utf8) {
                mapping[i] = Int32(j)
                survives[i] = new.backends[j].weight > 0
            }
        }
        return (mapping, survives)
    }
}

/// The disruption experiment of the paper's Fig. 12: remove `removed` backends chosen at random
/// and measure how many slots change owner, averaged over `trials` draws.
public struct RemovalStudy: Sendable, Equatable {
    public let removed: Int
    public let trials: Int
    /// Mean `TableDiff.changedAll` over the trials.
    public let changedAll: Double
    /// Mean `TableDiff.changedExtra` over the trials.
    public let changedExtra: Double

    /// Builds the full table once, then for each trial removes `removed` distinct backends
    /// (a partial Fisher-Yates shuffle of the fill order driven by `SplitMix64(seed: seed)`, one
    /// generator for all trials) and diffs the rebuilt table against the full one. The same
    /// seed removes the same backends whatever the algorithm, so algorithms compare fairly.
    ///
    /// - Precondition: `0 <= removed < backends.count` and `trials >= 1`.
    public static func run(
        _ algorithm: TableAlgorithm, backends: [BackendSpec], size: Int, options: TableOptions = .init(),
        removing removed: Int, trials: Int, seed: UInt64
    ) throws(TableError) -> RemovalStudy {
        let full = try LookupTableBuilder.build(algorithm, backends: backends, size: size, options: options)
        return try run(full: full, options: options, removing: removed, trials: trials, seed: seed)
    }

    /// As above, reusing an already built full table.
    public static func run(
        full: LookupTable, options: TableOptions = .init(), removing removed: Int, trials: Int, seed: UInt64
    ) throws(TableError) -> RemovalStudy {
        let n = full.backends.count
        precondition(removed >= 0 && removed < n, "can remove 0 ..< backends.count backends")
        precondition(trials >= 1, "at least one trial")
        var rng = SplitMix64(seed: seed)
        var sumAll = 0.0
        var sumExtra = 0.0
        for _ in 0..<trials {
            var order = Array(0..<n)
            for i in 0..<removed {
                let j = i + Int(rng.next(below: UInt64(n - i)))
                order.swapAt(i, j)
            }
            var keep = [Bool](repeating: true, count: n)
            for i in 0..<removed { keep[order[i]] = false }
            let remaining = full.backends.indices.filter { keep[$0] }.map { full.backends[$0] }
            let smaller = try LookupTableBuilder.build(
                full.algorithm, backends: remaining, size: full.size, options: options)
            let diff = TableDiff(old: full, new: smaller)
            sumAll += diff.changedAll
            sumExtra += diff.changedExtra
        }
        return RemovalStudy(
            removed: removed, trials: trials, changedAll: sumAll / Double(trials),
            changedExtra: sumExtra / Double(trials))
    }

    init(removed: Int, trials: Int, changedAll: Double, changedExtra: Double) {
        self.removed = removed
        self.trials = trials
        self.changedAll = changedAll
        self.changedExtra = changedExtra
    }
}
