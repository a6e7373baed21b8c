import Glibc
import MaglevConfig
import MaglevCore
import Testing

@testable import MaglevReplay

/// Runs a replay of `trace` over `backends` catch-all backends.
func replay(
    _ trace: String, backends: Int = 10, events: [String] = [], forwarders: Int = 1, conntrack: Bool = true,
    decisions: String? = nil, out: String? = nil, configure: (inout ReplayOptions) -> Void = { _ in }
) throws -> ReplayReport {
    var file = MaglevConfigFile.catchAll(backends: backends)
    file.dataplane.connectionTracking = conntrack
    file.dataplane.acceptTruncated = true
    var options = ReplayOptions(inputs: [trace], config: file)
    options.events = try events.map { try ScenarioEvent(parsing: $0) }
    options.forwarders = forwarders
    options.decisionsCSV = decisions
    options.outputPcap = out
    configure(&options)
    let (report, error) = try ReplayEngine.replay(options, compareAlgorithms: false)
    #expect(error == nil, "\(String(describing: error))")
    return report
}

/// One row of a decisions CSV.
struct DecisionRow {
    var packet: Int
    var src: String
    var dst: String
    var proto: String
    var sport: String
    var dport: String
    var forwarder: Int
    var backend: String
    var verdict: String
}

func readDecisions(_ path: String) -> [DecisionRow] {
    guard let bytes = readFile(path) else { return [] }
    let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
    #expect(lines.first == "packet,time,src,dst,proto,sport,dport,vip,forwarder,backend,verdict")
    return lines.dropFirst().map { line in
        let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        return DecisionRow(
            packet: Int(f[0]) ?? -1, src: f[2], dst: f[3], proto: f[4], sport: f[5], dport: f[6],
            forwarder: Int(f[8]) ?? -1, backend: f[9], verdict: f[10])
    }
}

let tcp1k = repositoryRoot + "/Traces/tcp-1k.pcap"
let mixedSmall = repositoryRoot + "/Traces/mixed-small.pcap"

@Suite struct ReplayEngineTests {
    @Test func everyPacketIsAccountedForAndEveryConnectionStaysOnOneBackend() throws {
        let csv = temporaryPath("decisions.csv")
        defer { removeFile(csv) }
        let r = try replay(tcp1k, backends: 8, decisions: csv)
        let p = r.packets
        let passed = p.passed.reduce(0) { $0 + $1.count }
        #expect(p.total == p.forwarded + p.icmpReplies + passed + p.droppedTotal + p.skippedTotal)
        #expect(p.forwarded == p.total)
        #expect(r.backends.map(\.name) == (0..<8).map { "backend-\($0)" })
        #expect(r.backends.reduce(0) { $0 + $1.packets } == p.forwarded)
        #expect(r.connections == 1000)
        let rows = readDecisions(csv)
        #expect(rows.count == p.total)
        var backendOf: [String: String] = [:]
        for row in rows {
            let key = "\(row.src),\(row.sport),\(row.dst),\(row.dport),\(row.proto)"
            if let b = backendOf[key] {
                #expect(b == row.backend, "packet \(row.packet) of \(key) went to \(row.backend), earlier ones to \(b)")
            } else {
                backendOf[key] = row.backend
            }
        }
        #expect(backendOf.count == 1000)
    }

    @Test func removingABackendBreaksOnlyItsOwnConnectionsWithConnectionTracking() throws {
        let r = try replay(tcp1k, backends: 10, events: ["50%:remove:backend-3"])
        let e = try #require(r.events.first)
        #expect(e.action == "remove" && e.target == "backend-3")
        #expect(e.connectionsAlive > 0)
        #expect(e.broken > 0)
        #expect(e.brokenCollateral == 0)
        #expect(e.brokenUnavoidable == e.broken)
        #expect(e.slotsChangedAll > 0.09 && e.slotsChangedAll < 0.12)  // ~1/10 of the table
        #expect(e.slotsChangedExtra < 0.01)
        #expect(r.backends.first { $0.name == "backend-3" }?.state == "removed")
    }

    @Test func withoutConnectionTrackingCollateralStaysUnderTwoPercent() throws {
        let r = try replay(tcp1k, backends: 10, events: ["50%:remove:backend-3"], conntrack: false)
        let e = try #require(r.events.first)
        #expect(e.brokenUnavoidable > 0)
        #expect(Double(e.brokenCollateral) <= 0.02 * Double(e.connectionsAlive), "\(e.brokenCollateral) of \(e.connectionsAlive)")
    }

    @Test(arguments: [true, false])
    func changingTheForwarderGroupBreaksNothing(conntrack: Bool) throws {
        let csv = temporaryPath("fwd-\(conntrack).csv")
        defer { removeFile(csv) }
        let r = try replay(tcp1k, backends: 10, events: ["50%:forwarders=3"], forwarders: 4, conntrack: conntrack, decisions: csv)
        let e = try #require(r.events.first)
        #expect(e.connectionsAlive > 0)
        #expect(e.broken == 0)
        #expect(r.forwarders == 3)
        // Flows really did move between forwarders.
        var forwarderOf: [String: Set<Int>] = [:]
        for row in readDecisions(csv) { forwarderOf["\(row.src),\(row.sport)", default: []].insert(row.forwarder) }
        #expect(forwarderOf.values.contains { $0.count > 1 })
    }

    @Test func addingABackendWithoutConnectionTrackingBreaksCollateralOnly() throws {
        let r = try replay(tcp1k, backends: 10, events: ["50%:add:backend-new"], conntrack: false)
        let e = try #require(r.events.first)
        #expect(e.brokenUnavoidable == 0)
        #expect(e.brokenCollateral > 0)
        let tracked = try replay(tcp1k, backends: 10, events: ["50%:add:backend-new"])
        #expect(tracked.events.first?.broken == 0)
        #expect(tracked.backends.contains { $0.name == "backend-new" && $0.flows > 0 })
    }

    @Test func drainKeepsConnectionsAndFailBreaksThem() throws {
        let drained = try replay(tcp1k, backends: 10, events: ["50%:drain:backend-2"])
        #expect(drained.events.first?.broken == 0)
        let failed = try replay(tcp1k, backends: 10, events: ["50%:fail:backend-2"])
        #expect((failed.events.first?.brokenUnavoidable ?? 0) > 0)
        #expect(failed.events.first?.brokenCollateral == 0)
    }

    @Test func eventTimesResolve() throws {
        let r = try replay(tcp1k, backends: 4, events: ["#100:weight=3:backend-1", "2s:drain:backend-0", "90%:recover:backend-0"])
        #expect(r.events.map(\.packet).first == 100)
        #expect(r.events.count == 3)
        #expect(r.events[1].seconds >= 2 && r.events[1].seconds < 2.1)
        #expect(r.events[2].packet == r.packets.total * 9 / 10 + 1)
    }

    @Test func badEventsAreRejectedWithAReason() {
        for text in ["50%", "150%:remove:b", "x:remove:b", "50%:explode:b", "50%:remove", "#0:remove:b", "1s:forwarders=3:b"] {
            #expect(throws: ScenarioError.self, "\(text)") { try ScenarioEvent(parsing: text) }
        }
    }

    /// Every fragment of a datagram reaches one backend (three-tuple policy).
    @Test func fragmentsOfADatagramShareABackend() throws {
        var options = TraceOptions()
        options.flows = 300
        options.packets = 3000
        options.tcpShare = 0.2
        options.fragmentShare = 1.0
        options.seed = 9
        let trace = temporaryPath("frag.pcap")
        let csv = temporaryPath("frag.csv")
        defer {
            removeFile(trace)
            removeFile(csv)
        }
        let summary = try TraceGenerator.generate(options, to: trace)
        #expect(summary.fragmentPackets > 0)
        _ = try replay(trace, backends: 10, decisions: csv)
        let rows = readDecisions(csv)
        let (packets, error) = readAll(try CaptureReader(paths: [trace]))
        #expect(error == nil)
        #expect(packets.count == rows.count)
        var backendOfDatagram: [String: String] = [:]
        var fragments = 0
        for (i, packet) in packets.enumerated() {
            guard case .parsed(let p) = packet.parse(), p.fragment != .none else { continue }
            fragments += 1
            let datagram = "\(p.key.source)-\(p.key.destination)-\(p.key.proto)-\(p.fragmentID)"
            let backend = rows[i].backend
            #expect(!backend.isEmpty)
            if let b = backendOfDatagram[datagram] {
                #expect(b == backend, "fragment of \(datagram) at packet \(i + 1)")
            } else {
                backendOfDatagram[datagram] = backend
            }
        }
        #expect(fragments == summary.fragmentPackets)
    }

    /// `--out`: every forwarded packet is GRE around the input's IP packet, byte for byte.
    @Test func outputIsGREAroundTheUnchangedInnerPacket() throws {
        let out = temporaryPath("out.pcap")
        defer { removeFile(out) }
        let r = try replay(mixedSmall, backends: 6, out: out)
        let (inputs, e1) = readAll(try CaptureReader(paths: [mixedSmall]))
        let (outputs, e2) = readAll(try CaptureReader(paths: [out]))
        #expect(e1 == nil && e2 == nil)
        #expect(outputs.count == r.packets.forwarded + r.packets.icmpReplies)
        var o = 0
        var checked = 0
        for input in inputs {
            guard case .parsed(let p) = input.parse() else { continue }
            let inner = Array(input.bytes[p.l3Offset..<(p.l3Offset + p.l3Length)])
            guard o < outputs.count else { break }
            let output = outputs[o].bytes
            o += 1
            let outerIPv6 = output[0] >> 4 == 6
            let outerProto = outerIPv6 ? output[6] : output[9]
            guard outerProto == IPProtocol.gre else { continue }  // an ICMP reply
            let overhead = outerIPv6 ? 44 : 24
            #expect(Array(output[overhead...]) == inner, "packet \(input.packetNumber)")
            checked += 1
        }
        #expect(checked == r.packets.forwarded)
    }

    /// tshark, a real decoder, sees GRE carrying IP in every forwarded packet.
    @Test(.tsharkInstalled) func tsharkDecodesTheOutput() throws {
        let tshark = try tsharkExecutable()
        let out = temporaryPath("tshark.pcap")
        let fields = temporaryPath("tshark.txt")
        defer {
            removeFile(out)
            removeFile(fields)
        }
        let r = try replay(mixedSmall, backends: 6, out: out)
        #expect(system("\(tshark) -r \(out) -T fields -e gre.proto > \(fields) 2>/dev/null") == 0)
        let lines = String(decoding: readFile(fields) ?? [], as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == r.packets.forwarded + r.packets.icmpReplies)
        let gre = lines.filter { $0 == "0x0800" || $0 == "0x86dd" }.count
        #expect(gre == r.packets.forwarded)
    }

    /// Captures from elsewhere, of every link type, never crash the replay.
    @Test(.sharedCaptures()) func sharedCapturesReplayWithoutCrashing() throws {
        let dir = try #require(opendir(sharedCapturesDirectory), "cannot open \(sharedCapturesDirectory)")
        defer { closedir(dir) }
        var replayed = 0
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name.hasSuffix(".pcap") || name.hasSuffix(".pcapng") else { continue }
            var file = MaglevConfigFile.catchAll(backends: 4)
            file.dataplane.acceptTruncated = true
            var options = ReplayOptions(inputs: [sharedCapturesDirectory + "/" + name], config: file)
            options.events = [try ScenarioEvent(parsing: "50%:remove:backend-1")]
            let (report, _) = try ReplayEngine.replay(options, compareAlgorithms: true)
            #expect(report.packets.total > 0, "\(name)")
            #expect(report.comparison.count == 4)
            replayed += 1
        }
        #expect(replayed >= 10)
    }

    /// A capture cut off midway: the error names the file and packet, and the report covers
    /// the packets before.
    @Test func truncatedCaptureStillReports() throws {
        let bytes = try #require(readFile(tcp1k))
        let cut = temporaryPath("cut.pcap")
        defer { removeFile(cut) }
        writeFile(cut, Array(bytes.prefix(bytes.count / 2)))
        var options = ReplayOptions(inputs: [cut], config: .catchAll(backends: 4))
        options.events = [try ScenarioEvent(parsing: "#10:remove:backend-1")]
        let (report, error) = try ReplayEngine.replay(options, compareAlgorithms: false)
        let e = try #require(error)
        #expect(e.file == cut)
        #expect((e.packetNumber ?? 0) > 1)
        #expect(report.packets.total == (e.packetNumber ?? 0) - 1)
        #expect(report.warnings.contains { $0.contains("stopped early") })
    }

    @Test func balanceOfManyUniformFlowsIsTight() throws {
        var options = TraceOptions()
        options.flows = 20_000
        options.packets = 40_000
        options.zipfExponent = nil
        options.seed = 3
        let trace = temporaryPath("uniform.pcap")
        defer { removeFile(trace) }
        _ = try TraceGenerator.generate(options, to: trace)
        let r = try replay(trace, backends: 10)
        #expect((r.balance.flowsMaxOverMean ?? .infinity) < 1.06, "\(r.balance)")
        #expect((r.balance.jain ?? 0) > 0.99)
    }
}
