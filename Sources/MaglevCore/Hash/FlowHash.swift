/// The seeded flow hash that routes packets. Every forwarder with the same seed computes the
/// same value for the same flow on any platform: the inputs are numeric values taken from the
/// packet in network order, never memory layouts, and Swift's `Hasher` (randomly seeded per
/// process) is never used.
///
/// Definition (docs/maglev.md has the same):
///
///     words = [src.high, src.low, dst.high, dst.low, proto << 32 | sport << 16 | dport]
///     h = seed ^ 0x9E3779B97F4A7C15
///     for w in words: h = mix(h ^ w) where mix(x) = rotl(x * 0xC2B2AE3D27D4EB4F, 31) * 0x9E3779B185EBCA87
///     return fmix64(h ^ 37)          // fmix64: MurmurHash3's 64-bit finaliser
///
/// IPv4 addresses enter as IPv4-mapped IPv6 (`::ffff:a.b.c.d`), so the family needs no word.
public enum FlowHash {
    @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        let y = x &* 0xC2B2_AE3D_27D4_EB4F
        return ((y << 31) | (y >> 33)) &* 0x9E37_79B1_85EB_CA87
    }

    /// MurmurHash3's 64-bit finaliser: full avalanche of every input bit.
    @inline(__always)
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
        var h = seed ^ 0x9E37_79B9_7F4A_7C15
        h = mix(h ^ key.source.high)
        h = mix(h ^ key.source.low)
        h = mix(h ^ key.destination.high)
        h = mix(h ^ key.destination.low)
        h = mix(h ^ (UInt64(key.proto) << 32 | UInt64(key.sourcePort) << 16 | UInt64(key.destinationPort)))
        return fmix64(h ^ 37)
    }

    /// Maps a 64-bit hash onto `0..<size` without a division (Lemire's multiply-shift on the
    /// high 32 bits). Deterministic and uniform for any `size` below 2^32.
    @inline(__always)
    public static func slot(_ hash: UInt64, size: Int) -> Int {
        Int(truncatingIfNeeded: ((hash >> 32) &* UInt64(truncatingIfNeeded: size)) >> 32)
    }
}
