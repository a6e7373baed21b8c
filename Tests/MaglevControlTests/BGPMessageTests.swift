import MaglevCore
import Testing

@testable import MaglevControl

/// Hex with spaces and newlines ignored, for expected bytes written by hand.
func hexBytes(_ s: String) -> [UInt8] {
    let digits = Array(s.filter(\.isHexDigit))
    precondition(digits.count % 2 == 0, "odd hex")
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

func hexString(_ b: [UInt8]) -> String { b.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: " ") }

let marker = [UInt8](repeating: 0xFF, count: 16)

/// A header and body: marker, the length computed here, the type.
func message(type: UInt8, _ body: [UInt8]) -> [UInt8] {
    let n = 19 + body.count
    return marker + [UInt8(n >> 8), UInt8(n & 0xFF), type] + body
}

func prefix(_ s: String) -> BGPPrefix { BGPPrefix(s)! }
func ip(_ s: String) -> IPAddress { IPAddress(s)! }

func decodeError(_ bytes: [UInt8], fourOctetAS: Bool = true) -> BGPDecodeError? {
    if case .failure(let e) = BGPMessage.decode(bytes, fourOctetAS: fourOctetAS) { return e }
    return nil
}

/// Byte-exact encodings against bytes written out by hand from RFC 4271/4760/6793/5492.
@Suite struct BGPEncodingTests {
    @Test func keepaliveIs19Bytes() {
        let bytes = BGPMessage.keepalive.encode()
        #expect(bytes == marker + [0x00, 0x13, 0x04])
        #expect(BGPMessage.decode(bytes) == .success(.keepalive))
    }

    @Test func openWithCapabilities() {
        let open = BGPOpen(
            myAS: 65001, holdTime: 90, routerID: 0xC612_010B,
            capabilities: [
                .multiprotocol(afi: 1, safi: 1), .multiprotocol(afi: 2, safi: 1), .routeRefresh, .fourOctetAS(65001),
            ])
        let expected = hexBytes(
            """
            ffffffffffffffffffffffffffffffff 0033 01
            04 fde9 005a c612010b
            16 02 14
               01 04 0001 00 01
               01 04 0002 00 01
               02 00
               41 04 0000fde9
            """)
        #expect(hexString(BGPMessage.open(open).encode()) == hexString(expected))
        #expect(BGPMessage.decode(expected) == .success(.open(open)))
    }

    @Test func openWithFourOctetASCarriesASTrans() {
        let open = BGPOpen(myAS: 4_200_000_001, holdTime: 3, routerID: 1, capabilities: [.fourOctetAS(4_200_000_001)])
        let bytes = BGPMessage.open(open).encode()
        #expect(Array(bytes[19..<29]) == hexBytes("04 5ba0 0003 00000001 08"))
        #expect(Array(bytes[29...]) == hexBytes("02 06 41 04 fa56ea01"))
        #expect(BGPMessage.decode(bytes) == .success(.open(open)))
    }

    @Test func openCapabilityWinsOverTwoOctetField() {
        // 2-octet field 23456, capability 65550: the peer's AS is 65550.
        let bytes = message(type: 1, hexBytes("04 5ba0 00b4 0a000001 08 02 06 41 04 0001000e"))
        guard case .success(.open(let o)) = BGPMessage.decode(bytes) else {
            Issue.record("not an OPEN")
            return
        }
        #expect(o.myAS == 65550 && o.twoOctetAS == 23456 && o.holdTime == 180 && o.routerID == 0x0A00_0001)
    }

    @Test func openWithSeveralParametersAndUnknownCapabilities() {
        // BIRD-style: graceful restart (64) and enhanced route refresh (70), two parameters.
        let bytes = message(type: 1, hexBytes("04 fde8 005a c6120101 10 02 06 01 04 0002 00 01 02 06 40 02 0078 46 00"))
        guard case .success(.open(let o)) = BGPMessage.decode(bytes) else {
            Issue.record("not an OPEN")
            return
        }
        #expect(
            o.capabilities == [.multiprotocol(afi: 2, safi: 1), .other(code: 64, value: [0x00, 0x78]), .other(code: 70, value: [])])
        #expect(o.supports(afi: 2, safi: 1) && !o.supports(afi: 1, safi: 1))
        #expect(BGPOpen(myAS: 1, holdTime: 0, routerID: 1, capabilities: [.routeRefresh]).supports(afi: 1, safi: 1))
    }

    @Test func updateAnnouncingIPv4HostRoute() {
        let updates = BGPUpdate.announce(
            prefixes: [prefix("198.19.0.10/32")], localAS: 65001, nextHopIPv4: ip("198.18.1.11"), nextHopIPv6: nil,
            fourOctetAS: true, ibgp: false)
        #expect(updates.count == 1)
        let expected = hexBytes(
            """
            ffffffffffffffffffffffffffffffff 0030 02
            0000
            0014
               40 01 01 00
               40 02 06 02 01 0000fde9
               40 03 04 c612010b
            20 c613000a
            """)
        let bytes = BGPMessage.update(updates[0]).encode()
        #expect(hexString(bytes) == hexString(expected))
        #expect(BGPMessage.decode(bytes) == .success(.update(updates[0])))
    }

    @Test func updateTwoOctetPeerWithLargeASAddsAS4Path() {
        let u = BGPUpdate.announce(
            prefixes: [prefix("198.19.0.10/32")], localAS: 4_200_000_001, nextHopIPv4: ip("198.18.1.11"), nextHopIPv6: nil,
            fourOctetAS: false, ibgp: false)[0]
        let expected = hexBytes(
            """
            ffffffffffffffffffffffffffffffff 0037 02
            0000
            001b
               40 01 01 00
               40 02 04 02 01 5ba0
               40 03 04 c612010b
               c0 11 06 02 01 fa56ea01
            20 c613000a
            """)
        #expect(hexString(BGPMessage.update(u).encode()) == hexString(expected))
        #expect(BGPMessage.decode(expected, fourOctetAS: false) == .success(.update(u)))
    }

    @Test func updateIBGPHasEmptyPathAndLocalPref() {
        let u = BGPUpdate.announce(
            prefixes: [prefix("198.19.0.10/32")], localAS: 65001, nextHopIPv4: ip("198.18.1.11"), nextHopIPv6: nil,
            fourOctetAS: true, ibgp: true)[0]
        let expected = hexBytes(
            """
            ffffffffffffffffffffffffffffffff 0031 02
            0000
            0015
               40 01 01 00
               40 02 00
               40 03 04 c612010b
               40 05 04 00000064
            20 c613000a
            """)
        #expect(hexString(BGPMessage.update(u).encode()) == hexString(expected))
    }

    @Test func updateAnnouncingIPv6HostRoute() {
        let u = BGPUpdate.announce(
            prefixes: [prefix("2001:db8:19::10/128")], localAS: 65001, nextHopIPv4: ip("198.18.1.11"),
            nextHopIPv6: ip("2001:db8:18:1::11"), fourOctetAS: true, ibgp: false)
        #expect(u.count == 1)
        let expected = hexBytes(
            """
            ffffffffffffffffffffffffffffffff 004d 02
            0000
            0036
               80 0e 26 0002 01 10 20010db8001800010000000000000011 00
                  80 20010db8001900000000000000000010
               40 01 01 00
               40 02 06 02 01 0000fde9
            """)
        #expect(hexString(BGPMessage.update(u[0]).encode()) == hexString(expected))
        #expect(BGPMessage.decode(expected) == .success(.update(u[0])))
    }

    @Test func withdrawBothFamilies() {
        let u = BGPUpdate.withdraw(prefixes: [prefix("198.19.0.10/32"), prefix("2001:db8:19::10/128"), prefix("10.0.0.0/8")])
        #expect(u.count == 2)
        #expect(hexString(BGPMessage.update(u[0]).encode()) == hexString(message(type: 2, hexBytes("0007 20c613000a 080a 0000"))))
        #expect(
            hexString(BGPMessage.update(u[1]).encode())
                == hexString(message(type: 2, hexBytes("0000 0017 800f14 0002 01 80 20010db8001900000000000000000010"))))
        #expect(u.flatMap(\.withdrawnPrefixes) == [prefix("198.19.0.10/32"), prefix("10.0.0.0/8"), prefix("2001:db8:19::10/128")])
    }

    @Test func prefixLengthsUseTheFewestBytes() {
        let cases: [(String, [UInt8])] = [
            ("0.0.0.0/0", [0]), ("10.0.0.0/8", [8, 10]), ("10.128.0.0/9", [9, 10, 128]), ("198.19.0.0/23", [23, 198, 19, 0]),
            ("198.19.0.10/32", [32, 198, 19, 0, 10]), ("::/0", [0]), ("2001:db8::/32", [32, 0x20, 0x01, 0x0d, 0xb8]),
            ("2001:db8:ff00::/33", [33, 0x20, 0x01, 0x0d, 0xb8, 0x80]),
        ]
        for (text, bytes) in cases {
            var w = BGPWriter()
            prefix(text).write(to: &w)
            #expect(w.bytes == bytes, "\(text)")
            var r = BGPReader(bytes)
            #expect(BGPPrefix.read(from: &r, ipv6: text.contains(":")) == prefix(text), "\(text)")
        }
        #expect(prefix("10.1.2.3/8") == prefix("10.0.0.0/8"))
        #expect(BGPPrefix("10.0.0.0/33") == nil && BGPPrefix("::/129") == nil && BGPPrefix("10.0.0.0/x") == nil)
        #expect(prefix("198.19.0.10").length == 32 && prefix("2001:db8::1").length == 128)
    }

    @Test func notificationsAndRouteRefresh() {
        let n = BGPNotification.cease(subcode: 2, message: "maintenance")
        let bytes = BGPMessage.notification(n).encode()
        #expect(bytes == message(type: 3, [6, 2, 11] + Array("maintenance".utf8)))
        #expect(BGPMessage.decode(bytes) == .success(.notification(n)))
        #expect(n.description == "Cease / Administrative Shutdown (6/2): \"maintenance\"")
        #expect(BGPNotification.holdTimerExpiry.description == "Hold Timer Expired (4/0)")
        #expect(BGPNotification(code: 2, subcode: 1, data: [0, 4]).description == "OPEN Message Error / Unsupported Version Number (2/1) data 0004")
        let long = BGPNotification.cease(subcode: 2, message: String(repeating: "é", count: 200))
        #expect(long.data.count == 255 && long.data[0] == 254)

        let rr = BGPMessage.routeRefresh(afi: 2, safi: 1)
        #expect(rr.encode() == message(type: 5, [0, 2, 0, 1]))
        #expect(BGPMessage.decode(rr.encode()) == .success(rr))
    }

    @Test func largeAnnouncementsSplitAt4096Bytes() {
        let v4 = (0..<2000).map { BGPPrefix(host: IPAddress(ipv4: 0xC613_0000 + UInt32($0))) }
        let v6 = (0..<500).map { BGPPrefix(host: IPAddress(high: 0x2001_0db8_0019_0000, low: UInt64($0), isIPv6: true)) }
        for ibgp in [false, true] {
            let updates = BGPUpdate.announce(
                prefixes: v4 + v6, localAS: 4_200_000_001, nextHopIPv4: ip("198.18.1.11"), nextHopIPv6: ip("2001:db8::11"),
                fourOctetAS: false, ibgp: ibgp)
            let sizes = updates.map { BGPMessage.update($0).encode().count }
            #expect(sizes.allSatisfy { $0 <= 4096 })
            // Full messages: the next prefix would not have fit.
            #expect(sizes.filter { $0 <= 4096 - 17 }.count == 2, "\(sizes)")
            #expect(updates.flatMap(\.announcedPrefixes) == v4 + v6)
            for u in updates {
                #expect(BGPMessage.decode(BGPMessage.update(u).encode(), fourOctetAS: false) == .success(.update(u)))
            }
        }
        let withdrawals = BGPUpdate.withdraw(prefixes: v4 + v6)
        #expect(withdrawals.map { BGPMessage.update($0).encode().count }.allSatisfy { $0 <= 4096 })
        #expect(withdrawals.flatMap(\.withdrawnPrefixes) == v4 + v6)
        #expect(withdrawals.count == 3 + 3)
    }

    @Test func nextHopMissingLeavesTheFamilyOut() {
        let u = BGPUpdate.announce(
            prefixes: [prefix("198.19.0.10/32"), prefix("2001:db8::10/128")], localAS: 65001, nextHopIPv4: ip("198.18.1.11"),
            nextHopIPv6: nil, fourOctetAS: true, ibgp: false)
        #expect(u.flatMap(\.announcedPrefixes) == [prefix("198.19.0.10/32")])
    }

    @Test func roundTripsOfOtherShapes() {
        let messages: [BGPMessage] = [
            .update(BGPUpdate()),  // End-of-RIB
            .update(
                BGPUpdate(
                    withdrawn: [prefix("10.0.0.0/8")],
                    attributes: [
                        .origin(.incomplete), .asPath(BGPASPath(segments: [.sequence([1, 2, 70000]), BGPASPathSegment(type: 1, asns: [5, 6])], fourOctet: true)),
                        .nextHop(ip("192.0.2.1")), .multiExitDisc(7), .localPref(200),
                        .other(flags: 0xC0, code: 8, value: [0, 1, 0, 2]),  // COMMUNITIES
                        .other(flags: 0x40, code: 6, value: []),  // ATOMIC_AGGREGATE
                        .other(flags: 0xE0, code: 99, value: Array(repeating: 7, count: 300)),  // extended length
                        .mpUnreach(BGPMPUnreach(afi: 2, prefixes: [prefix("2001:db8::/32")])),
                        .mpReach(BGPMPReach(afi: 2, nextHops: [ip("2001:db8::1"), ip("fe80::1")], prefixes: [prefix("2001:db8:1::/48")])),
                    ],
                    nlri: [prefix("192.0.2.0/24"), prefix("0.0.0.0/0")])),
            .notification(BGPNotification(code: 9, subcode: 9, data: [1, 2, 3])),
            .open(BGPOpen(myAS: 1, holdTime: 0, routerID: 7, capabilities: [])),
            .open(BGPOpen(myAS: 1, holdTime: 0, routerID: 7, capabilities: (0..<40).map { _ in .other(code: 128, value: [1, 2, 3, 4]) })),
        ]
        for m in messages {
            #expect(BGPMessage.decode(m.encode()) == .success(m), "\(m)")
        }
    }
}

/// Every decode error path with the NOTIFICATION it carries (RFC 4271 §6).
@Suite struct BGPDecodeErrorTests {
    static let validUpdateBody = hexBytes("0000 0014 400101 00 400206 02 01 0000fde9 400304 c612010b 20c613000a")

    func expectError(_ bytes: [UInt8], _ code: UInt8, _ subcode: UInt8, data: [UInt8]? = nil, fourOctetAS: Bool = true,
                     sourceLocation: SourceLocation = #_sourceLocation) {
        guard let e = decodeError(bytes, fourOctetAS: fourOctetAS) else {
            Issue.record("decoded without error: \(hexString(bytes))", sourceLocation: sourceLocation)
            return
        }
        #expect(e.notification.code == code && e.notification.subcode == subcode, "\(e)", sourceLocation: sourceLocation)
        if let data { #expect(e.notification.data == data, "\(e)", sourceLocation: sourceLocation) }
    }

    @Test func headerErrors() {
        var badMarker = BGPMessage.keepalive.encode()
        badMarker[7] = 0xFE
        expectError(badMarker, 1, 1, data: [])
        expectError(marker + [0x00, 0x12, 0x04], 1, 2, data: [0x00, 0x12])  // under 19
        expectError(marker + [0x10, 0x01, 0x02], 1, 2, data: [0x10, 0x01])  // over 4096
        expectError(marker + [0x00, 0x14, 0x04, 0x00], 1, 2, data: [0x00, 0x14])  // KEEPALIVE of 20
        expectError(marker + [0x00, 0x1C, 0x01] + [UInt8](repeating: 0, count: 9), 1, 2, data: [0x00, 0x1C])  // OPEN of 28
        expectError(marker + [0x00, 0x16, 0x02, 0, 0, 0], 1, 2)  // UPDATE of 22
        expectError(marker + [0x00, 0x14, 0x03, 6], 1, 2)  // NOTIFICATION of 20
        expectError(message(type: 5, [0, 1, 0]), 1, 2)  // ROUTE-REFRESH of 22
        expectError(message(type: 9, []), 1, 3, data: [9])
        expectError(message(type: 0, []), 1, 3, data: [0])
        expectError(Array(BGPMessage.keepalive.encode().prefix(10)), 1, 2)  // shorter than a header
        expectError(BGPMessage.keepalive.encode() + [0], 1, 2)  // length field differs from the bytes
    }

    @Test func openErrors() {
        expectError(message(type: 1, hexBytes("03 fde9 005a c612010b 00")), 2, 1, data: [0, 4])
        expectError(message(type: 1, hexBytes("04 fde9 0001 c612010b 00")), 2, 6)
        expectError(message(type: 1, hexBytes("04 fde9 0002 c612010b 00")), 2, 6)
        expectError(message(type: 1, hexBytes("04 fde9 005a 00000000 00")), 2, 3)
        expectError(message(type: 1, hexBytes("04 fde9 005a c612010b 04 01 02 0000")), 2, 4, data: [1])  // authentication
        expectError(message(type: 1, hexBytes("04 fde9 005a c612010b 05 02 02 0000")), 2, 0)  // length disagrees
        expectError(message(type: 1, hexBytes("04 fde9 005a c612010b 04 02 05 0000")), 2, 0)  // parameter overruns
        expectError(message(type: 1, hexBytes("04 fde9 005a c612010b 04 02 02 4104")), 2, 0)  // capability overruns
        expectError(message(type: 1, hexBytes("04 fde9 005a c612010b 01 02")), 2, 0)  // parameter header cut
        // Hold time 0 and 3 are fine.
        #expect(decodeError(message(type: 1, hexBytes("04 fde9 0000 c612010b 00"))) == nil)
        #expect(decodeError(message(type: 1, hexBytes("04 fde9 0003 c612010b 00"))) == nil)
    }

    @Test func updateErrors() {
        #expect(decodeError(message(type: 2, Self.validUpdateBody)) == nil)
        expectError(message(type: 2, hexBytes("0005 0000")), 3, 1)  // withdrawn length overruns
        expectError(message(type: 2, hexBytes("0000 0005 400101")), 3, 1)  // attribute length overruns
        expectError(message(type: 2, hexBytes("0000 0002 4001")), 3, 1)  // attribute header cut
        expectError(message(type: 2, hexBytes("0000 0003 5001 00")), 3, 1)  // extended length cut
        expectError(message(type: 2, hexBytes("0000 0004 400102 00")), 3, 1)  // value overruns the list
        expectError(message(type: 2, hexBytes("0000 0008 40010100 40010100")), 3, 1)  // twice
        expectError(message(type: 2, hexBytes("0003 2001 02 0000")), 3, 10)  // withdrawn prefix cut
        expectError(message(type: 2, hexBytes("0002 2100 0000")), 3, 10)  // withdrawn /33
        expectError(message(type: 2, hexBytes("0000 0014 400101 00 400206 02 01 0000fde9 400304 c612010b 21c613000a00")), 3, 10)
        expectError(message(type: 2, hexBytes("0000 0014 400101 00 400206 02 01 0000fde9 400304 c612010b 20c613")), 3, 10)
        expectError(message(type: 2, hexBytes("0000 0003 406300")), 3, 2, data: hexBytes("406300"))  // unknown well-known
        // Missing well-known attributes when routes are announced (data: the type code).
        expectError(message(type: 2, hexBytes("0000 0009 400206 02 01 0000fde9 20c613000a")), 3, 3, data: [1])
        expectError(message(type: 2, hexBytes("0000 0004 40010100 20c613000a")), 3, 3, data: [2])
        expectError(message(type: 2, hexBytes("0000 000d 40010100 400206 02 01 0000fde9 20c613000a")), 3, 3, data: [3])
        // Flags that contradict the type (data: the whole attribute).
        expectError(message(type: 2, hexBytes("0000 0004 c0010100")), 3, 4, data: hexBytes("c0010100"))  // ORIGIN optional
        expectError(message(type: 2, hexBytes("0000 0004 00010100")), 3, 4)  // ORIGIN not transitive
        expectError(message(type: 2, hexBytes("0000 0004 60010100")), 3, 4)  // ORIGIN partial
        expectError(message(type: 2, hexBytes("0000 0007 40040400000001")), 3, 4)  // MED well-known
        expectError(message(type: 2, hexBytes("0000 0007 c00e0400010101")), 3, 4)  // MP_REACH transitive
        // Fixed sizes.
        expectError(message(type: 2, hexBytes("0000 0005 4001020000")), 3, 5, data: hexBytes("4001020000"))
        expectError(message(type: 2, hexBytes("0000 0006 400303c61201")), 3, 5)
        expectError(message(type: 2, hexBytes("0000 0006 800403000000")), 3, 5)
        expectError(message(type: 2, hexBytes("0000 0006 400503000000")), 3, 5)
        expectError(message(type: 2, hexBytes("0000 0004 40060100")), 3, 5)
        expectError(message(type: 2, hexBytes("0000 0004 40010103")), 3, 6, data: hexBytes("40010103"))
        // AS_PATH: bad segment type, empty segment, cut short, 2-octet width.
        expectError(message(type: 2, hexBytes("0000 0009 400206 05 01 0000fde9")), 3, 11)
        expectError(message(type: 2, hexBytes("0000 0005 400202 0200")), 3, 11)
        expectError(message(type: 2, hexBytes("0000 0008 400205 02 01 0000fd")), 3, 11)
        expectError(message(type: 2, hexBytes("0000 0008 400205 02 01 0000fd")), 3, 11, fourOctetAS: false)
        #expect(decodeError(message(type: 2, hexBytes("0000 0007 400204 02 01 fde9")), fourOctetAS: false) == nil)
        // MP_REACH / MP_UNREACH.
        expectError(message(type: 2, hexBytes("0000 0006 800e03 000201")), 3, 9)  // cut
        expectError(message(type: 2, hexBytes("0000 000c 800e09 000201 05 0102030405")), 3, 9)  // no reserved byte
        expectError(message(type: 2, hexBytes("0000 000d 800e0a 000201 05 0102030405 00")), 3, 9)  // next hop of 5
        expectError(message(type: 2, hexBytes("0000 000e 800e0b 000201 04 0a000001 00 8120")), 3, 9)  // /129
        expectError(message(type: 2, hexBytes("0000 0005 800f02 0002")), 3, 9)
        expectError(message(type: 2, hexBytes("0000 0007 800f04 000201 81")), 3, 9)
        // Other families are kept raw, unparsed.
        guard case .success(.update(let u)) = BGPMessage.decode(message(type: 2, hexBytes("0000 0008 800f05 0001 85 ffff")))
        else {
            Issue.record("flowspec withdraw refused")
            return
        }
        #expect(u.attributes == [.other(flags: 0x80, code: 15, value: [0, 1, 0x85, 0xFF, 0xFF])])
        // A malformed AS4_PATH is discarded (kept raw), not an error.
        guard case .success(.update(let v)) = BGPMessage.decode(message(type: 2, hexBytes("0000 0005 c01102 0200"))) else {
            Issue.record("malformed AS4_PATH refused")
            return
        }
        #expect(v.attributes == [.other(flags: 0xC0, code: 17, value: [2, 0])])
    }

    @Test func framerCutsStreamsAndStopsAtTheFirstError() {
        let a = BGPMessage.keepalive.encode()
        let b = message(type: 2, Self.validUpdateBody)
        let c = BGPMessage.notification(.cease(subcode: 2)).encode()
        let stream = a + b + c
        // Every split of the stream into two reads yields the same three messages.
        for cut in 0...stream.count {
            var f = BGPFramer()
            var got: [BGPMessage] = []
            for part in [Array(stream[..<cut]), Array(stream[cut...])] {
                f.append(part)
                while let r = f.next() {
                    guard case .success(let m) = r else {
                        Issue.record("error at cut \(cut)")
                        return
                    }
                    got.append(m)
                }
            }
            #expect(got.count == 3 && got[0] == .keepalive && got[2] == .notification(.cease(subcode: 2)), "cut \(cut)")
            #expect(f.bufferedCount == 0)
        }
        // A bad header is reported as soon as 19 bytes are in, and stays.
        var f = BGPFramer()
        f.append(a + marker + [0x20, 0x00, 0x02])
        #expect(f.next() == .success(.keepalive))
        guard case .failure(let e) = f.next() else {
            Issue.record("no error")
            return
        }
        #expect(e.notification.code == 1 && e.notification.subcode == 2)
        f.append(a)
        #expect(f.next() == .failure(e))
        // Byte by byte.
        var g = BGPFramer()
        var count = 0
        for byte in stream {
            g.append([byte])
            while case .success = g.next() { count += 1 }
        }
        #expect(count == 3)
    }
}

/// Random and mutated bytes never trap the decoder or the framer, and whatever decodes encodes
/// back to something that decodes the same (a deterministic generator; the fuzzer goes further:
/// `Tools/fuzz bgp`).
@Suite struct BGPDecodeRandomTests {
    struct SplitMix {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    static var seeds: [[UInt8]] {
        [
            BGPMessage.keepalive.encode(),
            BGPMessage.open(
                BGPOpen(myAS: 65001, holdTime: 90, routerID: 1, capabilities: [.multiprotocol(afi: 2, safi: 1), .fourOctetAS(65001), .routeRefresh])
            ).encode(),
            message(type: 2, BGPDecodeErrorTests.validUpdateBody),
            BGPMessage.update(
                BGPUpdate.announce(
                    prefixes: [prefix("2001:db8::1/128"), prefix("2001:db8::/33"), prefix("10.0.0.0/8")], localAS: 70000,
                    nextHopIPv4: ip("10.0.0.1"), nextHopIPv6: ip("2001:db8::1"), fourOctetAS: false, ibgp: false)[1]
            ).encode(),
            BGPMessage.update(BGPUpdate.withdraw(prefixes: [prefix("2001:db8::1/128")])[0]).encode(),
            BGPMessage.notification(.cease(subcode: 2, message: "bye")).encode(),
            BGPMessage.routeRefresh(afi: 1, safi: 1).encode(),
        ]
    }

    /// Decodes, and if it decodes, checks that the re-encoding decodes to the same message.
    static func check(_ bytes: [UInt8], fourOctetAS: Bool) -> Bool {
        guard case .success(let m) = BGPMessage.decode(bytes, fourOctetAS: fourOctetAS) else { return false }
        let again = m.encode()
        #expect(again.count <= bytes.count)
        #expect(BGPMessage.decode(again, fourOctetAS: fourOctetAS) == .success(m), "\(hexString(bytes))")
        return true
    }

    @Test func mutatedMessagesNeverTrap() {
        var rng = SplitMix(state: 42)
        var decoded = 0
        for round in 0..<20_000 {
            var bytes = Self.seeds[rng.below(Self.seeds.count)]
            for _ in 0...rng.below(4) {
                switch rng.below(4) {
                case 0: bytes[rng.below(bytes.count)] = UInt8(truncatingIfNeeded: rng.next())
                case 1 where bytes.count > 19: bytes.remove(at: 19 + rng.below(bytes.count - 19))
                case 2: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: 19 + rng.below(bytes.count - 18))
                default: bytes[rng.below(bytes.count)] ^= 1 << UInt8(rng.below(8))
                }
            }
            // Mostly keep the length field honest so the body parsers get exercised.
            if round % 4 != 0 && bytes.count >= 18 {
                bytes[16] = UInt8(bytes.count >> 8 & 0xFF)
                bytes[17] = UInt8(bytes.count & 0xFF)
            }
            if Self.check(bytes, fourOctetAS: round % 2 == 0) { decoded += 1 }
            var f = BGPFramer()
            f.append(bytes + bytes)
            var n = 0
            while let r = f.next(), n < 4 {
                n += 1
                if case .failure = r { break }
            }
        }
        #expect(decoded > 1000)
    }

    @Test func randomBytesNeverTrap() {
        var rng = SplitMix(state: 7)
        for _ in 0..<5_000 {
            let n = rng.below(200)
            var bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if n >= 19 && rng.below(2) == 0 {
                for i in 0..<16 { bytes[i] = 0xFF }
                bytes[16] = 0
                bytes[17] = UInt8(n)
                bytes[18] = UInt8(1 + rng.below(5))
            }
            _ = Self.check(bytes, fourOctetAS: rng.below(2) == 0)
            var f = BGPFramer()
            f.append(bytes)
            _ = f.next()
        }
    }
}
