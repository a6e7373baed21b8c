import ArgumentParser
import Foundation
import MaglevConfig
import MaglevControl
import MaglevCore
import Testing

@testable import MaglevCLI
@testable import MaglevReplay

/// `maglev which`, `maglev diff` and `maglev replay --event AT:config=FILE` from the command line.
@Suite struct WhatIfCommandTests {
    static let repo = ReplayCommandTests.repo
    static let example = repo + "/Traces/configs/example.yaml"

    static func temporary(_ name: String) -> String { NSTemporaryDirectory() + "maglev-whatif-cli-\(getpid())-\(name)" }

    /// Writes a copy of example.yaml with `edit` applied to its text.
    static func variant(_ name: String, _ edit: (String) -> String) throws -> String {
        let text = try String(contentsOfFile: example, encoding: .utf8)
        let path = temporary(name)
        try edit(text).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func withWeb5(_ s: String) -> String {
        s.replacingOccurrences(
            of: "    - { name: web-3, address: 198.18.1.3 }\n",
            with: "    - { name: web-3, address: 198.18.1.3 }\n    - { name: web-5, address: 198.18.1.5 }\n")
    }

    /// `which` answers with the data plane's code: for every forwarded packet of both sample
    /// traces, replayed with the same config and 3 forwarders, the VIP, backend and forwarder it
    /// names are those of `maglev replay --decisions`.
    @Test(arguments: ["tcp-1k.pcap", "mixed-small.pcap"])
    func whichAgreesWithReplayDecisions(trace: String) throws {
        let csv = Self.temporary("\(trace).csv")
        let report = Self.temporary("\(trace).json")
        defer {
            try? FileManager.default.removeItem(atPath: csv)
            try? FileManager.default.removeItem(atPath: report)
        }
        try ReplayCommand.parse([
            Self.repo + "/Traces/" + trace, "--config", Self.example, "--forwarders", "3", "--decisions", csv, "--report", report,
        ]).run()
        let snapshot = try ForwardingSnapshot(config: DesiredState(file: MaglevConfigFile.load(path: Self.example)).dataplaneConfig)
        let lines = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").dropFirst()
        // Fragments follow their 3-tuple (ports 0 on later fragments, and on the first one for
        // the hash), and ICMP errors the flow they quote: `which` answers for a flow's own
        // unfragmented packets, so 3-tuples seen fragmented are left out.
        var fragmented = Set<String>()
        for line in lines {
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            if f[10] == "forward" && (f[5] == "0" || (f[4] != "6" && f[4] != "17")) { fragmented.insert("\(f[2]) \(f[3]) \(f[4])") }
        }
        var compared = 0
        var flows = Set<String>()
        for line in lines {
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard f[10] == "forward", f[4] == "6" || f[4] == "17", !fragmented.contains("\(f[2]) \(f[3]) \(f[4])") else {
                continue
            }
            func end(_ a: String, _ p: String) -> String { a.contains(":") ? "[\(a)]:\(p)" : "\(a):\(p)" }
            let flow = "\(f[4]):\(end(f[2], f[5]))-\(end(f[3], f[6]))"
            let key = try WhichCommand.parseFlow(flow)
            let route = try #require(snapshot.route(key), "\(flow)")
            #expect(snapshot.config.vips[route.vip].name == f[7], "\(flow)")
            #expect(route.backend.map { snapshot.backendNames[$0] } == f[9], "\(flow) packet \(f[0])")
            // ICMP errors about a flow carry its 5-tuple but reach a forwarder by their own
            // header (router to VIP): the flow's forwarder is that of its first packet.
            if flows.insert(flow).inserted {
                #expect(ReplayEngine.forwarder(of: key, forwarders: 3) == Int(f[8]), "\(flow) packet \(f[0])")
            }
            compared += 1
        }
        #expect(flows.count >= (trace == "tcp-1k.pcap" ? 1000 : 150), "\(flows.count) flows compared")
        #expect(compared > 0)
    }

    @Test func whichParsesFlowsAndSaysWhatIsWrong() throws {
        let v4 = try WhichCommand.parseFlow("tcp:198.51.100.7:34567-198.19.0.10:80")
        #expect(v4.proto == 6 && v4.sourcePort == 34567 && v4.destinationPort == 80 && v4.destination == IPAddress("198.19.0.10"))
        let v6 = try WhichCommand.parseFlow("udp:[2001:db8::7]:34567-[2001:db8:100::10]:53")
        #expect(v6.proto == 17 && v6.source == IPAddress("2001:db8::7") && v6.destinationPort == 53)
        for (bad, says) in [
            ("tcp:2001:db8::7:1-[2001:db8::1]:2", "put an IPv6 address in brackets"),
            ("icmpx:1.2.3.4:1-5.6.7.8:2", "protocol 'icmpx'"),
            ("tcp:1.2.3.4:99999-5.6.7.8:2", "port '99999'"),
            ("tcp:1.2.3.4:1", "expected PROTO:SRC:SPORT-DST:DPORT"),
            ("tcp:1.2.3.4:1-[2001:db8::1]:2", "different families"),
        ] {
            #expect(throws: WhichCommand.FlowError.self) { try WhichCommand.parseFlow(bad) }
            do { _ = try WhichCommand.parseFlow(bad) } catch { #expect(error.description.contains(says), "\(error)") }
        }
        // No VIP matches: exit 1 (after printing the answer).
        #expect(throws: ExitCode(1)) {
            try WhichCommand.parse(["--config", Self.example, "--flow", "tcp:1.2.3.4:1-10.0.0.1:80"]).run()
        }
    }

    @Test func diffExitsThreeWhenMoreThanNWouldBreak() throws {
        let seed = try Self.variant("seed.yaml") { $0.replacingOccurrences(of: "\nhash_seed: 0\n", with: "\nhash_seed: 7\n") }
        defer { try? FileManager.default.removeItem(atPath: seed) }
        let tcp1k = Self.repo + "/Traces/tcp-1k.pcap"
        #expect(throws: ExitCode(3)) {
            try DiffCommand.parse([Self.example, seed, "--trace", tcp1k, "--at", "50%", "--fail-if-broken", "10", "--format", "json"]).run()
        }
        try DiffCommand.parse([Self.example, seed, "--trace", tcp1k, "--at", "50%", "--fail-if-broken", "100000"]).run()
        var diff = try ConfigDiff(old: MaglevConfigFile.load(path: Self.example), new: MaglevConfigFile.load(path: seed))
        #expect(diff.disruptive == ["hash_seed changes from 0 to 7"])
        try diff.addTrace(inputs: [tcp1k], old: MaglevConfigFile.load(path: Self.example), new: MaglevConfigFile.load(path: seed), at: "50%")
        #expect((diff.trace?.connectionsBroken ?? 0) > 10)
        #expect(DiffReport.text(diff).contains("DISRUPTIVE: hash_seed changes from 0 to 7"))
    }

    @Test func diffReportsBackendsAddedPerVIP() throws {
        let b = try Self.variant("b.yaml", Self.withWeb5)
        defer { try? FileManager.default.removeItem(atPath: b) }
        let diff = try ConfigDiff(old: MaglevConfigFile.load(path: Self.example), new: MaglevConfigFile.load(path: b))
        let web = try #require(diff.vips.first { $0.name == "web" })
        #expect(web.status == "changed" && web.backendsAdded == ["web-5"] && web.backendsRemoved.isEmpty)
        #expect((web.slotsChangedAll ?? 0) > 0.1 && web.slotsChangedAll == web.slotsChangedExtra)
        #expect(diff.vips.first { $0.name == "dns" }?.status == "unchanged")
        #expect(diff.disruptive.isEmpty)
    }

    @Test func diffAndReplayNameABrokenFile() throws {
        let broken = Self.temporary("broken.yaml")
        try "vips:\n  - name: web\n    address: not-an-address\n".write(toFile: broken, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: broken) }
        do {
            try DiffCommand.parse([Self.example, broken]).run()
            Issue.record("a broken NEW was accepted")
        } catch {
            #expect("\(error)".contains(broken + ":"), "\(error)")
        }
        do {
            try ReplayCommand.parse([
                Self.repo + "/Traces/tcp-1k.pcap", "--config", Self.example, "--event", "50%:config=\(broken)",
            ]).run()
            Issue.record("a broken config event was accepted")
        } catch {
            #expect("\(error)".hasPrefix("event '50%:config=\(broken)': \(broken) is not a config"), "\(error)")
        }
        #expect(throws: (any Error).self) { try DiffCommand.parse([Self.example, Self.example, "--fail-if-broken", "0"]).run() }
    }

    /// The contract's replay: the config event is reported like any other (JSON).
    @Test func replayReportsAConfigEventLikeAnyOther() throws {
        let b = try Self.variant("b2.yaml", Self.withWeb5)
        let report = Self.temporary("config-event.json")
        defer {
            try? FileManager.default.removeItem(atPath: b)
            try? FileManager.default.removeItem(atPath: report)
        }
        try ReplayCommand.parse([
            Self.repo + "/Traces/tcp-1k.pcap", "--config", Self.example, "--event", "50%:config=\(b)", "--report", report,
        ]).run()
        let json = try String(contentsOfFile: report, encoding: .utf8)
        #expect(json.contains("\"action\": \"config\""))
        #expect(json.contains("\"target\": \"\(b)\""))
        #expect(json.contains("\"by_vip\""))
        #expect(json.contains("\"connections_alive\": 753"))
    }

    @Test func newCommandsHaveHelpWithExamples() {
        for help in [DiffCommand.helpMessage(), WhichCommand.helpMessage()] {
            #expect(help.contains("Examples:"))
        }
        #expect(ReplayCommand.helpMessage().contains("config=FILE"))
    }
}
