import Foundation
import MaglevCore
import MaglevForwarder
import MaglevLinux
import Testing

/// CHECKSUM_PARTIAL end to end: the client's kernel TCP and UDP stacks send to the VIPs over a
/// veth that keeps TX checksum offload on (the default), so every segment reaches the
/// forwarder with only the pseudo-header sum in its checksum field. The GRE packets that come
/// back toward the backends must carry inner segments with correct checksums, which the test
/// computes itself. Namespaces `mglab-t<pid>-...`, made and removed by the test.
/// Needs root and `ip netns` (the io_uring case also io_uring); elsewhere reported as skipped
/// with the reason.
@Suite(
    .serialized,
    .enabled(if: NetworkLab.namespacesUnavailableReason == nil, Comment(rawValue: NetworkLab.namespacesUnavailableReason ?? "")))
struct ChecksumOffloadLiveTests {
    static let udpPerFamily = 4

    @Test(.enabled(if: NetworkLab.unavailableReason == nil, Comment(rawValue: NetworkLab.unavailableReason ?? "")))
    func segmentsSentWithChecksumOffloadReachTheBackendWithCorrectChecksumsOverIOUring() throws {
        try Self.segmentsReachTheBackendWithCorrectChecksums(io: .ioUring)
    }

    @Test(.enabled(if: NetworkLab.unavailableReason == nil, Comment(rawValue: NetworkLab.unavailableReason ?? "")))
    func segmentsSentWithChecksumOffloadReachTheBackendWithCorrectChecksumsOverTheRing() throws {
        try Self.segmentsReachTheBackendWithCorrectChecksums(io: .ring)
    }

    @Test(.enabled(if: NetworkLab.unavailableReason == nil, Comment(rawValue: NetworkLab.unavailableReason ?? "")))
    func segmentsSentWithChecksumOffloadReachTheBackendWithCorrectChecksumsOverTheFrameRing() throws {
        try Self.segmentsReachTheBackendWithCorrectChecksums(io: .ringFrames)
    }

    @Test(.enabled(if: NetworkLab.unavailableReason == nil, Comment(rawValue: NetworkLab.unavailableReason ?? "")))
    func segmentsSentWithChecksumOffloadReachTheBackendWithCorrectChecksumsOverXDP() throws {
        try Self.segmentsReachTheBackendWithCorrectChecksums(io: .xdp)
    }

    @Test func segmentsSentWithChecksumOffloadReachTheBackendWithCorrectChecksumsOverMmsg() throws {
        try Self.segmentsReachTheBackendWithCorrectChecksums(io: .mmsg)
    }

    static func segmentsReachTheBackendWithCorrectChecksums(io: ForwarderIO) throws {
        let lab = try NetworkLab(namespacePrefix: "mglab-t\(getpid())")
        defer { lab.tearDown() }
        var options = LiveForwardingTests.options(lab)
        options.io = io
        let forwarder = try Forwarder(config: LiveForwardingTests.config(), options: options)
        try forwarder.start()
        defer { forwarder.stop() }

        let captured = try Self.sendFromKernelStacks(lab)
        var udp4 = 0
        var udp6 = 0
        var tcp4 = 0
        var tcp6 = 0
        for packet in captured {
            let inner = Array(packet[(packet[0] >> 4 == 4 ? 24 : 44)...])
            guard let segment = Self.segment(of: inner) else {
                Issue.record("not TCP/UDP inside GRE: \(Packets.hex(inner))")
                continue
            }
            switch (segment.proto, inner[0] >> 4) {
            case (IPProtocol.udp, 4): udp4 += 1
            case (IPProtocol.udp, _): udp6 += 1
            case (_, 4): tcp4 += 1
            default: tcp6 += 1
            }
            #expect(
                Packets.checksum(ArraySlice(segment.pseudoHeader + segment.bytes)) == 0,
                "\(io): inner \(segment.proto == IPProtocol.udp ? "UDP" : "TCP") checksum wrong: \(Packets.hex(inner))")
            if segment.proto == IPProtocol.udp {
                #expect(segment.bytes[6] != 0 || segment.bytes[7] != 0, "a UDP checksum is present")
            }
        }
        #expect(udp4 == Self.udpPerFamily && udp6 == Self.udpPerFamily, "\(io): UDP datagrams through")
        #expect(tcp4 >= 1 && tcp6 >= 1, "\(io): TCP SYNs through")

        let stats = forwarder.stop()
        let total = stats.totalDataplane
        print(
            "ChecksumOffloadLiveTests (\(io)): forwarded \(total.forwarded), checksums completed"
                + " \(total.checksumsCompleted), not completable \(total.checksumsNotCompletable)")
        // Every segment arrived CHECKSUM_PARTIAL: if none had, the test would prove nothing.
        #expect(total.forwarded == UInt64(captured.count))
        #expect(total.checksumsCompleted == total.forwarded, "every forwarded segment was marked and completed")
        #expect(total.checksumsNotCompletable == 0)
        #expect(stats.totalIO.sendErrors == 0)
    }

    /// In the client namespace: opens a capture on the client's veth, sends UDP datagrams and
    /// starts TCP connections to both VIPs through the kernel's own stacks, and collects the
    /// GRE packets that come back until every datagram and a SYN per family are in (or 3 s).
    static func sendFromKernelStacks(_ lab: NetworkLab) throws -> [[UInt8]] {
        let interface = lab.clientInterface
        return try lab.inClientNamespace {
            let capture = try PacketSocket(interface: interface, fanoutGroup: nil, filter: nil)
            for i in 0..<udpPerFamily {
                // Odd and even lengths: the checksum's last word is padded when odd.
                let payload = (0..<(37 + 100 * i)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ i) }
                try KernelSockets.sendUDP(to: LiveForwardingTests.vip4, port: 53, payload: payload)
                try KernelSockets.sendUDP(to: LiveForwardingTests.vip6, port: 443, payload: payload)
            }
            let tcp4 = try KernelSockets.startTCP(to: LiveForwardingTests.vip4, port: 80)
            defer { close(tcp4) }
            let tcp6 = try KernelSockets.startTCP(to: LiveForwardingTests.vip6, port: 80)
            defer { close(tcp6) }

            var got: [[UInt8]] = []
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)
            defer { buffer.deallocate() }
            let deadline = MonotonicClock.now() + 3_000_000_000
            func complete() -> Bool {
                let inner = got.compactMap { p in segment(of: Array(p[(p[0] >> 4 == 4 ? 24 : 44)...])) }
                let udp = inner.filter { $0.proto == IPProtocol.udp }.count
                let tcp = Set(inner.filter { $0.proto == IPProtocol.tcp }.map(\.ipv6))
                return udp == 2 * udpPerFamily && tcp.count == 2
            }
            while !complete() && MonotonicClock.now() < deadline {
                guard let n = try capture.receive(into: buffer, timeoutMilliseconds: 100) else { continue }
                let frame = [UInt8](UnsafeRawBufferPointer(rebasing: buffer[0..<min(n, buffer.count)]))
                if let ip = Packets.ipPacket(ofFrame: frame), LiveForwardingTests.isGRE(ip) { got.append(ip) }
            }
            return got
        }
    }

    /// An inner TCP or UDP segment and the pseudo-header its checksum covers.
    struct Segment {
        var proto: UInt8
        var ipv6: Bool
        var pseudoHeader: [UInt8]
        var bytes: [UInt8]
    }

    /// The TCP or UDP segment of an IP packet (no IPv6 extension headers: the kernel sends
    /// none here), or nil.
    static func segment(of ip: [UInt8]) -> Segment? {
        guard let version = ip.first.map({ $0 >> 4 }) else { return nil }
        if version == 4 {
            guard ip.count >= 20 else { return nil }
            let headerLength = Int(ip[0] & 0x0F) * 4
            let total = Int(ip[2]) << 8 | Int(ip[3])
            let proto = ip[9]
            guard proto == IPProtocol.tcp || proto == IPProtocol.udp, total <= ip.count, total > headerLength else {
                return nil
            }
            let length = total - headerLength
            return Segment(
                proto: proto, ipv6: false, pseudoHeader: Array(ip[12..<20]) + [0, proto] + Packets.be16(length),
                bytes: Array(ip[headerLength..<total]))
        }
        guard ip.count >= 40 else { return nil }
        let length = Int(ip[4]) << 8 | Int(ip[5])
        let proto = ip[6]
        guard proto == IPProtocol.tcp || proto == IPProtocol.udp, 40 + length <= ip.count else { return nil }
        return Segment(
            proto: proto, ipv6: true, pseudoHeader: Array(ip[8..<40]) + [0, 0] + Packets.be16(length) + [0, 0, 0, proto],
            bytes: Array(ip[40..<(40 + length)]))
    }
}
