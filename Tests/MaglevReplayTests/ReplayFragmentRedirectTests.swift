import MaglevConfig
import MaglevCore
import Testing

@testable import MaglevReplay

/// `fragments: redirect` in replay (`--forwarders K`): every simulated forwarder is a member
/// of the group, redirects are delivered to the owner's data plane as the GRE packets they are,
/// and held fragments come out later with their own packet number. On a generated trace whose
/// datagrams arrive in reverse fragment order, every packet's final verdict forwards it to the
/// backend of its datagram's 5-tuple, the one the lookup table gives.
@Suite struct ReplayFragmentRedirectTests {
    @Test func everyFragmentReachesItsFiveTuplesBackendThroughRedirectsAndHolds() throws {
        var options = TraceOptions()
        options.flows = 200
        options.packets = 2000
        options.tcpShare = 0
        options.fragmentShare = 1.0
        options.seed = 11
        let generated = temporaryPath("redirect-gen.pcap")
        let reversed = temporaryPath("redirect-rev.pcap")
        let csv = temporaryPath("redirect.csv")
        defer {
            for f in [generated, reversed, csv] { removeFile(f) }
        }
        _ = try TraceGenerator.generate(options, to: generated)
        let (packets, error) = readAll(try CaptureReader(paths: [generated]))
        #expect(error == nil)

        // Each datagram's fragments (consecutive in the generated trace) in reverse order.
        var order: [ReadPacket] = []
        var run: [ReadPacket] = []
        var runKey = ""
        func datagram(_ p: ReadPacket) -> String? {
            guard case .parsed(let q) = p.parse(), q.fragment != .none else { return nil }
            return "\(q.key.source)-\(q.key.destination)-\(q.key.proto)-\(q.fragmentID)"
        }
        for p in packets {
            let key = datagram(p)
            if key == nil || key != runKey {
                order += run.reversed()
                run = []
            }
            if let key {
                run.append(p)
                runKey = key
            } else {
                order.append(p)
                runKey = ""
            }
        }
        order += run.reversed()
        #expect(order.count == packets.count)
        let writer = try PcapWriter(path: reversed, linkType: packets[0].linkType)
        for (i, p) in order.enumerated() {
            p.bytes.withUnsafeBytes { writer.write($0, timestampNs: packets[i].timestampNs) }
        }
        try writer.finish()

        var group: [ForwarderMember] = []
        let report = try replay(reversed, backends: 10, forwarders: 3, decisions: csv) { o in
            o.config.dataplane.fragmentPolicy = .redirect
            o.config.dataplane.forwarders = (1...3).map {
                ForwarderMember(name: "fwd\($0)", address: IPAddress("198.18.255.\($0)")!)
            }
            group = o.config.dataplane.forwarders
        }
        #expect(report.packets.droppedTotal == 0, "\(report.packets.dropped)")
        #expect(report.packets.forwarded == order.count)
        let snapshot = try ForwardingSnapshot(
            config: { var c = MaglevConfigFile.catchAll(backends: 10).dataplane; c.forwarders = group; c.fragmentPolicy = .redirect; return c }())

        // The final verdict of each packet: its last row (a held fragment's comes later).
        let rows = readDecisions(csv)
        var final: [Int: DecisionRow] = [:]
        var held = 0
        for r in rows {
            final[r.packet] = r
            if r.verdict == "held" { held += 1 }
        }
        #expect(held > 0)
        #expect(final.count == order.count)
        // The 5-tuple of each datagram, from its first fragment.
        var fiveTuple: [String: FlowKey] = [:]
        for p in order {
            guard case .parsed(let q) = p.parse(), q.fragment == .first, let d = datagram(p) else { continue }
            fiveTuple[d] = q.key
        }
        var checked = 0
        for (i, p) in order.enumerated() {
            guard let d = datagram(p), let key = fiveTuple[d], let row = final[i + 1] else { continue }
            let expected = snapshot.route(key)?.backend.map { snapshot.backendNames[$0] }
            #expect(row.verdict == "forward" && row.backend == expected, "packet \(i + 1) of \(d): \(row)")
            checked += 1
        }
        #expect(checked > 1000)
    }
}
