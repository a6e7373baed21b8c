import Foundation
import Logging
import MaglevConfig
import MaglevCore
import MaglevForwarder
import MaglevLinux
import Testing

/// Live forwarding in network namespaces: real AF_PACKET sockets, io_uring, raw IP sends.
/// Each test builds its own namespaces (NetworkLab) and tears them down, pass or fail.
/// Runs only where live tests can (root, iproute2 netns, io_uring); elsewhere the suite is
/// reported as skipped with the reason.
@Suite(.serialized, .enabled(if: NetworkLab.unavailableReason == nil, Comment(rawValue: NetworkLab.unavailableReason ?? "")))
struct LiveForwardingTests {
    static let vip4 = "198.18.100.10"
    static let vip6 = "2001:db8:100::10"
    static let client4 = "198.18.0.2"
    static let client6 = "2001:db8::2"

    static func config(pathMTU: Int = 1500) -> DataplaneConfig {
        let pool4 = (1...4).map { BackendConfig(name: "web-\($0)", address: IPAddress("198.18.1.\($0)")!) }
        let pool6 = (1...3).map { BackendConfig(name: "web6-\($0)", address: IPAddress("2001:db8:1::\($0)")!) }
        return DataplaneConfig(
            vips: [
                VIPConfig(name: "vip4", address: IPAddress(vip4)!, backends: pool4),
                VIPConfig(name: "vip6", address: IPAddress(vip6)!, backends: pool6),
            ],
            tableSize: 251, hashSeed: 7, pathMTU: pathMTU, encapSourceIPv4: IPAddress("198.18.0.1")!,
            encapSourceIPv6: IPAddress("2001:db8::1")!)
    }

    static func options(_ lab: NetworkLab, workers: Int = 1) -> ForwarderOptions {
        var o = ForwarderOptions(interface: lab.forwarderInterface, workers: workers)
        o.networkNamespace = lab.forwarderNamespacePath
        o.bufferCount = 512
        o.connectionCapacity = 1 << 12
        o.hugePages = false
        o.idleWaitNanoseconds = 10_000_000
        return o
    }

    /// In the client namespace: opens a capture on the client's veth, sends `packets` with raw
    /// sockets, and collects incoming IP packets until `expect` of them match `keep` (or 3 s).
    /// `captureOn`: another interface of the client namespace to capture on.
    static func exchange(
        _ lab: NetworkLab, send packets: [[UInt8]], expect: Int, captureOn: String? = nil,
        keep: @escaping @Sendable ([UInt8]) -> Bool
    ) throws -> [[UInt8]] {
        let interface = captureOn ?? lab.clientInterface
        return try lab.inClientNamespace {
            let capture = try PacketSocket(interface: interface, fanoutGroup: nil, filter: nil)
            let raw4 = try RawIPSocket(ipv6: false)
            let raw6 = try RawIPSocket(ipv6: true)
            for p in packets {
                if p[0] >> 4 == 6 { try raw6.send(p) } else { try raw4.send(p) }
            }
            var got: [[UInt8]] = []
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)
            defer { buffer.deallocate() }
            let deadline = MonotonicClock.now() + 3_000_000_000
            while got.count < expect && MonotonicClock.now() < deadline {
                guard let n = try capture.receive(into: buffer, timeoutMilliseconds: 100) else { continue }
                let frame = [UInt8](UnsafeRawBufferPointer(rebasing: buffer[0..<min(n, buffer.count)]))
                if let ip = Packets.ipPacket(ofFrame: frame), keep(ip) { got.append(ip) }
            }
            return got
        }
    }

    static func isGRE(_ ip: [UInt8]) -> Bool {
        ip[0] >> 4 == 4 ? ip.count > 24 && ip[9] == IPProtocol.gre : ip.count > 44 && ip[6] == IPProtocol.gre
    }

    /// UDP and TCP over IPv4 and IPv6: every packet to a VIP comes back GRE-encapsulated to
    /// the backend the table picks, its inner packet byte-identical; the kernel filter keeps
    /// packets to other addresses away from the forwarder.
    @Test(arguments: [ForwarderSend.packet, .raw])
    func forwardsUDPAndTCPToTheTableBackendOverGRE(send: ForwarderSend) throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let config = Self.config()
        var options = Self.options(lab)
        options.send = send
        let forwarder = try Forwarder(config: config, options: options)
        try forwarder.start()
        defer { forwarder.stop() }

        var packets: [[UInt8]] = []
        for i in 0..<24 {
            packets.append(
                Packets.ipv4(source: Self.client4, destination: Self.vip4, proto: IPProtocol.udp, sourcePort: 40000 + i, destinationPort: 53))
        }
        for i in 0..<12 {
            packets.append(
                Packets.ipv4(source: Self.client4, destination: Self.vip4, proto: IPProtocol.tcp, sourcePort: 50000 + i, destinationPort: 80))
        }
        for i in 0..<12 {
            packets.append(
                Packets.ipv6(source: Self.client6, destination: Self.vip6, proto: IPProtocol.udp, sourcePort: 41000 + i, destinationPort: 443))
        }
        let strays = (0..<5).map {
            Packets.ipv4(source: Self.client4, destination: "198.18.100.99", proto: IPProtocol.udp, sourcePort: 45000 + $0, destinationPort: 53)
        }

        let captured = try Self.exchange(lab, send: packets + strays, expect: packets.count, keep: Self.isGRE)

        let offline = try OfflineForwarder(config)
        var expectedPerBackend: [Int: UInt64] = [:]
        var remaining = captured
        for p in packets {
            let (verdict, output) = offline.process(p)
            #expect(verdict.action == .forward)
            expectedPerBackend[Int(verdict.backend), default: 0] += 1
            let backendAddress = offline.snapshot.address(ofBackend: Int(verdict.backend))
            guard let i = remaining.firstIndex(where: { Packets.sameExceptIPv4IDAndChecksum($0, output) }) else {
                Issue.record("no GRE packet to \(backendAddress) carrying \(Packets.hex(p))")
                continue
            }
            let got = remaining.remove(at: i)
            let overhead = got[0] >> 4 == 4 ? 24 : 44
            #expect(Array(got[overhead...]) == p, "inner packet byte-identical")
            if got[0] >> 4 == 4 {
                #expect(Packets.checksum(got[0..<20]) == 0, "outer IPv4 checksum valid")
            }
        }
        #expect(remaining.isEmpty, "unexpected GRE packets: \(remaining.count)")
        #expect(expectedPerBackend.count >= 4, "flows spread over several backends")

        let stats = forwarder.stop()
        let total = stats.totalDataplane
        #expect(total.forwarded == UInt64(packets.count))
        #expect(stats.totalIO.sent == UInt64(packets.count))
        #expect(stats.totalIO.sendErrors == 0)
        #expect(stats.sendPath == send.rawValue)
        if send == .packet {
            // Every backend's gateway (the client) is a permanent neighbour: all frames.
            #expect(stats.totalIO.sentAsFrames == UInt64(packets.count))
            #expect(stats.totalIO.nextHopFallbacks == 0)
            #expect(stats.nextHops.count == 7 && stats.nextHops.allSatisfy { $0.hasPrefix("02:00:5e:12:00:02 on ") })
        } else {
            #expect(stats.totalIO.sentAsFrames == 0)
            #expect(stats.nextHops.isEmpty)
        }
        // The BPF filter keeps the strays (and the host's own traffic) out of user space.
        #expect(total.packets == UInt64(packets.count))
        #expect(stats.workers[0].filterMode == "vips")
        // Raw-socket packets carry finished checksums: the packet socket never marks them.
        #expect(total.checksumsCompleted == 0 && total.checksumsNotCompletable == 0)
        for (backend, count) in expectedPerBackend {
            #expect(total.backends[backend].packets == count, "backend \(stats.backendNames[backend])")
        }
        print("ring mode: \(stats.workers[0].ringMode)")
    }

    /// An IPv4 packet with DF (and any IPv6 packet) too big for the path once encapsulated is
    /// answered with ICMP "fragmentation needed" / ICMPv6 "packet too big" to the client,
    /// quoting it; smaller packets of the same run still go out as GRE.
    @Test func oversizedDontFragmentPacketGetsICMPFragmentationNeeded() throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let config = Self.config(pathMTU: 1000)
        let forwarder = try Forwarder(config: config, options: Self.options(lab))
        try forwarder.start()
        defer { forwarder.stop() }

        let big4 = Packets.ipv4(
            source: Self.client4, destination: Self.vip4, proto: IPProtocol.udp, sourcePort: 40001, destinationPort: 53,
            payload: 1200, dontFragment: true)
        let big6 = Packets.ipv6(
            source: Self.client6, destination: Self.vip6, proto: IPProtocol.udp, sourcePort: 40002, destinationPort: 53,
            payload: 1200)
        let small = Packets.ipv4(
            source: Self.client4, destination: Self.vip4, proto: IPProtocol.udp, sourcePort: 40003, destinationPort: 53)
        // Only ICMP from a VIP: the forwarder namespace's own kernel answers the original
        // (which it cannot route) with its own unreachables, from its own address.
        let vip4Bytes = Packets.ipv4Bytes(Self.vip4)
        let vip6Bytes = Packets.ipv6Bytes(Self.vip6)
        let captured = try Self.exchange(lab, send: [big4, big6, small], expect: 3) { ip in
            Self.isGRE(ip)
                || (ip[0] >> 4 == 4 && ip[9] == IPProtocol.icmp && Array(ip[12..<16]) == vip4Bytes)
                || (ip[0] >> 4 == 6 && ip[6] == IPProtocol.icmpv6 && Array(ip[8..<24]) == vip6Bytes)
        }

        let offline = try OfflineForwarder(config)
        let (v4, out4) = offline.process(big4)
        let (v6, out6) = offline.process(big6)
        let (vs, outs) = offline.process(small)
        #expect(v4.action == .icmpReply && v6.action == .icmpReply && vs.action == .forward)

        let icmp4 = captured.first { $0[0] >> 4 == 4 && $0[9] == IPProtocol.icmp }
        #expect(icmp4 != nil, "ICMP fragmentation-needed came back")
        if let icmp4 {
            #expect(Packets.sameExceptIPv4IDAndChecksum(icmp4, out4))
            #expect(Array(icmp4[12..<16]) == Packets.ipv4Bytes(Self.vip4), "from the VIP")
            #expect(Array(icmp4[16..<20]) == Packets.ipv4Bytes(Self.client4), "to the client")
            #expect(icmp4[20] == 3 && icmp4[21] == 4, "type 3 code 4")
            let mtu = Int(icmp4[26]) << 8 | Int(icmp4[27])
            #expect(mtu == 1000 - 24, "next-hop MTU leaves room for GRE")
            #expect(Array(icmp4[28..<48]) == Array(big4[0..<20]), "quotes the packet's header")
        }
        let icmp6 = captured.first { $0[0] >> 4 == 6 && $0[6] == IPProtocol.icmpv6 }
        #expect(icmp6 != nil, "ICMPv6 packet-too-big came back")
        if let icmp6 {
            #expect(icmp6 == out6)
            #expect(icmp6[40] == 2 && icmp6[41] == 0, "type 2 code 0")
        }
        #expect(captured.contains { Packets.sameExceptIPv4IDAndChecksum($0, outs) }, "the small packet is forwarded")

        let stats = forwarder.stop()
        #expect(stats.totalDataplane.icmpReplies == 2)
        #expect(stats.totalDataplane.forwarded == 1)
        #expect(stats.totalIO.sendErrors == 0)
    }

    /// Two workers in one fanout group: together they forward every packet once, each to the
    /// backend the table picks.
    @Test func twoWorkersShareTheInterface() throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let config = Self.config()
        let forwarder = try Forwarder(config: config, options: Self.options(lab, workers: 2))
        try forwarder.start()
        defer { forwarder.stop() }
        let packets = (0..<200).map {
            Packets.ipv4(source: Self.client4, destination: Self.vip4, proto: IPProtocol.udp, sourcePort: 30000 + $0, destinationPort: 53)
        }
        let captured = try Self.exchange(lab, send: packets, expect: packets.count, keep: Self.isGRE)
        #expect(captured.count == packets.count)
        let offline = try OfflineForwarder(config)
        let got = Set(captured.map { Packets.hex(Array($0[16..<20]) + Array($0[24...])) })
        for p in packets {
            let (v, _) = offline.process(p)
            let address = Packets.ipv4Bytes(offline.snapshot.address(ofBackend: Int(v.backend)).description)
            #expect(got.contains(Packets.hex(address + p)))
        }
        let stats = forwarder.stop()
        #expect(stats.workers.count == 2)
        #expect(stats.totalDataplane.forwarded == UInt64(packets.count))
        #expect(stats.workers.reduce(0) { $0 + $1.io.received } == UInt64(packets.count))
    }

    /// A new snapshot published while running takes effect between batches: after a backend
    /// is removed, new flows never reach it; an invalid config is refused and the running one
    /// kept.
    /// `--send packet` with a backend on the forwarder's own link and no neighbour entry yet:
    /// the resolver says so and asks the kernel to resolve it (NTF_USE, no packet of ours
    /// needed); a later refresh finds the MAC, and packets then leave as whole frames to it.
    @Test func unresolvedNextHopIsResolvedByTheKernelThenUsedForFrames() throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        // 198.18.2.1 is on the forwarder's link (no gateway); the client answers ARP for it.
        try lab.ip("-n", lab.forwarderNamespace, "route", "add", "198.18.2.0/24", "dev", lab.forwarderInterface)
        try lab.ip("-n", lab.clientNamespace, "addr", "add", "198.18.2.1/32", "dev", "lo")
        let config = DataplaneConfig(
            vips: [VIPConfig(name: "vip4", address: IPAddress(Self.vip4)!, backends: [BackendConfig(name: "near", address: IPAddress("198.18.2.1")!)])],
            tableSize: 251, hashSeed: 7, pathMTU: 1500, encapSourceIPv4: IPAddress("198.18.0.1")!)
        let forwarder = try Forwarder(config: config, options: Self.options(lab))
        try forwarder.start()
        defer { forwarder.stop() }
        #expect(forwarder.nextHopDescriptions.first?.contains("not resolved yet") == true, "\(forwarder.nextHopDescriptions)")

        var resolved = false
        for _ in 0..<40 where !resolved {
            ThreadContext.sleep(milliseconds: 50)
            forwarder.refreshNextHops()
            resolved = forwarder.nextHopDescriptions.first?.hasPrefix("\(NetworkLab.clientMAC) on \(lab.forwarderInterface)") == true
        }
        #expect(resolved, "next hop after 2 s: \(forwarder.nextHopDescriptions)")
        ThreadContext.sleep(milliseconds: 30)  // the worker installs it at its next turn

        let packets = (0..<16).map {
            Packets.ipv4(source: Self.client4, destination: Self.vip4, proto: IPProtocol.udp, sourcePort: 30000 + $0, destinationPort: 53)
        }
        let captured = try Self.exchange(lab, send: packets, expect: packets.count, keep: Self.isGRE)
        #expect(captured.count == packets.count)
        #expect(captured.allSatisfy { Array($0[16..<20]) == Packets.ipv4Bytes("198.18.2.1") })
        let stats = forwarder.stop()
        #expect(stats.totalIO.sentAsFrames == UInt64(packets.count))
        #expect(stats.totalIO.nextHopFallbacks == 0)
    }

    /// A backend the forwarder has no route to: the resolver says so, its packets take the raw
    /// socket (counted as fallbacks), whose sends fail and are counted; nothing crashes and the
    /// other backend's packets still leave as frames.
    @Test func backendWithoutRouteFallsBackAndIsCounted() throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let config = DataplaneConfig(
            vips: [
                VIPConfig(name: "lost", address: IPAddress("198.18.100.20")!, backends: [BackendConfig(name: "nowhere", address: IPAddress("198.18.9.1")!)]),
                VIPConfig(name: "vip4", address: IPAddress(Self.vip4)!, backends: [BackendConfig(name: "web-1", address: IPAddress("198.18.1.1")!)]),
            ],
            tableSize: 251, hashSeed: 7, pathMTU: 1500, encapSourceIPv4: IPAddress("198.18.0.1")!)
        let forwarder = try Forwarder(config: config, options: Self.options(lab))
        try forwarder.start()
        defer { forwarder.stop() }
        let hops = forwarder.nextHopDescriptions
        #expect(hops.count == 2 && hops[0].contains("no route") && hops[1].hasPrefix(NetworkLab.clientMAC), "\(hops)")

        let lost = (0..<6).map {
            Packets.ipv4(source: Self.client4, destination: "198.18.100.20", proto: IPProtocol.udp, sourcePort: 31000 + $0, destinationPort: 53)
        }
        let good = (0..<6).map {
            Packets.ipv4(source: Self.client4, destination: Self.vip4, proto: IPProtocol.udp, sourcePort: 32000 + $0, destinationPort: 53)
        }
        let captured = try Self.exchange(lab, send: lost + good, expect: good.count, keep: Self.isGRE)
        #expect(captured.count == good.count)
        let stats = forwarder.stop()
        #expect(stats.totalDataplane.forwarded == 12)
        #expect(stats.totalIO.sentAsFrames == 6)
        #expect(stats.totalIO.nextHopFallbacks == 6)
        #expect(stats.totalIO.sendErrors == 6, "ENETUNREACH from the raw socket, counted")
        #expect(stats.totalIO.sent == 6)
    }

    /// Bad input: a flood of new flows into a small connection table neither stalls the loop
    /// nor evicts established connections. 16 established TCP connections, then 4,000 new UDP
    /// flows into a 256-entry table, then a reload that adds four backends (moving table
    /// slots): every packet was processed, the flood evicted only datagram entries, and every
    /// established connection still reaches the backend it had.
    @Test func floodOfNewFlowsKeepsEstablishedConnections() throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        var config = Self.config()
        var options = Self.options(lab)
        options.connectionCapacity = 256
        let forwarder = try Forwarder(config: config, options: options)
        try forwarder.start()
        defer { forwarder.stop() }

        // Mid-stream ACKs: recorded as established (the connection predates the forwarder).
        let established = (0..<16).map {
            Packets.ipv4(source: Self.client4, destination: Self.vip4, proto: IPProtocol.tcp, sourcePort: 60000 + $0, destinationPort: 80, tcpFlags: 0x10)
        }
        func backends(_ captured: [[UInt8]]) -> [Int: [UInt8]] {
            // Outer IPv4 destination per inner TCP source port (outer 20 + GRE 4 + inner 20).
            var out: [Int: [UInt8]] = [:]
            for p in captured where p.count >= 46 && p[24 + 9] == IPProtocol.tcp {
                out[Int(p[44]) << 8 | Int(p[45])] = Array(p[16..<20])
            }
            return out
        }
        let before = backends(try Self.exchange(lab, send: established, expect: established.count, keep: Self.isGRE))
        #expect(before.count == established.count)

        let flood = (0..<4000).map {
            Packets.ipv4(source: Self.client4, destination: Self.vip4, proto: IPProtocol.udp, sourcePort: 1024 + $0, destinationPort: 53, payload: 8)
        }
        let flooded = try Self.exchange(lab, send: flood, expect: flood.count, keep: Self.isGRE)
        #expect(flooded.count > flood.count * 9 / 10, "the flood is forwarded, not stalled: \(flooded.count)")

        config.vips[0].backends += (5...8).map { BackendConfig(name: "web-\($0)", address: IPAddress("198.18.1.\($0)")!) }
        try forwarder.publish(config)
        ThreadContext.sleep(milliseconds: 50)
        let after = backends(try Self.exchange(lab, send: established, expect: established.count, keep: Self.isGRE))
        #expect(after.count == established.count)
        for (port, backend) in before {
            #expect(after[port] == backend, "connection from port \(port) kept its backend")
        }

        let stats = forwarder.stop()
        #expect(stats.totalDataplane.packets == UInt64(2 * established.count + flood.count), "every packet processed")
        let c = stats.totalConnections
        #expect(c.evictedEstablished == 0)
        #expect(c.evictedDatagram + c.insertsRefused > 0, "the table overflowed: \(c)")
        let json = StatisticsFormat.json(stats)
        #expect(json.contains("\"connections\":{\"inserts\":"))
    }

    @Test func publishedSnapshotIsInstalledBetweenBatches() throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        var config = Self.config()
        let forwarder = try Forwarder(config: config, options: Self.options(lab))
        try forwarder.start()
        defer { forwarder.stop() }

        config.vips[0].backends.removeAll { $0.name == "web-1" }
        try forwarder.publish(config)
        var broken = config
        broken.vips = []
        #expect(throws: ForwarderError.self) { try forwarder.publish(broken) }
        // Let the worker reach its next turn (it waits at most 10 ms when idle).
        ThreadContext.sleep(milliseconds: 50)

        let packets = (0..<64).map {
            Packets.ipv4(source: Self.client4, destination: Self.vip4, proto: IPProtocol.udp, sourcePort: 20000 + $0, destinationPort: 53)
        }
        let captured = try Self.exchange(lab, send: packets, expect: packets.count, keep: Self.isGRE)
        #expect(captured.count == packets.count)
        #expect(!captured.contains { Array($0[16..<20]) == Packets.ipv4Bytes("198.18.1.1") }, "web-1 left")
        let stats = forwarder.stop()
        #expect(stats.workers[0].io.snapshotsInstalled == 1)
        #expect(stats.totalDataplane.forwarded == UInt64(packets.count))
    }
}

extension LiveForwardingTests {
    /// The control services: periodic statistics (JSON that parses), a reload of a broken
    /// config file rejected while the running config keeps forwarding, and a stop by duration.
    @Test func controlServicesReportStatisticsRejectABadReloadAndStopByThemselves() async throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("maglev-bad-\(getpid()).yaml").path
        try "vips: [this is: not, a valid config".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = Self.config()
        let forwarder = try Forwarder(config: config, configPath: path, options: Self.options(lab))
        try forwarder.start()
        let before = forwarder.snapshot

        let packets = (0..<16).map {
            Packets.ipv4(source: Self.client4, destination: Self.vip4, proto: IPProtocol.udp, sourcePort: 10000 + $0, destinationPort: 53)
        }
        let clientDone = ResultBox<Int>()
        let reloads = ResultBox<ControlPlane.ReloadResult>()
        let stats = StatisticsLog()
        var options = RuntimeOptions()
        options.statisticsInterval = 0.2
        options.duration = 1.5
        let file = MaglevConfigFile(dataplane: config, connectionCapacity: 1 << 12, path: path)
        let final = try await ForwarderRuntime.run(
            forwarder: forwarder, file: file, configPath: path, options: options, logger: Logger(label: "test"),
            onStarted: { control in
                Task {
                    try? await Task.sleep(for: .milliseconds(300))
                    reloads.set(.success(await control.reload()))
                    let got = (try? Self.exchange(lab, send: packets, expect: packets.count, keep: Self.isGRE))?.count ?? -1
                    clientDone.set(.success(got))
                }
            },
            onStatistics: { stats.append($0) })

        #expect(try clientDone.get() == packets.count, "still forwarding after the rejected reload")
        #expect(forwarder.snapshot === before, "running config kept")
        if case .rejected(let m) = try reloads.get() {
            #expect(m.contains(path), "the problem names the file: \(m)")
        } else {
            Issue.record("a broken file was not rejected: \(try reloads.get())")
        }
        #expect(stats.all.count >= 3)
        for s in stats.all {
            let json = StatisticsFormat.json(s)
            #expect((try? JSONSerialization.jsonObject(with: Data(json.utf8))) != nil, "valid JSON: \(json)")
        }
        #expect(final.totalDataplane.forwarded == UInt64(packets.count))
    }
}

extension LiveForwardingTests {
    static func yaml(backends: [Int]) -> String {
        """
        table_size: 251
        hash_seed: 7
        encap:
          source_ipv4: 198.18.0.1
          source_ipv6: "2001:db8::1"
        vips:
          - name: vip4
            address: \(vip4)
            backends:
        \(backends.map { "      - { name: web-\($0), address: 198.18.1.\($0) }" }.joined(separator: "\n"))
        """
    }

    /// A reload re-reads the config file: a backend removed from the file gets no new flows.
    @Test func reloadReadsTheConfigFile() async throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("maglev-ok-\(getpid()).yaml").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Self.yaml(backends: [1, 2, 3, 4]).write(toFile: path, atomically: true, encoding: .utf8)
        let file = try MaglevConfigFile.load(path: path)
        let forwarder = try Forwarder(config: file.dataplane, configPath: path, options: Self.options(lab))
        try forwarder.start()
        try Self.yaml(backends: [2, 3, 4]).write(toFile: path, atomically: true, encoding: .utf8)

        let packets = (0..<64).map {
            Packets.ipv4(source: Self.client4, destination: Self.vip4, proto: IPProtocol.udp, sourcePort: 12000 + $0, destinationPort: 53)
        }
        let captured = ResultBox<[[UInt8]]>()
        let reloads = ResultBox<ControlPlane.ReloadResult>()
        var options = RuntimeOptions()
        options.duration = 1.2
        let final = try await ForwarderRuntime.run(
            forwarder: forwarder, file: file, configPath: path, options: options, logger: Logger(label: "test"),
            onStarted: { control in
                Task {
                    try? await Task.sleep(for: .milliseconds(200))
                    reloads.set(.success(await control.reload()))
                    try? await Task.sleep(for: .milliseconds(300))
                    captured.set(Result { try Self.exchange(lab, send: packets, expect: packets.count, keep: Self.isGRE) })
                }
            })

        #expect(try reloads.get() == .applied(notices: []))
        #expect(forwarder.snapshot.config.vips[0].backends.count == 3)
        let got = try captured.get()
        #expect(got.count == packets.count)
        #expect(!got.contains { Array($0[16..<20]) == Packets.ipv4Bytes("198.18.1.1") }, "web-1 left the file")
        #expect(final.workers[0].io.snapshotsInstalled == 1)
        #expect(final.totalDataplane.forwarded == UInt64(packets.count))
    }
}

final class StatisticsLog: @unchecked Sendable {
    private var items: [ForwarderStatistics] = []
    private let lock = NSLock()
    func append(_ s: ForwarderStatistics) {
        lock.lock()
        items.append(s)
        lock.unlock()
    }
    var all: [ForwarderStatistics] {
        lock.lock()
        defer { lock.unlock() }
        return items
    }
}


@Suite struct ForwarderStartupTests {
    @Test func unknownInterfaceIsNamed() throws {
        var options = ForwarderOptions(interface: "mglv-nosuch0")
        options.hugePages = false
        let forwarder = try Forwarder(config: LiveForwardingTests.config(), options: options)
        do {
            try forwarder.start()
            Issue.record("start succeeded on a missing interface")
        } catch {
            #expect(error.message.contains("no such interface 'mglv-nosuch0'"))
        }
    }

    @Test func invalidConfigIsRefusedBeforeStarting() {
        var config = LiveForwardingTests.config()
        config.encapSourceIPv4 = nil
        #expect(throws: ForwarderError.self) {
            _ = try Forwarder(config: config, options: ForwarderOptions(interface: "lo"))
        }
    }
}
