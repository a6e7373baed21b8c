import Testing

@testable import MaglevCore

@Suite struct MaglevSupportTests {
    /// Reference SplitMix64 (Vigna's splitmix64.c) outputs.
    @Test func splitMixReferenceSequence() {
        var zero = SplitMix64(seed: 0)
        #expect([zero.next(), zero.next(), zero.next()] == [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F])
        var other = SplitMix64(seed: 1_234_567)
        #expect([other.next(), other.next(), other.next()] == [6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423])
    }

    @Test func boundedDrawsStayInRangeAndCoverIt() {
        var rng = SplitMix64(seed: 42)
        var seen = [Int](repeating: 0, count: 7)
        for _ in 0..<7000 {
            let v = rng.next(below: 7)
            #expect(v < 7)
            seen[Int(v)] += 1
        }
        #expect(seen.allSatisfy { $0 > 850 && $0 < 1150 }, "\(seen)")
    }

    @Test func primality() {
        let small = (0..<100).filter(isPrime)
        #expect(small == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97])
        #expect(isPrime(65537) && isPrime(655373) && isPrime(16381) && isPrime(4093))
        #expect(!isPrime(65536) && !isPrime(655371) && !isPrime(-7) && !isPrime(1))
        #expect(!isPrime(3_215_031_751))  // strong pseudoprime to bases 2, 3, 5, 7
        #expect(isPrime(2_305_843_009_213_693_951))  // 2^61 - 1
        #expect(!isPrime(2_305_843_009_213_693_953))
    }

    @Test func naturalLogMatchesKnownValues() {
        #expect(abs(naturalLog(1) - 0) < 1e-15)
        #expect(abs(naturalLog(0.5) + 0.6931471805599453) < 1e-15)
        #expect(abs(naturalLog(0x1p-53) + 36.7368005696771) < 1e-12)
        #expect(abs(naturalLog(0.1) + 2.302585092994046) < 1e-15)
        #expect(abs(naturalLog(0.999) + 0.0010005003335835335) < 1e-17)
    }
}
