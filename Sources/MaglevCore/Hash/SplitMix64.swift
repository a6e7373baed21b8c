/// SplitMix64 (Steele, Lea and Flood, 2014; Vigna's reference constants): a tiny seeded
/// generator for reproducible experiments such as which backends a disruption trial removes.
/// The same seed gives the same sequence on every platform and Swift version, which the
/// standard library's generators do not promise.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform value in `0..<bound` (`bound` > 0), by Lemire's multiply-shift with rejection.
    /// Written out here rather than using `next(upperBound:)` so the sequence of draws cannot
    /// change with the standard library's implementation.
    public mutating func next(below bound: UInt64) -> UInt64 {
        precondition(bound > 0, "SplitMix64.next(below:) needs a positive bound")
        let threshold = (0 &- bound) % bound
        while true {
            let product = next().multipliedFullWidth(by: bound)
            if product.low >= threshold { return product.high }
        }
    }
}
