import Foundation
import Testing

@testable import MaglevCLI

/// `maglev replay` in process: what it refuses, and how it fails.
@Suite struct ReplayCommandTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let tcp1k = repo + "/Traces/tcp-1k.pcap"

    static func run(_ arguments: [String]) -> String? {
        do {
            try ReplayCommand.parse(arguments).run()
            return nil
        } catch {
            return "\(error)"
        }
    }

    static func temporary(_ name: String) -> String {
        NSTemporaryDirectory() + "maglev-replay-cli-\(getpid())-\(name)"
    }

    /// Every output checks its writes and its close: a full disk (`/dev/full`, reached through
    /// a link whose name picks the report format) exits non-zero naming the file and the reason.
    @Test(arguments: ["--report", "--decisions", "--out"])
    func aFullDiskIsAnErrorNamingTheFile(option: String) throws {
        let full = Self.temporary("full\(option).json")
        let report = Self.temporary("r\(option).json")
        try? FileManager.default.removeItem(atPath: full)
        try FileManager.default.createSymbolicLink(atPath: full, withDestinationPath: "/dev/full")
        defer {
            try? FileManager.default.removeItem(atPath: full)
            try? FileManager.default.removeItem(atPath: report)
        }
        var arguments = [Self.tcp1k, "--backends", "4", option, full]
        if option != "--report" { arguments += ["--report", report] }
        let error = try #require(Self.run(arguments), "\(option) to a full disk succeeded")
        #expect(error.hasPrefix("\(full): could not write"), "\(error)")
        #expect(error.contains("No space left on device (errno 28)"), "\(error)")
        if option != "--report" {
            // The report is still written.
            #expect(FileManager.default.contents(atPath: report)?.isEmpty == false)
        }
    }

    /// `--shard` replays as a forwarder of that shard: an unknown shard is refused with the list
    /// of shards; `--shard` without `--config` too.
    @Test func aShardIsCheckedAgainstTheConfig() throws {
        let config = Self.temporary("shards.yaml")
        defer { unlink(config) }
        try """
            encap: { source_ipv4: 198.18.0.2 }
            pools:
              web: [{ name: a, address: 198.18.1.1 }]
            vips:
              - { name: blue, address: 198.19.0.10, pool: web, shard: blue }
              - { name: green, address: 0.0.0.0/0, pool: web, shard: green }

            """.write(toFile: config, atomically: true, encoding: .utf8)
        let report = Self.temporary("shard.json")
        defer { unlink(report) }
        #expect(Self.run([Self.tcp1k, "--config", config, "--shard", "blue", "--report", report]) == nil)
        let red = Self.run([Self.tcp1k, "--config", config, "--shard", "red"]) ?? ""
        #expect(red.contains("no VIP belongs to shard 'red'") && red.contains("blue, green"), "\(red)")
        let bare = Self.run([Self.tcp1k, "--backends", "3", "--shard", "blue"]) ?? ""
        #expect(bare.contains("--shard needs --config"), "\(bare)")
    }

    @Test func anUnknownEventTargetIsRefusedWithTheKnownNames() {
        let error = Self.run([Self.tcp1k, "--backends", "3", "--event", "50%:remove:backend-99"])
        #expect(
            error == "event '50%:remove:backend-99': no backend named 'backend-99'; known backends: "
                + "backend-0, backend-1, backend-2 (add:NAME introduces a new one)")
        let report = Self.temporary("add.json")
        defer { try? FileManager.default.removeItem(atPath: report) }
        #expect(Self.run([Self.tcp1k, "--backends", "3", "--event", "50%:add:backend-99", "--report", report]) == nil)
    }

    @Test func aReportFormatItDoesNotKnowIsRefusedWithTheList() {
        #expect(
            Self.run([Self.tcp1k, "--backends", "3", "--report", "r.xlsx"])
                == "--report r.xlsx: the extension picks the format; use one of .json, .txt, .md, .html, .csv"
                + " (.csv is the per-backend table)")
        let report = Self.temporary("backends.csv")
        defer { try? FileManager.default.removeItem(atPath: report) }
        #expect(Self.run([Self.tcp1k, "--backends", "3", "--report", report]) == nil)
        let text = String(decoding: FileManager.default.contents(atPath: report) ?? Data(), as: UTF8.self)
        #expect(text.hasPrefix("name,address,state,flows,connections,packets,bytes,flow_share,peak_connections\nbackend-0,"))
        #expect(text.split(separator: "\n").count == 4)
    }
}
