import ArgumentParser
import MaglevControl
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

            Allocations per packet are mallocs counted process-wide around the timed loops by
            libMaglevAllocationCounter.so, which `maglev` does not link (it would replace malloc
            in production): the bench runs itself again with the one beside the executable in
            LD_PRELOAD (`swift build [-c release] --product MaglevAllocationCounter` builds it).
            Without it, allocations are reported as not counted (JSON null).

            `maglev bench snapshots` measures the control side instead: a snapshot of 1000 VIPs
            x 10 backends at M = 65537 (vip-N, be-N-K) built from scratch, a reload that
            changes one VIP's backends (only that VIP's table is rebuilt; the others are
            shared), and the table storage per VIP. `maglev bench all` runs both.

            Examples:
              maglev bench
              maglev bench snapshots --format json
              maglev bench snapshots --vips 10000 --vip-backends 5 --table-size 4099
              maglev bench --format json
              maglev bench --flows 1000000 --connections 2097152 --seconds 3
              maglev bench --ipv6-share 0.5 --payload 64
            """)

    enum Measurement: String, ExpressibleByArgument, CaseIterable {
        case dataplane, snapshots, all
    }

    @Argument(help: "What to measure: dataplane (per-packet cost, table builds), snapshots (snapshot builds and reloads), or all.")
    var measurement: Measurement = .dataplane

    @Option(help: "snapshots: VIPs in the config.")
    var vips = 1000

    @Option(help: "snapshots: backends per VIP.")
    var vipBackends = 10

    @Option(help: "snapshots: table size M of every VIP (prime).")
    var tableSize = 65537

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

        guard vips >= 2, vips <= 100_000 else { throw CLIError("--vips must be between 2 and 100000") }
        guard vipBackends >= 1, vipBackends <= 1000 else { throw CLIError("--vip-backends must be between 1 and 1000") }
        guard isPrime(tableSize), tableSize >= vipBackends + 1, tableSize <= TableError.maximumSize else {
            throw CLIError("--table-size must be a prime above --vip-backends and at most \(TableError.maximumSize)")
        }

        var outputs: [(json: JSONValue, text: String)] = []
        if measurement != .snapshots {
            // Runs this command again with the malloc counter preloaded (it is not in `maglev`).
            let notCounted = AllocationCounter.preloadOrExplain()
            let results = try DataplaneBench(
                flows: flows, connections: connections, backends: backends, ipv6Share: ipv6Share,
                payload: payload, seconds: seconds, hugePages: hugePages, allocationsNotCounted: notCounted
            ).run(progress: format == .text)
            outputs.append((results.json, results.text))
        }
        if measurement != .dataplane {
            let results = try SnapshotBench(vips: vips, backends: vipBackends, tableSize: tableSize, reloads: 9).run()
            outputs.append((results.json, results.text))
        }
        if format == .json {
            var members: [(String, JSONValue)] = []
            // One object: both measurements' keys ("build" once).
            for case (.object(let m), _) in outputs {
                for (key, value) in m where !members.contains(where: { $0.0 == key }) { members.append((key, value)) }
            }
            print(JSONValue.object(members).rendered(pretty: true))
        } else {
            print(outputs.map(\.text).joined(separator: "\n"))
        }
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}
