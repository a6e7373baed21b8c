import ArgumentParser
import Glibc
import MaglevControl
import MaglevReplay

/// `maglev trace`: synthetic traces for replay and benchmarks.
struct TraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Make synthetic packet traces; move traces onto the lab, send them, check where they went.",
        subcommands: [
            TraceGenerateCommand.self, TraceRewriteCommand.self, TraceSendCommand.self, TraceCompareCommand.self,
        ])

    init() {}
}

/// `maglev trace generate`: a seeded synthetic trace of client-to-VIP traffic, as a pcap file.
struct TraceGenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write a seeded synthetic trace (Ethernet frames, nanosecond pcap) of clients talking to the VIPs.",
        discussion: """
            Clients in 198.18.0.0/15 and 2001:db8:c::/48 open TCP connections to 198.19.0.10:80 \
            and [2001:db8:100::10]:443 (SYN, ACKs with data, FIN or, for about 5%, RST) and send \
            UDP datagrams to 198.19.0.11:53 and [2001:db8:100::11]:53. Only the client-to-VIP \
            direction is written, as a Maglev balancer sees it. Flow sizes follow Zipf (flow i \
            gets weight 1/(i+1)^S) or are uniform; totals are exact: --packets counts every \
            packet, fragments and ICMP errors included. ICMP errors come from the router \
            (198.18.255.1, 2001:db8:ff::1) to a VIP and quote a packet of the reverse flow. \
            The same options give the same file, byte for byte.

            Prints one line: packets, flows, bytes, seconds taken. A progress line goes to \
            standard error when it is a terminal.

            Examples:
              maglev trace generate --flows 100000 --packets 1000000 --seed 1 --out t.pcap
              maglev trace generate --flows 300 --packets 3000 --seed 1 \\
                  --fragments 0.1 --icmp-errors 0.01 --vlan 0.1 --out mixed.pcap
              maglev trace generate --flows 1000 --packets 4000 --uniform \\
                  --tcp-share 1 --ipv6-share 0 --out tcp.pcap
            """)

    @Option(help: "Flows (TCP connections and UDP flows).")
    var flows: Int = 1000

    @Option(help: "Packets in all, fragments and ICMP errors included (each TCP flow needs 2, each UDP flow 1).")
    var packets: Int = 10_000

    @Option(help: "Seed of every random choice (SplitMix64).")
    var seed: UInt64 = 1

    @Option(help: ArgumentHelp("The pcap file to write (created or replaced).", valueName: "path"))
    var out: String

    @Option(help: ArgumentHelp("Zipf exponent of flow sizes (default 1.1).", valueName: "s"))
    var zipf: Double?

    @Flag(help: "Uniform flow sizes instead of Zipf.")
    var uniform = false

    @Option(name: .customLong("tcp-share"), help: "Share of flows that are TCP connections, 0...1.")
    var tcpShare: Double = 0.8

    @Option(name: .customLong("ipv6-share"), help: "Share of flows over IPv6, 0...1.")
    var ipv6Share: Double = 0.2

    @Option(
        name: .customLong("fragments"),
        help: ArgumentHelp("Share of UDP datagrams sent as 2 or 3 fragments, 0...1.", valueName: "share"))
    var fragmentShare: Double = 0

    @Option(
        name: .customLong("icmp-errors"),
        help: ArgumentHelp("Share of packets that are ICMP errors quoting a flow, 0...1.", valueName: "share"))
    var icmpErrorShare: Double = 0

    @Option(
        name: .customLong("vlan"), help: ArgumentHelp("Share of flows with an 802.1Q tag, 0...1.", valueName: "share"))
    var vlanShare: Double = 0

    @Option(help: ArgumentHelp("Seconds the trace spans.", valueName: "seconds"))
    var duration: Double = 10

    init() {}

    var options: TraceOptions {
        var o = TraceOptions()
        o.flows = flows
        o.packets = packets
        o.seed = seed
        o.zipfExponent = uniform ? nil : (zipf ?? 1.1)
        o.tcpShare = tcpShare
        o.ipv6Share = ipv6Share
        o.fragmentShare = fragmentShare
        o.icmpErrorShare = icmpErrorShare
        o.vlanShare = vlanShare
        o.durationSeconds = duration
        return o
    }

    func validate() throws {
        if uniform && zipf != nil { throw CLIError("--zipf and --uniform cannot be used together") }
        if let problem = options.problem { throw CLIError(problem) }
    }

    func run() throws {
        print(try generate())
    }

    /// Writes the trace; returns the summary line, or throws a `CLIError` naming the problem.
    func generate() throws(CLIError) -> String {
        if let problem = options.problem { throw CLIError(problem) }
        let clock = ContinuousClock()
        let start = clock.now
        let showProgress = isatty(2) != 0
        let summary: TraceSummary
        do {
            summary = try TraceGenerator.generate(
                options, to: out,
                progress: showProgress
                    ? { written, total in
                        Self.standardError("\rgenerating: \(written)/\(total) packets" + (written == total ? "\n" : ""))
                    } : nil)
        } catch {
            throw CLIError(error.description)
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return "\(summary.packets) packets, \(summary.flows) flows (\(summary.tcpFlows) TCP, "
            + "\(summary.ipv6Flows) IPv6, \(summary.vlanFlows) VLAN), \(summary.fragmentPackets) fragments, "
            + "\(summary.icmpErrors) ICMP errors, \(summary.bytes) bytes -> \(out) in "
            + "\(JSONValue.number(seconds, digits: 2)) s"
    }

    private static func standardError(_ text: String) {
        var text = text
        text.withUTF8 { bytes in _ = Glibc.write(2, bytes.baseAddress, bytes.count) }
    }
}
