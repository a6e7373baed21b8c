/// The seeded flow hash that routes packets. Every forwarder with the same seed computes the
/// same value for the same flow on any platform: the inputs are numeric values taken from the
/// packet in network order, never memory layouts, and Swift's `Hasher` (randomly seeded per
/// process) is never used.
///
/// Definition (docs/maglev.md has the same):
///
///     ports = proto << 32 | sport << 16 | dport
///     a = mix(src.low ^ seed)
///     b = mix(dst.low ^ ports ^ 0x9E3779B97F4A7C15)
///     c = mix(src.high ^ rotl(dst.high, 32) ^ ~seed)
///     return fmix64(a ^ rotl(b, 21) ^ rotl(c, 42))
///       where mix(x) = rotl(x * 0xC2B2AE3D27D4EB4F, 31) * 0x9E3779B185EBCA87 (a bijection)
///       and fmix64 is MurmurHash3's 64-bit finaliser
///
/// The three lanes are independent, so their multiplications overlap in the CPU: the hash costs
/// about one lane's latency plus the finaliser. IPv4 addresses enter as IPv4-mapped IPv6
/// (`::ffff:a.b.c.d`), so the family needs no word. Not a keyed PRF: someone who knows the
/// seed can aim flows at one backend, as with any stateless balancer hash.
public enum FlowHash {
    /// `mix`'s two multipliers, as a value a hot loop can hold (`Dataplane.hashMultipliers`).
    /// Read from memory, they stay operands: with literal multipliers the compiler folds each
    /// rotation that follows a multiply into a second multiply by a shifted constant, and in a
    /// loop short of registers it then materialises every 64-bit constant again per key.
    public struct Multipliers: Sendable {
        let first: UInt64
        let second: UInt64

        /// The definition's (and `mix`'s) multipliers.
        public static let standard = Multipliers(first: 0xC2B2_AE3D_27D4_EB4F, second: 0x9E37_79B1_85EB_CA87)
    }

    @inlinable @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        let y = x &* 0xC2B2_AE3D_27D4_EB4F
        return ((y << 31) | (y >> 33)) &* 0x9E37_79B1_85EB_CA87
    }

    /// `mix(x)` with its multipliers passed in (`multipliers` must be `Multipliers.standard`).
    @inline(__always)
    static func mix(_ x: UInt64, _ multipliers: Multipliers) -> UInt64 {
        let y = x &* multipliers.first
        return ((y << 31) | (y >> 33)) &* multipliers.second
    }

    @inlinable @inline(__always)
    static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 &- r)) }

    /// MurmurHash3's 64-bit finaliser: full avalanche of every input bit.
    @inlinable @inline(__always)
    public static func fmix64(_ x: UInt64) -> UInt64 {
        var k = x
        k ^= k >> 33
        k &*= 0xFF51_AFD7_ED55_8CCD
        k ^= k >> 33
        k &*= 0xC4CE_B9FE_1A85_EC53
        k ^= k >> 33
        return k
    }

    /// The flow hash of `key` under `seed`.
    @inline(__always)
    public static func hash(_ key: FlowKey, seed: UInt64) -> UInt64 {
        let ports = UInt64(key.proto) << 32 | UInt64(key.sourcePort) << 16 | UInt64(key.destinationPort)
        let a = mix(key.source.low ^ seed)
        let b = mix(key.destination.low ^ ports ^ 0x9E37_79B9_7F4A_7C15)
        let c = mix(key.source.high ^ rotl(key.destination.high, 32) ^ ~seed)
        return fmix64(a ^ rotl(b, 21) ^ rotl(c, 42))
    }

    /// The third lane, rotated, for keys whose high address words cancel
    /// (`source.high ^ rotl(destination.high, 32) == 0`: every IPv4 key): it then depends on the
    /// seed alone, so a batch computes it once (`hash(_:seed:zeroHighLane:)`).
    @inline(__always)
    public static func zeroHighLane(seed: UInt64) -> UInt64 { rotl(mix(~seed), 42) }

    /// `hash(key, seed: seed)`, the same value, with the third lane taken from
    /// `zeroHighLane == zeroHighLane(seed: seed)` when the high words cancel (IPv4).
    /// Inlinable: replay's analysis hashes every packet with it.
    @inlinable @inline(__always)
    public static func hash(_ key: FlowKey, seed: UInt64, zeroHighLane: UInt64) -> UInt64 {
        let ports = UInt64(key.proto) << 32 | UInt64(key.sourcePort) << 16 | UInt64(key.destinationPort)
        let a = mix(key.source.low ^ seed)
        let b = mix(key.destination.low ^ ports ^ 0x9E37_79B9_7F4A_7C15)
        let high = key.source.high ^ rotl(key.destination.high, 32)
        let c = _fastPath(high == 0) ? zeroHighLane : rotl(mix(high ^ ~seed), 42)
        return fmix64(a ^ rotl(b, 21) ^ c)
    }

    /// `hash(key, seed: seed, zeroHighLane: zeroHighLane)`, the same value, with `mix`'s
    /// multipliers passed in: `multipliers` must be `Multipliers.standard`, read from memory the
    /// compiler cannot see into (a stored property), for the data plane's batch loops.
    @inline(__always)
    static func hash(_ key: FlowKey, seed: UInt64, zeroHighLane: UInt64, multipliers: Multipliers) -> UInt64 {
        let ports = UInt64(key.proto) << 32 | UInt64(key.sourcePort) << 16 | UInt64(key.destinationPort)
        let a = mix(key.source.low ^ seed, multipliers)
        let b = mix(key.destination.low ^ ports ^ 0x9E37_79B9_7F4A_7C15, multipliers)
        let high = key.source.high ^ rotl(key.destination.high, 32)
        let c = _fastPath(high == 0) ? zeroHighLane : rotl(mix(high ^ ~seed, multipliers), 42)
        return fmix64(a ^ rotl(b, 21) ^ c)
    }

    /// Maps a 64-bit hash onto `0..<size` without a division (Lemire's multiply-shift on the
    /// high 32 bits). Deterministic and uniform for any `size` below 2^32.
    @inline(__always)
    public static func slot(_ hash: UInt64, size: Int) -> Int {
        Int(truncatingIfNeeded: ((hash >> 32) &* UInt64(truncatingIfNeeded: size)) >> 32)
    }
}
