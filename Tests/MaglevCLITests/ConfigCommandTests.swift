import Foundation
import MaglevConfig
import Testing

@testable import MaglevCLI

/// `maglev config check`: in process for the summary and the problems, and as the built binary
/// for exit codes and output streams.
@Suite struct ConfigCommandTests {
    static let root: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }()
    static let example = root + "/Traces/configs/example.yaml"
    static let catchAll = root + "/Traces/configs/catch-all.yaml"

    static func temporaryFile(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "maglev-config-\(UUID().uuidString).yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static let broken = """
        table_size: 65536
        vips:
          - name: web
            address: 198.19.0.10
            port: 80
            backends: [{ name: a, address: 198.18.1.1, weight: -1 }]
        """

    /// With `fragments: redirect` the summary names the group and the hold.
    @Test func summaryNamesTheForwarderGroup() throws {
        let path = NSTemporaryDirectory() + "maglev-config-group-\(getpid()).yaml"
        defer { unlink(path) }
        try """
            encap: {source_ipv4: 198.18.1.11}
            fragments: redirect
            forwarders:
              - {name: fwd1, address: 198.18.1.11}
              - {name: fwd2, address: 198.18.1.12}
            fragment_hold: {packets: 32, timeout: 500ms}
            vips:
              - {name: dns4, address: 198.19.0.11, protocol: udp, port: 53, backends: [{name: b1, address: 198.18.1.101}]}

            """.write(toFile: path, atomically: true, encoding: .utf8)
        let summary = try ConfigCommand.Check.check(path).get()
        #expect(summary.contains("fragments redirect\n"), "\(summary)")
        #expect(
            summary.contains("forwarder group: fwd1 198.18.1.11, fwd2 198.18.1.12; hold 32 fragments per worker for 500 ms"),
            "\(summary)")
    }

    @Test func summaryOfTheExample() throws {
        let summary = try ConfigCommand.Check.check(Self.example).get()
        #expect(summary.hasPrefix("\(Self.example): OK\n"))
        #expect(summary.contains("3 VIPs, 9 backends (8 active, 1 draining)"))
        #expect(summary.contains("table: maglev, size 65537, hash seed 0"))
        #expect(summary.contains("vip web   198.19.0.10 tcp/80: 4 backends, 3 taking new connections"))
        #expect(summary.contains("vip dns   198.19.0.11 udp/53: 2 backends"))
        #expect(summary.contains("vip web6  2001:db8:100::10 tcp/443: 3 backends, 2 taking new connections"))
        #expect(summary.split(separator: "\n").allSatisfy { $0.count <= 100 })
        let all = try ConfigCommand.Check.check(Self.catchAll).get()
        #expect(all.contains("vip any-ipv4  0.0.0.0/0: 8 backends"))
        #expect(all.contains("vip any-ipv6  ::/0: 8 backends"))
    }

    @Test func problemsOfABrokenFile() throws {
        let path = try Self.temporaryFile(Self.broken)
        defer { try? FileManager.default.removeItem(atPath: path) }
        guard case .failure(let error) = ConfigCommand.Check.check(path) else {
            Issue.record("expected problems")
            return
        }
        #expect(
            error.problems.map(\.description) == [
                "\(path):1:13: table_size: table size 65536 is not prime; Maglev needs a prime size, e.g. 65537",
                "\(path):5:11: vips[0].port: a port needs a protocol: add protocol: tcp, udp or sctp",
                "\(path):6:36: encap.source_ipv4: missing: backend 'a' (line 6) is IPv4, so this forwarder's "
                    + "IPv4 address is needed as the encapsulation source",
                "\(path):6:56: vips[0].backends[0].weight: expected a non-negative integer below 2^32, got -1: "
                    + "negative values are not allowed",
            ])
    }

    @Test func helpExplainsTheFormat() {
        let help = ConfigCommand.Check.helpMessage()
        #expect(help.contains("FILE:LINE:COLUMN: FIELD: message"))
        #expect(ConfigCommand.helpMessage().contains("check"))
    }

    // MARK: The built binary

    /// Whether the built `maglev` has the `config` subcommand (MaglevCommand registers it).
    static let binaryHasConfig: Bool = {
        guard let result = try? runBinary(["--help"]) else { return false }
        return result.stdout.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces).hasPrefix("config ") }
    }()

    static func runBinary(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = try TableCommandTests.binary()
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }

    @Test(.enabled(if: binaryHasConfig, "maglev has no `config` subcommand yet (registered in MaglevCommand.swift)"))
    func binaryChecksTheExampleAndExitsZero() throws {
        for path in ["Traces/configs/example.yaml", "Traces/configs/catch-all.yaml"] {
            let result = try Self.runBinary(["config", "check", Self.root + "/" + path])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains(": OK\n"))
            #expect(result.stderr.isEmpty)
        }
    }

    @Test(.enabled(if: binaryHasConfig, "maglev has no `config` subcommand yet (registered in MaglevCommand.swift)"))
    func binaryPrintsEveryProblemAndExitsOne() throws {
        let path = try Self.temporaryFile(Self.broken)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try Self.runBinary(["config", "check", path])
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        let lines = result.stderr.split(separator: "\n").map(String.init)
        #expect(lines.count == 5, "\(result.stderr)")
        #expect(lines.prefix(4).allSatisfy { $0.hasPrefix("\(path):") })
        #expect(lines.first == "\(path):1:13: table_size: table size 65536 is not prime; Maglev needs a prime size, e.g. 65537")
        #expect(lines.last == "Error: \(path): 4 problems found")

        let missing = try Self.runBinary(["config", "check", "/nonexistent/maglev.yaml"])
        #expect(missing.status == 1)
        #expect(missing.stderr.hasPrefix("/nonexistent/maglev.yaml:0:0: cannot read the config file: No such file or directory\n"))
    }
}
