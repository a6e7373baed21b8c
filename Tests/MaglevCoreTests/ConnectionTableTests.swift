import Testing
@testable import MaglevCore

/// A deterministic generator for tests (SplitMix64): the same seed, the same run.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A hash that lands in bucket `bucket` (low bits) and is told apart by `tag` (high bits).
private func hash(bucket: Int, tag: Int) -> UInt64 {
    UInt64(tag) << 32 | UInt64(bucket)
}

@Suite struct ConnectionTableTests {
    // MARK: Layout and sizing

    @Test func entryIsSixteenBytesAndAMillionEntriesTakeSixteenMiB() {
        #expect(MemoryLayout<ConnectionEntry>.size == 16)
        #expect(MemoryLayout<ConnectionEntry>.stride == 16)
        #expect(ConnectionTable.bytesPerEntry == 16)
        let table = ConnectionTable(capacity: 1 << 20)
        #expect(table.capacity == 1 << 20)
        #expect(table.byteCount == 16 << 20)
        #expect(table.capacity * ConnectionTable.bytesPerEntry == 16 * 1024 * 1024)
        // Buckets sit on whole cache-line pairs.
        #expect(Int(bitPattern: table.entries) % 128 == 0)
    }

    @Test(arguments: [
        (8, 8), (9, 16), (16, 16), (17, 32), (64, 64), (65, 128), (1000, 1024), (1_000_000, 1 << 20),
    ])
    func capacityRoundsUpToPowerOfTwoBuckets(requested: Int, expected: Int) {
        let table = ConnectionTable(capacity: requested)
        #expect(table.capacity == expected)
        #expect(table.bucketMask == UInt64(expected / 8 - 1))
        #expect(table.liveCount(now: 0) == 0)
    }

    /// Memory that is filled with `byte` before the table gets it, and says `zeroFilled`.
    private static func memory(filledWith byte: UInt8, zeroFilled: Bool) -> TableMemory {
        TableMemory(
            allocate: { count in
                let p = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 128)
                p.initializeMemory(as: UInt8.self, repeating: byte, count: count)
                return p
            },
            deallocate: { pointer, _ in pointer.deallocate() }, zeroFilled: zeroFilled)
    }

    @Test func zeroFilledMemoryIsTakenAsItIsAndOtherMemoryIsCleared() {
        // Zero-filled memory (huge pages): the table starts empty without clearing it.
        let zeroed = ConnectionTable(capacity: 64, memory: Self.memory(filledWith: 0, zeroFilled: true))
        #expect(zeroed.liveCount(now: 0) == 0)
        let index = zeroed.insert(hash: 0xDEAD_BEEF_0000_0005, backend: 7, state: .tcpEstablished, now: 10)
        #expect(zeroed.find(hash: 0xDEAD_BEEF_0000_0005, now: 11) == index)
        #expect(zeroed.liveCount(now: 11) == 1)
        // Memory that is not zero-filled is cleared, whatever it held.
        let cleared = ConnectionTable(capacity: 64, memory: Self.memory(filledWith: 0xA5, zeroFilled: false))
        #expect(cleared.liveCount(now: 0) == 0)
        #expect(
            (0..<cleared.capacity).allSatisfy {
                let e = cleared.entries[$0]
                return e.fingerprint == 0 && e.lastSeen == 0 && e.backendAndState == 0
            })
    }

    // MARK: Round trips

    @Test func insertFindRefreshReassignRemove() {
        let table = ConnectionTable(capacity: 64)
        let h: UInt64 = 0xDEAD_BEEF_0000_0005
        #expect(table.find(hash: h, now: 1000) == -1)

        let index = table.insert(hash: h, backend: 42, state: .tcpHalfOpen, now: 1000)
        #expect(index >= 0 && index < table.capacity)
        #expect(index / 8 == 5)  // bucket from the low bits
        #expect(table.find(hash: h, now: 1001) == index)
        #expect(table.backend(at: index) == 42)
        #expect(table.state(at: index) == .tcpHalfOpen)

        // Refresh moves the state and restarts the idle clock (half-open lives 10 s).
        table.refresh(at: index, state: .tcpEstablished, now: 9000)
        #expect(table.state(at: index) == .tcpEstablished)
        #expect(table.backend(at: index) == 42)
        #expect(table.find(hash: h, now: 9000 + 300_000) == index)
        #expect(table.find(hash: h, now: 9000 + 300_001) == -1)

        // Reassign points it elsewhere and refreshes it.
        table.reassign(at: index, backend: ConnectionTable.maxBackend, state: .tcpClosing, now: 20_000)
        #expect(table.backend(at: index) == ConnectionTable.maxBackend)
        #expect(table.state(at: index) == .tcpClosing)
        #expect(table.find(hash: h, now: 30_000) == index)
        #expect(table.find(hash: h, now: 30_001) == -1)

        // Inserting the same hash again updates that entry, no duplicate.
        #expect(table.insert(hash: h, backend: 7, state: .datagram, now: 30_000) == index)
        #expect(table.backend(at: index) == 7)
        #expect(table.state(at: index) == .datagram)
        #expect(table.liveCount(now: 30_000) == 1)
        #expect(table.statistics == ConnectionTableStatistics(inserts: 1))

        table.remove(at: index)
        #expect(table.find(hash: h, now: 30_000) == -1)
        #expect(table.liveCount(now: 30_000) == 0)
        #expect(table.invariantsHold())
    }

    @Test func reinsertOfExpiredHashReusesItsWayAndCountsExpiry() {
        let table = ConnectionTable(capacity: 64)
        let h = hash(bucket: 2, tag: 9)
        let index = table.insert(hash: h, backend: 1, state: .fragment, now: 0)
        #expect(table.find(hash: h, now: 2001) == -1)
        #expect(table.insert(hash: h, backend: 2, state: .fragment, now: 2001) == index)
        #expect(table.backend(at: index) == 2)
        #expect(table.statistics == ConnectionTableStatistics(inserts: 2, expired: 1))
    }

    @Test func hashZeroIsStoredAndFound() {
        let table = ConnectionTable(capacity: 64)
        #expect(table.find(hash: 0, now: 5) == -1)
        let zero = table.insert(hash: 0, backend: 3, state: .datagram, now: 5)
        #expect(zero >= 0 && zero < 8)  // bucket 0
        #expect(table.find(hash: 0, now: 6) == zero)
        #expect(table.backend(at: zero) == 3)
        // Hash 1 has the same fingerprint but another bucket: a different flow.
        #expect(table.find(hash: 1, now: 6) == -1)
        let one = table.insert(hash: 1, backend: 4, state: .datagram, now: 6)
        #expect(one != zero)
        #expect(table.backend(at: table.find(hash: 0, now: 7)) == 3)
        #expect(table.backend(at: table.find(hash: 1, now: 7)) == 4)
        table.remove(at: zero)
        #expect(table.find(hash: 0, now: 7) == -1)
        #expect(table.find(hash: 1, now: 7) == one)
    }

    // MARK: Time

    @Test(arguments: ConnectionState.allCases)
    func eachStateExpiresAfterItsTimeout(state: ConnectionState) {
        let timeouts = ConnectionTimeouts()
        let table = ConnectionTable(capacity: 64, timeouts: timeouts)
        let t0: UInt32 = 1_000
        let limit = timeouts.timeout(for: state)
        let index = table.insert(hash: 0xABCD_0001, backend: 1, state: state, now: t0)
        #expect(table.find(hash: 0xABCD_0001, now: t0 + limit) == index)
        #expect(table.liveCount(now: t0 + limit) == 1)
        #expect(table.find(hash: 0xABCD_0001, now: t0 + limit + 1) == -1)
        #expect(table.liveCount(now: t0 + limit + 1) == 0)
    }

    @Test func defaultTimeouts() {
        let t = ConnectionTimeouts()
        #expect(t.tcpEstablishedMs == 300_000)
        #expect(t.tcpHalfOpenMs == 10_000)
        #expect(t.tcpClosingMs == 10_000)
        #expect(t.datagramMs == 30_000)
        #expect(t.fragmentMs == 2_000)
    }

    @Test func survivesClockWraparound() {
        let table = ConnectionTable(capacity: 64)
        let t0 = UInt32.max - 500
        let index = table.insert(hash: 77, backend: 9, state: .fragment, now: t0)
        #expect(table.find(hash: 77, now: 1_000) == index)  // age 1501 ms across the wrap
        #expect(table.find(hash: 77, now: 1_499) == index)  // age 2000
        #expect(table.find(hash: 77, now: 1_500) == -1)  // age 2001
        // Refreshed just before the wrap, alive just after it.
        table.refresh(at: index, state: .datagram, now: UInt32.max)
        #expect(table.find(hash: 77, now: 29_999) == index)
        #expect(table.find(hash: 77, now: 30_000) == -1)
    }

    @Test func clockSteppingBackDoesNotExpire() {
        let table = ConnectionTable(capacity: 64)
        let index = table.insert(hash: 88, backend: 1, state: .fragment, now: 10)
        #expect(table.find(hash: 88, now: 0) == index)
        #expect(table.find(hash: 88, now: UInt32.max - 1000) == index)
    }

    @Test func timeoutsCanBeReloaded() {
        let table = ConnectionTable(capacity: 64)
        let index = table.insert(hash: 5, backend: 1, state: .datagram, now: 0)
        #expect(table.find(hash: 5, now: 200) == index)
        table.timeouts.datagramMs = 100
        #expect(table.timeouts == ConnectionTimeouts(datagramMs: 100))
        #expect(table.find(hash: 5, now: 200) == -1)
        #expect(table.find(hash: 5, now: 100) == index)
    }

    @Test func expiredWaysAreReclaimedBeforeAnythingIsEvicted() {
        let table = ConnectionTable(capacity: 64)
        // Bucket 1: seven established (live) and one datagram that expires at 30 s.
        for tag in 1...7 {
            _ = table.insert(hash: hash(bucket: 1, tag: tag), backend: 1, state: .tcpEstablished, now: 0)
        }
        _ = table.insert(hash: hash(bucket: 1, tag: 8), backend: 1, state: .datagram, now: 0)
        let index = table.insert(hash: hash(bucket: 1, tag: 9), backend: 2, state: .tcpHalfOpen, now: 30_001)
        #expect(index >= 8 && index < 16)
        #expect(table.statistics == ConnectionTableStatistics(inserts: 9, expired: 1))
        #expect(table.find(hash: hash(bucket: 1, tag: 8), now: 30_001) == -1)
        for tag in 1...7 {
            #expect(table.find(hash: hash(bucket: 1, tag: tag), now: 30_001) >= 0)
        }
    }

    @Test func removeExpiredSweepsAndCounts() {
        let table = ConnectionTable(capacity: 64)
        _ = table.insert(hash: 1, backend: 1, state: .fragment, now: 0)
        _ = table.insert(hash: 2, backend: 1, state: .datagram, now: 0)
        _ = table.insert(hash: 3, backend: 1, state: .tcpEstablished, now: 0)
        #expect(table.removeExpired(now: 10_000) == 1)
        #expect(table.removeExpired(now: 10_000) == 0)
        #expect(table.removeExpired(now: 300_001) == 2)
        #expect(table.statistics.expired == 3)
        #expect(table.liveCount(now: 0) == 0)
    }

    // MARK: Eviction

    /// One bucket walked through the whole victim order by mid-stream (established) inserts;
    /// run once normally and once with the fill times on the far side of a clock wrap.
    @Test(arguments: [UInt32(1_000_000), UInt32(50_000)])
    func victimOrderIsHalfOpenFragmentDatagramClosingThenIdleEstablished(now: UInt32) {
        let table = ConnectionTable(capacity: 64)
        let b = 3
        let fill: [(tag: Int, state: ConnectionState, idle: UInt32)] = [
            (1, .tcpHalfOpen, 2_000), (2, .tcpHalfOpen, 1_000),
            (3, .fragment, 1_500), (4, .fragment, 500),
            (5, .datagram, 5_000), (6, .datagram, 20_000),
            (7, .tcpClosing, 3_000),
            (8, .tcpEstablished, 200_000),
        ]
        for entry in fill {
            #expect(
                table.insert(hash: hash(bucket: b, tag: entry.tag), backend: 1, state: entry.state, now: now &- entry.idle)
                    >= 0)
        }
        var expected = ConnectionTableStatistics(inserts: 8)
        #expect(table.statistics == expected)

        let victims = [1, 2, 3, 4, 6, 5, 7]
        for (step, victim) in victims.enumerated() {
            let index = table.insert(hash: hash(bucket: b, tag: 100 + step), backend: 2, state: .tcpEstablished, now: now)
            #expect(index / 8 == b)
            #expect(table.find(hash: hash(bucket: b, tag: victim), now: now) == -1, "step \(step)")
            for later in victims[(step + 1)...] + [8] {
                #expect(table.find(hash: hash(bucket: b, tag: later), now: now) >= 0, "step \(step), tag \(later)")
            }
        }
        expected.inserts += 7
        expected.evictedHalfOpen = 2
        expected.evictedFragment = 2
        expected.evictedDatagram = 2
        expected.evictedClosing = 1
        #expect(table.statistics == expected)

        // Now all established: new half-open and datagram flows are refused, even though tag 8
        // is long idle.
        #expect(table.insert(hash: hash(bucket: b, tag: 200), backend: 3, state: .tcpHalfOpen, now: now) == -1)
        #expect(table.insert(hash: hash(bucket: b, tag: 201), backend: 3, state: .datagram, now: now) == -1)
        #expect(table.insert(hash: hash(bucket: b, tag: 202), backend: 3, state: .fragment, now: now) == -1)
        expected.insertsRefused = 3
        #expect(table.statistics == expected)
        #expect(table.find(hash: hash(bucket: b, tag: 8), now: now) >= 0)

        // A mid-stream flow may take tag 8's way: idle 200 s > half of 300 s.
        #expect(table.insert(hash: hash(bucket: b, tag: 300), backend: 4, state: .tcpEstablished, now: now) >= 0)
        #expect(table.find(hash: hash(bucket: b, tag: 8), now: now) == -1)
        expected.inserts += 1
        expected.evictedEstablished = 1
        // The rest are fresh: refused.
        #expect(table.insert(hash: hash(bucket: b, tag: 301), backend: 4, state: .tcpEstablished, now: now) == -1)
        expected.insertsRefused += 1
        #expect(table.statistics == expected)
        #expect(table.liveCount(now: now) == 8)
        #expect(table.invariantsHold())
    }

    @Test func synFloodNeverEvictsEstablishedOrDatagramFlows() {
        let table = ConnectionTable(capacity: 64)
        let t: UInt32 = 1_000_000
        for b in 0..<8 {
            for tag in 1...3 {
                _ = table.insert(hash: hash(bucket: b, tag: tag), backend: 1, state: .tcpEstablished, now: t - UInt32(tag) * 50_000)
            }
            for tag in 4...6 {
                _ = table.insert(hash: hash(bucket: b, tag: tag), backend: 2, state: .tcpHalfOpen, now: t - UInt32(tag) * 1_000)
            }
            for tag in 7...8 {
                _ = table.insert(hash: hash(bucket: b, tag: tag), backend: 3, state: .datagram, now: t - UInt32(tag) * 2_000)
            }
        }
        #expect(table.liveCount(now: t) == 64)

        // The first SYN into bucket 0 takes the oldest half-open way (tag 6, idle 6 s).
        #expect(table.insert(hash: hash(bucket: 0, tag: 1000), backend: 9, state: .tcpHalfOpen, now: t) >= 0)
        #expect(table.find(hash: hash(bucket: 0, tag: 6), now: t) == -1)
        #expect(table.find(hash: hash(bucket: 0, tag: 5), now: t) >= 0)
        #expect(table.find(hash: hash(bucket: 0, tag: 4), now: t) >= 0)

        var rng = SplitMix64(seed: 0x5EED)
        let flood = 10_000
        for i in 0..<flood {
            let index = table.insert(hash: rng.next() | 1 << 40, backend: 9, state: .tcpHalfOpen, now: t + UInt32(i / 10))
            #expect(index >= 0)
        }
        let now = t + UInt32(flood / 10)
        #expect(
            table.statistics
                == ConnectionTableStatistics(inserts: UInt64(64 + 1 + flood), evictedHalfOpen: UInt64(1 + flood)))
        for b in 0..<8 {
            for tag in [1, 2, 3, 7, 8] {
                #expect(table.find(hash: hash(bucket: b, tag: tag), now: now) >= 0, "bucket \(b) tag \(tag)")
            }
            for tag in 4...6 {
                #expect(table.find(hash: hash(bucket: b, tag: tag), now: now) == -1, "bucket \(b) tag \(tag)")
            }
        }
        #expect(table.liveCount(now: now) == 64)
        #expect(table.invariantsHold())
    }

    @Test func floodIntoEstablishedBucketsIsRefused() {
        let table = ConnectionTable(capacity: 64)
        let t: UInt32 = 500_000
        for b in 0..<8 {
            for tag in 1...8 {
                _ = table.insert(hash: hash(bucket: b, tag: tag), backend: UInt32(tag), state: .tcpEstablished, now: t - UInt32(tag) * 1_000)
            }
        }
        var rng = SplitMix64(seed: 42)
        let states: [ConnectionState] = [.tcpHalfOpen, .datagram, .fragment, .tcpClosing, .tcpEstablished]
        for i in 0..<1_000 {
            #expect(table.insert(hash: rng.next() | 1 << 40, backend: 99, state: states[i % 5], now: t) == -1)
        }
        #expect(table.statistics == ConnectionTableStatistics(inserts: 64, insertsRefused: 1_000))
        for b in 0..<8 {
            for tag in 1...8 {
                let index = table.find(hash: hash(bucket: b, tag: tag), now: t)
                #expect(index >= 0)
                #expect(table.backend(at: index) == UInt32(tag))
            }
        }
    }

    @Test func establishedEvictsEstablishedOnlyWhenIdleOverHalfTimeout() {
        let table = ConnectionTable(capacity: 8)  // one bucket
        let t: UInt32 = 1_000_000
        // Oldest is idle exactly half the timeout: still protected.
        for tag in 1...8 {
            _ = table.insert(hash: hash(bucket: 0, tag: tag), backend: 1, state: .tcpEstablished, now: t - 150_000 + UInt32(tag))
        }
        #expect(table.insert(hash: hash(bucket: 0, tag: 50), backend: 2, state: .tcpEstablished, now: t + 1) == -1)
        // One millisecond later tag 1 is idle 150_001 ms: it (and only it) goes.
        #expect(table.insert(hash: hash(bucket: 0, tag: 50), backend: 2, state: .tcpEstablished, now: t + 2) >= 0)
        #expect(table.find(hash: hash(bucket: 0, tag: 1), now: t + 2) == -1)
        for tag in 2...8 {
            #expect(table.find(hash: hash(bucket: 0, tag: tag), now: t + 2) >= 0)
        }
        #expect(table.statistics == ConnectionTableStatistics(inserts: 9, insertsRefused: 1, evictedEstablished: 1))
    }

    // MARK: Backend removal

    @Test func removeAllBackendRemovesExactlyThatBackend() {
        let table = ConnectionTable(capacity: 256)
        for i in 0..<100 {
            #expect(table.insert(hash: hash(bucket: i % 32, tag: i + 1), backend: UInt32(i % 5), state: .datagram, now: 0) >= 0)
        }
        #expect(table.removeAll(backend: 3) == 20)
        #expect(table.removeAll(backend: 3) == 0)
        #expect(table.removeAll(backend: 17) == 0)
        for i in 0..<100 {
            let index = table.find(hash: hash(bucket: i % 32, tag: i + 1), now: 1)
            if i % 5 == 3 {
                #expect(index == -1)
            } else {
                #expect(index >= 0)
                #expect(table.backend(at: index) == UInt32(i % 5))
            }
        }
        #expect(table.liveCount(now: 1) == 80)
    }

    // MARK: Against a reference model

    /// Random operations on a table where no bucket can overflow (at most 8 distinct hashes per
    /// bucket), compared step by step with a dictionary.
    @Test(arguments: [UInt64(1), 2, 3])
    func matchesDictionaryModel(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let timeouts = ConnectionTimeouts(
            tcpEstablishedMs: 5_000, tcpHalfOpenMs: 1_000, tcpClosingMs: 1_000, datagramMs: 3_000,
            fragmentMs: 500)
        let table = ConnectionTable(capacity: 128, timeouts: timeouts)  // 16 buckets
        var keys: [UInt64] = [0]  // hash 0 is in the pool
        var seen: Set<UInt64> = [0, 1]
        for bucket in 0..<16 {
            while keys.count < (bucket + 1) * 8 {
                let k = rng.next() & ~0xF | UInt64(bucket)
                if seen.insert(k).inserted { keys.append(k) }
            }
        }

        struct Model { var backend: UInt32; var state: ConnectionState; var lastSeen: UInt32 }
        var model: [UInt64: Model] = [:]
        func live(_ m: Model, _ now: UInt32) -> Bool {
            Int32(bitPattern: now &- m.lastSeen) <= Int32(timeouts.timeout(for: m.state))
        }
        var inserts: UInt64 = 0
        var now = UInt32.max - 20_000  // crosses the wrap during the run

        for step in 0..<20_000 {
            now &+= rng.next() % 16 == 0 ? UInt32(rng.next() % 6_000) : UInt32(rng.next() % 200)
            let key = keys[Int(rng.next() % UInt64(keys.count))]
            let state = ConnectionState.allCases[Int(rng.next() % 5)]
            let backend = UInt32(rng.next() % 8)
            let index = table.find(hash: key, now: now)
            let expected = model[key].flatMap { live($0, now) ? $0 : nil }
            #expect((index >= 0) == (expected != nil), "step \(step)")
            if let expected, index >= 0 {
                #expect(table.backend(at: index) == expected.backend, "step \(step)")
                #expect(table.state(at: index) == expected.state, "step \(step)")
            }
            switch rng.next() % 8 {
            case 0, 1, 2:
                let inserted = table.insert(hash: key, backend: backend, state: state, now: now)
                #expect(inserted >= 0)
                if expected == nil { inserts += 1 }
                if index >= 0 { #expect(inserted == index) }
                model[key] = Model(backend: backend, state: state, lastSeen: now)
            case 3, 4:
                if index >= 0, expected != nil {
                    table.refresh(at: index, state: state, now: now)
                    model[key]!.state = state
                    model[key]!.lastSeen = now
                }
            case 5:
                if index >= 0, expected != nil {
                    table.reassign(at: index, backend: backend, state: state, now: now)
                    model[key] = Model(backend: backend, state: state, lastSeen: now)
                }
            case 6:
                if index >= 0, expected != nil {
                    table.remove(at: index)
                    model[key] = nil
                }
            default:
                if rng.next() % 50 == 0 {
                    let liveForBackend = model.values.filter { $0.backend == backend && live($0, now) }.count
                    let allForBackend = model.values.filter { $0.backend == backend }.count
                    let removed = table.removeAll(backend: backend)
                    #expect(removed >= liveForBackend && removed <= allForBackend)
                    model = model.filter { $0.value.backend != backend }
                }
            }
            if step % 500 == 0 {
                #expect(table.liveCount(now: now) == model.values.filter { live($0, now) }.count)
                #expect(table.invariantsHold())
            }
        }
        #expect(table.liveCount(now: now) == model.values.filter { live($0, now) }.count)
        let stats = table.statistics
        #expect(stats.inserts == inserts)
        #expect(stats.insertsRefused == 0)
        #expect(stats.evictedHalfOpen + stats.evictedFragment + stats.evictedDatagram == 0)
        #expect(stats.evictedClosing + stats.evictedEstablished == 0)
    }

    // MARK: Insert against its reference

    /// `insert` in two passes (fingerprints, then scores) chooses exactly the way, and counts
    /// exactly what, the earlier one-pass loop did (kept here as the reference): random
    /// buckets of empty, expired and live ways in every state, with and without the same hash,
    /// ages on both sides of every timeout and of `now` (wraparound), each state inserted.
    @Test func insertMatchesTheOnePassReference() {
        var rng = SplitMix64(seed: 11)
        let timeouts = ConnectionTimeouts()
        let table = ConnectionTable(capacity: 8, timeouts: timeouts)
        let states = ConnectionState.allCases
        for round in 0..<20_000 {
            let now = UInt32(truncatingIfNeeded: rng.next())
            var bucket: [ConnectionEntry] = []
            for _ in 0..<8 {
                if rng.next() % 5 == 0 {
                    bucket.append(.empty)
                    continue
                }
                let state = states[Int(rng.next() % UInt64(states.count))]
                let limit = Int64(table.timeoutByState[Int(state.rawValue)])
                let age: Int64 =
                    switch rng.next() % 4 {
                    case 0: limit + Int64(rng.next() % 3) - 1  // around the timeout
                    case 1: -Int64(rng.next() % 1000)  // ahead of now
                    case 2: Int64(rng.next() % UInt64(max(limit, 1)))
                    default: Int64(rng.next() % (1 << 31))
                    }
                let fingerprint = rng.next() % 4 == 0 ? UInt64(rng.next() % 16) + 1 : rng.next() | 1
                bucket.append(
                    ConnectionEntry(
                        fingerprint: fingerprint, lastSeen: now &- UInt32(truncatingIfNeeded: age),
                        backendAndState: UInt32(rng.next() % 100) | UInt32(state.rawValue) << 24))
            }
            // No fingerprint twice in a bucket (the table's invariant).
            for a in 0..<8 where bucket[a].fingerprint != 0 {
                for b in 0..<a where bucket[b].fingerprint == bucket[a].fingerprint { bucket[a] = .empty }
            }
            let insertHash = rng.next() % 3 == 0 ? UInt64(rng.next() % 16) + 1 : rng.next() | 1
            let state = states[Int(rng.next() % UInt64(states.count))]
            let expected = referenceInsert(bucket, table: table, hash: insertHash, state: state, now: now)

            for way in 0..<8 { table.entries[way] = bucket[way] }
            let before = table.statistics
            let index = table.insert(hash: insertHash & ~table.bucketMask, backend: 7, state: state, now: now)
            var counted = table.statistics
            counted.inserts -= before.inserts
            counted.insertsRefused -= before.insertsRefused
            counted.expired -= before.expired
            counted.evictedHalfOpen -= before.evictedHalfOpen
            counted.evictedDatagram -= before.evictedDatagram
            counted.evictedClosing -= before.evictedClosing
            counted.evictedFragment -= before.evictedFragment
            counted.evictedEstablished -= before.evictedEstablished
            #expect(index == expected.index, "round \(round)")
            #expect(counted == expected.counted, "round \(round)")
            if index != expected.index || counted != expected.counted { return }
        }
    }

    /// The one-pass insert this table had before (commit 044fd4c), on a copy of one bucket:
    /// the way it writes (or -1) and what it counts.
    private func referenceInsert(
        _ bucket: [ConnectionEntry], table: ConnectionTable, hash: UInt64, state: ConnectionState, now: UInt32
    ) -> (index: Int, counted: ConnectionTableStatistics) {
        var counted = ConnectionTableStatistics()
        let fingerprint = hash & ~table.bucketMask == 0 ? 1 : hash & ~table.bucketMask
        func age(_ e: ConnectionEntry) -> Int32 { Int32(bitPattern: now &- e.lastSeen) }
        func rank(_ raw: UInt8) -> UInt64 {
            switch raw {
            case ConnectionState.tcpHalfOpen.rawValue: 4
            case ConnectionState.fragment.rawValue: 3
            case ConnectionState.datagram.rawValue: 2
            case ConnectionState.tcpClosing.rawValue: 1
            default: 0
            }
        }
        var emptyWay = -1
        var expiredWay = -1
        var bestKey: UInt64 = 0
        for way in 0..<8 {
            let entry = bucket[way]
            if entry.fingerprint == fingerprint {
                if age(entry) > table.timeoutByState[Int(entry.stateRaw & 7)] {
                    counted.expired += 1
                    counted.inserts += 1
                }
                return (way, counted)
            }
            if entry.fingerprint == 0 {
                if emptyWay < 0 { emptyWay = way }
            } else if age(entry) > table.timeoutByState[Int(entry.stateRaw & 7)] {
                if expiredWay < 0 { expiredWay = way }
            } else {
                let score = rank(entry.stateRaw) << 32 | UInt64(UInt32(clamping: max(age(entry), 0)))
                bestKey = max(bestKey, score << 3 | UInt64(7 - way))
            }
        }
        if emptyWay >= 0 {
            counted.inserts += 1
            return (emptyWay, counted)
        }
        if expiredWay >= 0 {
            counted.expired += 1
            counted.inserts += 1
            return (expiredWay, counted)
        }
        let best = 7 - Int(bestKey & 7)
        let score = bestKey >> 3
        var victim = -1
        if score >> 32 != 0 {
            victim = best
        } else if state == .tcpEstablished
            && score > UInt64(table.timeoutByState[Int(ConnectionState.tcpEstablished.rawValue)] / 2)
        {
            victim = best
        }
        guard victim >= 0 else {
            counted.insertsRefused += 1
            return (-1, counted)
        }
        switch bucket[victim].stateRaw {
        case ConnectionState.tcpHalfOpen.rawValue: counted.evictedHalfOpen += 1
        case ConnectionState.fragment.rawValue: counted.evictedFragment += 1
        case ConnectionState.datagram.rawValue: counted.evictedDatagram += 1
        case ConnectionState.tcpClosing.rawValue: counted.evictedClosing += 1
        default: counted.evictedEstablished += 1
        }
        counted.inserts += 1
        return (victim, counted)
    }
}
