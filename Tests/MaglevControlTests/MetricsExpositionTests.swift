import Foundation
import Testing

@testable import MaglevControl

/// Every family `maglev forward` exports, in `MaglevMetrics` order (kept complete by
/// `everyFamilyIsListed`, which reads the registry's source).
let allFamilies: [MetricFamily] = [
    MaglevMetrics.vipPackets, MaglevMetrics.vipBytes, MaglevMetrics.vipUsable, MaglevMetrics.vipFailOpen,
    MaglevMetrics.backendPackets, MaglevMetrics.backendBytes, MaglevMetrics.pairCountersEnabled,
    MaglevMetrics.backendUp, MaglevMetrics.backendTakesNew, MaglevMetrics.backendConnections, MaglevMetrics.drops,
    MaglevMetrics.connectionEntries, MaglevMetrics.connectionCapacity, MaglevMetrics.connectionEvictions,
    MaglevMetrics.connectionInsertsRefused, MaglevMetrics.healthChecks, MaglevMetrics.healthTransitions,
    MaglevMetrics.configReloads, MaglevMetrics.configGeneration, MaglevMetrics.kernelDrops,
    MaglevMetrics.workerPackets, MaglevMetrics.sendErrors, MaglevMetrics.bgpSessionUp,
    MaglevMetrics.bgpAnnouncedRoutes, MaglevMetrics.bgpUpdatesSent, MaglevMetrics.bgpAnnouncing,
    MaglevMetrics.tracedPackets, MaglevMetrics.traceReports, MaglevMetrics.fragments, MaglevMetrics.workerUp,
]

/// Runs `promtool check metrics` on `text`; returns its exit status and output.
func promtoolCheck(_ text: String) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/promtool")
    process.arguments = ["check", "metrics"]
    let input = Pipe()
    let output = Pipe()
    process.standardInput = input
    process.standardOutput = output
    process.standardError = output
    try process.run()
    // Write and read concurrently so neither side can fill a pipe and block the other.
    let writer = Thread {
        input.fileHandleForWriting.write(Data(text.utf8))
        try? input.fileHandleForWriting.close()
    }
    writer.start()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

let promtoolPresent = FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool")

@Suite struct MetricsExpositionTests {
    /// An exposition with two samples of every family, label values full of characters that
    /// need escaping.
    static func everyFamily() -> MetricsExposition {
        var m = MetricsExposition()
        let awkward = ["plain", "quote \"q\"", "back\\slash", "new\nline", "all \\\"\n\\n", "ünïcødé ✓", ""]
        for (i, family) in allFamilies.enumerated() {
            for j in 0..<2 {
                let labels = family.labels.enumerated().map { k, _ in "\(awkward[(i + j + k) % awkward.count])-\(j)" }
                if family.labels.isEmpty && j == 1 { continue }  // one sample per label set
                m.add(family, labels, UInt64(i * 10 + j))
            }
        }
        return m
    }

    @Test func namesAreUniqueAndWellFormed() {
        let names = allFamilies.map(\.name)
        #expect(Set(names).count == names.count)
        for f in allFamilies {
            #expect(f.name.hasPrefix("maglev_"), "\(f.name)")
            #expect(f.name.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") }, "\(f.name)")
            #expect(!f.help.isEmpty, "\(f.name)")
            #expect(Set(f.labels).count == f.labels.count, "\(f.name)")
            #expect(f.labels.allSatisfy { !$0.hasPrefix("__") && !$0.isEmpty }, "\(f.name)")
            // Counters end in _total, and only counters do.
            #expect((f.kind == .counter) == f.name.hasSuffix("_total"), "\(f.name) is a \(f.kind)")
        }
    }

    @Test func everyFamilyIsListed() throws {
        let source = try String(
            contentsOfFile: repositoryRoot + "/Sources/MaglevControl/Metrics/MetricFamily.swift", encoding: .utf8)
        let declared = source.matches(of: /"(maglev_[a-z0-9_]+)"/).map { String($0.1) }
        #expect(declared.count == allFamilies.count)
        #expect(Set(declared) == Set(allFamilies.map(\.name)))
    }

    @Test func textFormat() {
        let generation = MetricFamily("t_generation", .gauge, "A gauge.")
        let packets = MetricFamily("t_packets_total", .counter, "A counter.", labels: ["vip"])
        let usable = MetricFamily("t_usable", .gauge, "Another gauge.", labels: ["vip", "pool"])
        var m = MetricsExposition()
        m.add(generation, [], UInt64(3))
        m.add(packets, ["web"], UInt64(12))
        m.add(usable, ["web", "p"], true)
        m.add(packets, ["a\"b\\c\nd"], UInt64(1))
        m.add(usable, ["dns", "q"], false)
        // Each family once (HELP, TYPE), its samples together in the order added, families in
        // the order first added.
        #expect(
            m.text == """
                # HELP t_generation A gauge.
                # TYPE t_generation gauge
                t_generation 3
                # HELP t_packets_total A counter.
                # TYPE t_packets_total counter
                t_packets_total{vip="web"} 12
                t_packets_total{vip="a\\"b\\\\c\\nd"} 1
                # HELP t_usable Another gauge.
                # TYPE t_usable gauge
                t_usable{vip="web",pool="p"} 1
                t_usable{vip="dns",pool="q"} 0

                """)
        #expect(MetricsExposition().text == "")
    }

    @Test func helpTextIsEscaped() {
        var m = MetricsExposition()
        m.add(MetricFamily("x_total", .counter, "back\\slash and\nnewline \"quoted\""), [], 1.0)
        #expect(m.text.hasPrefix("# HELP x_total back\\\\slash and\\nnewline \"quoted\"\n# TYPE x_total counter\n"))
    }

    @Test(arguments: [
        (0.0, "0"), (1.0, "1"), (-3.0, "-3"), (18_446_744_073_709_551_615.0, "1.8446744073709552e+19"),
        (0.5, "0.5"), (Double.nan, "NaN"), (Double.infinity, "+Inf"), (-Double.infinity, "-Inf"), (1e15, "1000000000000000.0"),
        (999_999_999_999_999.0, "999999999999999"),
    ])
    func numbers(value: Double, text: String) {
        #expect(MetricsExposition.number(value) == text)
    }

    @Test(.enabled(if: promtoolPresent, "promtool is not installed at /usr/bin/promtool (Debian: apt-get install prometheus)"))
    func everyFamilyPassesPromtool() throws {
        let text = Self.everyFamily().text
        for f in allFamilies { #expect(text.contains("# TYPE \(f.name) \(f.kind.rawValue)\n")) }
        let (status, output) = try promtoolCheck(text)
        #expect(status == 0, "promtool check metrics exited \(status):\n\(output)\n--- input ---\n\(text)")
    }

    @Test(.enabled(if: promtoolPresent, "promtool is not installed at /usr/bin/promtool (Debian: apt-get install prometheus)"))
    func promtoolCatchesABrokenExposition() throws {
        // The check itself works: a counter without _total and a broken line are refused.
        #expect(try promtoolCheck("# HELP a_b x\n# TYPE a_b counter\na_b 1\n").status != 0)
        #expect(try promtoolCheck("a{b=\"c} 1\n").status != 0)
    }

    @Test(.enabled(if: promtoolPresent, "promtool is not installed at /usr/bin/promtool (Debian: apt-get install prometheus)"))
    func specialValuesPassPromtool() throws {
        var m = MetricsExposition()
        m.add(MaglevMetrics.backendConnections, ["nan"], Double.nan)
        m.add(MaglevMetrics.backendConnections, ["inf"], Double.infinity)
        m.add(MaglevMetrics.backendConnections, ["big"], UInt64.max)
        m.add(MaglevMetrics.backendConnections, ["half"], 0.5)
        let (status, output) = try promtoolCheck(m.text)
        #expect(status == 0, "\(output)\n\(m.text)")
    }
}
