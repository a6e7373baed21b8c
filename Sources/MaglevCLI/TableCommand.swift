import ArgumentParser

struct TableCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "table", abstract: "Build and inspect Maglev tables (placeholder).")
    func run() throws {}
}
