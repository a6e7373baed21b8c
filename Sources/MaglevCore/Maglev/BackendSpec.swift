/// A backend as the table builders see it: a unique name (hashed as UTF-8 bytes) and a weight.
/// A weight of 0 keeps the backend listed but gives it no slot (Envoy's rule), which is how a
/// backend is drained.
public struct BackendSpec: Sendable, Hashable {
    public var name: String
    public var weight: UInt32

    public init(name: String, weight: UInt32 = 1) {
        self.name = name
        self.weight = weight
    }
}

/// The lookup-table algorithms we can build. Only `maglev` routes traffic; the others exist to
/// reproduce the paper's comparison (§5.3) and show why Maglev was chosen.
public enum TableAlgorithm: String, CaseIterable, Sendable {
    /// Maglev's permutation fill (paper §3.4), Envoy-compatible hashing and weights.
    case maglev
    /// Karger's consistent-hash ring with `TableOptions.ringViews` points per unit of weight.
    case ring
    /// Rendezvous (highest random weight) hashing; weighted by the `-w / ln(u)` rule.
    case rendezvous
    /// `slotKey % totalWeight`: perfectly naive, for contrast in disruption figures.
    case modulo
}

/// Knobs of the comparison algorithms. Maglev itself has none: its table depends only on the
/// backend names, weights and the size.
public struct TableOptions: Sendable, Equatable {
    /// Ring points per backend of the smallest positive weight (heavier backends get
    /// proportionally more). Values below 1 count as 1.
    public var ringViews: Int
    /// Seed of the slot keys of `ring`, `rendezvous` and `modulo` (slot `s` is looked up with a
    /// seeded 64-bit hash of `s`). Ignored by `maglev`.
    public var seed: UInt64

    public init(ringViews: Int = 1000, seed: UInt64 = 0) {
        self.ringViews = ringViews
        self.seed = seed
    }
}

/// Why a table cannot be built. Each description is one line that names the problem and says
/// what to do.
public enum TableError: Error, Equatable, Sendable, CustomStringConvertible {
    case sizeNotPrime(Int)
    case sizeTooSmall(size: Int, backends: Int)
    case sizeTooLarge(Int)
    case noBackends
    case duplicateBackend(String)
    case allWeightsZero
    case emptyBackendName

    /// The largest table size accepted: 2^26 slots (256 MiB of `Int32` entries), a hundred times
    /// the paper's 655373.
    public static let maximumSize = 1 << 26

    public var description: String {
        switch self {
        case .sizeNotPrime(let size):
            let hint = size < 2 ? 65537 : nextPrime(after: size)
            return "table size \(size) is not prime; Maglev needs a prime size, e.g. \(hint)"
        case .sizeTooSmall(let size, let backends):
            let hint = backends <= TableError.maximumSize / 100 ? nextPrime(after: backends * 100) : 65537
            return "table size \(size) is smaller than the number of backends (\(backends)); "
                + "use a prime of at least 100 x backends for 1% balance, e.g. \(hint)"
        case .sizeTooLarge(let size):
            return "table size \(size) exceeds the limit of \(TableError.maximumSize) (2^26); "
                + "use a smaller prime such as 655373"
        case .noBackends:
            return "no backends given; add at least one backend"
        case .duplicateBackend(let name):
            return "backend \"\(name)\" is listed more than once; backend names must be unique"
        case .allWeightsZero:
            return "every backend has weight 0, so no backend could own a slot; "
                + "give at least one backend a positive weight"
        case .emptyBackendName:
            return "a backend has an empty name; every backend needs a non-empty name"
        }
    }
}
