import Testing

@testable import MaglevCore

/// `PacketParser.parseCommonEthernetIPv4` (the one-step parse of the common frame) against the
/// general walk it short-cuts: for every frame it takes, the same `ParsedPacket` as
/// `parseEthernet`, field by field; and it takes the common frames themselves.
@Suite struct PacketParserCommonTests {
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

    /// Every field of two parsed packets, as text, so a difference names the field.
    private func fields(_ p: ParsedPacket) -> String {
        "l3 \(p.l3Offset) \(p.l3Length) \(p.l3ClaimedLength) l4 \(p.l4Offset) key \(p.key) flags \(p.tcpFlags) "
            + "fragment \(p.fragment) \(p.fragmentID) df \(p.dontFragment) icmpError \(p.isICMPError) "
            + "tc \(p.trafficClass) traced \(p.traceMarked) redirected \(p.redirected)"
    }

    @Test func agreesWithTheGeneralParserOnMutatedCommonFrames() {
        var rng = SplitMix64(state: 3)
        var taken = 0
        var declined = 0
        for round in 0..<50_000 {
            // A TCP or UDP/IPv4 frame, then a few bytes of its headers changed or its length cut.
            let udp = rng.next() & 1 == 0
            let payload = Int(rng.next() % 24)
            var frame = [UInt8](repeating: 0, count: 14 + 20 + (udp ? 8 : 20) + payload)
            for i in frame.indices { frame[i] = UInt8(truncatingIfNeeded: rng.next()) }
            frame[12] = 0x08
            frame[13] = 0x00
            frame[14] = 0x45
            let total = frame.count - 14
            frame[16] = UInt8(total >> 8)
            frame[17] = UInt8(total & 0xFF)
            frame[20] &= 0xC0  // flags (reserved/trace, DF) kept random, MF and offset clear
            frame[21] = 0
            frame[23] = udp ? IPProtocol.udp : IPProtocol.tcp
            let hot = [12, 13, 14, 16, 17, 20, 21, 23]
            for _ in 0..<Int(rng.next() % 3) {
                let at = rng.next() % 2 == 0 ? hot[Int(rng.next() % UInt64(hot.count))] : Int(rng.next() % 48)
                if at < frame.count {
                    frame[at] =
                        rng.next() % 2 == 0 ? UInt8(truncatingIfNeeded: rng.next()) : frame[at] ^ (1 << (rng.next() % 8))
                }
            }
            if rng.next() % 4 == 0 { frame.removeLast(Int(rng.next() % UInt64(frame.count + 1))) }

            frame.withUnsafeBytes { bytes in
                guard let base = bytes.baseAddress else { return }
                var general = ParsedPacket.zero
                let generalStatus = PacketParser.parseEthernet(base, end: bytes.count, into: &general)
                var common = ParsedPacket.zero
                common.redirected = true  // must be reset, as the general parse resets it
                if PacketParser.parseCommonEthernetIPv4(base, count: bytes.count, into: &common) {
                    taken += 1
                    #expect(generalStatus == nil, "round \(round): the general parse says \(String(describing: generalStatus))")
                    #expect(fields(common) == fields(general), "round \(round)")
                } else {
                    declined += 1
                    #expect(common.redirected, "round \(round): declined but wrote the packet")
                }
            }
        }
        // Both sides exercised.
        #expect(taken > 10_000)
        #expect(declined > 10_000)
    }

    @Test func takesTheCommonFrames() {
        // TCP SYN with DF, UDP, and the tracer's marked frame: all taken.
        for (proto, flags) in [(IPProtocol.tcp, UInt16(0x4000)), (IPProtocol.udp, 0), (IPProtocol.tcp, TraceMarker.ipv4Flag)] {
            var frame = [UInt8](repeating: 0, count: 14 + 20 + 20)
            frame[12] = 0x08
            frame[14] = 0x45
            frame[17] = UInt8(frame.count - 14)
            frame[20] = UInt8(flags >> 8)
            frame[23] = proto
            frame.withUnsafeBytes { bytes in
                var packet = ParsedPacket.zero
                #expect(PacketParser.parseCommonEthernetIPv4(bytes.baseAddress!, count: bytes.count, into: &packet))
                #expect(packet.traceMarked == (flags == TraceMarker.ipv4Flag))
            }
        }
    }
}
