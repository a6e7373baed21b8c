import ArgumentParser
import MaglevConfig
import MaglevControl
import MaglevCore
import MaglevReplay

/// `maglev diff OLD.yaml NEW.yaml [--trace T.pcap]`: what a config change would do, before it
/// is deployed.
struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "What replacing config OLD with NEW would move and break, before you deploy it.",
        discussion: """
            NEW is applied to OLD exactly as a live reload applies it (DesiredState.reload, \
            then a snapshot built from OLD's). Per VIP: the share of its flows whose backend \
            changes ("slots all") and of those whose old backend stays ("slots extra", the \
            avoidable part), and the backends added, removed, re-weighted or changing state. \
            Changes that move almost every connection (hash_seed, table_size, algorithm, \
            ring_views) are flagged DISRUPTIVE: a live reload refuses them unless \
            --allow-disruptive-reload.

            With --trace, the capture is replayed with OLD and NEW is applied after its last \
            packet (or at --at: N%, Ns or #N, as replay events): the connections alive then, \
            how many NEW would break (their next packet goes to another backend: each \
            forwarder's connection table kept, as a live reload keeps it) and which backends \
            they were on. --fail-if-broken N exits 3 when more than N would break, so CI can \
            gate config changes.

            Exit status: 0; 3 with --fail-if-broken exceeded; 1 on errors.

            Examples:
              maglev diff lb.yaml lb-new.yaml
              maglev diff lb.yaml lb-new.yaml --trace Traces/tcp-1k.pcap --format json
              maglev diff lb.yaml lb-new.yaml --trace T.pcap --at 50% --fail-if-broken 0
              maglev diff lb.yaml lb-new.yaml --trace T.pcap --format html > diff.html
            """)

    @Argument(help: "The running config (YAML).")
    var old: String

    @Argument(help: "The config you mean to deploy (YAML).")
    var new: String

    @Option(name: .customLong("trace"), help: "Capture (pcap or pcapng) to count the connections NEW would break; repeatable.")
    var traces: [String] = []

    @Option(help: "With --trace: when NEW is applied: N%, Ns or #N (default 100%: after the last packet).")
    var at: String?

    @Option(help: "With --trace: simulated forwarders behind ECMP, as in maglev replay.")
    var forwarders = 1

    @Option(help: "text, json or html.")
    var format = "text"

    @Option(name: .customLong("fail-if-broken"), help: "With --trace: exit 3 when more than N connections would break.")
    var failIfBroken: Int?

    func run() throws {
        guard ["text", "json", "html"].contains(format) else {
            throw CLIError("--format must be text, json or html, not '\(format)'")
        }
        if traces.isEmpty {
            if at != nil { throw CLIError("--at needs --trace: it says when NEW is applied to the trace") }
            if failIfBroken != nil { throw CLIError("--fail-if-broken needs --trace: broken connections are counted on a trace") }
        }
        if let n = failIfBroken, n < 0 { throw CLIError("--fail-if-broken must be 0 or more") }
        guard (1...64).contains(forwarders) else { throw CLIError("--forwarders must be between 1 and 64") }
        let oldFile = try Self.load(old)
        let newFile = try Self.load(new)
        var diff: ConfigDiff
        do { diff = try ConfigDiff(old: oldFile, new: newFile) } catch { throw CLIError("\(error)") }
        if !traces.isEmpty {
            do {
                try diff.addTrace(inputs: traces, old: oldFile, new: newFile, at: at ?? "100%", forwarders: forwarders)
            } catch let e as ScenarioError {
                throw CLIError(e.description.replacingOccurrences(of: "event '\(at ?? "100%"):config=\(new)'", with: "--at \(at ?? "")"))
            } catch {
                throw CLIError("\(error)")
            }
        }
        let text: String
        switch format {
        case "json": text = DiffReport.json(diff).rendered(.indented) + "\n"
        case "html": text = DiffReport.html(diff)
        default: text = DiffReport.text(diff)
        }
        do { try writeStandardOutput(text) } catch { throw CLIError("\(error)") }
        if let n = failIfBroken, let broken = diff.trace?.connectionsBroken, broken > n {
            writeStandardError("maglev diff: \(broken) connections would break, more than --fail-if-broken \(n)\n")
            throw ExitCode(3)
        }
    }

    static func load(_ path: String) throws -> MaglevConfigFile {
        do { return try MaglevConfigFile.load(path: path) } catch {
            throw CLIError("\(error)\nfix the config (maglev config check \(path) lists every problem)")
        }
    }
}
