import ArgumentParser

/// The `maglev` root command. Subcommands only parse arguments and print; the work lives in
/// the core and driver modules.
struct MaglevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maglev",
        abstract: "A software L4 load balancer after Google's Maglev.",
        discussion: """
            Examples:
              maglev forward --config lab.yaml --interface eth0 --workers 2
              maglev replay Traces/tcp-1k.pcap --backends 10 --event 50%:remove:backend-3
              maglev table --backends 10 --size 65537
              maglev config check Traces/configs/example.yaml
              maglev diff lb.yaml lb-new.yaml --trace Traces/tcp-1k.pcap --fail-if-broken 0
              maglev which --config lb.yaml --flow tcp:198.51.100.7:34567-198.19.0.10:80
              maglev bench --format json
            """,
        version: MaglevVersion.string,
        subcommands: [
            ForwardCommand.self, ReplayCommand.self, TableCommand.self, TraceCommand.self, ConfigCommand.self,
            DecapCommand.self, BenchCommand.self, CtlCommand.self, ProbeCommand.self, DiffCommand.self, WhichCommand.self,
        ])

    init() {}
}

/// Entry point for the `maglev` executable.
public func maglevMain() async {
    await MaglevCommand.main()
}
