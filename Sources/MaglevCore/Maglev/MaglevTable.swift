/// Maglev's lookup table (Eisenbud et al., NSDI 2016, §3.4, Pseudocode 1).
///
/// Each backend walks its own permutation of the slots, `offset, offset + skip, ...` (mod M);
/// in turn, each takes the first free slot on its walk. Because M is prime and
/// `1 <= skip < M`, every walk visits every slot, so the fill always completes. Unweighted,
/// every backend owns floor(M/N) or ceil(M/N) slots.
///
/// Weights follow Envoy's rule (FACTS §1), with Envoy's floating-point arithmetic so weighted
/// tables match Envoy's slot for slot: `w_i = weight_i / sum(weights)`; in round r = 1, 2, ...
/// backend i takes a turn only if `r * w_i >= target_i`, and then `target_i += max(w)`.
/// Zero weight never takes a turn.
public enum MaglevTable {
    /// The paper's Pseudocode 1 given per-backend `(offset, skip)`; weights by Envoy's rule
    /// when non-nil. Backends take turns in index order. Returns slot -> backend index; a slot
    /// stays -1 only if no backend has a positive weight.
    ///
    /// - Precondition: `size` is prime (or at least every `skip` is coprime to it),
    ///   `0 <= offset < size`, `1 <= skip < size` (any skip when `size` is 1), and `skips` and
    ///   `weights` have `offsets.count` elements.
    public static func populate(offsets: [Int], skips: [Int], weights: [UInt32]?, size: Int) -> [Int32] {
        let n = offsets.count
        precondition(size > 0 && size <= Int(Int32.max), "table size must be in 1...Int32.max")
        precondition(skips.count == n && (weights?.count ?? n) == n, "one offset, skip and weight per backend")
        precondition(n <= Int(Int32.max), "too many backends")
        for i in 0..<n {
            precondition(offsets[i] >= 0 && offsets[i] < size, "offset out of range")
            precondition(size == 1 || (skips[i] >= 1 && skips[i] < size), "skip out of range")
        }

        var entries = [Int32](repeating: -1, count: size)
        // Only backends of positive weight take turns. When those weights are all equal, every
        // one of them takes a turn every round, so the plain loop gives Envoy's table exactly.
        let active: [Int]
        var weighted = false
        if let weights {
            active = (0..<n).filter { weights[$0] > 0 }
            weighted = active.contains { weights[$0] != weights[active[0]] }
        } else {
            active = Array(0..<n)
        }
        guard !active.isEmpty else { return entries }

        // Per active backend: its current position on its permutation walk and its skip.
        var position = active.map { offsets[$0] }
        let skip = active.map { size == 1 ? 0 : skips[$0] }
        let owner = active.map { Int32($0) }

        entries.withUnsafeMutableBufferPointer { table in
            position.withUnsafeMutableBufferPointer { position in
                skip.withUnsafeBufferPointer { skip in
                    owner.withUnsafeBufferPointer { owner in
                        if weighted, let weights {
                            fillWeighted(
                                table: table, position: position, skip: skip, owner: owner,
                                weights: active.map { weights[$0] })
                        } else {
                            fillUnweighted(table: table, position: position, skip: skip, owner: owner)
                        }
                    }
                }
            }
        }
        return entries
    }

    /// Every backend takes a turn every round. Invariant: `position[i]` is in `0..<M`; the walk
    /// advances by `skip[i] < M`, so one conditional subtraction replaces `%`.
    private static func fillUnweighted(
        table: UnsafeMutableBufferPointer<Int32>, position: UnsafeMutableBufferPointer<Int>,
        skip: UnsafeBufferPointer<Int>, owner: UnsafeBufferPointer<Int32>
    ) {
        let size = table.count
        let n = position.count
        var filled = 0
        while true {
            for i in 0..<n {
                let step = skip[i]
                var c = position[i]
                while table[c] >= 0 { c = advance(c, step, size) }
                table[c] = owner[i]
                c = advance(c, step, size)
                position[i] = c
                filled += 1
                if filled == size { return }
            }
        }
    }

    /// `(c + step) mod size` for `c, step` in `0..<size`, without a division or a branch (the
    /// wrap is taken at random, so a branch would be mispredicted often).
    @inline(__always)
    private static func advance(_ c: Int, _ step: Int, _ size: Int) -> Int {
        let d = c &+ step &- size
        return d &+ (size & (d >> (Int.bitWidth - 1)))
    }

    /// Envoy's weighted turns, in Envoy's double arithmetic (see the type's documentation).
    private static func fillWeighted(
        table: UnsafeMutableBufferPointer<Int32>, position: UnsafeMutableBufferPointer<Int>,
        skip: UnsafeBufferPointer<Int>, owner: UnsafeBufferPointer<Int32>, weights: [UInt32]
    ) {
        let size = table.count
        let n = position.count
        var sum: UInt64 = 0
        for w in weights { sum += UInt64(w) }
        let normalized = weights.map { Double($0) / Double(sum) }
        let maxNormalized = normalized.max() ?? 0
        var target = [Double](repeating: 0, count: n)
        var filled = 0
        var round = 0
        while true {
            round += 1
            let r = Double(round)
            for i in 0..<n {
                if r * normalized[i] < target[i] { continue }
                target[i] += maxNormalized
                let step = skip[i]
                var c = position[i]
                while table[c] >= 0 { c = advance(c, step, size) }
                table[c] = owner[i]
                c = advance(c, step, size)
                position[i] = c
                filled += 1
                if filled == size { return }
            }
        }
    }

    /// Envoy-compatible: `offset = XXH64(name, seed 0) % M`, `skip = XXH64(name, seed 1) % (M-1) + 1`
    /// (the name's UTF-8 bytes). `size` must be at least 2.
    public static func permutation(name: String, size: Int) -> (offset: Int, skip: Int) {
        precondition(size >= 2, "a Maglev table needs at least 2 slots")
        let m = UInt64(size)
        let offset = XXH64.hash(name, seed: 0) % m
        let skip = XXH64.hash(name, seed: 1) % (m - 1) + 1
        return (Int(offset), Int(skip))
    }

    /// The table of validated, sorted backends.
    static func entries(for backends: [BackendSpec], size: Int) -> [Int32] {
        var offsets = [Int]()
        var skips = [Int]()
        offsets.reserveCapacity(backends.count)
        skips.reserveCapacity(backends.count)
        for backend in backends {
            let p = permutation(name: backend.name, size: size)
            offsets.append(p.offset)
            skips.append(p.skip)
        }
        let unweighted = backends.allSatisfy { $0.weight == backends[0].weight }
        return populate(offsets: offsets, skips: skips, weights: unweighted ? nil : backends.map(\.weight), size: size)
    }
}
