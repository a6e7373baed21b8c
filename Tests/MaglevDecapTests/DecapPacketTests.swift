import MaglevForwarder
import Testing

/// GRE validation of `maglev decap`: what a raw socket delivers in, a verdict out.
@Suite struct DecapPacketTests {
    typealias B = DecapPacketBuilder
    static let inner4 = B.ipv4UDP(source: "198.18.0.10", destination: "198.19.0.10", port: 5353, payload: Array("hello".utf8))
    static let inner6 = B.ipv6UDP(source: "2001:db8::10", destination: "2001:db8:100::10", port: 5353, payload: Array("hello6".utf8))

    /// As an `AF_INET` raw socket delivers it: outer IPv4 + GRE + inner.
    static func outer4(_ gre: [UInt8], options: [UInt8] = []) -> [UInt8] {
        B.ipv4Packet(source: "198.18.1.11", destination: "198.18.1.101", protocol: 47, payload: gre, options: options)
    }

    static func classify(_ bytes: [UInt8], ipv6: Bool = false) -> DecapOutcome {
        bytes.withUnsafeBytes { GREDecapsulation.classify($0, outerIsIPv6: ipv6) }
    }

    @Test func ipv4InIPv4IsDelivered() {
        #expect(Self.classify(Self.outer4(B.gre(Self.inner4))) == .deliver(innerOffset: 24, innerLength: Self.inner4.count, innerIsIPv6: false))
    }

    @Test func ipv6InIPv4AndBothOverIPv6AreDelivered() {
        #expect(Self.classify(Self.outer4(B.gre(Self.inner6))) == .deliver(innerOffset: 24, innerLength: Self.inner6.count, innerIsIPv6: true))
        // An AF_INET6 raw socket strips the outer header: the packet starts at GRE.
        #expect(Self.classify(B.gre(Self.inner6), ipv6: true) == .deliver(innerOffset: 4, innerLength: Self.inner6.count, innerIsIPv6: true))
        #expect(Self.classify(B.gre(Self.inner4), ipv6: true) == .deliver(innerOffset: 4, innerLength: Self.inner4.count, innerIsIPv6: false))
    }

    @Test func outerOptionsAndTrailingBytes() {
        // 8 bytes of IPv4 options (NOPs): the GRE header starts at 28.
        let withOptions = Self.outer4(B.gre(Self.inner4), options: [1, 1, 1, 1, 1, 1, 1, 0])
        #expect(Self.classify(withOptions) == .deliver(innerOffset: 32, innerLength: Self.inner4.count, innerIsIPv6: false))
        // Bytes after the inner packet (inside the outer length) are not passed on.
        let padded = Self.outer4(B.gre(Self.inner4 + [0, 0, 0, 0]))
        #expect(Self.classify(padded) == .deliver(innerOffset: 24, innerLength: Self.inner4.count, innerIsIPv6: false))
    }

    @Test func greHeaderProblemsAreNamed() {
        #expect(Self.classify(Self.outer4(B.gre(Self.inner4, flags: 0x0001))) == .drop(.badGREVersion))
        #expect(Self.classify(Self.outer4(B.gre(Self.inner4, flags: 0x8000))) == .drop(.unsupportedGREFlags))  // checksum
        #expect(Self.classify(Self.outer4(B.gre(Self.inner4, flags: 0x2000))) == .drop(.unsupportedGREFlags))  // key
        #expect(Self.classify(Self.outer4(B.gre(Self.inner4, flags: 0x1000))) == .drop(.unsupportedGREFlags))  // sequence
        #expect(Self.classify(Self.outer4(B.gre(Self.inner4, flags: 0x0100))) == .drop(.unsupportedGREFlags))  // recursion
        #expect(Self.classify(Self.outer4(B.gre(Self.inner4, protocol: 0x6558))) == .drop(.unsupportedProtocol))
        #expect(Self.classify(Self.outer4(B.gre(Self.inner4, protocol: 0x86DD))) == .drop(.truncated))  // 33 bytes < 40
        #expect(Self.classify(Self.outer4(B.gre(Self.inner6, protocol: 0x0800))) == .drop(.innerHeaderMismatch))
    }

    @Test func shortAndMalformedPackets() {
        let good = Self.outer4(B.gre(Self.inner4))
        #expect(Self.classify([]) == .drop(.truncated))
        #expect(Self.classify(Array(good.prefix(19))) == .drop(.truncated))
        #expect(Self.classify(Array(good.prefix(23))) == .drop(.truncated))
        #expect(Self.classify(Array(good.prefix(good.count - 1))) == .drop(.truncated))  // outer length says more
        var notGRE = good
        notGRE[9] = 4
        #expect(Self.classify(notGRE) == .drop(.badOuterHeader))
        var badIHL = good
        badIHL[0] = 0x44
        #expect(Self.classify(badIHL) == .drop(.badOuterHeader))
        // Inner total length larger than what arrived.
        var longInner = good
        longInner[24 + 3] &+= 10
        #expect(Self.classify(longInner) == .drop(.truncated))
        #expect(Self.classify(B.gre(Array(Self.inner6.prefix(39))), ipv6: true) == .drop(.truncated))
    }

    @Test func countersHaveStableNames() {
        var c = DecapCounters()
        c[.sourceNotAllowed] = 2
        c[.truncated] = 1
        #expect(c.dropped == 3)
        #expect(c.rows.map(\.name) == [
            "received", "delivered_ipv4", "delivered_ipv6", "delivered_bytes", "dropped", "drop_truncated",
            "drop_bad_outer_header", "drop_bad_gre_version", "drop_unsupported_gre_flags", "drop_unsupported_protocol",
            "drop_inner_header_mismatch", "drop_source_not_allowed", "drop_tun_write_failed",
        ])
    }
}
