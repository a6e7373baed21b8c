/// The naive table: slot s belongs to candidate `slotKey(s) % W`, where the candidate list
/// repeats each backend `weight` times in fill order (zero weight: never) and W is the total
/// weight. The list is never materialised: a binary search over cumulative weights finds the
/// candidate. Balanced on average, but removing a backend moves almost every slot.
enum ModuloTable {
    static func entries(for backends: [BackendSpec], size: Int, options: TableOptions) -> [Int32] {
        var cumulative = [UInt64]()  // cumulative[i] = total weight of backends 0...i
        var total: UInt64 = 0
        for backend in backends {
            total += UInt64(backend.weight)
            cumulative.append(total)
        }
        let keys = LookupTableBuilder.slotKeys(size: size, seed: options.seed)
        return keys.map { key in
            let r = key % total
            // The first backend whose cumulative weight exceeds r (zero weights never qualify).
            var low = 0
            var high = cumulative.count - 1
            while low < high {
                let mid = (low + high) >> 1
                if cumulative[mid] > r { high = mid } else { low = mid + 1 }
            }
            return Int32(low)
        }
    }
}
