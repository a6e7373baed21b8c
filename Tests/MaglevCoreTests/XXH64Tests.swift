import Testing

@testable import MaglevCore

@Suite struct XXH64Tests {
    /// Bytes (i * 7 + 3) & 0xFF: a deterministic, non-repeating-looking input.
    static let input: [UInt8] = (0..<200).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) }

    /// Published value, and values from the reference implementation (Python `xxhash` 4.1.0,
    /// `xxh64_intdigest(input[:n], seed)`), covering every tail path: < 4, 4, 8, the 32-byte
    /// stripe boundary and a multi-stripe input with a tail.
    static let vectors: [(length: Int, seed: UInt64, hash: UInt64)] = [
        (0, 0, 0xEF46_DB37_51D8_E999), (0, 1, 0xD5AF_BA13_36A3_BE4B),
        (1, 0, 0x1F25_C8D0_BC1F_4BB6), (1, 1, 0x610F_93F8_C898_89FE),
        (3, 0, 0x31D2_363F_52E5_64C9), (3, 1, 0x2D80_E074_130D_0176),
        (4, 0, 0x9BB6_4B7D_66EE_9FDA), (4, 1, 0x5EC9_FDD1_0FCB_CB0E),
        (8, 0, 0xDAB9_9D95_C6F9_0092), (8, 1, 0xF119_F5B2_6C00_20AB),
        (31, 0, 0xA2AA_5F33_CC4A_6119), (31, 1, 0xAACA_4E41_FFCA_E21C),
        (32, 0, 0x23C3_C17E_F790_FD97), (32, 1, 0x7421_B79A_02B4_2132),
        (33, 0, 0x50A7_CFC7_BA58_8784), (33, 1, 0x17B3_DF31_3DE9_A40E),
        (100, 0, 0xA61F_8D4C_170F_E531), (100, 1, 0x8D89_57E6_8F02_C7CE),
    ]

    @Test func referenceVectors() {
        for v in Self.vectors {
            let got = Self.input.withUnsafeBytes { XXH64.hash(UnsafeRawBufferPointer(rebasing: $0[0..<v.length]), seed: v.seed) }
            #expect(got == v.hash, "length \(v.length) seed \(v.seed)")
        }
    }

    @Test func emptyStringSeedZero() {
        #expect(XXH64.hash("", seed: 0) == 0xEF46_DB37_51D8_E999)
    }

    @Test func stringsHashTheirUTF8Bytes() {
        #expect(XXH64.hash("abc", seed: 0) == 0x44BC_2CF5_AD77_0999)
        #expect(XXH64.hash("abc", seed: 1) == 0xBEA9_CA81_9932_8908)
        #expect(XXH64.hash("127.0.0.1:90", seed: 0) == 0xB6E9_805B_F489_0ED5)
        #expect(XXH64.hash("127.0.0.1:90", seed: 1) == 0x151E_AA9A_12EB_FFF5)
        // A bridged or non-contiguous string must hash like its bytes.
        let composed = String("12" + "7.0.0.1:9" + "0")
        #expect(XXH64.hash(composed, seed: 0) == 0xB6E9_805B_F489_0ED5)
    }
}
