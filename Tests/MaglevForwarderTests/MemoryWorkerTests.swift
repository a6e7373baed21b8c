import CAllocationCounter
import MaglevCore
import MaglevLinux
import Testing

@testable import MaglevForwarder

/// The worker's per-batch logic (the same `betweenBatches` and `BatchSender.forward` the
/// io_uring and mmsg loops call) on the in-memory engine: no root, no sockets.
struct MemoryWorkerTests {
    static let vip4 = "198.18.100.10"
    static let vip6 = "2001:db8:100::10"

    static func config(backends4: [String] = ["198.18.1.1", "198.18.1.2"]) -> DataplaneConfig {
        DataplaneConfig(
            vips: [
                VIPConfig(
                    name: "vip4", address: IPAddress(vip4)!,
                    backends: backends4.enumerated().map { BackendConfig(name: "web-\($0.offset)", address: IPAddress($0.element)!) }),
                VIPConfig(
                    name: "vip6", address: IPAddress(vip6)!,
                    backends: [BackendConfig(name: "web6", address: IPAddress("2001:db8:1::1")!)]),
            ],
            tableSize: 251, hashSeed: 7, pathMTU: 1500, encapSourceIPv4: IPAddress("198.18.0.1")!,
            encapSourceIPv6: IPAddress("2001:db8::1")!)
    }

    /// A worker on `config`, its mailboxes and link.
    static func worker(
        _ config: DataplaneConfig, framesOn: Bool = true, hasIPv6: Bool = true, bufferCount: Int = 64, batchLimit: Int = 32
    ) throws -> (MemoryWorker, SnapshotMailbox, NextHopMailbox, WorkerLink) {
        let snapshot = try ForwardingSnapshot(config: config)
        return try worker(snapshot, config, framesOn: framesOn, hasIPv6: hasIPv6, bufferCount: bufferCount, batchLimit: batchLimit)
    }

    static func worker(
        _ snapshot: ForwardingSnapshot, _ config: DataplaneConfig, framesOn: Bool = true, hasIPv6: Bool = true,
        bufferCount: Int = 64, batchLimit: Int = 32
    ) throws -> (MemoryWorker, SnapshotMailbox, NextHopMailbox, WorkerLink) {
        let filter = VIPFilter.program(for: config.vips)
        let mailbox = SnapshotMailbox(.init(snapshot: snapshot, filter: filter.program, filterMode: filter.mode))
        let hops = NextHopMailbox()
        let link = WorkerLink(id: 0, zero: DataplaneStatistics())
        let w = MemoryWorker(
            link: link, mailbox: mailbox, nextHops: hops, framesOn: framesOn, hasIPv6: hasIPv6,
            bufferCount: bufferCount, batchLimit: batchLimit)
        return (w, mailbox, hops, link)
    }

    /// Next-hop headers where only the backend ids in `resolved` have one (MAC 02:00:00:00:00:id).
    static func headers(count: Int, resolved: Set<Int>) -> LinkHeaders {
        var bytes = [UInt8](repeating: 0, count: count * LinkHeaders.stride)
        for id in resolved {
            let e = id * LinkHeaders.stride
            let header: [UInt8] = [2, 0, 0, 0, 0, UInt8(id), 2, 0, 0, 0, 0, 0xAA, 0x08, 0x00]
            for i in 0..<14 { bytes[e + i] = header[i] }
            bytes[e + LinkHeaders.validFlag] = 1
            bytes[e + LinkHeaders.addressOffset] = UInt8(id)
        }
        return LinkHeaders(bytes: bytes, descriptions: Array(repeating: "", count: count))
    }

    static func udp4(_ port: Int, to vip: String = vip4) -> [UInt8] {
        Packets.ipv4(source: "198.18.0.2", destination: vip, proto: IPProtocol.udp, sourcePort: port, destinationPort: 53)
    }

    static func udp6(_ port: Int) -> [UInt8] {
        Packets.ipv6(source: "2001:db8::2", destination: vip6, proto: IPProtocol.udp, sourcePort: port, destinationPort: 53)
    }

    /// Frames for backends with a next hop, raw sends (counted as fallbacks) for the others and
    /// for IPv6 without one, drops released; every output equals the offline data plane's.
    @Test func routesEachVerdictAndBalancesTheBooks() throws {
        let config = Self.config()
        let (w, _, hops, _) = try Self.worker(config)
        hops.publish(Self.headers(count: 3, resolved: [0]))
        let offline = try OfflineForwarder(config)
        let packets = (0..<40).map { Self.udp4(20000 + $0) } + (0..<8).map { Self.udp6(21000 + $0) }
            + (0..<4).map { Self.udp4(22000 + $0, to: "198.18.200.1") }
        w.inject(packets.map(Packets.frame))
        w.drain()

        #expect(w.violations.isEmpty, "\(w.violations)")
        #expect(w.freeCount == 64 && w.inFlightCount == 0)
        let expected = packets.map { offline.process($0) }
        let sent = expected.filter { $0.verdict.action == .forward }
        #expect(w.outputs.count == sent.count && sent.count == 48)
        for (out, exp) in zip(w.outputs, sent) {
            switch out.route {
            case .frame:
                #expect(exp.verdict.backend == 0)
                #expect(Array(out.bytes[0..<6]) == [2, 0, 0, 0, 0, 0])
                #expect(Array(out.bytes[14...]) == exp.output)
                #expect(out.address.first == 0)
            case .raw4:
                #expect(exp.verdict.backend == 1 && !exp.verdict.outputIsIPv6)
                #expect(out.bytes == exp.output)
            case .raw6:
                #expect(exp.verdict.outputIsIPv6)
                #expect(out.bytes == exp.output)
            }
        }
        let frames = w.outputs.filter { $0.route == .frame }.count
        let raw4 = w.outputs.filter { $0.route == .raw4 }.count
        #expect(frames > 0 && raw4 > 0 && frames + raw4 == 40)
        #expect(w.io.sentAsFrames == UInt64(frames))
        #expect(w.io.nextHopFallbacks == UInt64(raw4 + 8))
        #expect(w.io.sent == 48 && w.io.received == 52)
        #expect(w.io.noIPv6Socket == 0)
    }

    /// `--send raw`: no frames, no fallbacks counted. No IPv6 socket: IPv6 outputs are dropped,
    /// counted, and their buffers come back.
    @Test func rawSendAndNoIPv6Socket() throws {
        let (w, _, hops, _) = try Self.worker(Self.config(), framesOn: false, hasIPv6: false)
        hops.publish(Self.headers(count: 3, resolved: [0, 1, 2]))
        w.inject(((0..<10).map { Self.udp4(23000 + $0) } + (0..<5).map { Self.udp6(24000 + $0) }).map(Packets.frame))
        w.drain()
        #expect(w.violations.isEmpty, "\(w.violations)")
        #expect(w.outputs.count == 10 && w.outputs.allSatisfy { $0.route == .raw4 })
        #expect(w.io.sentAsFrames == 0 && w.io.nextHopFallbacks == 0)
        #expect(w.io.noIPv6Socket == 5)
        #expect(w.freeCount == 64)
    }

    /// Fewer buffers than the batch limit, many frames: batches are capped by the free buffers, the ring runs dry (counted) while sends are
    /// in flight, no buffer is sent twice or leaked, and none is in two sends of one turn.
    @Test func bufferAccountingUnderPressure() throws {
        let (w, _, hops, _) = try Self.worker(Self.config(), bufferCount: 4, batchLimit: 6)
        hops.publish(Self.headers(count: 3, resolved: [1]))
        w.inject((0..<100).map { Packets.frame(Self.udp4(25000 + $0)) })
        var batches: [Int] = []
        while w.waiting > 0 || w.inFlightCount > 0 { batches.append(w.turn()) }
        #expect(w.violations.isEmpty, "\(w.violations)")
        #expect(batches.allSatisfy { $0 <= 4 })
        #expect(batches.reduce(0, +) == 100)
        #expect(w.io.bufferRingEmpty > 0)
        #expect(w.outputs.count == 100 && w.io.sent == 100)
        for turn in Set(w.outputs.map(\.turn)) {
            let ids = w.outputs.filter { $0.turn == turn }.map(\.buffer)
            #expect(Set(ids).count == ids.count)
        }
        #expect(w.freeCount == 4)
    }

    /// A snapshot published between batches is installed before the next batch (with its filter);
    /// one that fails to attach its filter is still installed, and the failure counted.
    @Test func snapshotInstalledBetweenBatches() throws {
        let initial = try ForwardingSnapshot(config: Self.config())
        let (w, mailbox, _, _) = try Self.worker(initial, Self.config(), framesOn: false)
        w.inject([Packets.frame(Self.udp4(26000))])
        w.turn()
        #expect(w.outputs.count == 1)
        let first = Array(w.outputs[0].bytes[16..<20])
        #expect(first == Packets.ipv4Bytes("198.18.1.1") || first == Packets.ipv4Bytes("198.18.1.2"))

        let next = Self.config(backends4: ["198.18.9.9"])
        let filter = VIPFilter.program(for: next.vips, mode: .ethertype)
        let second = try ForwardingSnapshot(config: next, previous: initial)
        mailbox.publish(.init(snapshot: second, filter: filter.program, filterMode: filter.mode))
        w.inject((0..<8).map { Packets.frame(Self.udp4(27000 + $0)) })
        w.turn()
        #expect(w.io.snapshotsInstalled == 1)
        #expect(w.attachedFilters.count == 1 && w.filterMode == .ethertype)
        #expect(w.outputs.count == 9)
        #expect(w.outputs.dropFirst().allSatisfy { Array($0.bytes[16..<20]) == Packets.ipv4Bytes("198.18.9.9") })

        w.failFilterAttach = true
        mailbox.publish(.init(snapshot: try ForwardingSnapshot(config: Self.config(), previous: second), filter: [], filterMode: .vips))
        w.turn()
        #expect(w.io.snapshotsInstalled == 2 && w.io.filterUpdateErrors == 1)
        #expect(w.filterMode == .ethertype)
        w.drain()
        #expect(w.violations.isEmpty, "\(w.violations)")
    }

    /// A statistics request is served between batches with the worker's counters (kernel drops
    /// included), and not served again until asked.
    @Test func statisticsPublishedOnRequest() throws {
        let (w, _, _, link) = try Self.worker(Self.config(), framesOn: false)
        w.inject((0..<5).map { Packets.frame(Self.udp4(28000 + $0)) })
        w.turn()
        #expect(link.statisticsServed.load(ordering: .relaxed) == 0)
        w.pendingKernelDrops = 3
        link.statisticsRequested.add(1, ordering: .relaxed)
        w.turn()
        #expect(link.statisticsServed.load(ordering: .relaxed) == 1)
        let s = link.statistics.withLock { $0 }
        #expect(s.ringMode == "memory")
        #expect(s.io.received == 5 && s.io.sent == 5 && s.io.kernelDrops == 3)
        #expect(s.dataplane.packets == 5 && s.dataplane.forwarded == 5)
        w.turn()
        #expect(link.statisticsServed.load(ordering: .relaxed) == 1)
    }

    /// The whole turn (receive into slots, between batches, the data plane, routing to frame /
    /// raw / release, finish) allocates nothing once warm: the per-packet path the live loops
    /// share. Counted on this thread only.
    @Test func warmTurnsAllocateNothing() throws {
        let (w, _, hops, _) = try Self.worker(Self.config(), bufferCount: 128, batchLimit: 32)
        hops.publish(Self.headers(count: 3, resolved: [0]))
        w.recordsOutputs = false
        let flows = (0..<24).map { Self.udp4(29000 + $0) } + (0..<6).map { Self.udp6(29500 + $0) }
            + [Self.udp4(29900, to: "198.18.200.1"), Self.udp4(29901, to: "198.18.200.1")]
        let rounds = 6
        let turnsPerRound = 20
        w.inject(Array(repeating: flows.map(Packets.frame), count: (rounds + 1) * turnsPerRound).flatMap { $0 })
        for _ in 0..<turnsPerRound { w.turn() }  // warm: flows in the table, statistics of both paths
        var counts: [UInt64] = []
        for _ in 0..<rounds {
            let before = cmaglev_thread_allocation_count()
            for _ in 0..<turnsPerRound { w.turn() }
            let allocations = cmaglev_thread_allocation_count() &- before
            counts.append(allocations)
            if allocations == 0 { break }
        }
        #expect(counts.contains(0), "allocations per \(turnsPerRound) turns: \(counts)")
        #expect(w.violations.isEmpty, "\(w.violations)")
        #expect(w.sentByRoute.frame > 0 && w.sentByRoute.raw4 > 0 && w.sentByRoute.raw6 > 0)
        #expect(w.io.received > 0 && w.io.batches == w.io.turns)
    }
}

/// `fragments: redirect` on the worker loop: a redirect leaves through the raw socket (the
/// kernel routes it to the group member), a held fragment's buffer comes back at once (the
/// data plane copied it), and once its first fragment is through, the loop sends it from the
/// data plane's hold between batches.
struct MemoryWorkerFragmentTests {
    static let group = [
        ForwarderMember(name: "fwd1", address: IPAddress("198.18.0.1")!),
        ForwarderMember(name: "fwd2", address: IPAddress("198.18.0.2")!),
    ]

    static func config() -> DataplaneConfig {
        var c = MemoryWorkerTests.config()
        c.fragmentPolicy = .redirect
        c.forwarders = group
        return c
    }

    /// The two fragments (40 bytes of UDP, then the rest) of a UDP datagram from `source`.
    static func fragments(source: String) -> [[UInt8]] {
        let whole = Packets.ipv4(
            source: source, destination: MemoryWorkerTests.vip4, proto: IPProtocol.udp, sourcePort: 5353,
            destinationPort: 53, payload: 64, id: 0x4242)
        let l4 = Array(whole[20...])
        func fragment(_ part: ArraySlice<UInt8>, offset: Int, more: Bool) -> [UInt8] {
            var h = Array(whole[0..<20])
            h[2...3] = ArraySlice(Packets.be16(20 + part.count))
            h[6...7] = ArraySlice(Packets.be16((more ? 0x2000 : 0) | offset / 8))
            h[10] = 0
            h[11] = 0
            h[10...11] = ArraySlice(Packets.be16(Int(Packets.checksum(h[0..<20]))))
            return Packets.frame(h + part)
        }
        return [fragment(l4[0..<40], offset: 0, more: true), fragment(l4[40...], offset: 40, more: false)]
    }

    /// A client address whose fragments member `owner` owns.
    static func source(ownedBy owner: Int, _ snapshot: ForwardingSnapshot) -> String {
        let i = (1..<250).first {
            snapshot.fragmentOwner(
                source: IPAddress("198.18.9.\($0)")!, destination: IPAddress(MemoryWorkerTests.vip4)!,
                proto: IPProtocol.udp) == owner
        }!
        return "198.18.9.\(i)"
    }

    @Test func redirectsLeaveRawAndHeldFragmentsFollowTheirFirst() throws {
        let config = Self.config()
        let snapshot = try ForwardingSnapshot(config: config)
        let (w, _, hops, _) = try MemoryWorkerTests.worker(snapshot, config)
        hops.publish(MemoryWorkerTests.headers(count: 3, resolved: [0, 1, 2]))
        w.dataplane.memberName = "fwd1"

        // Owned by fwd2: redirected, raw, GRE with recursion control 1 to 198.18.0.2.
        let theirs = Self.fragments(source: Self.source(ownedBy: 1, snapshot))
        w.inject([theirs[1]])
        w.drain()
        #expect(w.outputs.count == 1)
        let redirect = try #require(w.outputs.first)
        #expect(redirect.route == .raw4)
        #expect(Array(redirect.bytes[16..<20]) == [198, 18, 0, 2] && Array(redirect.bytes[20..<24]) == [1, 0, 8, 0])
        #expect(Array(redirect.bytes[24...]) == Array(theirs[1][14...]))

        // Owned here: the later fragment first is held (its buffer free at once), then goes
        // after its first fragment, to the same backend, from the hold (buffer -1).
        let ours = Self.fragments(source: Self.source(ownedBy: 0, snapshot))
        w.inject([ours[1]])
        w.drain()
        #expect(w.outputs.count == 1 && w.dataplane.hasHeld)
        #expect(w.violations.isEmpty, "\(w.violations)")
        #expect(w.freeCount == 64)
        w.inject([ours[0]])
        w.drain()
        #expect(!w.dataplane.hasHeld)
        #expect(w.outputs.count == 3)
        let first = w.outputs[1]
        let held = w.outputs[2]
        #expect(held.buffer == -1 && held.route == .raw4)
        #expect(Array(held.bytes[24...]) == Array(ours[1][14...]))
        // The same backend: the first went as a frame (next hop known) to backend MAC 02:..:id.
        let firstDestination = first.route == .frame ? Array(first.bytes[30..<34]) : Array(first.bytes[16..<20])
        #expect(firstDestination == Array(held.bytes[16..<20]))
        #expect(w.violations.isEmpty, "\(w.violations)")
        let s = w.dataplane.statistics
        #expect(s.fragmentsRedirected == 1 && s.fragmentsHeld == 1 && s.heldReleased == 1)
    }
}
