import MaglevCore
import MaglevForwarder
import MaglevLinux
import Testing

/// `--io mmsg`: the plain recvmmsg/sendmmsg worker, live in network namespaces made and removed
/// by the test (the same lab as LiveForwardingTests).
/// Needs root and `ip netns`, no io_uring; elsewhere the suite is reported as skipped with the reason.
@Suite(
    .serialized,
    .enabled(if: NetworkLab.namespacesUnavailableReason == nil, Comment(rawValue: NetworkLab.namespacesUnavailableReason ?? "")))
struct MmsgForwardingTests {
    /// UDP and TCP over IPv4 and IPv6, more packets than one batch of 64: every packet to a VIP
    /// comes back GRE-encapsulated to the backend the table picks, inner packet byte-identical,
    /// each exactly once; strays stay out of user space.
    @Test(arguments: [ForwarderSend.packet, .raw])
    func forwardsEveryPacketToTheTableBackendOverGRE(send: ForwarderSend) throws {
        try Self.forwardsEveryPacket(io: .mmsg, send: send)
    }

    /// The same for `--io ring` (TPACKET_V3 receive ring, io_uring sends): needs io_uring too.
    @Test(
        .enabled(if: NetworkLab.unavailableReason == nil, Comment(rawValue: NetworkLab.unavailableReason ?? "")),
        arguments: [ForwarderIO.ring, .ringFrames], [ForwarderSend.packet, .raw])
    func theRingEnginesForwardEveryPacketToTheTableBackendOverGRE(io: ForwarderIO, send: ForwarderSend) throws {
        try Self.forwardsEveryPacket(io: io, send: send)
    }

    /// The same for `--io xdp` (an XDP program steering VIP traffic to an AF_XDP socket; copy
    /// mode on veth), GRE out of the XSK TX ring or the raw socket. Strays pass to the kernel.
    @Test(
        .enabled(if: NetworkLab.unavailableReason == nil, Comment(rawValue: NetworkLab.unavailableReason ?? "")),
        arguments: [ForwarderSend.packet, .raw])
    func theXDPEngineForwardsEveryPacketToTheTableBackendOverGRE(send: ForwarderSend) throws {
        try Self.forwardsEveryPacket(io: .xdp, send: send)
    }

    static func forwardsEveryPacket(io: ForwarderIO, send: ForwarderSend) throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let config = LiveForwardingTests.config()
        var options = LiveForwardingTests.options(lab)
        options.io = io
        options.send = send
        let forwarder = try Forwarder(config: config, options: options)
        try forwarder.start()
        defer { forwarder.stop() }

        var packets: [[UInt8]] = []
        for i in 0..<150 {
            packets.append(
                Packets.ipv4(
                    source: LiveForwardingTests.client4, destination: LiveForwardingTests.vip4, proto: IPProtocol.udp,
                    sourcePort: 40000 + i, destinationPort: 53))
        }
        for i in 0..<20 {
            packets.append(
                Packets.ipv4(
                    source: LiveForwardingTests.client4, destination: LiveForwardingTests.vip4, proto: IPProtocol.tcp,
                    sourcePort: 50000 + i, destinationPort: 80))
        }
        for i in 0..<20 {
            packets.append(
                Packets.ipv6(
                    source: LiveForwardingTests.client6, destination: LiveForwardingTests.vip6, proto: IPProtocol.udp,
                    sourcePort: 41000 + i, destinationPort: 443))
        }
        let strays = (0..<5).map {
            Packets.ipv4(
                source: LiveForwardingTests.client4, destination: "198.18.100.99", proto: IPProtocol.udp,
                sourcePort: 45000 + $0, destinationPort: 53)
        }
        let captured = try LiveForwardingTests.exchange(
            lab, send: packets + strays, expect: packets.count, keep: LiveForwardingTests.isGRE)

        let offline = try OfflineForwarder(config)
        var remaining = captured
        for p in packets {
            let (verdict, output) = offline.process(p)
            #expect(verdict.action == .forward)
            guard let i = remaining.firstIndex(where: { Packets.sameExceptIPv4IDAndChecksum($0, output) }) else {
                Issue.record("no GRE packet carrying \(Packets.hex(p))")
                continue
            }
            let got = remaining.remove(at: i)
            let overhead = got[0] >> 4 == 4 ? 24 : 44
            #expect(Array(got[overhead...]) == p, "inner packet byte-identical")
            if got[0] >> 4 == 4 { #expect(Packets.checksum(got[0..<20]) == 0, "outer IPv4 checksum valid") }
        }
        #expect(remaining.isEmpty, "unexpected GRE packets: \(remaining.count)")

        let stats = forwarder.stop()
        let mode = stats.workers[0].ringMode
        #expect(mode == io.rawValue || mode.hasPrefix(io.rawValue + " ("), "io mode \(mode)")
        #expect(stats.totalDataplane.packets == UInt64(packets.count), "the kernel filter keeps strays out")
        #expect(stats.totalDataplane.forwarded == UInt64(packets.count))
        #expect(stats.totalIO.received == UInt64(packets.count))
        #expect(stats.totalIO.sent == UInt64(packets.count))
        #expect(stats.totalIO.sendErrors == 0)
        #expect(stats.totalIO.sentAsFrames == (send == .packet ? UInt64(packets.count) : 0))
        #expect(stats.totalIO.nextHopFallbacks == 0)
        // The ring engine's frames all went through its transmit ring (one interface).
        #expect(stats.totalIO.sentThroughTxRing == (io != .mmsg && send == .packet ? UInt64(packets.count) : 0))
        // Raw-socket packets carry finished checksums: the packet socket never marks them.
        #expect(stats.totalDataplane.checksumsCompleted == 0 && stats.totalDataplane.checksumsNotCompletable == 0)
    }
}
