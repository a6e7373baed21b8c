import Testing

@testable import MaglevCore

/// SplitMix64: a small seeded generator, so a failure replays exactly.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct PacketParserFuzzTests {
    /// Tallies outcomes so a test can show it reached the parser's depths, not just its first
    /// length check.
    private struct Tally {
        var parsed = 0
        var notIP = 0
        var malformed = [Int](repeating: 0, count: DropReason.allCases.count)
        var failures = 0

        mutating func parse(
            _ bytes: UnsafeRawBufferPointer, _ linkType: LinkType,
            _ context: @autoclosure () -> String
        ) {
            let result = PacketParser.parse(bytes, linkType: linkType)
            switch result {
            case .parsed: parsed += 1
            case .notIP: notIP += 1
            case .malformed(let reason): malformed[Int(reason.rawValue)] += 1
            }
            if failures < 10
                && !checkParsedPacketInvariants(result, frameLength: bytes.count, context())
            {
                failures += 1
            }
        }
    }

    /// Random bytes, with the fields that steer the parser (ethertypes, version nibbles, IHL,
    /// next-header values) often set to values it follows, so that most frames get past L2.
    @Test func randomFrames() {
        var rng = SplitMix64(state: 0x6D61_676C_6576)
        var tally = Tally()
        var buffer = [UInt8](repeating: 0, count: 256)
        let etherTypes: [UInt16] = [0x0800, 0x86DD, 0x8100, 0x88A8, 0x9100, 0x8847, 0x0806]
        let protocols: [UInt8] = [6, 17, 132, 1, 58, 0, 43, 44, 51, 60, 59, 47]
        for i in 0..<300_000 {
            buffer.withUnsafeMutableBytes { raw in
                for j in stride(from: 0, to: raw.count, by: 8) {
                    raw.storeBytes(of: rng.next(), toByteOffset: j, as: UInt64.self)
                }
            }
            let linkType: LinkType = i % 4 == 0 ? .rawIP : .ethernet
            let l3 = linkType == .rawIP ? 0 : 14
            if Bool.random(using: &rng), linkType == .ethernet {
                // A stack of steering ethertypes: each tag's "next ethertype" slot too.
                var offset = 12
                while offset + 2 <= 40 && Bool.random(using: &rng) {
                    let t = etherTypes.randomElement(using: &rng)!
                    buffer[offset] = UInt8(t >> 8)
                    buffer[offset + 1] = UInt8(t & 0xFF)
                    offset += 4
                }
            }
            if Int.random(in: 0..<4, using: &rng) != 0 {
                let ip = l3 + 4 * Int.random(in: 0..<3, using: &rng)
                if Bool.random(using: &rng) {
                    buffer[ip] = 0x45 + UInt8.random(in: 0...2, using: &rng)
                    buffer[ip + 6] &= 0x3F  // Mostly unfragmented.
                    if Bool.random(using: &rng) { buffer[ip + 7] = 0 }
                    buffer[ip + 9] = protocols.randomElement(using: &rng)!
                } else {
                    buffer[ip] = 0x60
                    buffer[ip + 6] = protocols.randomElement(using: &rng)!
                }
                if Bool.random(using: &rng) {
                    buffer[ip + 2] = 0  // Small length claims.
                    buffer[ip + 4] = 0
                }
            }
            let length = Int.random(in: 0...buffer.count, using: &rng)
            buffer.withUnsafeBytes { all in
                tally.parse(
                    UnsafeRawBufferPointer(rebasing: all[0..<length]), linkType, "random frame \(i)"
                )
            }
        }
        #expect(tally.failures == 0)
        // The steering worked: many frames reached the L4 and deeper checks.
        #expect(tally.parsed > 10_000, "parsed \(tally.parsed)")
        #expect(tally.notIP > 1_000)
        for reason in [
            DropReason.truncatedL2, .badIPVersion, .truncatedIPv4Header, .badIPv4HeaderLength,
            .badIPv4TotalLength, .truncatedIPv6Header, .truncatedIPv6ExtensionHeader,
            .truncatedL4Header,
        ] {
            #expect(tally.malformed[Int(reason.rawValue)] > 0, "\(reason) never seen")
        }
    }

    /// Every valid test frame, with a few bytes changed and maybe cut short.
    @Test func mutatedFrames() {
        var rng = SplitMix64(state: 42)
        var tally = Tally()
        for c in ParserCases.all {
            var buffer = c.frame
            guard !buffer.isEmpty else { continue }
            for m in 0..<2_000 {
                buffer = c.frame
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    // Mostly in the headers, where the parser looks.
                    let limit = min(buffer.count, Bool.random(using: &rng) ? 96 : buffer.count)
                    let at = Int.random(in: 0..<limit, using: &rng)
                    buffer[at] =
                        Bool.random(using: &rng)
                        ? UInt8.random(in: 0...255, using: &rng)
                        : buffer[at] ^ (1 << UInt8.random(in: 0..<8, using: &rng))
                }
                let length =
                    Bool.random(using: &rng)
                    ? buffer.count : Int.random(in: 0...buffer.count, using: &rng)
                buffer.withUnsafeBytes { all in
                    tally.parse(
                        UnsafeRawBufferPointer(rebasing: all[0..<length]), c.linkType,
                        "\(c.name) mutation \(m)")
                }
            }
        }
        #expect(tally.failures == 0)
        #expect(tally.parsed > 50_000, "parsed \(tally.parsed)")
        for reason in [
            DropReason.tooManyL2Headers, .ipv6ExtensionChainTooLong, .firstFragmentTooShort,
            .truncatedICMPQuote, .badICMPQuote,
        ] {
            #expect(tally.malformed[Int(reason.rawValue)] > 0, "\(reason) never seen")
        }
    }
}
