/// A built lookup table: slot -> backend. Immutable once built; cheap to share between threads.
public struct LookupTable: Sendable {
    public let algorithm: TableAlgorithm
    /// Number of slots (a prime).
    public let size: Int
    /// The backends sorted by name in byte-wise UTF-8 order: the fill order, and what `entries`
    /// index into. Zero-weight backends are listed but own no slot.
    public let backends: [BackendSpec]
    /// Slot -> index into `backends`. Every entry is a valid index (a table always has at least
    /// one backend of positive weight).
    public let entries: [Int32]

    init(algorithm: TableAlgorithm, size: Int, backends: [BackendSpec], entries: [Int32]) {
        self.algorithm = algorithm
        self.size = size
        self.backends = backends
        self.entries = entries
    }

    /// Slots owned per backend, indexed like `backends`.
    public func slotCounts() -> [Int] {
        var counts = [Int](repeating: 0, count: backends.count)
        for owner in entries where owner >= 0 {
            counts[Int(owner)] += 1
        }
        return counts
    }

    /// The worst over-provisioning factor (paper §5.3): the largest ratio of a backend's slots
    /// to its fair share `size * weight / totalWeight`, over backends of positive weight.
    /// 1.0 is perfect balance; unweighted, this is max/mean of slots per backend.
    public func maxOverMean() -> Double {
        let counts = slotCounts()
        var totalWeight: UInt64 = 0
        for backend in backends { totalWeight += UInt64(backend.weight) }
        guard totalWeight > 0 else { return 0 }
        var worst = 0.0
        for (i, backend) in backends.enumerated() where backend.weight > 0 {
            let fair = Double(size) * Double(backend.weight) / Double(totalWeight)
            worst = max(worst, Double(counts[i]) / fair)
        }
        return worst
    }
}
