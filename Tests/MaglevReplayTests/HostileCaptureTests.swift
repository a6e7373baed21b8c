import Glibc
import MaglevConfig
import MaglevCore
import Testing

@testable import MaglevReplay

// MARK: - Crafting small captures

/// A capture built record by record: any timestamp (nanoseconds), any link type, any captured
/// and original length. Written as a little-endian nanosecond pcap.
struct CraftedCapture {
    struct Record {
        var timestampNs: UInt64
        var bytes: [UInt8]
        /// Length on the wire; the captured bytes when nil.
        var originalLength: Int?
    }

    var linkType: UInt32 = 101  // LINKTYPE_RAW
    var records: [Record] = []

    mutating func add(_ bytes: [UInt8], at timestampNs: UInt64, originalLength: Int? = nil) {
        records.append(Record(timestampNs: timestampNs, bytes: bytes, originalLength: originalLength))
    }

    var fileBytes: [UInt8] {
        func le32(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)] }
        var out = le32(0xA1B2_3C4D) + [2, 0, 4, 0] + le32(0) + le32(0) + le32(262_144) + le32(linkType)
        for r in records {
            out += le32(UInt32(r.timestampNs / 1_000_000_000)) + le32(UInt32(r.timestampNs % 1_000_000_000))
            out += le32(UInt32(r.bytes.count)) + le32(UInt32(r.originalLength ?? r.bytes.count)) + r.bytes
        }
        return out
    }

    /// Writes the file to a temporary path and returns it (remove it with `removeFile`).
    func write(_ name: String) -> String {
        let path = temporaryPath(name)
        writeFile(path, fileBytes)
        return path
    }
}

/// An IPv4 address from four bytes, as packet bytes.
func ipv4Bytes(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> [UInt8] { [a, b, c, d] }

/// A minimal IPv4/TCP packet (no checksums: replay does not check them).
func ipv4TCP(
    source: [UInt8] = [198, 51, 100, 7], sourcePort: UInt16, destination: [UInt8] = [192, 0, 2, 10],
    destinationPort: UInt16 = 80, flags: UInt8, payload: Int = 0
) -> [UInt8] {
    let total = 40 + payload
    var p: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 1, 0x40, 0, 64, 6, 0, 0] + source + destination
    p += [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), UInt8(destinationPort >> 8), UInt8(destinationPort & 0xFF)]
    p += [0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xFF, 0xFF, 0, 0, 0, 0]
    p += [UInt8](repeating: 0x5A, count: payload)
    return p
}

/// Parses `time` (seconds with nine decimals) from a decisions CSV, column 2.
func decisionTimes(_ path: String) -> [Double] {
    guard let bytes = readFile(path) else { return [] }
    return String(decoding: bytes, as: UTF8.self).split(separator: "\n").dropFirst().map { line in
        Double(line.split(separator: ",", omittingEmptySubsequences: false)[1]) ?? -1
    }
}

// MARK: - Time going backwards

@Suite struct HostileCaptureTests {
    static let t0: UInt64 = 1_700_000_000 * 1_000_000_000

    /// 30 TCP connections that each send a packet every 0.5 s for 10 s; every odd connection's
    /// packets carry timestamps 30 ms early (so they are older than the packet before them in
    /// the file), and the second packet of the file is 41 us older than the first.
    static func backwardsTrace() -> (capture: CraftedCapture, backwards: Int, maxBackNs: UInt64) {
        var c = CraftedCapture()
        let flows = 30
        func port(_ i: Int) -> UInt16 { UInt16(20_000 + i) }
        // Connection i's SYN at i*10 ms, except that connection 1's comes 41 us before the first.
        for i in 0..<flows {
            let t = i == 1 ? t0 - 41_000 : t0 + UInt64(i) * 10_000_000
            c.add(ipv4TCP(sourcePort: port(i), flags: TCPFlags.syn), at: t)
        }
        for round in 1..<20 {
            for i in 0..<flows {
                var t = t0 + UInt64(round) * 500_000_000 + UInt64(i) * 10_000_000
                if i % 2 == 1 { t -= 30_000_000 }
                c.add(ipv4TCP(sourcePort: port(i), flags: TCPFlags.ack, payload: 10), at: t)
            }
        }
        // What the replay clock should make of it.
        var clock: UInt64 = 0
        var backwards = 0
        var maxBack: UInt64 = 0
        for r in c.records {
            if r.timestampNs < clock {
                backwards += 1
                maxBack = max(maxBack, clock - r.timestampNs)
            } else {
                clock = r.timestampNs
            }
        }
        return (c, backwards, maxBack)
    }

    @Test func timeGoingBackwardsNeverWrapsAndIsCounted() throws {
        let (capture, backwards, maxBack) = Self.backwardsTrace()
        #expect(backwards == 1 + 19 * 15)
        let trace = capture.write("backwards.pcap")
        let csv = temporaryPath("backwards.csv")
        defer {
            removeFile(trace)
            removeFile(csv)
        }
        let r = try replay(trace, backends: 4, events: ["1s:drain:backend-2", "5s:remove:backend-1"], decisions: csv)

        // Counted, and said in the report (text and JSON).
        #expect(r.timeWentBackwards.packets == backwards)
        #expect(abs(r.timeWentBackwards.maxSeconds - Double(maxBack) / 1e9) < 1e-9)
        #expect(r.warnings.contains { $0.contains("\(backwards) packets were older than a packet before them") })
        let text = ReportRenderer.render(r, as: .text)
        let back = ReportFormatting.fixed(Double(maxBack) / 1e9, 6)
        #expect(back == "0.020000")
        #expect(text.contains("Time went back  \(backwards) packets older than one before (by up to \(back) s)"), "\(text)")
        let json = try ParsedJSON.parse(ReportRenderer.render(r, as: .json))
        #expect(json["time_went_backwards"]?["packets"]?.int == backwards)
        #expect(json["time_went_backwards"]?["max_seconds"]?.numberText == back)

        // Times never wrap: the CSV's times never decrease and stay within the duration.
        #expect(r.durationSeconds > 9.7 && r.durationSeconds < 10)
        let times = decisionTimes(csv)
        #expect(times.count == capture.records.count)
        #expect(times.allSatisfy { $0 >= 0 && $0 <= r.durationSeconds })
        #expect(zip(times, times.dropFirst()).allSatisfy { $0 <= $1 })
        // The timeline covers the capture with sane buckets.
        #expect(!r.timeline.isEmpty && r.timeline.count <= 120)
        #expect(r.timeline.allSatisfy { $0.startSeconds <= r.durationSeconds })
        #expect(r.timelineBucketSeconds > 0 && r.timelineBucketSeconds < 1)

        // No connection is counted twice for going back in time.
        #expect(r.connections == 30)
        #expect(r.flows == 30)
        #expect(r.backends.reduce(0) { $0 + $1.connections } == 30 + r.events[1].broken)

        // Events fire at their capture time, not at the packet that went back.
        #expect(r.events.count == 2)
        #expect(r.events[0].seconds >= 1 && r.events[0].seconds < 1.05, "\(r.events[0])")
        #expect(r.events[1].seconds >= 5 && r.events[1].seconds < 5.05, "\(r.events[1])")
        let firstAfter1s = try #require(times.firstIndex { $0 >= 1 }) + 1
        #expect(r.events[0].packet == firstAfter1s)
        // Every connection is alive at 5 s; those of backend-1 move, nothing else does.
        let rows = readDecisions(csv)
        let onBackend1 = Set(rows.prefix(r.events[1].packet - 1).filter { $0.backend == "backend-1" }.map(\.sport))
        #expect(!onBackend1.isEmpty)
        #expect(r.events[1].connectionsAlive == 30)
        #expect(r.events[1].broken == onBackend1.count)
        #expect(r.events[1].brokenUnavoidable == onBackend1.count)
        #expect(r.events[0].broken == 0)
        #expect(!r.warnings.contains { $0.contains("with no event") })
    }
}

// MARK: - Write errors are errors

/// `/dev/full` fails every write with ENOSPC: a full disk on demand, no root needed.
@Suite struct OutputErrorTests {
    static let full = "/dev/full"

    static func run(decisions: String? = nil, out: String? = nil) -> (any Error)? {
        do {
            _ = try replay(tcp1k, backends: 4, decisions: decisions, out: out)
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: ["decisions", "out"])
    func aFullDiskFailsTheReplayNamingTheFile(output: String) throws {
        let error = output == "decisions" ? Self.run(decisions: Self.full) : Self.run(out: Self.full)
        let e = try #require(error as? OutputError, "\(String(describing: error))")
        #expect(e.file == Self.full)
        #expect(e.description.hasPrefix("/dev/full: could not write"), "\(e)")
        #expect(e.description.contains("No space left on device (errno 28)"), "\(e)")
        // The replay finished: its report comes with the error.
        #expect(e.report?.packets.total == 4000)
    }

    @Test func anOutputThatCannotBeCreatedIsNamed() throws {
        for (decisions, out) in [("/nonexistent-dir/d.csv", nil), (nil, "/nonexistent-dir/o.pcap")] as [(String?, String?)] {
            let e = try #require(Self.run(decisions: decisions, out: out) as? OutputError)
            #expect(e.file.hasPrefix("/nonexistent-dir/"))
            #expect(e.description.contains("cannot create"), "\(e)")
            #expect(e.report == nil)
        }
    }

    @Test func reportsCheckTheirWrites() {
        #expect {
            try writeTextFile("a report\n", to: Self.full)
        } throws: { error in
            "\(error)" == "/dev/full: could not write it: No space left on device (errno 28)"
        }
        let path = temporaryPath("report-ok.txt")
        defer { removeFile(path) }
        #expect(throws: Never.self) { try writeTextFile("fine\n", to: path) }
        #expect(readFile(path) == Array("fine\n".utf8))
    }

    @Test func aFullDiskFailsThePcapWriterNamingTheReason() throws {
        let writer = try PcapWriter(path: Self.full)
        let packet = ipv4UDP(payload: 1000)
        for i in 0..<200 { packet.withUnsafeBytes { writer.write($0, timestampNs: UInt64(i)) } }
        #expect {
            try writer.finish()
        } throws: { error in
            "\(error)".hasPrefix("/dev/full: could not write the capture after ")
                && "\(error)".hasSuffix("No space left on device (errno 28)")
        }
    }
}

// MARK: - Events are checked

@Suite struct EventCheckTests {
    @Test func anUnknownTargetIsAnErrorListingTheKnownNames() throws {
        let config = MaglevConfigFile.catchAll(backends: 4)
        let events = [try ScenarioEvent(parsing: "50%:remove:backend-99")]
        #expect {
            try ScenarioEvent.check(events, config: config)
        } throws: { error in
            "\(error)" == "event '50%:remove:backend-99': no backend named 'backend-99'; known backends: "
                + "backend-0, backend-1, backend-2, backend-3 (add:NAME introduces a new one)"
        }
        // The replay refuses it too, before reading anything.
        #expect(throws: ScenarioError.self) { try replay(tcp1k, backends: 4, events: ["50%:remove:backend-99"]) }
        // Long lists are cut.
        #expect {
            try ScenarioEvent.check(events, config: .catchAll(backends: 30))
        } throws: { error in "\(error)".hasSuffix("backend-26 and 10 more (add:NAME introduces a new one)") }
    }

    @Test func addOfANewNameIsAllowedAndLaterEventsMayUseIt() throws {
        let events = try ["10%:add:fresh", "60%:drain:fresh", "70%:forwarders=2", "80%:weight=2:backend-1"].map {
            try ScenarioEvent(parsing: $0)
        }
        try ScenarioEvent.check(events, config: .catchAll(backends: 4))
    }

    @Test func anEventPastTheEndIsAWarningAndMarkedNeverReached() throws {
        let r = try replay(tcp1k, backends: 4, events: ["20s:remove:backend-1", "#4001:drain:backend-2", "100%:fail:backend-3"])
        #expect(r.events.count == 3)
        let reached = Dictionary(uniqueKeysWithValues: r.events.map { ($0.at, $0.reached) })
        #expect(reached == ["20s": false, "#4001": false, "100%": true])
        // Never reached: it did not take effect.
        #expect(r.backends.first { $0.name == "backend-1" }?.state == "active")
        #expect(r.backends.first { $0.name == "backend-2" }?.state == "active")
        // 100% is after the last packet: it takes effect at the end.
        #expect(r.backends.first { $0.name == "backend-3" }?.state == "down")
        #expect(r.warnings.contains { $0.hasPrefix("event '20s:remove:backend-1' was never reached (the capture ends at 9.") })
        #expect(r.warnings.contains { $0.hasPrefix("event '#4001:drain:backend-2' was never reached") && $0.contains("packet 4000") })
        let json = try ParsedJSON.parse(ReportRenderer.render(r, as: .json))
        let first = try #require(json["events"]?.array?.first { $0["at"]?.string == "20s" })
        #expect(first["reached"] == .bool(false))
        #expect(first["seconds"] == .null)
        let text = ReportRenderer.render(r, as: .text)
        #expect(text.contains("never: the capture ended before the event's time"))
        #expect(text.split(separator: "\n").contains { $0.hasPrefix("20s") && $0.contains("never") && $0.contains("remove") })
        let html = ReportRenderer.render(r, as: .html)
        #expect(html.contains("never reached"))
    }
}

// MARK: - Undefined figures say so

@Suite struct UndefinedFigureTests {
    static func load(_ name: String, flows: Int, packets: Int, bytes: Int) -> ReplayReport.BackendLoad {
        var b = ReplayReport.BackendLoad(name: name, address: "10.0.0.1", state: "active")
        b.flows = flows
        b.packets = packets
        b.bytes = bytes
        return b
    }

    @Test func balanceOverNothingIsUndefined() {
        #expect(ReplayAnalysis.balance([]) == ReplayReport.Balance())
        let idle = ReplayAnalysis.balance([Self.load("a", flows: 0, packets: 0, bytes: 0), Self.load("b", flows: 0, packets: 0, bytes: 0)])
        #expect(idle.flowsMaxOverMean == nil && idle.packetsMaxOverMean == nil && idle.bytesMaxOverMean == nil)
        #expect(idle.flowsCoV == nil && idle.jain == nil)
        let one = ReplayAnalysis.balance([Self.load("a", flows: 3, packets: 9, bytes: 900)])
        #expect(one.flowsMaxOverMean == 1 && one.flowsCoV == 0 && one.jain == 1)
    }

    /// A capture with no traffic of ours (ARP only): no backend takes part in the balance.
    @Test func aReplayWithoutTrafficPrintsNotApplicable() throws {
        var c = CraftedCapture()
        c.linkType = 1  // Ethernet
        let arp: [UInt8] = [UInt8](repeating: 0xFF, count: 6) + [2, 0, 0, 0, 0, 1] + [0x08, 0x06] + [UInt8](repeating: 0, count: 28)
        for i in 0..<3 { c.add(arp, at: HostileCaptureTests.t0 + UInt64(i) * 1_000_000) }
        let trace = c.write("arp-only.pcap")
        defer { removeFile(trace) }
        let r = try replay(trace, backends: 3)
        #expect(r.packets.total == 3 && r.packets.forwarded == 0)
        #expect(r.balance == ReplayReport.Balance())
        let text = ReportRenderer.render(r, as: .text)
        for label in ["flows max/mean", "packets max/mean", "bytes max/mean", "flows CoV", "Jain index"] {
            let line = text.split(separator: "\n").first { $0.hasPrefix(label) }
            #expect(line.map { $0.contains(" n/a ") } == true, "\(label): \(line ?? "missing")")
        }
        let json = try ParsedJSON.parse(ReportRenderer.render(r, as: .json))
        for key in ["flows_max_over_mean", "packets_max_over_mean", "bytes_max_over_mean", "flows_cov", "jain"] {
            #expect(json["balance"]?[key] == .null, "\(key)")
        }
        #expect(ReportRenderer.render(r, as: .html).contains("n/a"))
    }
}

// MARK: - CSV is RFC 4180

/// Splits RFC 4180 text into rows of fields (quoted fields may hold commas, quotes, newlines).
func parseCSV(_ text: String) -> [[String]] {
    var rows: [[String]] = []
    var row: [String] = []
    var field = ""
    var quoted = false
    var chars = Array(text)[...]
    while let c = chars.popFirst() {
        if quoted {
            if c == "\"" {
                if chars.first == "\"" {
                    field.append("\"")
                    chars.removeFirst()
                } else {
                    quoted = false
                }
            } else {
                field.append(c)
            }
        } else if c == "\"" && field.isEmpty {
            quoted = true
        } else if c == "," {
            row.append(field)
            field = ""
        } else if c == "\n" {
            row.append(field)
            rows.append(row)
            row = []
            field = ""
        } else {
            field.append(c)
        }
    }
    if !field.isEmpty || !row.isEmpty { rows.append(row + [field]) }
    return rows
}

@Suite struct CSVTests {
    static let names = ["be,1", "say \"hi\"", "plain"]

    /// The catch-all setup with backends named as `names`.
    static func config() -> MaglevConfigFile {
        var dataplane = MaglevConfigFile.catchAll(backends: names.count).dataplane
        for v in dataplane.vips.indices {
            for b in dataplane.vips[v].backends.indices { dataplane.vips[v].backends[b].name = names[b] }
        }
        var file = MaglevConfigFile(dataplane: dataplane, connectionCapacity: 1 << 16, path: "<test>")
        file.dataplane.acceptTruncated = true
        return file
    }

    @Test func fieldsAreQuotedOnlyWhenNeeded() {
        #expect(CSV.field("backend-1") == "backend-1")
        #expect(CSV.field("be,1") == "\"be,1\"")
        #expect(CSV.field("say \"hi\"") == "\"say \"\"hi\"\"\"")
        #expect(CSV.field("two\nlines") == "\"two\nlines\"")
        #expect(CSV.field("") == "")
        let row = ["1", "be,1", "say \"hi\"", "", "plain"]
        #expect(CSV.fields(CSV.row(row).dropLast()) == row)
    }

    @Test func decisionsQuoteNamesWithCommasAndQuotes() throws {
        let csv = temporaryPath("quoted.csv")
        defer { removeFile(csv) }
        _ = try replay(tcp1k, decisions: csv) { $0.config = Self.config() }
        let rows = parseCSV(String(decoding: readFile(csv) ?? [], as: UTF8.self))
        #expect(rows.count == 4001)
        #expect(rows.allSatisfy { $0.count == 11 }, "a row with other than 11 fields")
        #expect(Set(rows.dropFirst().map { $0[9] }) == Set(Self.names))
        #expect(rows.dropFirst().allSatisfy { $0[10] == "forward" })
    }

    @Test func reportAsCSVIsThePerBackendTable() throws {
        let r = try replay(tcp1k) { $0.config = Self.config() }
        #expect(ReportFormat(pathExtension: "r.csv") == .csv)
        let out = ReportRenderer.render(r, as: .csv)
        let rows = parseCSV(out)
        #expect(rows.first == ["name", "address", "state", "flows", "connections", "packets", "bytes", "flow_share", "peak_connections"])
        #expect(rows.count == 1 + r.backends.count)
        #expect(rows.dropFirst().map { $0[0] } == r.backends.map(\.name))
        for (row, b) in zip(rows.dropFirst(), r.backends) {
            #expect(row == [
                b.name, b.address, b.state, "\(b.flows)", "\(b.connections)", "\(b.packets)", "\(b.bytes)",
                ReportFormatting.fixed(Double(b.flows) / Double(r.backendFlowsTotal), 6), "\(b.peakConnections)",
            ])
        }
        #expect(out.contains("\"be,1\",") && out.contains("\"say \"\"hi\"\"\","))
    }
}

// MARK: - Drop reasons name the real fault; the duration covers skipped packets

@Suite struct DropReasonTests {
    /// `ipv4TCP` with its total length field set to `claimed`.
    static func claiming(_ claimed: Int, port: UInt16, dontFragment: Bool = false) -> [UInt8] {
        var p = ipv4TCP(sourcePort: port, flags: TCPFlags.syn)
        p[2] = UInt8(claimed >> 8)
        p[3] = UInt8(claimed & 0xFF)
        p[6] = dontFragment ? 0x40 : 0
        return p
    }

    @Test func aHeaderLongerThanTheFrameIsTruncatedNotTooBig() throws {
        var c = CraftedCapture()
        let t = HostileCaptureTests.t0
        // The header claims 1500 bytes, 40 were on the wire: truncated (was packet_too_big_no_df).
        c.add(Self.claiming(1500, port: 1), at: t)
        // The same with DF set: truncated too, not an ICMP "too big" for a packet never sent.
        c.add(Self.claiming(1500, port: 2, dontFragment: true), at: t + 1)
        // 200 claimed, 40 on the wire: truncated.
        c.add(Self.claiming(200, port: 3), at: t + 2)
        // 200 claimed and 200 on the wire, 40 captured (snapshot length): replayed.
        c.add(Self.claiming(200, port: 4), at: t + 3, originalLength: 200)
        let trace = c.write("truncated.pcap")
        let csv = temporaryPath("truncated.csv")
        defer {
            removeFile(trace)
            removeFile(csv)
        }
        let r = try replay(trace, backends: 2, decisions: csv)
        #expect(r.packets.dropped.map(\.reason) == ["truncated_packet"])
        #expect(r.packets.droppedTotal == 3)
        #expect(r.packets.icmpReplies == 0)
        #expect(r.packets.forwarded == 1)
        #expect(readDecisions(csv).map(\.verdict) == ["drop:truncated_packet", "drop:truncated_packet", "drop:truncated_packet", "forward"])
    }

    @Test func pppoeSessionFramesAreReplayed() throws {
        var c = CraftedCapture()
        c.linkType = 1  // Ethernet
        let ethernet: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0x64]
        func pppoe(_ ip: [UInt8]) -> [UInt8] {
            let n = ip.count + 2
            return ethernet + [0x11, 0, 0, 7, UInt8(n >> 8), UInt8(n & 0xFF), 0, 0x21] + ip
        }
        let t = HostileCaptureTests.t0
        c.add(pppoe(ipv4TCP(sourcePort: 9, flags: TCPFlags.syn)), at: t)
        c.add(pppoe(ipv4TCP(sourcePort: 9, flags: TCPFlags.ack, payload: 20)), at: t + 1_000)
        // LCP echo: not IP.
        c.add(ethernet + [0x11, 0, 0, 7, 0, 6, 0xC0, 0x21, 9, 1, 0, 4], at: t + 2_000)
        let trace = c.write("pppoe.pcap")
        let out = temporaryPath("pppoe-out.pcap")
        defer {
            removeFile(trace)
            removeFile(out)
        }
        let r = try replay(trace, backends: 2, out: out)
        #expect(r.packets.forwarded == 2)
        #expect(r.packets.passed.map(\.reason) == ["not_ip"])
        #expect(r.connections == 1)
        // The GRE output carries the IP packet, without the PPPoE header.
        let (packets, error) = readAll(try CaptureReader(paths: [out]))
        #expect(error == nil)
        #expect(packets.count == 2)
        #expect(packets.first.map { Array($0.bytes.dropFirst(24)) } == ipv4TCP(sourcePort: 9, flags: TCPFlags.syn))
    }

    @Test func theDurationCoversSkippedPackets() throws {
        var ip = CraftedCapture()
        let t = HostileCaptureTests.t0
        ip.add(ipv4TCP(sourcePort: 5, flags: TCPFlags.syn), at: t + 1_000_000_000)
        ip.add(ipv4TCP(sourcePort: 5, flags: TCPFlags.ack), at: t + 2_000_000_000)
        var other = CraftedCapture()
        other.linkType = 147  // a user DLT: skipped
        other.add([1, 2, 3, 4], at: t)
        other.add([1, 2, 3, 4], at: t + 6_500_000_000)
        let a = ip.write("span-ip.pcap")
        let b = other.write("span-user.pcap")
        defer {
            removeFile(a)
            removeFile(b)
        }
        let r = try replay(a, backends: 2) { $0.inputs = [a, b] }
        #expect(r.packets.total == 4 && r.packets.skippedTotal == 2)
        #expect(r.durationSeconds == 6.5)
        // Skipped packets alone still have a span.
        let only = try replay(b, backends: 2)
        #expect(only.durationSeconds == 6.5)
    }
}

/// `--out` on snapshot-length-truncated input: each GRE record keeps the captured bytes
/// (caplen = captured + 24) but says what was really sent (original length and the outer IPv4
/// total length = the inner packet's real length + 24), so tshark reads the output as cleanly as
/// the input.
@Suite struct TruncatedOutputTests {
    static func capture(_ name: String) -> (path: String, real: Int, captured: Int) {
        var c = CraftedCapture()
        let real = 440
        let captured = 96
        for i in 0..<12 {
            var p = ipv4TCP(sourcePort: UInt16(30_000 + i), destination: ipv4Bytes(198, 19, 0, 10), flags: 0x18, payload: real - 40)
            // A valid IPv4 header checksum, so that tshark finds nothing wrong with the input.
            var sum: UInt32 = 0
            for j in stride(from: 0, to: 20, by: 2) { sum += UInt32(p[j]) << 8 | UInt32(p[j + 1]) }
            while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
            p[10] = UInt8(~sum >> 8 & 0xFF)
            p[11] = UInt8(~sum & 0xFF)
            c.add(Array(p.prefix(captured)), at: 1_700_000_000_000_000_000 + UInt64(i) * 1_000_000, originalLength: p.count)
        }
        return (c.write(name), real, captured)
    }

    @Test func greRecordsOfTruncatedPacketsSayTheirRealLength() throws {
        let (input, real, captured) = Self.capture("snaplen-records.pcap")
        let output = temporaryPath("snaplen-out.pcap")
        defer {
            removeFile(input)
            removeFile(output)
        }
        _ = try replay(input, backends: 3, out: output)
        let (packets, error) = readAll(try CaptureReader(paths: [output]))
        #expect(error == nil)
        #expect(packets.count == 12)
        for p in packets {
            #expect(p.bytes.count == captured + 24, "caplen: the captured bytes and the outer headers")
            #expect(p.originalLength == real + 24, "original: the real inner packet and the outer headers")
            #expect(Int(p.bytes[2]) << 8 | Int(p.bytes[3]) == real + 24, "outer IPv4 total length")
            var sum: UInt32 = 0
            for i in stride(from: 0, to: 20, by: 2) { sum += UInt32(p.bytes[i]) << 8 | UInt32(p.bytes[i + 1]) }
            while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
            #expect(sum == 0xFFFF, "outer IPv4 header checksum")
        }
    }

    @Test(.tsharkInstalled) func tsharkReadsTheOutputAsCleanlyAsTheInput() throws {
        let tshark = try tsharkExecutable()
        let (input, _, _) = Self.capture("snaplen-tshark-in.pcap")
        let output = temporaryPath("snaplen-tshark.pcap")
        defer {
            removeFile(input)
            removeFile(output)
        }
        _ = try replay(input, backends: 3, out: output)
        func problems(_ path: String) throws -> String {
            try #require(
                shellOutput(
                    "\(tshark) -r \(path) -o ip.check_checksum:TRUE -Y '_ws.malformed || _ws.expert.severity == \"error\" "
                        + "|| ip.checksum.status == 0' -T fields -e frame.number 2>/dev/null"))
        }
        let before = try problems(input)
        let after = try problems(output)
        #expect(before.isEmpty)
        #expect(after.isEmpty, "frames tshark finds malformed: \(after)")
    }
}

/// Breaks are charged to their cause: a connection on a removed backend that stays silent past
/// a later forwarder change breaks because of the removal, not the forwarder change (which, with
/// an unchanged backend set, breaks nothing).
@Suite struct BreakAttributionTests {
    @Test func aSilentConnectionOfARemovedBackendIsChargedToTheRemoval() throws {
        let report = try replay(
            tcp1k, backends: 10, events: ["50%:remove:backend-3", "75%:forwarders=3"], forwarders: 4)
        #expect(report.events.count == 2)
        #expect(report.events[1].broken == 0, "a forwarder change with the backend set unchanged broke \(report.events[1].broken)")
        #expect(report.events[0].broken == report.events[0].brokenUnavoidable)
        // Everything that broke was on backend-3: all of it is the removal's.
        #expect(report.events[0].broken >= 60)
    }

    /// 40 connections (SYN, ACK) in the first 140 ms; each sends once more at 1.55 s + i * 0.1 s.
    /// backend-0 is removed at 1 s and a second forwarder joins at 3 s: each of backend-0's
    /// connections breaks at its third packet, charged to the removal, and those after 3 s show
    /// only after the forwarder change.
    @Test func theReportSaysWhenEachBreakBecameVisible() throws {
        let t0 = HostileCaptureTests.t0
        var capture = CraftedCapture()
        let connections = 40
        func port(_ i: Int) -> UInt16 { UInt16(30_000 + i) }
        func lateNs(_ i: Int) -> UInt64 { 1_550_000_000 + UInt64(i) * 100_000_000 }
        for i in 0..<connections { capture.add(ipv4TCP(sourcePort: port(i), flags: TCPFlags.syn), at: t0 + UInt64(i) * 1_000_000) }
        for i in 0..<connections {
            capture.add(ipv4TCP(sourcePort: port(i), flags: TCPFlags.ack), at: t0 + 100_000_000 + UInt64(i) * 1_000_000)
        }
        for i in 0..<connections {
            capture.add(ipv4TCP(sourcePort: port(i), flags: TCPFlags.ack, payload: 10), at: t0 + lateNs(i))
        }
        let path = capture.write("visible.pcap")
        let csv = temporaryPath("visible.csv")
        defer {
            removeFile(path)
            removeFile(csv)
        }
        let report = try replay(path, backends: 4, events: ["1s:remove:backend-0", "3s:forwarders=2"], decisions: csv)

        // Which connections backend-0 had, from their SYNs' decisions; their breaks show at
        // their third packet.
        let rows = readDecisions(csv)
        let onRemoved = (0..<connections).filter { i in
            rows.first { $0.sport == String(port(i)) }?.backend == "backend-0"
        }
        let expected = onRemoved.map { Double(lateNs($0)) / 1e9 }.sorted()
        try #require(expected.contains { $0 < 3 } && expected.contains { $0 > 3 }, "breaks before and after 3 s: \(expected)")

        let removal = report.events[0]
        #expect(removal.broken == onRemoved.count)
        #expect(removal.brokenUnavoidable == onRemoved.count)
        let v = try #require(removal.brokenVisible)
        #expect(abs(v.firstSeconds - expected[0]) < 1e-9)
        #expect(abs(v.medianSeconds - expected[(expected.count - 1) / 2]) < 1e-9)
        #expect(abs(v.lastSeconds - expected[expected.count - 1]) < 1e-9)
        #expect(v.afterLaterEvent == expected.filter { $0 > 3 }.count)
        // The forwarder change broke nothing of its own here, or only what it is charged.
        #expect((report.events[1].brokenVisible == nil) == (report.events[1].broken == 0))
        #expect(report.events[1].brokenVisible?.afterLaterEvent ?? 0 == 0)

        let json = try ParsedJSON.parse(ReportRenderer.render(report, as: .json))
        let event = try #require(json["events"]?[0])
        #expect(event["broken_visible_first_seconds"]?.numberText == ReportFormatting.fixed(expected[0], 6))
        #expect(event["broken_visible_last_seconds"]?.numberText == ReportFormatting.fixed(expected[expected.count - 1], 6))
        #expect(event["broken_visible_median_seconds"] != nil)
        #expect(event["broken_visible_after_later_event"]?.int == v.afterLaterEvent)
        let text = ReportRenderer.render(report, as: .text)
        #expect(text.contains("When breaks became visible"))
        #expect(text.contains(ReportFormatting.fixed(expected[expected.count - 1], 3)))
        let html = ReportRenderer.render(report, as: .html)
        #expect(html.contains("<h3>When breaks became visible</h3>"))
    }
}
