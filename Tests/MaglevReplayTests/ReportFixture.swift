import MaglevReplay

/// Hand-built reports for the renderer tests: figures shaped like a real replay (a minute of
/// traffic over ten backends, one removed and one added, four algorithms compared).
enum ReportFixture {
    /// A deterministic source of small variations (SplitMix64).
    struct Noise {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        /// A factor in 1 ± spread.
        mutating func jitter(_ spread: Double) -> Double {
            1 + spread * (Double(next() % 20_001) / 10_000 - 1)
        }
    }

    static let bucketSeconds = 1.0
    static let buckets = 60

    /// Ten backends `web-01` ... `web-10`; `web-04` is removed at 20 s, `web-10` added at 40 s.
    static func realistic() -> ReplayReport {
        var r = ReplayReport()
        r.inputs = ["captures/edge-fra1-2024-05-14T10-00.pcapng", "captures/edge-fra1-extra.pcap"]
        r.algorithm = "maglev"
        r.tableSize = 65_537
        r.forwarders = 4
        r.connectionTracking = true
        r.durationSeconds = 59.873_215

        var noise = Noise(state: 42)
        let names = (1...10).map { $0 < 10 ? "web-0\($0)" : "web-\($0)" }
        var backends: [ReplayReport.BackendLoad] = []
        for (i, name) in names.enumerated() {
            var b = ReplayReport.BackendLoad(
                name: name, address: "10.0.1.\(i + 11)",
                state: name == "web-04" ? "removed" : name == "web-07" ? "draining" : "active")
            // Present for the whole minute, 20 s (web-04), or the last 20 s (web-10).
            let presence = name == "web-04" ? 1.0 / 3 : name == "web-10" ? 1.0 / 3 : 1
            b.flows = Int(12_400 * presence * noise.jitter(0.06))
            b.connections = Int(Double(b.flows) * 1.18 * noise.jitter(0.02))
            b.packets = Int(Double(b.flows) * 31.5 * noise.jitter(0.08))
            b.bytes = b.packets * Int(640 * noise.jitter(0.15))
            b.peakConnections = Int(Double(b.connections) / 9.5 * noise.jitter(0.1))
            backends.append(b)
        }
        r.backends = backends
        r.flows = backends.reduce(0) { $0 + $1.flows }
        r.connections = backends.reduce(0) { $0 + $1.connections }

        var p = ReplayReport.PacketCounts()
        p.forwarded = backends.reduce(0) { $0 + $1.packets }
        p.icmpReplies = 37
        p.passed = [("not_ip", 1_204), ("unknown_vip", 88)]
        p.dropped = [("bad_icmp_quote", 3), ("no_backend", 12), ("truncated_l4_header", 41)]
        p.skipped = [("link_type_147", 9)]
        p.total = p.forwarded + p.icmpReplies + 1_204 + 88 + p.droppedTotal + p.skippedTotal
        r.packets = p

        r.balance.flowsMaxOverMean = 1.048_213
        r.balance.packetsMaxOverMean = 1.093_377
        r.balance.bytesMaxOverMean = 1.161_904
        r.balance.flowsCoV = 0.031_552
        r.balance.jain = 0.999_005

        var remove = ReplayReport.EventResult(at: "20s", action: "remove", target: "web-04")
        remove.packet = 512_233
        remove.seconds = 20.000_417
        remove.connectionsAlive = 11_873
        remove.brokenUnavoidable = 1_312
        remove.brokenCollateral = 9
        remove.broken = remove.brokenUnavoidable + remove.brokenCollateral
        remove.slotsChangedAll = 0.111_097
        remove.slotsChangedExtra = 0.000_977
        var add = ReplayReport.EventResult(at: "#1024000", action: "add", target: "web-10")
        add.packet = 1_024_000
        add.seconds = 40.112_5
        add.connectionsAlive = 12_406
        add.brokenUnavoidable = 0
        add.brokenCollateral = 1_377
        add.broken = add.brokenCollateral
        add.slotsChangedAll = 0.111_204
        add.slotsChangedExtra = 0.111_204
        r.events = [remove, add]

        // Packets per backend per second, following the membership.
        var timeline: [ReplayReport.TimeBucket] = []
        for t in 0..<buckets {
            let start = Double(t) * bucketSeconds
            let wave = 1 + 0.25 * sine(Double(t) / 9.5)
            let row = backends.indices.map { i -> Int in
                let name = names[i]
                if name == "web-04" && start >= 20 { return 0 }
                if name == "web-10" && start < 40 { return 0 }
                return Int(6_500 * wave * noise.jitter(0.12))
            }
            timeline.append(.init(startSeconds: start, packets: row))
        }
        r.timeline = timeline

        r.comparison = [
            algorithm("maglev", 1.048_213, 0.031_552, 0.999_005, collateral: (9, 1_377), slots: (0.000_977, 0.111_204)),
            algorithm("ring", 1.297_114, 0.162_003, 0.974_418, collateral: (0, 0), slots: (0, 0.099_871)),
            algorithm("rendezvous", 1.412_556, 0.197_340, 0.962_712, collateral: (0, 0), slots: (0, 0.100_012)),
            algorithm("modulo", 1.000_931, 0.000_512, 0.999_999, collateral: (10_402, 11_170), slots: (0.899_994, 0.909_091)),
        ]
        for i in r.comparison.indices {
            r.comparison[i].balance.packetsMaxOverMean = r.comparison[i].balance.flowsMaxOverMean.map { $0 * 1.04 }
            r.comparison[i].balance.bytesMaxOverMean = r.comparison[i].balance.flowsMaxOverMean.map { $0 * 1.1 }
        }
        r.warnings = [
            "captures/edge-fra1-extra.pcap: the last record is truncated (capture cut off at 1,048,576 bytes); it was skipped",
            "9 packets of link type 147 (a user DLT) were skipped: replay reads Ethernet, raw IP, SLL, SLL2, NULL and PPP",
        ]
        return r
    }

    private static func algorithm(
        _ name: String, _ maxOverMean: Double, _ cov: Double, _ jain: Double,
        collateral: (Int, Int), slots: (Double, Double)
    ) -> ReplayReport.AlgorithmResult {
        var balance = ReplayReport.Balance()
        balance.flowsMaxOverMean = maxOverMean
        balance.flowsCoV = cov
        balance.jain = jain
        var remove = ReplayReport.EventResult(at: "20s", action: "remove", target: "web-04")
        remove.connectionsAlive = 11_873
        remove.brokenUnavoidable = 1_312
        remove.brokenCollateral = collateral.0
        remove.broken = 1_312 + collateral.0
        remove.slotsChangedExtra = slots.0
        remove.slotsChangedAll = slots.0 + 0.1
        var add = ReplayReport.EventResult(at: "#1024000", action: "add", target: "web-10")
        add.connectionsAlive = 12_406
        add.brokenCollateral = collateral.1 == 0 ? 1_240 : collateral.1
        add.broken = add.brokenCollateral
        add.slotsChangedAll = slots.1
        add.slotsChangedExtra = slots.1
        return .init(algorithm: name, balance: balance, events: [remove, add])
    }

    /// sin without Foundation (a short Taylor series around the nearest multiple of 2π).
    static func sine(_ x: Double) -> Double {
        let twoPi = 2 * Double.pi
        var y = x - (x / twoPi).rounded() * twoPi
        if y > .pi / 2 { y = .pi - y } else if y < -.pi / 2 { y = -.pi - y }
        let y2 = y * y
        return y * (1 - y2 / 6 * (1 - y2 / 20 * (1 - y2 / 42 * (1 - y2 / 72))))
    }

    /// `count` backends with flows falling off gently, a short timeline and no events.
    static func many(_ count: Int) -> ReplayReport {
        var r = ReplayReport()
        r.inputs = ["synthetic.pcap"]
        r.tableSize = 655_373
        r.durationSeconds = 10
        var noise = Noise(state: 7)
        r.backends = (0..<count).map { i in
            var b = ReplayReport.BackendLoad(
                name: "backend-\(String(repeating: "0", count: 4 - String(i).count))\(i)",
                address: "10.1.\(i / 256).\(i % 256)", state: "active")
            b.flows = Int(100 * noise.jitter(0.1))
            b.connections = b.flows
            b.packets = b.flows * 20
            b.bytes = b.packets * 700
            b.peakConnections = b.flows / 4
            return b
        }
        r.flows = r.backends.reduce(0) { $0 + $1.flows }
        r.connections = r.flows
        r.packets.forwarded = r.backends.reduce(0) { $0 + $1.packets }
        r.packets.total = r.packets.forwarded
        r.timeline = (0..<10).map { t in
            .init(startSeconds: Double(t), packets: (0..<count).map { _ in Int(200 * noise.jitter(0.2)) })
        }
        return r
    }

    /// The realistic report with hostile backend names and a hostile warning.
    static func hostileNames() -> ReplayReport {
        var r = realistic()
        r.backends[0].name = "<script>alert(\"x\")</script>"
        r.backends[1].name = "a&b|c*d_e`f[g]"
        r.backends[2].name = "name-that-is-far-too-long-for-any-terminal-column-" + String(repeating: "x", count: 80)
        r.events[0].target = r.backends[0].name
        r.warnings.append("</svg><b>not bold</b> & 'quotes'")
        r.inputs.append("/very/long/" + String(repeating: "deep/", count: 40) + "capture.pcap")
        return r
    }
}
