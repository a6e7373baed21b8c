import ArgumentParser
import CAllocationCounter
import MaglevCore

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the data plane in memory: per-packet cost, table builds, memory.",
        discussion: """
            Runs the very Dataplane the forwarder runs, on synthetic frames held in memory (no
            I/O), on one thread. Build with -c release for figures worth recording
            (docs/benchmarks.md lists them with the command and machine).

              established flows ("hit"): parse, connection-table hit, GRE encapsulation
              new flows ("miss"):        parse, connection-table miss, Maglev lookup, insert,
                                         GRE encapsulation; every packet is a flow never seen
              table builds:              Maglev M = 65537 and M = 655373, N = 1000 backends

            Examples:
              maglev bench
              maglev bench --format json
              maglev bench --flows 1000000 --connections 2097152 --seconds 3
              maglev bench --ipv6-share 0.5 --payload 64
            """)

    @Option(help: "Distinct established flows cycled through by the hit benchmark.")
    var flows = 500_000

    @Option(help: "Connection-table capacity, entries (rounded up to a power of two).")
    var connections = 1 << 20

    @Option(help: "Backends in the VIP's pool.")
    var backends = 100

    @Option(help: "Share of IPv6 flows, 0 to 1.")
    var ipv6Share = 0.0

    @Option(help: "TCP payload bytes per packet (0 to 100).")
    var payload = 0

    @Option(help: "Seconds per packet benchmark.")
    var seconds = 1.0

    @Flag(name: .customLong("huge-pages"), inversion: .prefixedNo, help: "Back the connection table with transparent huge pages.")
    var hugePages = true

    @Option(help: "Output format: text or json.")
    var format: OutputFormat = .text

    func run() throws {
        guard flows >= 1, flows <= 20_000_000 else { throw CLIError("--flows must be between 1 and 20000000") }
        guard connections >= 8 else { throw CLIError("--connections must be at least 8") }
        guard backends >= 1, backends <= 65_000 else { throw CLIError("--backends must be between 1 and 65000") }
        guard (0...1).contains(ipv6Share) else { throw CLIError("--ipv6-share must be between 0 and 1") }
        guard (0...100).contains(payload) else { throw CLIError("--payload must be between 0 and 100") }
        guard seconds > 0, seconds <= 600 else { throw CLIError("--seconds must be between 0 and 600") }

        let results = try DataplaneBench(
            flows: flows, connections: connections, backends: backends, ipv6Share: ipv6Share,
            payload: payload, seconds: seconds, hugePages: hugePages
        ).run(progress: format == .text)
        print(format == .json ? results.json.render() : results.text)
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}
