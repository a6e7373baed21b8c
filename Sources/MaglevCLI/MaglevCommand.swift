import ArgumentParser

/// The `maglev` root command. Subcommands only parse arguments and print; the work lives in
/// the core and driver modules.
struct MaglevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maglev",
        abstract: "A software L4 load balancer after Google's Maglev.",
        discussion: """
            Examples:
              maglev table --backends 10 --size 65537
              maglev bench --format json
            """,
        subcommands: [TableCommand.self, ReplayCommand.self, TraceCommand.self, ConfigCommand.self, DecapCommand.self, BenchCommand.self])

    init() {}
}

/// Entry point for the `maglev` executable.
public func maglevMain() async {
    await MaglevCommand.main()
}
