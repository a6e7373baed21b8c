import Foundation
import Testing

@testable import MaglevCLI

/// `maglev table`: in process for output, and as the built binary for exit codes and stderr.
@Suite struct TableCommandTests {
    static let envoyHosts = (90...95).flatMap { ["--backend", "127.0.0.1:\($0)"] }

    static func report(_ arguments: [String]) throws -> String {
        let command = try TableCommand.parse(arguments)
        return try command.report()
    }

    @Test func envoyTableAsJSON() throws {
        let out = try Self.report(["--size", "7"] + Self.envoyHosts + ["--dump", "--format", "json"])
        #expect(out.hasPrefix("{\n  \"algorithm\": \"maglev\",\n  \"size\": 7,\n  \"backends\": ["))
        #expect(out.contains("\"table\": [2, 4, 0, 1, 5, 0, 3]"))
        #expect(out.contains("\"name\": \"127.0.0.1:90\",\n      \"weight\": 1,\n      \"slots\": 2"))
        #expect(out.contains("\"build_seconds\": "))
        #expect(out.contains("\"max_over_mean\": 1.714286"))
        // The JSON is one parseable object.
        let parsed = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
        #expect((parsed?["backends"] as? [Any])?.count == 6)
    }

    @Test func weightsSplitAtTheLastEquals() throws {
        #expect(try TableCommand.parseBackend("a=b=3") == .init(name: "a=b", weight: 3))
        #expect(try TableCommand.parseBackend("10.0.0.1:80") == .init(name: "10.0.0.1:80", weight: 1))
        #expect(try TableCommand.parseBackend("x=0") == .init(name: "x", weight: 0))
        for bad in ["x=-1", "x=", "x=1.5", "x=4294967296", "x=+2"] {
            #expect(throws: CLIError.self) { try TableCommand.parseBackend(bad) }
        }
        let out = try Self.report(["--backend", "a=1", "--backend", "b=2", "--backend", "c=0", "--format", "json"])
        #expect(out.contains("\"name\": \"a\",\n      \"weight\": 1,\n      \"slots\": 21846"))
        #expect(out.contains("\"name\": \"b\",\n      \"weight\": 2,\n      \"slots\": 43691"))
        #expect(out.contains("\"name\": \"c\",\n      \"weight\": 0,\n      \"slots\": 0"))
    }

    @Test func generatedAndExplicitBackendsCombine() throws {
        let out = try Self.report(["--backends", "3", "--backend", "extra", "--size", "101", "--format", "json"])
        for name in ["backend-0", "backend-1", "backend-2", "extra"] { #expect(out.contains("\"name\": \"\(name)\"")) }
    }

    @Test func disruptionAndComparison() throws {
        let out = try Self.report([
            "--backends", "100", "--size", "16381", "--remove", "2", "--trials", "3", "--seed", "7", "--compare",
            "--ring-views", "100", "--format", "json",
        ])
        #expect(out.contains("\"disruption\": {\n    \"removed\": 2,\n    \"trials\": 3,"))
        for key in ["\"maglev\": {", "\"ring\": {", "\"rendezvous\": {", "\"modulo\": {", "\"changed_all\"", "\"changed_extra\""] {
            #expect(out.contains(key), "missing \(key)")
        }
        let parsed = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
        let algorithms = parsed?["algorithms"] as? [String: [String: Any]]
        #expect(algorithms?.keys.sorted() == ["maglev", "modulo", "rendezvous", "ring"])
        let moduloAll = algorithms?["modulo"]?["changed_all"] as? Double ?? 0
        #expect(moduloAll > 0.9)
        // Same seed, same answer.
        let again = try Self.report([
            "--backends", "100", "--size", "16381", "--remove", "2", "--trials", "3", "--seed", "7", "--compare",
            "--ring-views", "100", "--format", "json",
        ])
        let strip = { (s: String) in s.split(separator: "\n").filter { !$0.contains("build_seconds") } }
        #expect(strip(out) == strip(again))
    }

    @Test func textIsCompactAndFitsOneHundredColumns() throws {
        let out = try Self.report(["--backends", "1000", "--size", "65537", "--remove", "1", "--compare", "--ring-views", "10"])
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.allSatisfy { $0.count <= 100 })
        #expect(lines.count < 60)
        #expect(out.contains("\u{2026} 980 more"))
        #expect(out.contains("max/mean           1.0071"))
        #expect(out.contains("changed, all slots"))
        #expect(out.contains("rendezvous"))
        let long = try Self.report(["--backend", String(repeating: "n", count: 300), "--size", "7", "--dump"])
        #expect(long.split(separator: "\n").allSatisfy { $0.count <= 100 })
    }

    @Test(arguments: [
        (["--backends", "3", "--size", "65536"], "not prime"),
        (["--size", "7"], "no backends"),
        (["--backend", "a", "--backend", "a"], "more than once"),
        (["--backend", "a=-1"], "invalid weight"),
        (["--backend", "a=0", "--backend", "b=0"], "weight 0"),
        (["--backends", "3", "--remove", "3"], "--remove 3"),
        (["--backends", "3", "--trials", "5"], "--trials needs --remove"),
        (["--backends", "3", "--algorithm", "nope"], "unknown --algorithm"),
        (["--backends", "3", "--format", "xml"], "unknown --format"),
        (["--backends", "10", "--size", "7"], "smaller than the number of backends"),
    ])
    func invalidArgumentsGiveOneLine(arguments: [String], fragment: String) throws {
        let command = try TableCommand.parse(arguments)
        do {
            _ = try command.report()
            Issue.record("expected an error for \(arguments)")
        } catch {
            #expect(error.description.contains(fragment), "\(error.description)")
            #expect(!error.description.contains("\n"))
        }
    }

    @Test func helpHasAbstractExamplesAndOptionHelp() {
        let help = TableCommand.helpMessage()
        #expect(help.contains("Build a Maglev lookup table"))
        #expect(help.contains("Examples:"))
        for option in ["--size", "--backend <name[=weight]>", "--backends <n>", "--algorithm", "--ring-views", "--seed",
            "--remove <k>", "--trials <n>", "--compare", "--dump", "--format"]
        {
            #expect(help.contains(option), "help lacks \(option)")
        }
    }

    // MARK: The built binary

    /// `maglev` next to the test bundle in the build folder these tests run from.
    static func binary() throws -> URL {
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var folder = exe.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = folder.appendingPathComponent("maglev")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            folder = folder.deletingLastPathComponent()
        }
        throw CLIError("maglev binary not found near \(exe.path); run `swift build` before `swift test`")
    }

    static func runBinary(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = try binary()
        process.arguments = ["table"] + arguments
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

    @Test func binaryPrintsJSONAndExitsZero() throws {
        let result = try Self.runBinary(["--size", "7"] + Self.envoyHosts + ["--dump", "--format", "json"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("\"table\": [2, 4, 0, 1, 5, 0, 3]"))
        #expect(result.stderr.isEmpty)
    }

    @Test func binaryFailsWithOneLine() throws {
        let result = try Self.runBinary(["--backends", "3", "--size", "100"])
        #expect(result.status != 0)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(result.stderr)")
        #expect(lines.first?.contains("table size 100 is not prime") == true)
        #expect(result.stdout.isEmpty)
    }
}
