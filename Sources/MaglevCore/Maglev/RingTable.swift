/// Karger's consistent-hash ring, filled into a table of `size` slots for comparison (paper
/// §5.3).
///
/// Points: a backend of weight w gets `ringViews * w / minWeight` points (the lightest positive
/// weight gets exactly `ringViews`); zero weight gets none. If that would exceed
/// `maximumPoints` in total, every count is scaled down to `maximumPoints * w / totalWeight`
/// (at least 1). Point j of a backend sits at `XXH64("name#j", seed 0)`.
/// Slot s belongs to the first point at or after `slotKey(s)` clockwise (wrapping around);
/// equal point hashes are ordered by backend index.
enum RingTable {
    static let maximumPoints: UInt64 = 1 << 24

    static func pointCounts(for backends: [BackendSpec], ringViews: Int) -> [Int] {
        let views = UInt64(max(ringViews, 1))
        let positive = backends.map { UInt64($0.weight) }.filter { $0 > 0 }
        let minWeight = positive.min() ?? 1
        let total = positive.reduce(0, +)
        // Sum of `views * w / minWeight`, computed without overflow.
        let wanted = total.multipliedFullWidth(by: views)
        let fits = wanted.high < minWeight && minWeight.dividingFullWidth(wanted).quotient <= maximumPoints
        return backends.map { backend in
            let w = UInt64(backend.weight)
            guard w > 0 else { return 0 }
            if fits { return Int(views * w / minWeight) }
            return Int(max(1, maximumPoints * w / total))
        }
    }

    static func entries(for backends: [BackendSpec], size: Int, options: TableOptions) -> [Int32] {
        let counts = pointCounts(for: backends, ringViews: options.ringViews)
        var points = [Point]()
        points.reserveCapacity(counts.reduce(0, +))
        var buffer = [UInt8]()
        for (index, backend) in backends.enumerated() where counts[index] > 0 {
            buffer.removeAll(keepingCapacity: true)
            buffer.append(contentsOf: backend.name.utf8)
            buffer.append(UInt8(ascii: "#"))
            let prefix = buffer.count
            for j in 0..<counts[index] {
                buffer.removeSubrange(prefix...)
                appendDecimal(j, to: &buffer)
                let hash = buffer.withUnsafeBytes { XXH64.hash($0, seed: 0) }
                points.append(Point(hash: hash, owner: Int32(index)))
            }
        }
        points.sort { $0.hash != $1.hash ? $0.hash < $1.hash : $0.owner < $1.owner }
        let hashes = points.map(\.hash)
        let keys = LookupTableBuilder.slotKeys(size: size, seed: options.seed)

        var entries = [Int32](repeating: -1, count: size)
        hashes.withUnsafeBufferPointer { hashes in
            for s in 0..<size {
                // Lower bound: the first point with hash >= key.
                let key = keys[s]
                var low = 0
                var high = hashes.count
                while low < high {
                    let mid = (low + high) >> 1
                    if hashes[mid] < key { low = mid + 1 } else { high = mid }
                }
                entries[s] = points[low == hashes.count ? 0 : low].owner
            }
        }
        return entries
    }

    struct Point {
        var hash: UInt64
        var owner: Int32
    }

    private static func appendDecimal(_ value: Int, to buffer: inout [UInt8]) {
        if value >= 10 { appendDecimal(value / 10, to: &buffer) }
        buffer.append(UInt8(ascii: "0") + UInt8(value % 10))
    }
}
