import ArgumentParser

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "In-memory benchmarks of the data plane (placeholder).")
    func run() throws {}
}
