import MaglevCore

/// What `maglev trace generate` writes.
public struct TraceOptions: Sendable {
    public var flows = 1000
    /// Packets in all, ICMP errors and fragments included.
    public var packets = 10_000
    public var seed: UInt64 = 1
    /// Flow sizes: Zipf with this exponent, or uniform when nil.
    public var zipfExponent: Double? = 1.1
    /// Share of flows that are TCP connections (the rest UDP).
    public var tcpShare = 0.8
    public var ipv6Share = 0.2
    /// Share of UDP datagrams sent as fragments.
    public var fragmentShare = 0.0
    /// ICMP errors quoting a flow, per packet.
    public var icmpErrorShare = 0.0
    /// Share of flows whose frames carry an 802.1Q tag.
    public var vlanShare = 0.0
    public var durationSeconds = 10.0
    public init() {}

    /// Limits that keep the plan's memory reasonable (about 24 bytes per packet, 80 per flow).
    public static let maxPackets = 100_000_000
    public static let maxFlows = 10_000_000

    /// TCP flows: `tcpShare` of the flows, rounded.
    public var tcpFlowCount: Int { Int((Double(flows) * tcpShare).rounded()) }
    /// ICMP errors: `icmpErrorShare` of the packets, rounded.
    public var icmpErrorCount: Int { Int((Double(packets) * icmpErrorShare).rounded()) }
    /// The fewest packets these flows need: 2 per TCP flow (SYN, FIN or RST), 1 per UDP flow,
    /// plus the ICMP errors.
    public var minimumPackets: Int { flows + tcpFlowCount + icmpErrorCount }

    /// What is wrong with the options, in one line, or nil when they can be generated.
    public var problem: String? {
        if flows < 1 || flows > Self.maxFlows { return "flows must be 1...\(Self.maxFlows) (got \(flows))" }
        if packets < 1 || packets > Self.maxPackets {
            return "packets must be 1...\(Self.maxPackets) (got \(packets))"
        }
        for (name, value) in [
            ("tcp share", tcpShare), ("ipv6 share", ipv6Share), ("fragment share", fragmentShare),
            ("icmp error share", icmpErrorShare), ("vlan share", vlanShare),
        ] where !(value >= 0 && value <= 1) {
            return "\(name) must be between 0 and 1 (got \(value))"
        }
        if let s = zipfExponent, !(s >= 0 && s <= 10) { return "zipf exponent must be 0...10 (got \(s))" }
        if !(durationSeconds > 0 && durationSeconds <= 1_000_000) {
            return "duration must be more than 0 and at most 1000000 seconds (got \(durationSeconds))"
        }
        if packets < minimumPackets {
            return "\(packets) packets are too few: \(tcpFlowCount) TCP flows need 2 each, "
                + "\(flows - tcpFlowCount) UDP flows 1 each, plus \(icmpErrorCount) ICMP errors: "
                + "at least \(minimumPackets)"
        }
        return nil
    }
}

/// What a generated trace holds.
public struct TraceSummary: Sendable, Equatable {
    public var packets = 0
    public var flows = 0
    /// Captured bytes of all frames (the pcap file adds 24 bytes, and 16 per packet).
    public var bytes = 0
    public var tcpFlows = 0
    public var ipv6Flows = 0
    public var vlanFlows = 0
    /// Packets that are fragments (every fragment of a fragmented datagram).
    public var fragmentPackets = 0
    public var icmpErrors = 0
    public init() {}
}

/// Synthetic traces for replay and benchmarks: Ethernet frames from clients to the VIPs, in a
/// pcap file with nanosecond timestamps.
///
/// **Flows.** Clients in 198.18.0.0/15 and 2001:db8:c::/48 with ephemeral ports (32768-60999),
/// each (address, port) used once; TCP to 198.19.0.10:80 and [2001:db8:100::10]:443, UDP to
/// 198.19.0.11:53 and [2001:db8:100::11]:53. Exactly `tcpFlowCount` flows are TCP; IPv6 and
/// VLAN tags (IDs 100-103) are drawn per flow with their shares.
///
/// **Sizes.** Each flow gets its minimum (TCP 2, UDP 1); the rest of the packets (less the ICMP
/// errors) are shared by Zipf rank (flow i has weight 1/(i+1)^s) or evenly, rounding down, the
/// remainder one each to the first flows. Totals are exact.
///
/// **Packets.** Only the client-to-VIP direction, as a Maglev balancer sees it. TCP: SYN (with
/// an MSS option), the handshake's ACK, then ACKs carrying 0-1448 bytes (the first one a
/// request), and FIN|ACK, or RST|ACK for about 5% of connections; sequence and
/// acknowledgement numbers advance. UDP: datagrams of 20-499 bytes; with `fragmentShare`, a
/// datagram becomes 2 or 3 fragments of a 1401-4200-byte datagram (IPv4 fragments, or IPv6
/// fragment headers), 1400 bytes each but the last. ICMP errors: from the router
/// (198.18.255.1 or 2001:db8:ff::1) to the VIP, about a packet of the reverse flow (VIP to
/// client): ICMP destination unreachable (fragmentation needed, or host unreachable), or
/// ICMPv6 packet too big or destination unreachable, quoting the IP header and 8 (IPv4) or
/// all (IPv6) transport header bytes. Checksums are correct; frames are padded to 60 bytes.
///
/// **Time.** Over `durationSeconds` from 2025-01-01T00:00:00Z. A flow is active over an
/// interval that starts at random, as long as half the trace for the largest flow and
/// proportionally shorter for smaller ones (at least 20 µs per packet); its packets are
/// spread over that interval, in order. The file is sorted by time (ties: flow packets before
/// ICMP errors, then by flow and packet).
///
/// **Determinism.** The same options give the same bytes (`SplitMix64` from the seed; flow
/// sizes use `pow`, so another C library could round a size differently).
public enum TraceGenerator {
    /// The first packet's time: 2025-01-01T00:00:00Z.
    public static let startNs: UInt64 = 1_735_689_600 * 1_000_000_000

    public static func generate(_ options: TraceOptions, to path: String) throws(CaptureError) -> TraceSummary {
        try generate(options, to: path, progress: nil)
    }

    /// As `generate(_:to:)`, calling `progress(written, total)` every 65536 packets and at
    /// the end.
    public static func generate(
        _ options: TraceOptions, to path: String, progress: ((_ written: Int, _ total: Int) -> Void)?
    ) throws(CaptureError) -> TraceSummary {
        if let problem = options.problem {
            throw CaptureError(file: path, packetNumber: nil, message: "not generated: \(problem)")
        }
        let writer = try PcapWriter(path: path, linkType: .ethernet)
        let plan = TracePlan(options)
        var renderer = TraceRenderer(plan: plan, seed: options.seed)
        let total = plan.records.count
        for (n, record) in plan.records.enumerated() {
            let frame = renderer.render(record)
            writer.write(frame, timestampNs: startNs + record.time)
            if let progress, (n + 1) & 0xFFFF == 0 { progress(n + 1, total) }
        }
        try writer.finish()
        progress?(total, total)

        var summary = TraceSummary()
        summary.packets = writer.packetsWritten
        summary.flows = plan.flows.count
        summary.bytes = writer.bytesWritten
        for flow in plan.flows {
            if flow.isTCP { summary.tcpFlows += 1 }
            if flow.isIPv6 { summary.ipv6Flows += 1 }
            if flow.vlan != 0 { summary.vlanFlows += 1 }
        }
        summary.fragmentPackets = plan.fragmentPackets
        summary.icmpErrors = plan.icmpErrors
        return summary
    }
}
