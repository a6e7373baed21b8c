import ArgumentParser
import MaglevConfig
import MaglevCore
import MaglevLinux
import MaglevReplay

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay captures through the data plane: backend per flow, balance, disruption.",
        discussion: """
            Drives the very Dataplane the live forwarder runs with the packets and timestamps of
            pcap/pcapng captures (several are merged in time order). Events change the backends
            or the forwarder tier at points of the trace; the report says how many live
            connections each change broke, and whether that was unavoidable.

            Events (--event AT:ACTION[:TARGET], repeatable):
              AT       N% of the packets, Ns after the first packet, or #N (packet number)
              ACTION   remove, add, drain, fail, recover, weight=W (with a backend TARGET),
                       forwarders=K (the ECMP group now has K forwarders),
                       config=FILE (a whole new config, applied as a live reload applies it;
                       disruptive changes such as hash_seed or table_size are applied and flagged)

            Examples:
              maglev replay Traces/mixed-small.pcap --backends 8
              maglev replay T.pcap --backends 8 --report r.json --decisions d.csv --out o.pcap
              maglev replay T.pcap --backends 10 --event 50%:remove:backend-3 --report r.json
              maglev replay T.pcap --backends 10 --forwarders 4 --event 50%:forwarders=3 --no-conntrack
              maglev replay T.pcap --config Traces/configs/example.yaml --report r.html
              maglev replay T.pcap --backends 10 --event 30s:fail:backend-1 --compare-algorithms
              maglev replay T.pcap --config lb.yaml --event 50%:config=lb-new.yaml --report r.html
            """)

    @Argument(help: "Capture files (pcap or pcapng).")
    var inputs: [String]

    @Option(help: "Config file (YAML): VIPs, pools, table, seed, timeouts.")
    var config: String?

    @Option(help: "With --config: replay as a forwarder of this shard (its VIPs and the unsharded ones), as `maglev forward --shard` runs.")
    var shard: String?

    @Option(help: "Without --config: N backends (backend-0 … backend-<N-1>) behind catch-all VIPs.")
    var backends: Int?

    @Option(name: .customLong("event"), help: "AT:ACTION[:TARGET], repeatable (see above).")
    var events: [String] = []

    @Option(help: "Simulated forwarders behind ECMP.")
    var forwarders = 1

    @Option(help: "Routers' ECMP hash: l4 (5-tuple) or l3 (addresses only, the Linux default).")
    var ecmp = "l4"

    @Flag(name: .customLong("no-conntrack"), help: "Route every packet by the table alone (no connection tables).")
    var noConntrack = false

    @Option(help: "Table algorithm: maglev, ring, rendezvous or modulo (overrides the config).")
    var algorithm: String?

    @Flag(help: "Also replay with every table algorithm and compare balance and disruption.")
    var compareAlgorithms = false

    @Option(help: "Write the report here; the extension picks the format: .json, .txt, .md, .html, .csv (backends).")
    var report: String?

    @Option(help: "Write one CSV row per packet here.")
    var decisions: String?

    @Option(help: "Write the packets the forwarders send (GRE, ICMP replies) to this pcap.")
    var out: String?

    func run() throws {
        guard !inputs.isEmpty else { throw CLIError("no capture given: maglev replay FILE.pcap --backends N") }
        var file: MaglevConfigFile
        switch (config, backends) {
        case (let path?, nil):
            do { file = try MaglevConfigFile.load(path: path).forShard(shard) } catch {
                throw CLIError("\(error)\nfix the config (maglev config check \(path) lists every problem)")
            }
        case (nil, let n?):
            guard shard == nil else { throw CLIError("--shard needs --config (a catch-all config has no shards)") }
            guard (1...100_000).contains(n) else { throw CLIError("--backends must be between 1 and 100000") }
            file = MaglevConfigFile.catchAll(backends: n, tableSize: n <= 600 ? 65537 : 655_373)
        case (nil, nil): throw CLIError("say where packets go: --backends N, or --config FILE")
        case (_?, _?): throw CLIError("use --config or --backends, not both")
        }
        guard (1...64).contains(forwarders) else { throw CLIError("--forwarders must be between 1 and 64") }
        guard let ecmpHash = ECMPHash(rawValue: ecmp) else { throw CLIError("--ecmp must be l4 or l3") }
        if let algorithm {
            guard let a = TableAlgorithm(rawValue: algorithm) else {
                throw CLIError("unknown --algorithm \(algorithm): use maglev, ring, rendezvous or modulo")
            }
            file.dataplane.algorithm = a
        }
        if noConntrack { file.dataplane.connectionTracking = false }
        file.dataplane.acceptTruncated = true
        var reportFormat = ReportFormat.text
        if let report {
            guard let f = ReportFormat(pathExtension: report) else {
                throw CLIError(
                    "--report \(report): the extension picks the format; use one of "
                        + ReportFormat.extensions.joined(separator: ", ")
                        + " (.csv is the per-backend table)")
            }
            reportFormat = f
        }

        var options = ReplayOptions(inputs: inputs, config: file)
        do {
            options.events = try events.map { text throws(ScenarioError) in try ScenarioEvent(parsing: text) }
            // config=FILE events: loaded and checked now, with the same overrides as --config.
            options.eventConfigs = try ScenarioEvent.loadConfigs(options.events).mapValues { f in
                var f = f
                if let algorithm { f.dataplane.algorithm = TableAlgorithm(rawValue: algorithm) ?? f.dataplane.algorithm }
                if noConntrack { f.dataplane.connectionTracking = false }
                f.dataplane.acceptTruncated = true
                return f
            }
            try ScenarioEvent.check(options.events, config: file, eventConfigs: options.eventConfigs)
        } catch {
            throw CLIError(error.description)
        }
        options.forwarders = forwarders
        // Connection tables on huge pages, as `maglev forward` keeps them (fewer page faults
        // and TLB misses; the decisions are the same).
        options.tableMemory = TableMemory(allocate: HugePageMemory.allocate, deallocate: HugePageMemory.deallocate, zeroFilled: true)
        options.ecmpHash = ecmpHash
        options.outputPcap = out
        options.decisionsCSV = decisions
        if standardErrorIsTerminal() {
            options.progress = { done, total in
                if let total, total > 0 {
                    writeStandardError("\rreplaying: \(done) of \(total) packets (\(done * 100 / total)%)   ")
                } else {
                    writeStandardError("\rreplaying: \(done) packets   ")
                }
            }
        }

        let result: (report: ReplayReport, captureError: CaptureError?)
        var outputFailure: OutputError?
        do {
            result = try ReplayEngine.replay(options, compareAlgorithms: compareAlgorithms)
        } catch let e as CaptureError {
            throw CLIError("\(e)")
        } catch let e as SnapshotError {
            throw CLIError("config: \(e)")
        } catch let e as OutputError {
            // An output failed after the replay began: still show the report, then fail.
            guard let report = e.report else { throw CLIError("\(e)") }
            result = (report, nil)
            outputFailure = e
        }
        if options.progress != nil { writeStandardError("\n") }

        var rendered = ReportRenderer.render(result.report, as: reportFormat)
        if !rendered.hasSuffix("\n") { rendered += "\n" }
        do {
            if let report { try writeTextFile(rendered, to: report) } else { try writeStandardOutput(rendered) }
        } catch {
            throw CLIError("\(error)")
        }
        if let outputFailure { throw CLIError("\(outputFailure)") }
        if let e = result.captureError {
            throw CLIError("\(e); the report covers the \(result.report.packets.total) packets before it")
        }
    }
}
