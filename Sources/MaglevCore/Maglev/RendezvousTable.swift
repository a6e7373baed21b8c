/// Rendezvous (highest random weight) hashing, filled into a table for comparison (paper §5.3).
///
/// Backend i has a name hash `a_i = XXH64(name, seed 0)`; its draw for slot s is
/// `h = fmix64(a_i ^ slotKey(s))` (one multiply-xorshift finaliser per pair, not a full hash).
/// Unweighted, the owner is the backend with the largest `h`. Weighted, the owner maximises
/// `w_i / -ln(u)` with `u = (h >> 11 + 0.5) / 2^53` in (0, 1), the standard weighted
/// rendezvous score that gives backend i a `w_i / sum(w)` share. Ties go to the lower index.
///
/// Speed: the score is increasing in `h` for a fixed weight, so within a group of equal weight
/// the largest `h` wins without a logarithm; only one logarithm per distinct weight per slot
/// is taken. N = 1000, M = 65537 is about 65 million finalisers.
enum RendezvousTable {
    static func entries(for backends: [BackendSpec], size: Int, options: TableOptions) -> [Int32] {
        // Group positive-weight backends by weight, in increasing weight; members keep index order.
        var distinctWeights = [UInt32]()
        for weight in backends.map(\.weight).sorted() where weight > 0 && distinctWeights.last != weight {
            distinctWeights.append(weight)
        }
        let nameHashes = backends.map { XXH64.hash($0.name, seed: 0) }
        var groupHashes = [[UInt64]]()
        var groupOwners = [[Int32]]()
        for weight in distinctWeights {
            let members = backends.indices.filter { backends[$0].weight == weight }
            groupHashes.append(members.map { nameHashes[$0] })
            groupOwners.append(members.map { Int32($0) })
        }
        let keys = LookupTableBuilder.slotKeys(size: size, seed: options.seed)
        var entries = [Int32](repeating: -1, count: size)

        for s in 0..<size {
            let key = keys[s]
            var bestScore = -Double.infinity
            var bestOwner = Int32.max
            for g in 0..<groupHashes.count {
                let (h, owner) = groupHashes[g].withUnsafeBufferPointer { hashes in
                    groupOwners[g].withUnsafeBufferPointer { owners in
                        var bestH: UInt64 = 0
                        var bestIndex = 0
                        for i in 0..<hashes.count {
                            let h = FlowHash.fmix64(hashes[i] ^ key)
                            if h > bestH || i == 0 {
                                bestH = h
                                bestIndex = i
                            }
                        }
                        return (bestH, owners[bestIndex])
                    }
                }
                if groupHashes.count == 1 {
                    bestOwner = owner
                    break
                }
                let u = (Double(h >> 11) + 0.5) * 0x1p-53
                let score = Double(distinctWeights[g]) / -naturalLog(u)
                if score > bestScore || (score == bestScore && owner < bestOwner) {
                    bestScore = score
                    bestOwner = owner
                }
            }
            entries[s] = bestOwner
        }
        return entries
    }
}

/// Natural logarithm of a positive finite `x`, in plain IEEE arithmetic (the core imports no
/// libm) so the value is identical everywhere. x = m * 2^e with m in [sqrt(1/2), sqrt(2));
/// ln(m) = 2 * atanh(t), t = (m - 1) / (m + 1), |t| < 0.172, summed to t^27 (error < 1e-19).
func naturalLog(_ x: Double) -> Double {
    precondition(x > 0 && x.isFinite, "naturalLog needs a positive finite argument")
    var e = Double(x.exponent)
    var m = x.significand  // in [1, 2)
    if m > 1.4142135623730951 {
        m *= 0.5
        e += 1
    }
    let t = (m - 1) / (m + 1)
    let t2 = t * t
    var term = t
    var sum = 0.0
    var k = 1.0
    while k <= 27 {
        sum += term / k
        term *= t2
        k += 2
    }
    return e * 0.6931471805599453 + 2 * sum
}
