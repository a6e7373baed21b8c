// The trace's plan: flows (addresses, ports, sizes, active intervals) and one compact record
// per packet, sorted by time. Frames are built from the records only when written, so a
// million-packet trace needs about 24 MB of records, not a gigabyte of frames.

import Glibc
import MaglevCore

/// The fixed addresses of the synthetic network.
enum TraceAddresses {
    /// Clients: 198.18.0.0/15 (RFC 2544 benchmarking space) minus the VIP and router /24s.
    static let clientIPv4Base: UInt32 = 0xC612_0000
    /// Clients: 2001:db8:c::/48.
    static let clientIPv6High: UInt64 = 0x2001_0DB8_000C_0000
    static let tcpVIPv4 = IPAddress(ipv4: 0xC613_000A)  // 198.19.0.10, port 80
    static let udpVIPv4 = IPAddress(ipv4: 0xC613_000B)  // 198.19.0.11, port 53
    static let tcpVIPv6 = IPAddress(high: 0x2001_0DB8_0100_0000, low: 0x10, isIPv6: true)  // :443
    static let udpVIPv6 = IPAddress(high: 0x2001_0DB8_0100_0000, low: 0x11, isIPv6: true)  // :53
    static let routerIPv4 = IPAddress(ipv4: 0xC612_FF01)  // 198.18.255.1
    static let routerIPv6 = IPAddress(high: 0x2001_0DB8_00FF_0000, low: 1, isIPv6: true)  // 2001:db8:ff::1

    static func vip(tcp: Bool, ipv6: Bool) -> (address: IPAddress, port: UInt16) {
        switch (tcp, ipv6) {
        case (true, false): (tcpVIPv4, 80)
        case (true, true): (tcpVIPv6, 443)
        case (false, false): (udpVIPv4, 53)
        case (false, true): (udpVIPv6, 53)
        }
    }
}

/// One flow of the trace, client to VIP.
struct FlowPlan {
    var client = IPAddress(ipv4: 0)
    var clientPort: UInt16 = 0
    var isTCP = false
    var isIPv6 = false
    /// 802.1Q VLAN ID, or 0 for untagged frames.
    var vlan: UInt16 = 0
    /// Ends with RST instead of FIN.
    var endsWithReset = false
    /// Packets of the flow (fragments counted one by one).
    var packets: UInt32 = 0
    /// Segments or datagrams: `packets` less the extra fragments.
    var sends: UInt32 = 0
    var clientISN: UInt32 = 0
    var serverISN: UInt32 = 0
    var ipID: UInt16 = 0
    var flowLabel: UInt32 = 0
    /// Active interval, in nanoseconds from the trace's start.
    var start: UInt64 = 0
    var lifetime: UInt64 = 0
}

/// One packet to write: which flow, which segment or datagram, which fragment of it.
struct PacketRecord {
    var time: UInt64
    var flow: UInt32
    /// Segment or datagram number within the flow; for ICMP errors, the error's number.
    var index: UInt32
    /// Fragment number and count (0 and 1 when not fragmented).
    var part: UInt8
    var parts: UInt8
    var isICMPError: Bool

    @inline(__always)
    static func precedes(_ a: PacketRecord, _ b: PacketRecord) -> Bool {
        if a.time != b.time { return a.time < b.time }
        if a.isICMPError != b.isICMPError { return !a.isICMPError }
        if a.flow != b.flow { return a.flow < b.flow }
        if a.index != b.index { return a.index < b.index }
        return a.part < b.part
    }
}

/// Seeded draws. `SplitMix64` for sequences; `hash` for per-packet values that must not
/// depend on the order in which packets are visited.
struct TraceRandom {
    let seed: UInt64

    @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        var g = SplitMix64(seed: x)
        return g.next()
    }

    /// A value for (flow, index, purpose), the same whenever asked.
    @inline(__always)
    func hash(_ flow: UInt32, _ index: UInt32, _ purpose: UInt64) -> UInt64 {
        Self.mix(seed ^ Self.mix(UInt64(flow) << 32 | UInt64(index)) ^ (purpose &* 0xD6E8_FEB8_6659_FD93))
    }

    /// A generator of its own for one flow's planning.
    func flowGenerator(_ flow: UInt32, purpose: UInt64) -> SplitMix64 {
        SplitMix64(seed: hash(flow, 0xFFFF_FFFF, purpose))
    }
}

extension SplitMix64 {
    /// A uniform double in [0, 1).
    @inline(__always)
    mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }
}

/// The plan of a whole trace.
struct TracePlan {
    var flows: [FlowPlan]
    var records: [PacketRecord]
    var icmpErrors: Int
    var fragmentPackets: Int

    /// Fragmentable bytes per fragment: a multiple of 8 that fits a 1500-byte MTU with an IPv6
    /// header and a fragment header.
    static let fragmentBytes = 1400
    /// Purposes of hashed draws.
    static let purposeFragments: UInt64 = 1
    static let purposeTimes: UInt64 = 2

    init(_ o: TraceOptions) {
        var rng = SplitMix64(seed: o.seed)
        let random = TraceRandom(seed: o.seed)
        let flowCount = o.flows
        let icmpCount = o.icmpErrorCount
        let budget = o.packets - icmpCount

        // Which flows are TCP: exactly tcpFlowCount of them, chosen by a partial shuffle.
        let tcpCount = o.tcpFlowCount
        var isTCP = [Bool](repeating: false, count: flowCount)
        var order = (0..<UInt32(flowCount)).map { $0 }
        for i in 0..<tcpCount {
            let j = i + Int(rng.next(below: UInt64(flowCount - i)))
            order.swapAt(i, j)
            isTCP[Int(order[i])] = true
        }
        order = []

        // Sizes: each flow's minimum (TCP 2: SYN and FIN/RST; UDP 1), the rest shared by Zipf
        // rank (flow i has rank i + 1) or evenly; what rounding leaves goes to the top ranks.
        var sizes = isTCP.map { $0 ? 2 : 1 }
        let extra = budget - sizes.reduce(0, +)
        var weights = [Double](repeating: 1, count: flowCount)
        if let s = o.zipfExponent, s != 0 {
            for i in 0..<flowCount { weights[i] = 1 / pow(Double(i + 1), s) }
        }
        let total = weights.reduce(0, +)
        var given = 0
        for i in 0..<flowCount {
            let share = min(extra - given, Int((Double(extra) * weights[i] / total).rounded(.down)))
            sizes[i] += share
            given += share
        }
        var i = 0
        while given < extra {
            sizes[i % flowCount] += 1
            given += 1
            i += 1
        }
        weights = []
        let maxSize = sizes.max() ?? 1

        // Flow attributes, drawn in flow order from the one sequence.
        let duration = UInt64((o.durationSeconds * 1e9).rounded())
        var flows = [FlowPlan](repeating: FlowPlan(), count: flowCount)
        var used = Set<ClientEndpoint>(minimumCapacity: flowCount)
        for f in 0..<flowCount {
            var plan = FlowPlan()
            plan.isTCP = isTCP[f]
            plan.isIPv6 = rng.unit() < o.ipv6Share
            plan.vlan = rng.unit() < o.vlanShare ? UInt16(100 + rng.next(below: 4)) : 0
            while true {
                let address: IPAddress
                if plan.isIPv6 {
                    let high = TraceAddresses.clientIPv6High | rng.next(below: 0x1_0000)
                    address = IPAddress(high: high, low: rng.next() | 1, isIPv6: true)
                } else {
                    let v = TraceAddresses.clientIPv4Base | UInt32(rng.next(below: 0x2_0000))
                    let net = v & 0xFFFF_FF00
                    if net == 0xC613_0000 || net == 0xC612_FF00 || v & 0xFF == 0 || v & 0xFF == 0xFF { continue }
                    address = IPAddress(ipv4: v)
                }
                let port = UInt16(32768 + rng.next(below: 28232))  // Linux's ephemeral range
                if used.insert(ClientEndpoint(address: address, port: port)).inserted {
                    plan.client = address
                    plan.clientPort = port
                    break
                }
            }
            plan.endsWithReset = plan.isTCP && rng.unit() < 0.05
            plan.clientISN = UInt32(truncatingIfNeeded: rng.next())
            plan.serverISN = UInt32(truncatingIfNeeded: rng.next())
            plan.ipID = UInt16(truncatingIfNeeded: rng.next())
            plan.flowLabel = UInt32(truncatingIfNeeded: rng.next()) & 0xF_FFFF
            plan.packets = UInt32(sizes[f])
            let proportional = UInt64(Double(duration) * 0.5 * Double(sizes[f]) / Double(maxSize))
            plan.lifetime = min(duration, max(UInt64(sizes[f]) * 20_000, proportional))
            plan.start = rng.next(below: duration - plan.lifetime + 1)
            flows[f] = plan
        }
        used = []

        // Records: per flow, its sends spread over its interval, one slot each, at a random
        // point in the first half of the slot (fragments 100 ns apart), so a flow's packets are
        // in order in time.
        var records: [PacketRecord] = []
        records.reserveCapacity(o.packets)
        var parts: [UInt8] = []
        var fragmentPackets = 0
        for f in 0..<flowCount {
            let plan = flows[f]
            parts.removeAll(keepingCapacity: true)
            if plan.isTCP || o.fragmentShare == 0 {
                parts.append(contentsOf: repeatElement(1, count: Int(plan.packets)))
            } else {
                var g = random.flowGenerator(UInt32(f), purpose: Self.purposeFragments)
                var left = Int(plan.packets)
                while left > 0 {
                    var k = 1
                    if left >= 2 && g.unit() < o.fragmentShare { k = left >= 3 && g.next() & 1 == 1 ? 3 : 2 }
                    parts.append(UInt8(k))
                    if k > 1 { fragmentPackets += k }
                    left -= k
                }
            }
            flows[f].sends = UInt32(parts.count)
            var g = random.flowGenerator(UInt32(f), purpose: Self.purposeTimes)
            let slot = Double(plan.lifetime) / Double(parts.count)
            for (j, k) in parts.enumerated() {
                let t = plan.start + UInt64((Double(j) + 0.5 * g.unit()) * slot)
                for p in 0..<k {
                    records.append(
                        PacketRecord(
                            time: t + UInt64(p) * 100, flow: UInt32(f), index: UInt32(j), part: p, parts: k,
                            isICMPError: false))
                }
            }
        }
        // ICMP errors: about a random flow, at a random time while it is active.
        for e in 0..<icmpCount {
            let f = Int(rng.next(below: UInt64(flowCount)))
            let t = flows[f].start + rng.next(below: max(1, flows[f].lifetime))
            records.append(PacketRecord(time: t, flow: UInt32(f), index: UInt32(e), part: 0, parts: 1, isICMPError: true))
        }
        records.sort(by: PacketRecord.precedes)

        self.flows = flows
        self.records = records
        self.icmpErrors = icmpCount
        self.fragmentPackets = fragmentPackets
    }
}

/// A client address and port, for keeping flows distinct.
struct ClientEndpoint: Hashable {
    var address: IPAddress
    var port: UInt16
}
