// Behaviour of `Dataplane.process` against the policy of docs/maglev.md: backend selection,
// connection persistence across reloads, drain/down, fragments, ICMP errors, MTU and ICMP
// replies, counters, truncation and headroom. The oracle for "which backend" is the
// snapshot's own table (`ForwardingSnapshot.backendID(vip:hash:)`) fed with a key the test
// builds from its own values.

import Testing

@testable import MaglevCore

private typealias H = DataplaneHarness

@Suite struct DataplaneBehaviorTests {
    // MARK: 1. Selection

    @Test func synFlowsFollowTheTableSpreadEvenlyAndStay() throws {
        let snapshot = try ForwardingSnapshot(config: H.config(backends: H.backends(10)))
        let dp = Dataplane(snapshot: snapshot, connectionCapacity: 1 << 18)
        let n = 20_000
        var chosen = [Int32](repeating: -1, count: n)
        var perBackend = [Int](repeating: 0, count: 10)
        var mismatches: [String] = []
        for i in 0..<n {
            let out = H.run(dp, H.tcp(i, flags: TCPFlags.syn).bytes)
            let expected = H.choice(snapshot, H.key(i))
            if out.verdict.action != .forward || out.verdict.backend != expected {
                mismatches.append("flow \(i): \(out.verdict) expected backend \(expected)")
                continue
            }
            chosen[i] = out.verdict.backend
            perBackend[Int(out.verdict.backend)] += 1
            // The outer IPv4 destination is that backend's address.
            let address = snapshot.address(ofBackend: Int(out.verdict.backend)).ipv4Value
            #expect(H.be32(out.bytes, 16) == Int(address))
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) flows off the table, e.g. \(mismatches.prefix(3))")

        let mean = Double(n) / 10
        for (b, count) in perBackend.enumerated() {
            #expect(Double(count) >= 0.8 * mean && Double(count) <= 1.2 * mean, "backend \(b): \(count) flows")
        }

        var moved = 0
        for i in 0..<n {
            let out = H.run(dp, H.tcp(i, flags: TCPFlags.ack).bytes)
            if out.verdict.action != .forward || out.verdict.backend != chosen[i] { moved += 1 }
        }
        #expect(moved == 0)
        let stats = dp.statistics
        #expect(stats.forwarded == UInt64(2 * n))
        #expect(stats.reselected == 0)
        #expect(stats.backends.map(\.newFlows) == perBackend.map { UInt64($0) })
        #expect(dp.connections.statistics.inserts == UInt64(n))
    }

    @Test func batchAndSinglePacketProcessingAgree() throws {
        let config = H.config(backends: H.backends(10)) { $0.pathMTU = 1400 }
        // A mixed sequence: SYNs, their ACKs in the same chunk and later, FINs, a SYN reopening a
        // closed flow, non-IP, unknown VIP, an ICMP error, too big, IPv6 to no VIP.
        var frames: [[UInt8]] = []
        for i in 0..<150 {
            frames.append(H.tcp(i, flags: TCPFlags.syn).bytes)
            if i % 3 == 0 { frames.append(H.tcp(i, flags: TCPFlags.ack).bytes) }
            if i % 17 == 0 { frames.append(FrameBuilder.nonIP(etherType: 0x0806, body: Array(repeating: 1, count: 28)).bytes) }
            if i % 19 == 0 { frames.append(FrameBuilder.tcp(H.client(i), 999, "198.18.0.99", 80).bytes) }
            if i % 23 == 0 {
                frames.append(H.tcp(i, flags: TCPFlags.ack).payload(1400).ipv4 { $0.dontFragment = true }.bytes)
            }
            if i % 29 == 0 {
                let quoted = FrameBuilder.tcp(H.vip4, 80, H.client(i), H.clientPort(i))
                frames.append(FrameBuilder.icmp(H.router4, H.vip4, .destinationUnreachable(code: 3, quoting: quoted)).bytes)
            }
        }
        for i in 0..<150 {
            frames.append(H.tcp(i, flags: TCPFlags.ack).bytes)
            if i % 5 == 0 { frames.append(H.tcp(i, flags: TCPFlags.fin | TCPFlags.ack).bytes) }
            if i % 10 == 0 { frames.append(H.tcp(i, flags: TCPFlags.syn).bytes) }
        }
        frames.append(FrameBuilder.udp("2001:db8::7", 5353, "2001:db8::99", 53).bytes)
        #expect(frames.count % Dataplane.batchChunk != 0)

        let single = Dataplane(snapshot: try ForwardingSnapshot(config: config))
        let batched = Dataplane(snapshot: try ForwardingSnapshot(config: config))
        let one = frames.map { H.run(single, $0) }
        // Batches of uneven sizes, so chunks start at different places.
        var many: [H.Output] = []
        var start = 0
        var size = 1
        while start < frames.count {
            let end = min(frames.count, start + size)
            many += H.runBatch(batched, Array(frames[start..<end]))
            start = end
            size = size * 3 % 101 + 1
        }
        #expect(one.count == many.count)
        let differing = zip(one, many).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
        #expect(differing.isEmpty, "frames \(differing.prefix(5)) differ")
        #expect(single.statistics == batched.statistics)
        // The sequence covered every kind of outcome it meant to.
        let actions = Set(one.map(\.verdict.action))
        #expect(actions == [.forward, .pass, .icmpReply])
    }

    /// Replay's entry point: packets parsed by the caller, each decided at its own time, give
    /// what the single-packet path gives them one by one at those times (verdicts, output
    /// bytes, counters), across timeouts and ICMP token refills inside one batch.
    @Test func parsedBatchWithOwnTimesAgreesWithSinglePackets() throws {
        let config = H.config(backends: H.backends(10)) {
            $0.pathMTU = 1400
            $0.icmpRatePerSecond = 2
            $0.icmpBurst = 1
        }
        var frames: [[UInt8]] = []
        var nows: [UInt64] = []
        var t = H.start
        for i in 0..<120 {
            frames.append(H.tcp(i % 40, flags: i < 40 ? TCPFlags.syn : TCPFlags.ack).bytes)
            nows.append(t)
            if i % 7 == 0 {
                // Two too big at once: the second finds the bucket (burst 1) empty.
                for _ in 0..<2 {
                    frames.append(H.tcp(i, flags: TCPFlags.ack).payload(1400).ipv4 { $0.dontFragment = true }.bytes)
                    nows.append(t)
                }
            }
            if i % 11 == 0 {
                frames.append(FrameBuilder.nonIP(etherType: 0x0806, body: Array(repeating: 1, count: 28)).bytes)
                nows.append(t)
            }
            // Steps of 0.3 s to 12 s: half-open entries expire between some packets of one
            // batch, and ICMP tokens come back between others.
            t += UInt64(300_000_000 + (i % 5) * 2_900_000_000)
        }
        let single = Dataplane(snapshot: try ForwardingSnapshot(config: config))
        let batched = Dataplane(snapshot: try ForwardingSnapshot(config: config))
        let hashed = Dataplane(snapshot: try ForwardingSnapshot(config: config))
        let one = zip(frames, nows).map { H.run(single, $0.0, now: $0.1) }
        var many: [H.Output] = []
        var manyHashed: [H.Output] = []
        var start = 0
        var size = 5
        while start < frames.count {
            let end = min(frames.count, start + size)
            many += H.runParsedBatch(batched, Array(frames[start..<end]), nows: Array(nows[start..<end]))
            // The hashes handed in, as replay does after prefetching the buckets.
            manyHashed += H.runParsedBatch(
                hashed, Array(frames[start..<end]), nows: Array(nows[start..<end]), withHashes: true)
            start = end
            size = size * 7 % 45 + 1
        }
        let differing = zip(one, many).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
        #expect(one.count == many.count)
        #expect(differing.isEmpty, "frames \(differing.prefix(5)) differ")
        #expect(single.statistics == batched.statistics)
        #expect(manyHashed == many)
        #expect(hashed.statistics == batched.statistics)
        let actions = Set(one.map(\.verdict.action))
        #expect(actions.contains(.icmpReply) && actions.contains(.forward) && actions.contains(.pass))
        #expect(one.contains { $0.verdict.reason == .icmpRateLimited })
    }

    // MARK: 2-4. Reloads: add, remove, drain, down

    /// SYN then ACK for flows `range`; returns each flow's backend.
    private func establish(_ dp: Dataplane, _ range: Range<Int>, now: UInt64 = H.start) -> [Int32] {
        range.map { i in
            let syn = H.run(dp, H.tcp(i, flags: TCPFlags.syn).bytes, now: now).verdict
            let ack = H.run(dp, H.tcp(i, flags: TCPFlags.ack).bytes, now: now).verdict
            #expect(syn.action == .forward && ack.backend == syn.backend)
            return syn.backend
        }
    }

    @Test func addingABackendMovesNoEstablishedFlowAndNewFlowsFollowTheNewTable() throws {
        let s1 = try ForwardingSnapshot(config: H.config(backends: H.backends(10)))
        let dp = Dataplane(snapshot: s1)
        let before = establish(dp, 0..<2000)

        let s2 = try ForwardingSnapshot(config: H.config(backends: H.backends(11)), previous: s1)
        #expect(Array(s2.backendNames.prefix(10)) == s1.backendNames)
        #expect(H.id(s2, "be-10") == 10)
        dp.install(s2)
        // Without connection tracking some of these would move: the test can see a move.
        let wouldMove = (0..<2000).filter { H.choice(s2, H.key($0)) != before[$0] }.count
        #expect(wouldMove > 0)

        var moved = 0
        for i in 0..<2000 where H.run(dp, H.tcp(i, flags: TCPFlags.ack).bytes).verdict.backend != before[i] {
            moved += 1
        }
        #expect(moved == 0)

        var offTable = 0
        var onNew = 0
        for i in 2000..<4000 {
            let v = H.run(dp, H.tcp(i, flags: TCPFlags.syn).bytes).verdict
            if v.backend != H.choice(s2, H.key(i)) { offTable += 1 }
            if v.backend == 10 { onNew += 1 }
        }
        #expect(offTable == 0)
        #expect(onNew > 0)
        #expect(dp.statistics.reselected == 0)
        #expect(dp.statistics.backends.count == 11)
        #expect(dp.statistics.backends[10].newFlows == UInt64(onNew))
    }

    @Test func removingABackendReselectsOnlyItsFlows() throws {
        let s1 = try ForwardingSnapshot(config: H.config(backends: H.backends(10)))
        let dp = Dataplane(snapshot: s1)
        let before = establish(dp, 0..<2000)
        let removed = H.id(s1, "be-03")

        var remaining = H.backends(10)
        remaining.remove(at: 3)
        let s2 = try ForwardingSnapshot(config: H.config(backends: remaining), previous: s1)
        #expect(s2.backendPresent[Int(removed)] == false)
        #expect(H.id(s2, "be-04") == H.id(s1, "be-04"))
        dp.install(s2)

        var reselected = 0
        var wrong: [Int] = []
        for i in 0..<2000 {
            let v = H.run(dp, H.tcp(i, flags: TCPFlags.ack).bytes).verdict
            if before[i] == removed {
                reselected += 1
                if v.backend != H.choice(s2, H.key(i)) || v.backend == removed { wrong.append(i) }
            } else if v.backend != before[i] {
                wrong.append(i)
            }
        }
        #expect(reselected > 0)
        #expect(wrong.isEmpty, "flows \(wrong.prefix(5))")
        #expect(dp.statistics.reselected == UInt64(reselected))
        // The reselection was recorded: the flows stay where they were sent, and are not
        // reselected twice.
        for i in 0..<2000 where before[i] == removed {
            #expect(H.run(dp, H.tcp(i, flags: TCPFlags.ack).bytes).verdict.backend == H.choice(s2, H.key(i)))
        }
        #expect(dp.statistics.reselected == UInt64(reselected))
    }

    @Test func drainingKeepsItsFlowsAndTakesNoNewOnesThenDownReselectsThem() throws {
        let s1 = try ForwardingSnapshot(config: H.config(backends: H.backends(10)))
        let dp = Dataplane(snapshot: s1)
        let before = establish(dp, 0..<2000)
        let target = H.id(s1, "be-03")
        let targetFlows = (0..<2000).filter { before[$0] == target }
        #expect(!targetFlows.isEmpty)

        var draining = H.backends(10)
        draining[3].state = .draining
        let s2 = try ForwardingSnapshot(config: H.config(backends: draining), previous: s1)
        dp.install(s2)
        for i in 0..<2000 {
            #expect(H.run(dp, H.tcp(i, flags: TCPFlags.ack).bytes).verdict.backend == before[i])
        }
        var toTarget = 0
        var offTable = 0
        for i in 2000..<6000 {
            let v = H.run(dp, H.tcp(i, flags: TCPFlags.syn).bytes).verdict
            if v.backend == target { toTarget += 1 }
            if v.backend != H.choice(s2, H.key(i)) { offTable += 1 }
        }
        #expect(toTarget == 0)
        #expect(offTable == 0)
        #expect(dp.statistics.reselected == 0)

        var down = H.backends(10)
        down[3].state = .down
        let s3 = try ForwardingSnapshot(config: H.config(backends: down), previous: s2)
        dp.install(s3)
        for i in 0..<2000 {
            let v = H.run(dp, H.tcp(i, flags: TCPFlags.ack).bytes).verdict
            if before[i] == target {
                #expect(v.backend != target)
                #expect(v.backend == H.choice(s3, H.key(i)))
            } else {
                #expect(v.backend == before[i])
            }
        }
        #expect(dp.statistics.reselected == UInt64(targetFlows.count))

        // Back up: the reselected flows stay on their new backends (the choice was recorded).
        let s4 = try ForwardingSnapshot(config: H.config(backends: H.backends(10)), previous: s3)
        dp.install(s4)
        for i in targetFlows {
            #expect(H.run(dp, H.tcp(i, flags: TCPFlags.ack).bytes).verdict.backend == H.choice(s3, H.key(i)))
        }
    }

    // MARK: 5. Without connection tracking

    @Test func withoutConnectionTrackingExactlyTheFlowsWhoseSlotChangedOwnerMove() throws {
        let s1 = try ForwardingSnapshot(config: H.config(backends: H.backends(10)) { $0.connectionTracking = false })
        let dp = Dataplane(snapshot: s1)
        let before = establish(dp, 0..<2000)
        #expect(dp.connections.statistics.inserts == 0)
        let s2 = try ForwardingSnapshot(
            config: H.config(backends: H.backends(11)) { $0.connectionTracking = false }, previous: s1)
        dp.install(s2)

        var moved: Set<Int> = []
        for i in 0..<2000 where H.run(dp, H.tcp(i, flags: TCPFlags.ack).bytes).verdict.backend != before[i] {
            moved.insert(i)
        }
        let changed = Set((0..<2000).filter { H.choice(s1, H.key($0)) != H.choice(s2, H.key($0)) })
        #expect(!moved.isEmpty)
        #expect(moved == changed)
        // Most moves are onto the new backend (Maglev's extra disruption is small, not zero).
        #expect(changed.filter { H.choice(s2, H.key($0)) == 10 }.count * 10 >= changed.count * 9)
        #expect(dp.connections.statistics.inserts == 0)
        #expect(dp.statistics.reselected == 0)
    }

    // MARK: 6. SYN on a closing entry

    @Test(arguments: [TCPFlags.fin | TCPFlags.ack, TCPFlags.rst])
    func synOnAClosedFlowSelectsAfreshAfterATableChange(closing: UInt8) throws {
        let s1 = try ForwardingSnapshot(config: H.config(backends: H.backends(10)))
        let s2 = try ForwardingSnapshot(config: H.config(backends: H.backends(11)), previous: s1)
        // Two flows whose table choice changes between s1 and s2.
        let flows = (0..<5000).filter { H.choice(s1, H.key($0)) != H.choice(s2, H.key($0)) }.prefix(2)
        #expect(flows.count == 2)
        let closed = flows.first!
        let open = flows.last!

        let dp = Dataplane(snapshot: s1)
        let closedBackend = establish(dp, closed..<(closed + 1))[0]
        let openBackend = establish(dp, open..<(open + 1))[0]
        #expect(H.run(dp, H.tcp(closed, flags: closing).bytes).verdict.backend == closedBackend)
        #expect(dp.connections.state(at: dp.connections.find(hash: FlowHash.hash(H.key(closed), seed: s1.config.hashSeed), now: UInt32(H.start / 1_000_000))) == .tcpClosing)
        dp.install(s2)

        // A new connection on the closed 5-tuple: the new table's choice, then it stays there.
        let reopened = H.run(dp, H.tcp(closed, flags: TCPFlags.syn).bytes).verdict
        #expect(reopened.backend == H.choice(s2, H.key(closed)))
        #expect(reopened.backend != closedBackend)
        #expect(H.run(dp, H.tcp(closed, flags: TCPFlags.ack).bytes).verdict.backend == reopened.backend)
        // The open connection stays.
        #expect(H.run(dp, H.tcp(open, flags: TCPFlags.ack).bytes).verdict.backend == openBackend)
        // Not a reselection: the old backend was still usable.
        #expect(dp.statistics.reselected == 0)
        #expect(dp.statistics.backends[Int(reopened.backend)].newFlows >= 1)
    }

    // MARK: 7. ICMP errors

    @Test(arguments: [false, true])
    func icmpErrorsFollowTheirFlowAndNeverCreateAnEntry(ipv6: Bool) throws {
        let backends = H.backends(10, ipv6: ipv6)
        let s1 = try ForwardingSnapshot(config: H.config(backends: backends, ipv6VIP: ipv6))
        var more = backends
        more.append(H.backend(10, ipv6: ipv6))
        let s2 = try ForwardingSnapshot(config: H.config(backends: more, ipv6VIP: ipv6), previous: s1)
        let k = { (i: Int) in H.key(i, ipv6: ipv6) }
        let flows = (0..<5000).filter { H.choice(s1, k($0)) != H.choice(s2, k($0)) }.prefix(2)
        #expect(flows.count == 2)
        let tracked = flows.first!
        let untracked = flows.last!

        func icmpError(about i: Int) -> [UInt8] {
            // What a router says about the backend's reply (VIP:80 -> client), sent to the VIP.
            let reply = FrameBuilder.tcp(ipv6 ? H.vip6 : H.vip4, 80, H.client(i, ipv6: ipv6), H.clientPort(i))
            return FrameBuilder.icmp(
                ipv6 ? H.router6 : H.router4, ipv6 ? H.vip6 : H.vip4,
                .destinationUnreachable(code: ipv6 ? 1 : 3, quoting: reply)
            ).bytes
        }

        let dp = Dataplane(snapshot: s1)
        let syn = H.run(dp, H.tcp(tracked, flags: TCPFlags.syn, ipv6: ipv6).bytes).verdict
        _ = H.run(dp, H.tcp(tracked, flags: TCPFlags.ack, ipv6: ipv6).bytes)
        #expect(syn.backend == H.choice(s1, k(tracked)))
        dp.install(s2)
        let inserts = dp.connections.statistics.inserts

        let error = H.run(dp, icmpError(about: tracked))
        #expect(error.verdict.action == .forward)
        #expect(error.verdict.vip == 0)
        #expect(error.verdict.backend == syn.backend)
        #expect(H.choice(s2, k(tracked)) != syn.backend)
        #expect(dp.connections.statistics.inserts == inserts)

        // About a flow never seen: the table's choice, and still no entry (the SYN after it
        // is a miss that inserts).
        let stray = H.run(dp, icmpError(about: untracked)).verdict
        #expect(stray.action == .forward)
        #expect(stray.backend == H.choice(s2, k(untracked)))
        #expect(dp.connections.statistics.inserts == inserts)
        _ = H.run(dp, H.tcp(untracked, flags: TCPFlags.syn, ipv6: ipv6).bytes)
        #expect(dp.connections.statistics.inserts == inserts + 1)
        #expect(dp.statistics.reselected == 0)
    }

    @Test func icmpErrorsDoNotRefreshTheirFlowsEntry() throws {
        let timeouts = ConnectionTimeouts(tcpEstablishedMs: 1000)
        let s1 = try ForwardingSnapshot(config: H.config(backends: H.backends(10)) { $0.timeouts = timeouts })
        let s2 = try ForwardingSnapshot(
            config: H.config(backends: H.backends(11)) { $0.timeouts = timeouts }, previous: s1)
        let flow = (0..<5000).first { H.choice(s1, H.key($0)) != H.choice(s2, H.key($0)) }!
        let dp = Dataplane(snapshot: s1)
        let t0 = H.start
        let old = H.run(dp, H.tcp(flow, flags: TCPFlags.syn).bytes, now: t0).verdict.backend
        _ = H.run(dp, H.tcp(flow, flags: TCPFlags.ack).bytes, now: t0)
        dp.install(s2)
        let quoted = FrameBuilder.tcp(H.vip4, 80, H.client(flow), H.clientPort(flow))
        let error = FrameBuilder.icmp(H.router4, H.vip4, .destinationUnreachable(code: 3, quoting: quoted)).bytes
        #expect(H.run(dp, error, now: t0 + 900_000_000).verdict.backend == old)
        // Had the error refreshed the entry it would still be live at 1.5 s; it is not, so the
        // ACK is a miss and follows the new table.
        let later = H.run(dp, H.tcp(flow, flags: TCPFlags.ack).bytes, now: t0 + 1_500_000_000).verdict
        #expect(later.backend == H.choice(s2, H.key(flow)))
    }

    // MARK: 8. Fragments

    private func udpConfig(policy: FragmentPolicy) -> DataplaneConfig {
        DataplaneConfig(
            vips: [
                VIPConfig(
                    name: "dns4", address: FrameBuilder.address(H.vip4), proto: IPProtocol.udp, port: 53,
                    backends: H.backends(10)),
                VIPConfig(
                    name: "dns6", address: FrameBuilder.address(H.vip6), proto: IPProtocol.udp, port: 53,
                    backends: H.backends(10, ipv6: true, first: 20)),
            ],
            hashSeed: 0xF4A9, encapSourceIPv4: H.encapSource4, encapSourceIPv6: H.encapSource6,
            fragmentPolicy: policy)
    }

    private func datagram(_ i: Int, ipv6: Bool) -> FrameBuilder {
        let d = FrameBuilder.udp(H.client(i, ipv6: ipv6), H.clientPort(i), ipv6 ? H.vip6 : H.vip4, 53).payload(100)
        return ipv6 ? d : d.ipv4 { $0.identification = UInt16(1000 + i) }
    }

    private func fragments(_ i: Int, ipv6: Bool) -> [[UInt8]] {
        let d = datagram(i, ipv6: ipv6)
        return ipv6 ? d.ipv6Fragments(payloadPerFragment: 24, identification: UInt32(7000 + i))
            : d.ipv4Fragments(payloadPerFragment: 24)
    }

    private func threeTuple(_ i: Int, ipv6: Bool) -> FlowKey {
        var k = H.key(i, ipv6: ipv6, proto: IPProtocol.udp, port: 53)
        k.sourcePort = 0
        k.destinationPort = 0
        return k
    }

    @Test(arguments: [false, true])
    func threeTupleSendsEveryFragmentOfADatagramToOneBackendInAnyOrder(ipv6: Bool) throws {
        let snapshot = try ForwardingSnapshot(config: udpConfig(policy: .threeTuple))
        let vip = ipv6 ? 1 : 0
        var used: Set<Int32> = []
        for order in 0..<2 {
            let dp = Dataplane(snapshot: snapshot)
            for i in 0..<12 {
                var frags = fragments(i, ipv6: ipv6)
                #expect(frags.count == 5)
                if order == 1 { frags.reverse() }
                let expected = H.choice(snapshot, threeTuple(i, ipv6: ipv6), vip: vip)
                for f in frags {
                    let v = H.run(dp, f).verdict
                    #expect(v.action == .forward && v.vip == Int32(vip) && v.backend == expected, "datagram \(i)")
                }
                used.insert(expected)
            }
            #expect(dp.connections.statistics.inserts == 0)
            #expect(dp.fragments.statistics.inserts == 0)
        }
        #expect(used.count > 1)
    }

    @Test(arguments: [false, true])
    func fragmentTableFirstFragmentFollowsTheConnectionAndLaterOnesFollowIt(ipv6: Bool) throws {
        let snapshot = try ForwardingSnapshot(config: udpConfig(policy: .fragmentTable))
        let vip = ipv6 ? 1 : 0
        // Flows whose 5-tuple and 3-tuple choices differ, so the test sees which one was used.
        let flows = (0..<500).filter {
            H.choice(snapshot, H.key($0, ipv6: ipv6, proto: IPProtocol.udp, port: 53), vip: vip)
                != H.choice(snapshot, threeTuple($0, ipv6: ipv6), vip: vip)
        }.prefix(6)
        #expect(flows.count == 6)
        let dp = Dataplane(snapshot: snapshot)
        for i in flows {
            let connection = H.run(dp, datagram(i, ipv6: ipv6).bytes).verdict
            #expect(connection.action == .forward)
            #expect(connection.backend == H.choice(snapshot, H.key(i, ipv6: ipv6, proto: IPProtocol.udp, port: 53), vip: vip))
            let frags = fragments(i, ipv6: ipv6)
            for f in frags {
                #expect(H.run(dp, f).verdict.backend == connection.backend, "flow \(i)")
            }
        }

        // Later fragments before the first: the 3-tuple choice; once the first is through, the
        // rest follow it. (A fresh data plane, so these are new datagrams and connections.)
        let fresh = Dataplane(snapshot: snapshot)
        for i in flows {
            let frags = fragments(i, ipv6: ipv6)
            let byThreeTuple = H.choice(snapshot, threeTuple(i, ipv6: ipv6), vip: vip)
            for f in frags[3...].reversed() {
                #expect(H.run(fresh, f).verdict.backend == byThreeTuple, "flow \(i)")
            }
            let first = H.run(fresh, frags[0]).verdict
            #expect(first.backend == H.choice(snapshot, H.key(i, ipv6: ipv6, proto: IPProtocol.udp, port: 53), vip: vip))
            for f in frags[1...] {
                #expect(H.run(fresh, f).verdict.backend == first.backend, "flow \(i)")
            }
        }
    }

    // MARK: 9. MTU and ICMP replies

    @Test(arguments: [(false, false, 1376), (false, true, 1356), (true, false, 1376), (true, true, 1356)])
    func tooBigWithDFGetsAnICMPReplyAnnouncingTheInnerMTU(clientIPv6: Bool, backendIPv6: Bool, mtu: Int) throws {
        let dp = Dataplane(
            snapshot: try ForwardingSnapshot(
                config: H.config(backends: H.backends(4, ipv6: backendIPv6), ipv6VIP: clientIPv6) { $0.pathMTU = 1400 }))
        var frame = H.tcp(3, flags: TCPFlags.ack, ipv6: clientIPv6).payload(clientIPv6 ? 1320 : 1340)
        if !clientIPv6 { frame = frame.ipv4 { $0.dontFragment = true } }
        let packet = frame.ipPacket
        #expect(packet.count == 1380)
        let out = H.run(dp, frame.bytes)
        #expect(out.verdict.action == .icmpReply)
        #expect(out.verdict.reason == nil)
        #expect(out.verdict.outputIsIPv6 == clientIPv6)
        let r = out.bytes
        let client = FrameBuilder.address(H.client(3, ipv6: clientIPv6))
        let vip = FrameBuilder.address(clientIPv6 ? H.vip6 : H.vip4)
        if clientIPv6 {
            #expect(r.count == 1280)
            #expect(r[0] >> 4 == 6)
            #expect(H.be16(r, 4) == 1240)
            #expect(r[6] == 58 && r[7] == 64)
            #expect(Array(r[8..<24]) == address16(vip))
            #expect(Array(r[24..<40]) == address16(client))
            #expect(r[40] == 2 && r[41] == 0)
            #expect(H.be32(r, 44) == mtu)
            // Pseudo-header (source, destination, length, next header) + message.
            var pseudo = UInt32(H.onesComplementSum(r[8..<40]))
            pseudo += UInt32(r.count - 40) + 58
            #expect(H.onesComplementSum(r[40...], initial: pseudo) == 0xFFFF)
            #expect(Array(r[48...]) == Array(packet.prefix(1232)))
        } else {
            #expect(r.count == 576)
            #expect(r[0] == 0x45)
            #expect(H.be16(r, 2) == 576)
            #expect(r[8] == 64 && r[9] == 1)
            #expect(H.onesComplementSum(r[0..<20]) == 0xFFFF)
            #expect(H.be32(r, 12) == Int(vip.ipv4Value))
            #expect(H.be32(r, 16) == Int(client.ipv4Value))
            #expect(r[20] == 3 && r[21] == 4)
            #expect(H.be16(r, 26) == mtu)
            #expect(H.onesComplementSum(r[20...]) == 0xFFFF)
            #expect(Array(r[28...]) == Array(packet.prefix(548)))
        }
        #expect(dp.statistics.icmpReplies == 1)
        #expect(dp.statistics.forwarded == 0)
    }

    private func address16(_ a: IPAddress) -> [UInt8] {
        var b: [UInt8] = []
        b.append64(a.high)
        b.append64(a.low)
        return b
    }

    @Test(arguments: [false, true])
    func aPacketThatFitsExactlyIsForwardedAndOneByteMoreIsNot(backendIPv6: Bool) throws {
        let dp = Dataplane(
            snapshot: try ForwardingSnapshot(
                config: H.config(backends: H.backends(4, ipv6: backendIPv6)) { $0.pathMTU = 1400 }))
        let overhead = backendIPv6 ? 44 : 24
        let fits = H.tcp(1, flags: TCPFlags.ack).payload(1400 - overhead - 40).ipv4 { $0.dontFragment = true }
        let out = H.run(dp, fits.bytes)
        #expect(out.verdict.action == .forward)
        #expect(out.verdict.outputLength == 1400)
        let over = H.tcp(1, flags: TCPFlags.ack).payload(1400 - overhead - 39).ipv4 { $0.dontFragment = true }
        #expect(H.run(dp, over.bytes).verdict.action == .icmpReply)
    }

    @Test func tooBigWithoutDFIsDropped() throws {
        let dp = Dataplane(
            snapshot: try ForwardingSnapshot(config: H.config(backends: H.backends(4)) { $0.pathMTU = 1400 }))
        let frame = H.tcp(3, flags: TCPFlags.ack).payload(1340).bytes
        let v = H.run(dp, frame).verdict
        #expect(v.action == .drop)
        #expect(v.reason == .packetTooBigNoDF)
        #expect(v.vip == 0)
        #expect(dp.statistics.count(.packetTooBigNoDF) == 1)
    }

    @Test func icmpRepliesAreRateLimitedByATokenBucket() throws {
        let dp = Dataplane(
            snapshot: try ForwardingSnapshot(
                config: H.config(backends: H.backends(4)) {
                    $0.pathMTU = 1400
                    $0.icmpBurst = 5
                    $0.icmpRatePerSecond = 10
                }))
        let frame = H.tcp(3, flags: TCPFlags.ack).payload(1340).ipv4 { $0.dontFragment = true }.bytes
        let t0 = H.start
        let burst = (0..<6).map { _ in H.run(dp, frame, now: t0).verdict }
        #expect(burst.prefix(5).allSatisfy { $0.action == .icmpReply })
        #expect(burst[5].action == .drop && burst[5].reason == .icmpRateLimited)
        // 10 per second: one token every 100 ms.
        #expect(H.run(dp, frame, now: t0 + 99_000_000).verdict.reason == .icmpRateLimited)
        let t1 = t0 + 100_000_000
        #expect(H.run(dp, frame, now: t1).verdict.action == .icmpReply)
        #expect(H.run(dp, frame, now: t1).verdict.reason == .icmpRateLimited)
        let stats = dp.statistics
        #expect(stats.icmpReplies == 6)
        #expect(stats.count(.icmpRateLimited) == 3)
    }

    /// The sustained rate is `icmpRatePerSecond` whatever the spacing of the packets.
    @Test func icmpSustainedRateHoldsWhenPacketsAreNotOnWholeMilliseconds() throws {
        let dp = Dataplane(
            snapshot: try ForwardingSnapshot(
                config: H.config(backends: H.backends(4)) {
                    $0.pathMTU = 1400
                    $0.icmpBurst = 5
                    $0.icmpRatePerSecond = 500
                }))
        let frame = H.tcp(3, flags: TCPFlags.ack).payload(1340).ipv4 { $0.dontFragment = true }.bytes
        // One packet every 1.9 ms for one second (527 packets, 526/s offered): a token bucket
        // of 500/s with burst 5 answers about 5 + 500 of them. (With burst 1 a true token
        // bucket answers only every other packet, ~263: a token is 2 ms away when the next
        // packet comes after 1.9 ms, and nothing can be saved beyond the one token.)
        var replies = 0
        for n in 0..<527 {
            if H.run(dp, frame, now: H.start + UInt64(n) * 1_900_000).verdict.action == .icmpReply { replies += 1 }
        }
        #expect(replies >= 495 && replies <= 507, "\(replies) replies")
    }

    // MARK: 10. Counters

    @Test func countersAddUpAfterAMixedRun() throws {
        let config = DataplaneConfig(
            vips: [
                VIPConfig(
                    name: "web", address: FrameBuilder.address(H.vip4), proto: IPProtocol.tcp, port: 80,
                    backends: H.backends(10)),
                VIPConfig(
                    name: "web6", address: FrameBuilder.address(H.vip6), proto: IPProtocol.tcp, port: 80,
                    backends: H.backends(4, ipv6: true, first: 20)),
                VIPConfig(
                    name: "drained", address: FrameBuilder.address("198.18.0.20"),
                    backends: [H.backend(30, state: .draining)]),
            ],
            hashSeed: 99, pathMTU: 1400, encapSourceIPv4: H.encapSource4, encapSourceIPv6: H.encapSource6)
        let snapshot = try ForwardingSnapshot(config: config)
        let dp = Dataplane(snapshot: snapshot)

        var sent: [(frame: [UInt8], linkType: LinkType, headroom: Int)] = []
        func add(_ f: [UInt8], _ n: Int = 1, linkType: LinkType = .ethernet, headroom: Int = H.headroom) {
            for _ in 0..<n { sent.append((f, linkType, headroom)) }
        }
        for i in 0..<300 { add(H.tcp(i, flags: TCPFlags.syn).bytes) }
        for i in 0..<300 { add(H.tcp(i, flags: TCPFlags.ack).bytes) }
        for i in 0..<100 { add(H.tcp(i, flags: TCPFlags.syn, ipv6: true).bytes) }
        add(FrameBuilder.nonIP(etherType: 0x0806, body: Array(repeating: 0, count: 28)).bytes, 20)
        for i in 0..<30 { add(FrameBuilder.tcp(H.client(i), 4000, "198.18.0.99", 80).bytes) }
        for i in 0..<10 { add(FrameBuilder.udp(H.client(i), 4000, "198.18.0.20", 53).bytes) }
        // Too big, on established flows (hits): 5 with DF (replies), 7 without (drops).
        for i in 0..<5 { add(H.tcp(i, flags: TCPFlags.ack).payload(1340).ipv4 { $0.dontFragment = true }.bytes) }
        for i in 0..<7 { add(H.tcp(i, flags: TCPFlags.ack).payload(1340).bytes) }
        for i in 0..<8 { add(Array(H.tcp(i, flags: TCPFlags.ack).payload(100).bytes.dropLast(40))) }
        for i in 0..<4 { add(H.tcp(i, flags: TCPFlags.ack).ipv4 { $0.headerLengthWords = 4 }.bytes) }
        for i in 0..<3 { add(H.tcp(i, flags: TCPFlags.ack).rawIP().bytes, linkType: .rawIP, headroom: 0) }

        // Half one packet at a time, half in batches (grouped by link type and headroom).
        var outs: [Verdict] = []
        var k = 0
        while k < sent.count {
            if k % 2 == 0 || sent[k].headroom != H.headroom || sent[k].linkType != .ethernet {
                outs.append(H.run(dp, sent[k].frame, linkType: sent[k].linkType, headroom: sent[k].headroom).verdict)
                k += 1
            } else {
                var end = k
                while end < min(sent.count, k + 45) && sent[end].headroom == H.headroom && sent[end].linkType == .ethernet {
                    end += 1
                }
                outs += H.runBatch(dp, sent[k..<end].map(\.frame)).map(\.verdict)
                k = end
            }
        }

        let s = dp.statistics
        #expect(s.packets == UInt64(sent.count))
        #expect(s.bytes == UInt64(sent.reduce(0) { $0 + $1.frame.count }))
        #expect(s.packets == s.forwarded + s.icmpReplies + s.reasons.reduce(0, +))
        #expect(s.forwarded == 700)
        #expect(s.icmpReplies == 5)
        var expectedReasons = [DropReason: UInt64]()
        expectedReasons[.notIP] = 20
        expectedReasons[.unknownVIP] = 30
        expectedReasons[.noBackend] = 10
        expectedReasons[.packetTooBigNoDF] = 7
        expectedReasons[.truncatedPacket] = 8
        expectedReasons[.badIPv4HeaderLength] = 4
        expectedReasons[.noHeadroom] = 3
        for r in DropReason.allCases {
            #expect(s.count(r) == expectedReasons[r, default: 0], "\(r)")
        }
        #expect(s.passed == 50)
        #expect(s.dropped == 32)
        // Per VIP: what reached a VIP (parsed, matched) whatever happened next.
        let vipPackets: [UInt64] = [615, 100, 10]  // web: 300 SYN + 300 ACK + 5 + 7 too big + 3 no headroom
        #expect(s.vips.map(\.packets) == vipPackets)
        // Per backend: exactly the forward verdicts.
        var perBackend = [UInt64](repeating: 0, count: snapshot.backendCount)
        var newFlows = [UInt64](repeating: 0, count: snapshot.backendCount)
        for (i, v) in outs.enumerated() {
            // Verdicts agree with the counters' categories.
            if v.action == .forward {
                perBackend[Int(v.backend)] += 1
                if i < 300 || (600..<700).contains(i) { newFlows[Int(v.backend)] += 1 }
            }
        }
        #expect(outs.filter { $0.action == .forward }.count == 700)
        #expect(outs.filter { $0.action == .icmpReply }.count == 5)
        #expect(s.backends.map(\.packets) == perBackend)
        #expect(s.backends.map(\.newFlows) == newFlows)
        #expect(s.backends.reduce(0) { $0 + $1.packets } == s.forwarded)
        #expect(perBackend.filter { $0 > 0 }.count == 14)
    }

    /// A flow whose first packet was answered with an ICMP "too big" was still selected and
    /// recorded; its backend's `newFlows` should count it once its packets are forwarded.
    @Test func aFlowWhoseFirstPacketWasTooBigIsStillCountedAsANewFlow() throws {
        let dp = Dataplane(
            snapshot: try ForwardingSnapshot(config: H.config(backends: H.backends(4)) { $0.pathMTU = 1400 }))
        let big = H.tcp(5, flags: TCPFlags.ack).payload(1340).ipv4 { $0.dontFragment = true }.bytes
        #expect(H.run(dp, big).verdict.action == .icmpReply)
        let small = H.run(dp, H.tcp(5, flags: TCPFlags.ack).payload(1000).ipv4 { $0.dontFragment = true }.bytes).verdict
        #expect(small.action == .forward)
        #expect(dp.connections.statistics.inserts == 1)
        #expect(dp.statistics.backends[Int(small.backend)].newFlows == 1)
    }

    // MARK: 11. Truncated captures

    @Test(arguments: [false, true])
    func truncatedPacketsAreDroppedUnlessAccepted(ipv6: Bool) throws {
        let full = H.tcp(4, flags: TCPFlags.ack, ipv6: ipv6).payload(200).bytes
        let frame = Array(full.dropLast(120))
        let captured = frame.count - 14
        for accept in [false, true] {
            let dp = Dataplane(
                snapshot: try ForwardingSnapshot(
                    config: H.config(backends: H.backends(4), ipv6VIP: ipv6) { $0.acceptTruncated = accept }))
            let out = H.run(dp, frame)
            if accept {
                #expect(out.verdict.action == .forward)
                #expect(out.verdict.outputLength == 24 + captured)
                #expect(H.be16(out.bytes, 2) == 24 + captured)
                #expect(Array(out.bytes[24...]) == Array(frame[14...]))
            } else {
                #expect(out.verdict.action == .drop)
                #expect(out.verdict.reason == .truncatedPacket)
                #expect(dp.statistics.count(.truncatedPacket) == 1)
            }
        }
    }

    // MARK: 12. Headroom

    @Test func aRawIPFrameWithoutHeadroomIsDropped() throws {
        let dp = Dataplane(snapshot: try ForwardingSnapshot(config: H.config(backends: H.backends(4))))
        let raw = H.tcp(2, flags: TCPFlags.syn).rawIP().bytes
        let v = H.run(dp, raw, linkType: .rawIP, headroom: 0).verdict
        #expect(v.action == .drop)
        #expect(v.reason == .noHeadroom)
        #expect(dp.statistics.count(.noHeadroom) == 1)
        // Boundaries: 24 bytes in front of the IP header are enough for an IPv4 backend.
        #expect(H.run(dp, raw, linkType: .rawIP, headroom: 23).verdict.reason == .noHeadroom)
        #expect(H.run(dp, raw, linkType: .rawIP, headroom: 24).verdict.action == .forward)
        // Ethernet at offset 0 has 14 bytes in front of its IP header; at offset 10, 24.
        let eth = H.tcp(2, flags: TCPFlags.ack).bytes
        #expect(H.run(dp, eth, headroom: 0).verdict.reason == .noHeadroom)
        #expect(H.run(dp, eth, headroom: 10).verdict.action == .forward)
    }

    @Test func headroomBoundariesForIPv6BackendsAndICMPReplies() throws {
        let six = Dataplane(
            snapshot: try ForwardingSnapshot(config: H.config(backends: H.backends(4, ipv6: true)) { $0.pathMTU = 1400 }))
        let raw = H.tcp(2, flags: TCPFlags.syn).rawIP().bytes
        #expect(H.run(six, raw, linkType: .rawIP, headroom: 43).verdict.reason == .noHeadroom)
        #expect(H.run(six, raw, linkType: .rawIP, headroom: 44).verdict.action == .forward)
        let four = Dataplane(
            snapshot: try ForwardingSnapshot(config: H.config(backends: H.backends(4)) { $0.pathMTU = 1400 }))
        let big = H.tcp(2, flags: TCPFlags.ack).payload(1340).ipv4 { $0.dontFragment = true }.rawIP().bytes
        #expect(H.run(four, big, linkType: .rawIP, headroom: 27).verdict.reason == .noHeadroom)
        #expect(H.run(four, big, linkType: .rawIP, headroom: 28).verdict.action == .icmpReply)
        let big6 = H.tcp(2, flags: TCPFlags.ack, ipv6: true).payload(1320).rawIP().bytes
        let v6 = Dataplane(
            snapshot: try ForwardingSnapshot(
                config: H.config(backends: H.backends(4), ipv6VIP: true) { $0.pathMTU = 1400 }))
        #expect(H.run(v6, big6, linkType: .rawIP, headroom: 47).verdict.reason == .noHeadroom)
        #expect(H.run(v6, big6, linkType: .rawIP, headroom: 48).verdict.action == .icmpReply)
    }
}
