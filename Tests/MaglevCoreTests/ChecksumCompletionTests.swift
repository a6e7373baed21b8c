// Completing CHECKSUM_PARTIAL checksums (`PacketSlot.checksumPending`): a frame whose TCP/UDP
// checksum field holds only the folded pseudo-header sum, as the kernel leaves it for a NIC,
// leaves the data plane with the checksum a NIC would have written; unmarked frames and frames
// it cannot complete are forwarded byte for byte.

import Testing

@testable import MaglevCore

private typealias H = DataplaneHarness

@Suite struct ChecksumCompletionTests {
    /// TCP and UDP VIPs in both families; backends are IPv4 (an IPv6 inner packet rides in
    /// IPv4 GRE just as well).
    static func config() -> DataplaneConfig {
        DataplaneConfig(
            vips: [
                VIPConfig(
                    name: "web", address: FrameBuilder.address(H.vip4), proto: IPProtocol.tcp, port: 80,
                    backends: H.backends(4)),
                VIPConfig(
                    name: "dns", address: FrameBuilder.address(H.vip4), proto: IPProtocol.udp, port: 53,
                    backends: H.backends(4, first: 10)),
                VIPConfig(
                    name: "web6", address: FrameBuilder.address(H.vip6), proto: IPProtocol.tcp, port: 80,
                    backends: H.backends(4, first: 20)),
                VIPConfig(
                    name: "dns6", address: FrameBuilder.address(H.vip6), proto: IPProtocol.udp, port: 53,
                    backends: H.backends(4, first: 30)),
            ],
            hashSeed: 7, encapSourceIPv4: H.encapSource4, encapSourceIPv6: H.encapSource6)
    }

    /// A correct frame of each kind: TCP and UDP over IPv4 and IPv6, odd and even lengths.
    static func frames() -> [(String, FrameBuilder)] {
        [
            ("tcp4", FrameBuilder.tcp(H.client(1), 40001, H.vip4, 80, flags: TCPFlags.syn)),
            ("tcp4 payload 333", FrameBuilder.tcp(H.client(2), 40002, H.vip4, 80).payload(333)),
            ("udp4", FrameBuilder.udp(H.client(3), 40003, H.vip4, 53).payload(48)),
            ("udp4 payload 1", FrameBuilder.udp(H.client(4), 40004, H.vip4, 53).payload(1)),
            ("tcp6", FrameBuilder.tcp(H.client(5, ipv6: true), 40005, H.vip6, 80, flags: TCPFlags.syn)),
            ("tcp6 payload 1001", FrameBuilder.tcp(H.client(6, ipv6: true), 40006, H.vip6, 80).payload(1001)),
            ("udp6", FrameBuilder.udp(H.client(7, ipv6: true), 40007, H.vip6, 53).payload(64)),
            (
                "udp6 after extension headers",
                FrameBuilder.udp(H.client(8, ipv6: true), 40008, H.vip6, 53).payload(17)
                    .extensionHeaders([.hopByHop(), .destinationOptions()])
            ),
        ]
    }

    /// Where the L4 header of an Ethernet frame built by FrameBuilder begins, and its protocol
    /// (IPv6: past hop-by-hop, routing and destination options headers).
    static func transport(_ frame: [UInt8]) -> (offset: Int, proto: UInt8) {
        if frame[14] >> 4 == 4 { return (14 + Int(frame[14] & 0x0F) * 4, frame[14 + 9]) }
        var next = frame[14 + 6]
        var at = 14 + 40
        while next == 0 || next == 60 || next == 43 {
            next = frame[at]
            at += (Int(frame[at + 1]) + 1) * 8
        }
        return (at, next)
    }

    /// What the kernel leaves in the checksum field of a CHECKSUM_PARTIAL segment: the folded
    /// ones'-complement sum of the pseudo-header (addresses, protocol, L4 length), not inverted.
    /// Computed from the frame's own header fields, independently of the data plane.
    static func partial(_ frame: [UInt8]) -> [UInt8] {
        let (l4, proto) = transport(frame)
        let ipv6 = frame[14] >> 4 == 6
        let ipEnd = ipv6 ? 14 + 40 + H.be16(frame, 14 + 4) : 14 + H.be16(frame, 14 + 2)
        let length = ipEnd - l4
        let addresses = ipv6 ? Array(frame[(14 + 8)..<(14 + 40)]) : Array(frame[(14 + 12)..<(14 + 20)])
        let pseudo = H.onesComplementSum(addresses + [0, proto, UInt8(length >> 8), UInt8(length & 0xFF)])
        let field = l4 + (proto == IPProtocol.tcp ? 16 : 6)
        var f = frame
        f[field] = UInt8(pseudo >> 8)
        f[field + 1] = UInt8(pseudo & 0xFF)
        return f
    }

    static func overhead(_ output: [UInt8]) -> Int { output[0] >> 4 == 4 ? 24 : 44 }

    @Test(arguments: [false, true])
    func markedSegmentsLeaveWithTheChecksumANICWouldHaveWritten(batch: Bool) throws {
        let dp = Dataplane(snapshot: try ForwardingSnapshot(config: Self.config()))
        let cases = Self.frames()
        let partials = cases.map { Self.partial($0.1.bytes) }
        let outputs =
            batch
            ? H.runBatch(dp, partials, checksumPending: true)
            : partials.map { H.run(dp, $0, checksumPending: true) }
        for ((name, builder), out) in zip(cases, outputs) {
            #expect(out.verdict.action == .forward, "\(name)")
            guard out.verdict.action == .forward else { continue }
            let inner = Array(out.bytes[Self.overhead(out.bytes)...])
            let same = inner == builder.ipPacket
            #expect(same, "\(name): inner packet as first built, correct checksum included")
        }
        // The test's own "partial" really differs from the correct frame in every case.
        for ((name, builder), p) in zip(cases, partials) { #expect(p != builder.bytes, "\(name)") }
        let s = dp.statistics
        #expect(s.checksumsCompleted == UInt64(cases.count))
        #expect(s.checksumsNotCompletable == 0)
        #expect(s.forwarded == UInt64(cases.count))
    }

    @Test func unmarkedSegmentsAreForwardedByteForByte() throws {
        let dp = Dataplane(snapshot: try ForwardingSnapshot(config: Self.config()))
        for (name, builder) in Self.frames() {
            let partial = Self.partial(builder.bytes)
            let out = H.run(dp, partial)
            #expect(out.verdict.action == .forward, "\(name)")
            let same = Array(out.bytes[Self.overhead(out.bytes)...]) == Array(partial[14...])
            #expect(same, "\(name): untouched")
        }
        #expect(dp.statistics.checksumsCompleted == 0)
        #expect(dp.statistics.checksumsNotCompletable == 0)
    }

    /// A correct UDP checksum of 0 is sent as 0xFFFF (0 means "no checksum").
    @Test func aUDPChecksumOfZeroIsWrittenAsAllOnes() throws {
        let dp = Dataplane(snapshot: try ForwardingSnapshot(config: Self.config()))
        for ipv6 in [false, true] {
            // With a 2-byte payload of 0, the checksum is ~S (S: everything else); a payload
            // word of ~S makes the whole sum 0xFFFF and so the checksum 0.
            let zero = FrameBuilder.udp(H.client(9, ipv6: ipv6), 40009, ipv6 ? H.vip6 : H.vip4, 53).payload([0, 0])
            let l4 = Self.transport(zero.bytes).offset
            let word = [zero.bytes[l4 + 6], zero.bytes[l4 + 7]]
            let frame = zero.payload(word)
            let out = H.run(dp, Self.partial(frame.bytes), checksumPending: true)
            #expect(out.verdict.action == .forward)
            let inner = Array(out.bytes[Self.overhead(out.bytes)...])
            let innerL4 = l4 - 14
            #expect(inner[innerL4 + 6] == 0xFF && inner[innerL4 + 7] == 0xFF, "ipv6 \(ipv6)")
            let same = inner == frame.ipPacket
            #expect(same, "ipv6 \(ipv6): nothing else changed")
        }
        #expect(dp.statistics.checksumsCompleted == 2)
    }

    /// Fragments (the segment is not all here), ICMP errors (they quote TCP or UDP but are not)
    /// and other protocols are forwarded unchanged and counted as not completable.
    @Test func whatCannotBeCompletedIsForwardedUnchangedAndCounted() throws {
        var config = Self.config()
        config.vips.append(
            VIPConfig(name: "any", address: FrameBuilder.address("198.18.0.11"), backends: H.backends(2, first: 40)))
        let dp = Dataplane(snapshot: try ForwardingSnapshot(config: config))
        var frames = FrameBuilder.udp(H.client(10), 40010, H.vip4, 53).payload(100).ipv4 { $0.identification = 9 }
            .ipv4Fragments(payloadPerFragment: 40)
        frames += FrameBuilder.tcp(H.client(11, ipv6: true), 40011, H.vip6, 80).payload(100)
            .ipv6Fragments(payloadPerFragment: 48, identification: 5)
        let quoted = FrameBuilder.tcp(H.vip4, 80, H.client(12), 40012)
        frames.append(FrameBuilder.icmp(H.router4, H.vip4, .destinationUnreachable(code: 4, quoting: quoted)).bytes)
        frames.append(FrameBuilder.icmp(H.client(13), "198.18.0.11", .echoRequest(id: 3)).bytes)
        frames.append(FrameBuilder.ip(H.client(14), "198.18.0.11", proto: IPProtocol.gre).payload(20).bytes)
        for (i, frame) in frames.enumerated() {
            let out = H.run(dp, frame, checksumPending: true)
            #expect(out.verdict.action == .forward, "frame \(i)")
            guard out.verdict.action == .forward else { continue }
            let same = Array(out.bytes[Self.overhead(out.bytes)...]) == Array(frame[14...])
            #expect(same, "frame \(i) untouched")
        }
        #expect(dp.statistics.checksumsNotCompletable == UInt64(frames.count))
        #expect(dp.statistics.checksumsCompleted == 0)
    }

    /// Only forwarded packets are completed: a marked packet that is passed or dropped is not
    /// touched and not counted.
    @Test func packetsNotForwardedAreNeitherCompletedNorCounted() throws {
        let dp = Dataplane(snapshot: try ForwardingSnapshot(config: Self.config()))
        let stray = Self.partial(FrameBuilder.udp(H.client(15), 40015, "198.18.0.99", 53).bytes)
        #expect(H.run(dp, stray, checksumPending: true).verdict.action == .pass)
        let noHeadroom = Self.partial(FrameBuilder.udp(H.client(16), 40016, H.vip4, 53).bytes)
        #expect(H.run(dp, noHeadroom, headroom: 0, checksumPending: true).verdict.reason == .noHeadroom)
        #expect(dp.statistics.checksumsCompleted == 0)
        #expect(dp.statistics.checksumsNotCompletable == 0)
    }

    /// `isLeftToTheNIC` (engines without the kernel's flag, `--io xdp`): true for the partial
    /// form of every TCP/UDP frame without IPv6 extension headers, false for the complete frame,
    /// for a complete frame whose checksum equals its pseudo-header sum by chance, for frames
    /// with other corruption, and for what it cannot judge (extension headers, fragments, ICMP,
    /// truncated frames).
    @Test func partialChecksumsAreRecognisedFromTheBytesAlone() {
        func judge(_ frame: [UInt8]) -> Bool {
            frame.withUnsafeBytes { ChecksumCompletion.isLeftToTheNIC($0.baseAddress!, length: frame.count) }
        }
        for (name, builder) in Self.frames() {
            let complete = builder.bytes
            #expect(!judge(complete), "\(name): complete")
            let partial = Self.partial(complete)
            let hasExtensions = name.contains("extension")
            #expect(judge(partial) == !hasExtensions, "\(name): partial")
            // Cut short of its claimed length: not judged.
            #expect(!judge(Array(partial.dropLast())), "\(name): truncated")
        }
        // A complete checksum that equals the pseudo-header sum: search payload bytes until the
        // completed field happens to equal it (about one in 65,536), then it must verify and be
        // left alone.
        var found = false
        let base = FrameBuilder.udp(H.client(1), 40000, H.vip4, 53).payload(4).bytes
        let l4 = 14 + 20
        for seed in 0..<(1 << 22) where !found {
            var frame = base
            frame[l4 + 8] = UInt8(seed & 0xFF)
            frame[l4 + 9] = UInt8((seed >> 8) & 0xFF)
            frame[l4 + 10] = UInt8((seed >> 16) & 0xFF)
            // Recompute the real checksum for the changed payload.
            frame[l4 + 6] = 0
            frame[l4 + 7] = 0
            let pseudo = H.onesComplementSum(Array(frame[26..<34]) + [0, IPProtocol.udp, 0, 12])
            let sum = H.onesComplementSum(Array(frame[l4...]) + [UInt8(pseudo >> 8), UInt8(pseudo & 0xFF)])
            let checksum = ~UInt16(sum)
            guard checksum == UInt16(pseudo) else { continue }
            frame[l4 + 6] = UInt8(checksum >> 8)
            frame[l4 + 7] = UInt8(checksum & 0xFF)
            #expect(!judge(frame), "a complete checksum equal to the pseudo-header sum is left alone")
            found = true
        }
        #expect(found, "no coincidence found in the search range")
        // Fragments and ICMP are never judged.
        let fragment = FrameBuilder.udp(H.client(9), 40009, H.vip4, 53).payload(100).ipv4Fragments(payloadPerFragment: 40)[0]
        #expect(!judge(Self.partial(fragment)))
        #expect(!judge(FrameBuilder.icmp(H.client(13), H.vip4, .echoRequest(id: 3)).bytes))
    }
}
