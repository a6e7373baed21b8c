// The packet tracer in the core: the marker (IPv4 reserved flag / IPv6 flow label) plus the
// 40-byte trailer make a probe; a probe is decided exactly like any packet (same backend, same
// output bytes), its verdict says `traced` and why the backend was chosen, and its record waits
// for `takeTraces`. Unmarked packets, and marked ones without a trailer, are not traced.
import Testing

@testable import MaglevCore

private typealias H = DataplaneHarness
private typealias W = FixtureWorld

@Suite struct TraceProbeTests {
    static let collector4 = TraceProbe(collector: FrameBuilder.address("198.18.200.9"), collectorPort: 9999, id: 0x0123_4567_89AB_CDEF)
    static let collector6 = TraceProbe(collector: FrameBuilder.address("2001:db8:c::9"), collectorPort: 4242, id: 7)

    static func marked4(_ f: FrameBuilder, _ probe: TraceProbe = collector4) -> FrameBuilder {
        f.payload(TraceMarker.trailer(probe)).ipv4 { $0.reservedFlag = true }
    }

    static func marked6(_ f: FrameBuilder, _ probe: TraceProbe = collector6) -> FrameBuilder {
        f.payload(TraceMarker.trailer(probe)).ipv6 { $0.flowLabel = TraceMarker.ipv6FlowLabel }
    }

    static func dataplane(_ config: DataplaneConfig = W.config()) throws -> Dataplane {
        Dataplane(snapshot: try ForwardingSnapshot(config: config), connectionCapacity: 64, fragmentCapacity: 16)
    }

    static func takeAll(_ dp: Dataplane) -> [TraceRecord] {
        var out: [TraceRecord] = []
        dp.takeTraces { out.append(contentsOf: $0) }
        return out
    }

    // MARK: Marker and trailer

    @Test func trailerRoundTripsForBothCollectorFamilies() {
        for probe in [Self.collector4, Self.collector6] {
            let bytes = TraceMarker.trailer(probe)
            #expect(bytes.count == TraceMarker.trailerLength)
            #expect(Array(bytes[0..<8]) == Array("MGTRACE1".utf8))
            let read = bytes.withUnsafeBytes { TraceMarker.read($0.baseAddress!, length: $0.count) }
            #expect(read == probe)
        }
        var bad = TraceMarker.trailer(Self.collector4)
        bad[8] = 5  // family neither 4 nor 6
        #expect(bad.withUnsafeBytes { TraceMarker.read($0.baseAddress!, length: $0.count) } == nil)
        bad = TraceMarker.trailer(Self.collector4)
        bad[7] = UInt8(ascii: "2")
        #expect(bad.withUnsafeBytes { TraceMarker.read($0.baseAddress!, length: $0.count) } == nil)
    }

    @Test func theParserNotesTheMarkerAndNothingElseChanges() {
        let syn = FrameBuilder.tcp(W.client4, 40000, W.web4, 80, flags: TCPFlags.syn).payload(TraceMarker.trailer(Self.collector4))
        let udp6 = FrameBuilder.udp(W.client6, 5353, W.any6, 53).payload(TraceMarker.trailer(Self.collector6))
        for (plain, marked) in [
            (syn, syn.ipv4 { $0.reservedFlag = true }),
            (udp6, udp6.ipv6 { $0.flowLabel = TraceMarker.ipv6FlowLabel }),
        ] {
            guard case .parsed(let p) = FrameBuilder.parse(plain.bytes, linkType: .ethernet),
                case .parsed(let m) = FrameBuilder.parse(marked.bytes, linkType: .ethernet)
            else {
                Issue.record("did not parse")
                continue
            }
            #expect(!p.traceMarked)
            #expect(m.traceMarked)
            #expect(m.key == p.key)
            #expect(m.l4Offset == p.l4Offset && m.l3Length == p.l3Length && m.fragment == p.fragment)
        }
        // Other flow labels (a host's own) are not the marker.
        guard case .parsed(let other) = FrameBuilder.parse(udp6.ipv6 { $0.flowLabel = 0x7ACEC }.bytes, linkType: .ethernet)
        else {
            Issue.record("did not parse")
            return
        }
        #expect(!other.traceMarked)
    }

    // MARK: Verdicts, IPv4 and IPv6

    @Test func anIPv4TCPProbeIsForwardedLikeAnyPacketAndRecorded() throws {
        let dp = try Self.dataplane()
        let syn = Self.marked4(FrameBuilder.tcp(W.client4, 40000, W.web4, 80, flags: TCPFlags.syn))
        let out = H.run(dp, syn.bytes)
        #expect(out.verdict.action == .forward)
        #expect(out.verdict.traced)
        #expect(out.verdict.selection == .tableLookup)
        // Byte for byte what the fixture world expects of any packet: the probe reaches a4.
        #expect(out.bytes == W.gre(syn.ipPacket, to: "a4"), "\(hexDiff(out.bytes, W.gre(syn.ipPacket, to: "a4")))")
        let records = Self.takeAll(dp)
        #expect(records.count == 1)
        let r = try #require(records.first)
        #expect(r.probe == Self.collector4)
        #expect(r.key == FlowKey(source: FrameBuilder.address(W.client4), destination: FrameBuilder.address(W.web4), sourcePort: 40000, destinationPort: 80, proto: IPProtocol.tcp))
        #expect(dp.snapshot.vipNames[Int(r.vip)] == "web4")
        #expect(dp.snapshot.backendNames[Int(r.backend)] == "a4")
        #expect(r.action == .forward && r.reason == .tableLookup && r.dropReason == nil)
        #expect(Self.takeAll(dp).isEmpty, "taken once")

        // The same flow again: a connection-table hit.
        let ack = Self.marked4(FrameBuilder.tcp(W.client4, 40000, W.web4, 80, flags: TCPFlags.ack))
        let again = H.run(dp, ack.bytes)
        #expect(again.verdict.traced && again.verdict.selection == .connectionHit)
        #expect(Self.takeAll(dp).map(\.reason) == [.connectionHit])
        #expect(dp.statistics.traced == 2)
    }

    @Test func anIPv6UDPProbeIsForwardedLikeAnyPacketAndRecorded() throws {
        let dp = try Self.dataplane()
        let udp = Self.marked6(FrameBuilder.udp(W.client6, 5353, W.any6, 53))
        let out = H.run(dp, udp.bytes)
        #expect(out.verdict.action == .forward && out.verdict.traced && out.verdict.selection == .tableLookup)
        #expect(out.bytes == W.gre(udp.ipPacket, to: "d4"), "\(hexDiff(out.bytes, W.gre(udp.ipPacket, to: "d4")))")
        let r = try #require(Self.takeAll(dp).first)
        #expect(r.probe == Self.collector6)
        #expect(r.key.proto == IPProtocol.udp && r.key.sourcePort == 5353 && r.key.destinationPort == 53)
        #expect(dp.snapshot.backendNames[Int(r.backend)] == "d4")
    }

    @Test func unmarkedPacketsAndMarkersWithoutTrailersAreNotTraced() throws {
        let dp = try Self.dataplane()
        let trailer = TraceMarker.trailer(Self.collector4)
        let cases: [(String, FrameBuilder)] = [
            ("trailer, no marker (IPv4)", FrameBuilder.tcp(W.client4, 1, W.web4, 80, flags: TCPFlags.syn).payload(trailer)),
            ("trailer, no marker (IPv6)", FrameBuilder.udp(W.client6, 2, W.any6, 53).payload(trailer)),
            ("marker, no trailer (IPv4)", FrameBuilder.tcp(W.client4, 3, W.web4, 80, flags: TCPFlags.syn).payload(40).ipv4 { $0.reservedFlag = true }),
            ("marker, no trailer (IPv6)", FrameBuilder.udp(W.client6, 4, W.any6, 53).ipv6 { $0.flowLabel = TraceMarker.ipv6FlowLabel }),
            ("marker, trailer cut by the capture", FrameBuilder.tcp(W.client4, 5, W.web4, 80, flags: TCPFlags.syn)),
        ]
        for (name, f) in cases {
            var frame = f.bytes
            if name.hasPrefix("marker, trailer cut") {
                frame = Array(Self.marked4(f).bytes.dropLast(10))
            }
            let out = H.run(dp, frame)
            #expect(!out.verdict.traced, "\(name)")
            if !name.hasPrefix("marker, trailer cut") {
                #expect(out.verdict.action == .forward, "\(name)")
            }
        }
        #expect(dp.pendingTraces == 0)
        #expect(dp.statistics.traced == 0)
    }

    @Test func aProbeToNoVIPOrDroppedIsStillReported() throws {
        let dp = try Self.dataplane()
        let stray = Self.marked4(FrameBuilder.tcp(W.client4, 1, "198.19.0.99", 80, flags: TCPFlags.syn))
        let out = H.run(dp, stray.bytes)
        #expect(out.verdict.action == .pass && out.verdict.traced)
        let r = try #require(Self.takeAll(dp).first)
        #expect(r.action == .pass && r.dropReason == .unknownVIP && r.vip == -1 && r.backend == -1 && r.reason == SelectionReason.none)
    }

    // MARK: Fragments and ICMP

    @Test func fragmentsSayWhichFragmentPathChoseTheBackend() throws {
        for policy in [FragmentPolicy.fragmentTable, .threeTuple] {
            var config = W.config()
            config.fragmentPolicy = policy
            let dp = try Self.dataplane(config)
            // Every fragment carries the marker; the trailer is the last 40 bytes of the last one.
            let datagram = FrameBuilder.udp(W.client4, 7000, W.dns4, 53).payload(64 + 40)
                .payload(Array(repeating: 0xAB, count: 64) + TraceMarker.trailer(Self.collector4))
                .ipv4 {
                    $0.identification = 0x4242
                    $0.reservedFlag = true
                }
            let fragments = datagram.ipv4Fragments(payloadPerFragment: 72 - 8)
            #expect(fragments.count == 2)
            let outs = fragments.map { H.run(dp, $0) }
            #expect(outs.allSatisfy { $0.verdict.action == .forward })
            #expect(!outs[0].verdict.traced, "the first fragment does not end with the trailer")
            #expect(outs[1].verdict.traced)
            #expect(outs[0].verdict.selection == (policy == .fragmentTable ? .tableLookup : .threeTupleFragment))
            #expect(outs[1].verdict.selection == (policy == .fragmentTable ? .fragmentTableHit : .threeTupleFragment))
            let r = try #require(Self.takeAll(dp).first)
            #expect(r.fragment == .nonFirst && r.key.sourcePort == 0)
            #expect(r.reason == outs[1].verdict.selection)
        }
    }

    @Test func anICMPErrorFollowsItsQuotedFlowAndSaysSo() throws {
        let dp = try Self.dataplane()
        let reply = FrameBuilder.tcp(W.web4, 80, W.client4, 40000, flags: TCPFlags.syn | TCPFlags.ack)
        let error = FrameBuilder.icmp(W.router4, W.web4, .destinationUnreachable(code: 4, quoting: reply.ipPacket + TraceMarker.trailer(Self.collector4)))
            .ipv4 { $0.reservedFlag = true }
        let out = H.run(dp, error.bytes)
        #expect(out.verdict.action == .forward && out.verdict.traced && out.verdict.selection == .icmpQuote)
        let r = try #require(Self.takeAll(dp).first)
        #expect(r.key.sourcePort == 40000 && r.key.destinationPort == 80)
        #expect(dp.snapshot.backendNames[Int(r.backend)] == "a4")
    }

    // MARK: Batches

    @Test func recordsBeyondTheCapacityAreCountedNotKeptAndProbesGoWherePlainPacketsGo() throws {
        let config = H.config(backends: H.backends(10))
        let dp = Dataplane(snapshot: try ForwardingSnapshot(config: config))
        let n = Dataplane.traceCapacity + 6
        let frames = (0..<n).map {
            Self.marked4(H.tcp($0, flags: TCPFlags.syn), TraceProbe(collector: Self.collector4.collector, collectorPort: 9999, id: UInt64($0))).bytes
        }
        let outs = H.runBatch(dp, frames)
        #expect(outs.allSatisfy { $0.verdict.traced && $0.verdict.action == .forward })
        let records = Self.takeAll(dp)
        #expect(records.map(\.probe.id) == (0..<UInt64(Dataplane.traceCapacity)).map { $0 })
        #expect(records.map(\.backend) == outs.prefix(Dataplane.traceCapacity).map(\.verdict.backend))
        #expect(dp.statistics.traced == UInt64(n))
        #expect(dp.statistics.tracesOverflowed == 6)
        // Unmarked packets of the same flows reach the same backends as the probes did, and the
        // probes spread over the backends like any flows.
        let plain = (0..<n).map { H.tcp($0, flags: TCPFlags.syn).bytes }
        let plainOuts = H.runBatch(Dataplane(snapshot: try ForwardingSnapshot(config: config)), plain)
        #expect(plainOuts.map(\.verdict.backend) == outs.map(\.verdict.backend))
        #expect(Set(outs.map(\.verdict.backend)).count > 5)
    }

    // MARK: maglev probe's packets

    @Test func probePacketsAreTracedOnBothFamiliesAndBothProtocols() throws {
        let dp = try Self.dataplane()
        let cases: [(String, String, UInt16, UInt8, String)] = [
            (W.client4, W.web4, 80, IPProtocol.tcp, "a4"), (W.client4, W.dns4, 53, IPProtocol.udp, "b6"),
            (W.client6, W.web6, 443, IPProtocol.tcp, "c6"), (W.client6, W.any6, 53, IPProtocol.udp, "d4"),
        ]
        for (i, (client, vip, port, proto, backend)) in cases.enumerated() {
            let packet = TraceMarker.probePacket(
                source: FrameBuilder.address(client), destination: FrameBuilder.address(vip), sourcePort: UInt16(30000 + i),
                destinationPort: port, proto: proto, probe: TraceProbe(collector: Self.collector4.collector, collectorPort: 9, id: UInt64(i)),
                identification: 77, sequence: 1234)
            // Checksums: the IPv4 header and the transport checksum (pseudo-header included) verify.
            let ipv6 = packet[0] >> 4 == 6
            let ipLength = ipv6 ? 40 : 20
            if !ipv6 { #expect(H.onesComplementSum(packet[0..<20]) == 0xFFFF) }
            var pseudo = packet[(ipv6 ? 8 : 12)..<ipLength].map { $0 }
            pseudo += [0, proto, UInt8((packet.count - ipLength) >> 8), UInt8((packet.count - ipLength) & 0xFF)]
            #expect(H.onesComplementSum(pseudo + packet[ipLength...]) == 0xFFFF, "checksum of case \(i)")
            let out = H.run(dp, packet, linkType: .rawIP)
            #expect(out.verdict.action == .forward && out.verdict.traced, "case \(i)")
            #expect(dp.snapshot.backendNames[Int(out.verdict.backend)] == backend)
        }
        #expect(Self.takeAll(dp).map(\.probe.id) == [0, 1, 2, 3])
    }
}
