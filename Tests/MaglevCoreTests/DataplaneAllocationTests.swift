// The data plane's contract: `process` allocates nothing (docs/architecture.md). Measured with
// CAllocationCounter, which counts every malloc of the process (all threads).

import CAllocationCounter
import Foundation
import Glibc
import Testing

@testable import MaglevCore

private typealias H = DataplaneHarness

/// Frames laid out in one arena, each behind `stride - frame` bytes of headroom, with a pristine
/// copy to restore them from (the data plane writes headers over the link layer in place). The
/// per-packet loop touches only raw memory: it allocates nothing by itself.
private final class AllocationRig {
    let ethernetCount: Int
    let rawCount: Int
    let count: Int
    let stride = 2048
    let working: UnsafeMutableRawPointer
    let pristine: UnsafeMutableRawPointer
    let lengths: UnsafeMutablePointer<Int>
    let slots: UnsafeMutableBufferPointer<PacketSlot>
    /// Per outcome: [forward, icmpReply, pass, drop] then one per DropReason.
    let outcomes: UnsafeMutablePointer<Int>
    let outcomeCount = 4 + DropReason.allCases.count
    var tracesTaken = 0

    /// `ethernet` frames (processed one by one and as a batch) and `raw` raw-IP frames
    /// (processed one by one at offset 0: no headroom).
    init(ethernet: [[UInt8]], raw: [[UInt8]]) {
        ethernetCount = ethernet.count
        rawCount = raw.count
        count = ethernet.count + raw.count
        let stride = self.stride
        let pristine = UnsafeMutableRawPointer.allocate(byteCount: count * stride, alignment: 64)
        working = .allocate(byteCount: count * stride, alignment: 64)
        self.pristine = pristine
        working.initializeMemory(as: UInt8.self, repeating: 0, count: count * stride)
        pristine.initializeMemory(as: UInt8.self, repeating: 0, count: count * stride)
        lengths = .allocate(capacity: count)
        for (i, frame) in (ethernet + raw).enumerated() {
            precondition(frame.count + H.headroom <= stride)
            lengths[i] = frame.count
            let at = i < ethernet.count ? i * stride + H.headroom : i * stride
            frame.withUnsafeBytes { (pristine + at).copyMemory(from: $0.baseAddress!, byteCount: frame.count) }
        }
        slots = .allocate(capacity: ethernet.count)
        for i in 0..<ethernet.count {
            // Every other frame as a live driver marks a CHECKSUM_PARTIAL one: the completion
            // (and its counters) runs inside the measured rounds too.
            slots[i] = PacketSlot(
                base: working + i * stride, offset: H.headroom, length: lengths[i], checksumPending: i % 2 == 0)
        }
        outcomes = .allocate(capacity: outcomeCount)
        outcomes.initialize(repeating: 0, count: outcomeCount)
    }

    deinit {
        working.deallocate()
        pristine.deallocate()
        lengths.deallocate()
        slots.deallocate()
        outcomes.deallocate()
    }

    @inline(__always) func restore(_ i: Int) {
        (working + i * stride).copyMemory(from: pristine + i * stride, byteCount: stride)
    }

    @inline(__always) func tally(_ v: Verdict) {
        outcomes[Int(v.action.rawValue)] += 1
        if let r = v.reason { outcomes[4 + Int(r.rawValue)] += 1 }
    }

    /// One round: every Ethernet frame singly, then all of them as one batch, then the raw
    /// frames at offset 0. Returns the number of packets processed.
    func round(_ dp: Dataplane, now: UInt64) -> Int {
        for i in 0..<ethernetCount {
            restore(i)
            tally(dp.process(base: working + i * stride, offset: H.headroom, length: lengths[i], linkType: .ethernet, now: now))
        }
        for i in 0..<ethernetCount {
            restore(i)
            slots[i].offset = H.headroom
            slots[i].length = lengths[i]
        }
        dp.process(batch: slots, linkType: .ethernet, now: now)
        for i in 0..<ethernetCount { tally(slots[i].verdict) }
        // A driver takes the tracer's records between batches.
        dp.takeTraces { tracesTaken &+= $0.count }
        for i in ethernetCount..<count {
            restore(i)
            tally(dp.process(base: working + i * stride, offset: 0, length: lengths[i], linkType: .rawIP, now: now))
        }
        return 2 * ethernetCount + rawCount
    }

    func outcome(_ action: Verdict.Action) -> Int { outcomes[Int(action.rawValue)] }
    func outcome(_ reason: DropReason) -> Int { outcomes[4 + Int(reason.rawValue)] }
}

@Suite(.serialized) struct DataplaneAllocationTests {
    @Test func theAllocationCounterSeesAnAllocation() {
        let before = cmaglev_allocation_count()
        let beforeHere = cmaglev_thread_allocation_count()
        let array = [Int](repeating: 7, count: 1000)
        let after = cmaglev_allocation_count()
        let afterHere = cmaglev_thread_allocation_count()
        withExtendedLifetime(array) {}
        #expect(array.count == 1000)
        #expect(after > before)
        #expect(afterHere > beforeHere, "the thread's own count sees its allocation")
    }

    @Test func anotherThreadsAllocationsDoNotShowInThisThreadsCount() {
        let total = cmaglev_allocation_count()
        let thread = Thread {
            usleep(20_000)  // after this thread took its `before`
            for _ in 0..<100 { withExtendedLifetime([Int](repeating: 1, count: 64)) {} }
        }
        thread.start()
        let before = cmaglev_thread_allocation_count()
        while !thread.isFinished { usleep(1000) }
        let after = cmaglev_thread_allocation_count()
        #expect(after == before, "another thread's allocations counted here: \(after - before)")
        #expect(cmaglev_allocation_count() >= total + 100, "the process-wide count saw them")
    }

    private static func config(policy: FragmentPolicy, down: Bool) -> DataplaneConfig {
        var web = H.backends(10)
        if down { web[3].state = .down }
        return DataplaneConfig(
            vips: [
                VIPConfig(
                    name: "web", address: FrameBuilder.address(H.vip4), proto: IPProtocol.tcp, port: 80,
                    backends: web),
                VIPConfig(
                    name: "web6", address: FrameBuilder.address(H.vip6), proto: IPProtocol.tcp, port: 80,
                    backends: H.backends(4, ipv6: true, first: 20)),
                VIPConfig(
                    name: "dns", address: FrameBuilder.address(H.vip4), proto: IPProtocol.udp, port: 53,
                    backends: H.backends(10, first: 40)),
                VIPConfig(
                    name: "dns6", address: FrameBuilder.address(H.vip6), proto: IPProtocol.udp, port: 53,
                    backends: H.backends(4, ipv6: true, first: 20)),
            ],
            hashSeed: 7, pathMTU: 1400, encapSourceIPv4: H.encapSource4, encapSourceIPv6: H.encapSource6,
            fragmentPolicy: policy,
            // UDP entries expire after 1 ms: every round's datagrams are connection-table misses.
            timeouts: ConnectionTimeouts(datagramMs: 1, fragmentMs: 1),
            icmpRatePerSecond: 1_000_000, icmpBurst: 1_000_000)
    }

    private static func frames() -> (ethernet: [[UInt8]], raw: [[UInt8]]) {
        var e: [[UInt8]] = []
        for i in 0..<60 {
            e.append(H.tcp(i, flags: TCPFlags.ack).bytes)  // hits (established in the warm-up)
            e.append(H.tcp(i, flags: TCPFlags.ack, ipv6: true).payload(64).bytes)
        }
        for i in 0..<20 {
            e.append(FrameBuilder.udp(H.client(i), 3000, H.vip4, 53).payload(32).bytes)  // misses
            e.append(FrameBuilder.udp(H.client(i, ipv6: true), 3000, H.vip6, 53).bytes)
        }
        for i in 0..<5 {
            e.append(H.tcp(1000 + i, flags: TCPFlags.syn).bytes)  // a SYN, then FIN, then SYN again
            e.append(H.tcp(1000 + i, flags: TCPFlags.fin | TCPFlags.ack).bytes)
            e.append(H.tcp(1000 + i, flags: TCPFlags.syn).bytes)
        }
        for i in 0..<10 {
            let reply = FrameBuilder.tcp(H.vip4, 80, H.client(i), H.clientPort(i))
            e.append(FrameBuilder.icmp(H.router4, H.vip4, .destinationUnreachable(code: 3, quoting: reply)).bytes)
            let reply6 = FrameBuilder.tcp(H.vip6, 80, H.client(i, ipv6: true), H.clientPort(i))
            e.append(FrameBuilder.icmp(H.router6, H.vip6, .packetTooBig(mtu: 1280, quoting: reply6)).bytes)
        }
        for i in 0..<4 {
            let d = FrameBuilder.udp(H.client(i), 4000, H.vip4, 53).payload(100).ipv4 { $0.identification = UInt16(i) }
            e += d.ipv4Fragments(payloadPerFragment: 32)
            let d6 = FrameBuilder.udp(H.client(i, ipv6: true), 4000, H.vip6, 53).payload(100)
            e += d6.ipv6Fragments(payloadPerFragment: 32, identification: UInt32(i)).reversed()
        }
        for i in 0..<5 {
            e.append(H.tcp(i, flags: TCPFlags.ack).payload(1340).ipv4 { $0.dontFragment = true }.bytes)  // reply
            e.append(H.tcp(i, flags: TCPFlags.ack, ipv6: true).payload(1320).bytes)  // reply
            e.append(H.tcp(i, flags: TCPFlags.ack).payload(1340).bytes)  // drop: no DF
        }
        for i in 0..<5 {
            e.append(FrameBuilder.nonIP(etherType: 0x0806, body: Array(repeating: 0, count: 28)).bytes)  // pass
            e.append(FrameBuilder.tcp(H.client(i), 5000, "198.18.0.99", 80).bytes)  // pass
            e.append(Array(H.tcp(i, flags: TCPFlags.ack).payload(100).bytes.dropLast(50)))  // truncated
            e.append(H.tcp(i, flags: TCPFlags.ack).ipv4 { $0.headerLengthWords = 3 }.bytes)  // malformed
            e.append(H.tcp(i, flags: TCPFlags.ack).vlan(100).vlan(200, tpid: 0x88A8).mpls(16).bytes)  // tagged
        }
        for i in 0..<5 {  // tracer probes (marker + trailer)
            let probe = TraceProbe(collector: FrameBuilder.address("198.18.200.9"), collectorPort: 9999, id: UInt64(i))
            e.append(H.tcp(2000 + i, flags: TCPFlags.syn).payload(TraceMarker.trailer(probe)).ipv4 { $0.reservedFlag = true }.bytes)
            e.append(
                FrameBuilder.udp(H.client(i, ipv6: true), 3001, H.vip6, 53).payload(TraceMarker.trailer(probe))
                    .ipv6 { $0.flowLabel = TraceMarker.ipv6FlowLabel }.bytes)
        }
        let raw = (0..<5).map { H.tcp($0, flags: TCPFlags.ack).rawIP().bytes }  // no headroom
        return (e, raw)
    }

    /// Polls every millisecond (usleep: no allocation, and leaves the core to the other suites)
    /// until the process-wide allocation count has not moved for 50 ms, or 120 s have passed.
    private static func waitUntilQuiet() {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .seconds(120))
        var count = cmaglev_allocation_count()
        var since = clock.now
        while clock.now < deadline {
            usleep(1000)
            let c = cmaglev_allocation_count()
            if c != count {
                count = c
                since = clock.now
            } else if since.duration(to: clock.now) >= .milliseconds(50) {
                return
            }
        }
    }

    @Test func processingAHundredThousandPacketsAllocatesNothing() throws {
        let up = try ForwardingSnapshot(config: Self.config(policy: .fragmentTable, down: false))
        // A worker only installs descendants of what it runs: each flip is built from the last.
        let flip = { (dp: Dataplane, down: Bool) in
            dp.install(try ForwardingSnapshot(config: Self.config(policy: .fragmentTable, down: down), previous: dp.snapshot))
        }
        let stateless = try ForwardingSnapshot(config: Self.config(policy: .threeTuple, down: false))
        let dp = Dataplane(snapshot: up)
        let dp3 = Dataplane(snapshot: stateless)
        let (ethernet, raw) = Self.frames()
        let rig = AllocationRig(ethernet: ethernet, raw: raw)
        let rig3 = AllocationRig(ethernet: ethernet, raw: raw)

        // Warm-up: establish the TCP flows, and run every path once (lazy globals, metadata).
        for i in 0..<60 {
            _ = H.run(dp, H.tcp(i, flags: TCPFlags.syn).bytes)
            _ = H.run(dp, H.tcp(i, flags: TCPFlags.syn, ipv6: true).bytes)
            _ = H.run(dp3, H.tcp(i, flags: TCPFlags.syn).bytes)
        }
        var now = H.start
        for _ in 0..<3 {
            now += 2_000_000
            _ = rig.round(dp, now: now)
            _ = rig3.round(dp3, now: now)
            try flip(dp, true)
            _ = rig.round(dp, now: now)
            try flip(dp, false)
        }

        // The counter is process-wide, and Swift Testing runs other suites in parallel on other
        // threads: their allocations (millions a second during a full `swift test`) land in any
        // window we measure, and can only add counts. So each attempt first waits until the
        // process has been quiet for 50 ms (others finished; see `waitUntilQuiet`), then runs
        // the loop. Up to three attempts; at least one must count exactly zero. Code on the
        // measured path that allocates fails every attempt. Only `process` is measured:
        // `install` runs between the measured stretches (it is not part of the per-packet
        // contract and does allocate; see `installCostIsRecorded`).
        var counts: [UInt64] = []
        counts.reserveCapacity(3)
        var processed = 0
        for _ in 0..<3 {
            Self.waitUntilQuiet()
            processed = 0
            var allocations: UInt64 = 0
            while processed < 100_000 {
                // 4 ms a round: the 1 ms UDP entries of the previous round have expired.
                now += 4_000_000
                // The calling thread's own count: suites running beside this one allocate too.
                var before = cmaglev_thread_allocation_count()
                processed &+= rig.round(dp, now: now)
                processed &+= rig3.round(dp3, now: now)
                allocations &+= cmaglev_thread_allocation_count() &- before
                // A worker installs snapshots between batches: here one with be-03 down and back
                // (its flows are reselected the first time through).
                try flip(dp, true)
                before = cmaglev_thread_allocation_count()
                processed &+= rig.round(dp, now: now &+ 2_000_000)
                allocations &+= cmaglev_thread_allocation_count() &- before
                try flip(dp, false)
            }
            counts.append(allocations)
            if allocations == 0 { break }
        }
        #expect(counts.contains(0), "allocations per run of \(processed) packets: \(counts)")
        #expect(processed >= 100_000)

        // The loop did go through every kind of outcome.
        for r in [rig, rig3] {
            #expect(r.outcome(.forward) > 0)
            #expect(r.outcome(.icmpReply) > 0)
            #expect(r.outcome(.pass) > 0)
            #expect(r.outcome(.drop) > 0)
            for reason in [DropReason.notIP, .unknownVIP, .truncatedPacket, .badIPv4HeaderLength, .packetTooBigNoDF, .noHeadroom] {
                #expect(r.outcome(reason) > 0, "\(reason)")
            }
        }
        let s = dp.statistics
        #expect(s.reselected > 0)
        #expect(s.traced > 0 && rig.tracesTaken > 0, "probes among the frames")
        #expect(s.checksumsCompleted > 0)
        #expect(s.checksumsNotCompletable > 0, "fragments and ICMP errors among the marked frames")
        #expect(dp.connections.statistics.inserts > 1000)  // misses every round
        #expect(dp.fragments.statistics.inserts > 0)
        #expect(s.packets == s.forwarded + s.icmpReplies + s.reasons.reduce(0, +))
    }

    /// `install`, between batches, is not part of the per-packet contract, but it must stay
    /// cheap: a few allocations per call, the same however many connections the data plane holds
    /// (it keeps the connection entries, never copies them). Measured like the test above: after
    /// the process has been quiet, the least of three attempts (other suites only add counts).
    @Test func installCostsAFewAllocationsWhateverTheConnectionsHeld() throws {
        func installCost(connections: Int) throws -> UInt64 {
            var chain = [try ForwardingSnapshot(config: Self.config(policy: .threeTuple, down: false))]
            for i in 1...8 {
                chain.append(
                    try ForwardingSnapshot(config: Self.config(policy: .threeTuple, down: i % 2 == 1), previous: chain[i - 1]))
            }
            let dp = Dataplane(snapshot: chain[0])
            for i in 0..<connections { _ = H.run(dp, H.tcp(i, flags: TCPFlags.syn).bytes) }
            #expect(dp.connections.statistics.inserts >= UInt64(connections))
            dp.install(chain[1])
            dp.install(chain[2])  // warm-up
            var least = UInt64.max
            for attempt in 0..<3 {
                Self.waitUntilQuiet()
                let before = cmaglev_thread_allocation_count()
                dp.install(chain[3 + 2 * attempt])
                dp.install(chain[4 + 2 * attempt])
                least = min(least, (cmaglev_thread_allocation_count() &- before) / 2)
            }
            #expect(dp.snapshot === chain[8])
            return least
        }
        let idle = try installCost(connections: 0)
        let busy = try installCost(connections: 5000)
        print("Dataplane.install: \(idle) allocations per call (\(busy) with 5000 connections)")
        #expect(idle <= 32, "Dataplane.install allocates \(idle) times per call")
        #expect(busy == idle, "install costs \(busy) allocations with 5000 connections, \(idle) with none")
    }
}
