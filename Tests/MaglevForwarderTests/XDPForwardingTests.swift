import MaglevCore
import MaglevForwarder
import MaglevLinux
import Testing

/// `--io xdp` beyond forwarding (MmsgForwardingTests and ChecksumOffloadLiveTests check that, as
/// for every engine): the XDP program follows reloads, leaves the interface when the forwarder
/// stops, and refuses a worker count that leaves receive queues without a socket. Namespaces
/// made and removed by each test; needs root, io_uring and AF_XDP (copy mode on veth).
@Suite(
    .serialized,
    .enabled(if: NetworkLab.unavailableReason == nil, Comment(rawValue: NetworkLab.unavailableReason ?? "")))
struct XDPForwardingTests {
    static func options(_ lab: NetworkLab, workers: Int = 1) -> ForwarderOptions {
        var o = LiveForwardingTests.options(lab, workers: workers)
        o.io = .xdp
        return o
    }

    static func udp(to vip: String, count: Int, firstPort: Int) -> [[UInt8]] {
        (0..<count).map {
            Packets.ipv4(
                source: LiveForwardingTests.client4, destination: vip, proto: IPProtocol.udp,
                sourcePort: firstPort + $0, destinationPort: 53)
        }
    }

    /// Whether the interface has an XDP program attached, as `ip link` shows it.
    static func hasXDP(_ lab: NetworkLab) throws -> Bool {
        guard let ip = NetworkLab.ipPath else { throw NetworkLab.CommandError(description: "no ip") }
        let r = NetworkLab.run([ip, "-n", lab.forwarderNamespace, "link", "show", "dev", lab.forwarderInterface])
        return r.output.contains("prog/xdp")
    }

    /// A reload that removes a VIP and adds another: the program stops steering the old one
    /// (its packets pass to the kernel and never reach the data plane) and steers the new one.
    @Test func aReloadMovesTheProgramsPrefixes() throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        var config = LiveForwardingTests.config()
        let forwarder = try Forwarder(config: config, options: Self.options(lab))
        try forwarder.start()
        defer { forwarder.stop() }
        #expect(try Self.hasXDP(lab), "the program is attached while the forwarder runs")

        let before = Self.udp(to: LiveForwardingTests.vip4, count: 40, firstPort: 30000)
        #expect(try LiveForwardingTests.exchange(lab, send: before, expect: before.count, keep: LiveForwardingTests.isGRE).count == 40)

        let newVIP = "198.18.100.20"
        config.vips[0].address = IPAddress(newVIP)!
        try forwarder.publish(config)
        ThreadContext.sleep(milliseconds: 50)
        let old = Self.udp(to: LiveForwardingTests.vip4, count: 30, firstPort: 31000)
        let moved = Self.udp(to: newVIP, count: 50, firstPort: 32000)
        let captured = try LiveForwardingTests.exchange(lab, send: old + moved, expect: moved.count + 1, keep: LiveForwardingTests.isGRE)
        #expect(captured.count == moved.count, "only the new VIP's packets are forwarded")
        #expect(captured.allSatisfy { Array($0[24 + 16..<24 + 20]) == Packets.ipv4Bytes(newVIP) })

        let stats = forwarder.stop()
        #expect(stats.totalDataplane.packets == UInt64(before.count + moved.count), "the old VIP's packets stayed in the kernel")
        #expect(stats.totalDataplane.forwarded == UInt64(before.count + moved.count))
        #expect(try !Self.hasXDP(lab), "the program leaves the interface when the forwarder stops")
    }

    /// The veth has one receive queue: two workers would leave nothing for the second socket,
    /// and a queue with no socket would lose VIP packets to the kernel. Refused, naming the fix.
    @Test func moreWorkersThanReceiveQueuesIsRefused() throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let forwarder = try Forwarder(config: LiveForwardingTests.config(), options: Self.options(lab, workers: 2))
        do {
            try forwarder.start()
            forwarder.stop()
            Issue.record("two workers on a one-queue veth started")
        } catch {
            #expect(error.message.contains("--workers 1"), "\(error.message)")
        }
        #expect(try !Self.hasXDP(lab), "nothing left attached after a refused start")
    }

    /// Frames come back: with a UMEM of 256 frames (an RX ring of 128), 3,000 packets in bursts of
    /// 100 through the XSK TX ring (`--send packet`) or io_uring (`--send raw`) are all forwarded
    /// (a frame lost on either path would starve the fill ring within 256 packets), every one
    /// counted once.
    @Test(arguments: [ForwarderSend.packet, .raw])
    func framesReturnToTheFillRing(send: ForwarderSend) throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        var options = Self.options(lab)
        options.bufferCount = 256
        options.send = send
        let forwarder = try Forwarder(config: LiveForwardingTests.config(), options: options)
        try forwarder.start()
        defer { forwarder.stop() }
        var forwarded = 0
        for burst in 0..<30 {
            let packets = Self.udp(to: LiveForwardingTests.vip4, count: 100, firstPort: 10000 + burst * 100)
            forwarded += try LiveForwardingTests.exchange(lab, send: packets, expect: packets.count, keep: LiveForwardingTests.isGRE).count
        }
        let stats = forwarder.stop()
        let drops = Int(stats.totalIO.kernelDrops)
        #expect(forwarded + drops == 3000, "forwarded \(forwarded), dropped by the socket \(drops)")
        #expect(forwarded >= 2900, "frames are recycled: \(forwarded) of 3000 forwarded")
        #expect(stats.totalIO.sent == UInt64(forwarded))
        #expect(stats.totalIO.sendErrors == 0)
        #expect(stats.totalIO.sentThroughTxRing == (send == .packet ? UInt64(forwarded) : 0))
    }

    /// A veth with two receive queues and two workers, one socket per queue: flows the sender
    /// spreads over both queues are all forwarded once, each worker taking its queue's share.
    @Test func oneWorkerPerReceiveQueue() throws {
        let lab = try NetworkLab(queues: 2)
        defer { lab.tearDown() }
        let forwarder = try Forwarder(config: LiveForwardingTests.config(), options: Self.options(lab, workers: 2))
        try forwarder.start()
        defer { forwarder.stop() }
        var forwarded = 0
        for burst in 0..<8 {
            // Raw sockets from two threads' worth of source ports: the sender's transmit queue,
            // and so the receive queue, follows the packet's hash.
            let packets = Self.udp(to: LiveForwardingTests.vip4, count: 100, firstPort: 20000 + burst * 100)
            forwarded += try LiveForwardingTests.exchange(lab, send: packets, expect: packets.count, keep: LiveForwardingTests.isGRE).count
        }
        let stats = forwarder.stop()
        #expect(forwarded == 800, "every packet forwarded once over two queues: \(forwarded)")
        #expect(stats.workers.count == 2)
        #expect(stats.totalDataplane.forwarded == 800)
        let perWorker = stats.workers.map(\.dataplane.packets)
        #expect(perWorker.allSatisfy { $0 > 0 }, "both queues carried packets: \(perWorker)")
    }

    /// A two-armed forwarder: the backends' route leaves by a second veth, so GRE frames take a
    /// transmit-only AF_XDP socket on that interface, sharing the worker's UMEM: every packet
    /// arrives there once, byte-identical inside, and none on the receive interface.
    @Test func greLeavesThroughASecondInterfaceFromTheSameUMEM() throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let f = lab.forwarderNamespace
        let c = lab.clientNamespace
        let out = "\(lab.forwarderInterface)e"
        let peer = "\(lab.clientInterface)e"
        try lab.ip("-n", f, "link", "add", out, "address", "02:00:5e:12:00:11", "type", "veth", "peer", "name", peer,
            "address", "02:00:5e:12:00:12", "netns", c)
        try lab.ip("-n", f, "addr", "add", "198.18.5.1/24", "dev", out)
        try lab.ip("-n", c, "addr", "add", "198.18.5.2/24", "dev", peer)
        try lab.ip("-n", f, "link", "set", out, "up")
        try lab.ip("-n", c, "link", "set", peer, "up")
        try lab.ip("-n", f, "neigh", "replace", "198.18.5.2", "lladdr", "02:00:5e:12:00:12", "dev", out, "nud", "permanent")
        try lab.ip("-n", f, "route", "replace", "198.18.1.0/24", "via", "198.18.5.2", "dev", out)

        let config = LiveForwardingTests.config()
        let forwarder = try Forwarder(config: config, options: Self.options(lab))
        try forwarder.start()
        defer { forwarder.stop() }
        let offline = try OfflineForwarder(config)
        var forwarded = 0
        for burst in 0..<3 {
            let packets = Self.udp(to: LiveForwardingTests.vip4, count: 100, firstPort: 40000 + burst * 100)
            let captured = try LiveForwardingTests.exchange(
                lab, send: packets, expect: packets.count, captureOn: peer, keep: LiveForwardingTests.isGRE)
            var remaining = captured
            for p in packets {
                let (_, output) = offline.process(p)
                if let i = remaining.firstIndex(where: { Packets.sameExceptIPv4IDAndChecksum($0, output) }) {
                    #expect(Array(remaining[i][24...]) == p, "inner packet byte-identical")
                    remaining.remove(at: i)
                    forwarded += 1
                }
            }
            #expect(remaining.isEmpty, "unexpected GRE packets: \(remaining.count)")
        }
        let stats = forwarder.stop()
        #expect(forwarded == 300, "every packet left by the second interface: \(forwarded)")
        #expect(stats.totalIO.sentAsFrames == 300)
        // The first batch's frames take io_uring while the transmit socket is opened; every later
        // one its TX ring.
        #expect(stats.totalIO.sentThroughTxRing >= 200, "\(stats.totalIO.sentThroughTxRing) through an XSK TX ring")
        #expect(stats.totalIO.sent == 300)
        #expect(stats.totalIO.sendErrors == 0)
    }
}
