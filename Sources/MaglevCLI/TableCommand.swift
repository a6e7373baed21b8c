import ArgumentParser
import MaglevControl
import MaglevCore

/// `maglev table`: build a lookup table, report its balance and build time, and optionally the
/// disruption of removing backends (paper Fig. 12) and a comparison of algorithms (§5.3).
struct TableCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "table",
        abstract: "Build a Maglev lookup table and report its balance, disruption and build time.",
        discussion: """
            Backends are sorted by name (byte-wise UTF-8) before the fill, so the table does not \
            depend on the order of --backend options. Hashing and weights follow Envoy: offset = \
            XXH64(name, 0) % M, skip = XXH64(name, 1) % (M-1) + 1.

            "max/mean" is the largest ratio of a backend's slots to its fair share (paper §5.3). \
            Disruption counts slots whose owner changed: "all" includes the removed backends' \
            slots, "extra" only slots whose old owner is still there. Fractions are of all slots; \
            text output shows them as percentages.

            Examples:
              maglev table --size 7 --backend 127.0.0.1:90 --backend 127.0.0.1:91 --dump
              maglev table --backend a=1 --backend b=2 --format json
              maglev table --backends 1000 --size 65537 --remove 10 --trials 20 --seed 7
              maglev table --backends 1000 --compare --remove 1 --format json
            """)

    @Option(help: "Table size M: a prime, at least the number of backends (paper: 65537, 655373).")
    var size: Int = 65537

    @Option(
        name: .customLong("backend"),
        help: ArgumentHelp(
            "A backend NAME or NAME=WEIGHT (split at the last '='; WEIGHT is an integer 0...2^32-1, default 1; 0 owns no slot). Repeatable.",
            valueName: "name[=weight]"))
    var backendArguments: [String] = []

    @Option(
        name: .customLong("backends"),
        help: ArgumentHelp("Add N backends named backend-0 ... backend-<N-1> of weight 1 (combines with --backend).", valueName: "n"))
    var generatedCount: Int = 0

    @Option(help: "Algorithm of the main table: maglev, ring, rendezvous or modulo.")
    var algorithm: String = "maglev"

    @Option(name: .customLong("ring-views"), help: "Ring points per backend of the smallest positive weight (ring only).")
    var ringViews: Int = 1000

    @Option(help: "Seed of the random choice of removed backends (SplitMix64) and of the slot keys of ring, rendezvous and modulo.")
    var seed: UInt64 = 0

    @Option(help: ArgumentHelp("Measure disruption: remove K backends chosen at random (K < number of backends).", valueName: "k"))
    var remove: Int = 0

    @Option(help: ArgumentHelp("Number of random removals to average over (needs --remove; default 1).", valueName: "n"))
    var trials: Int?

    @Flag(help: "Also build ring, rendezvous and modulo tables and compare balance (and disruption with --remove).")
    var compare = false

    @Flag(help: "Print the table itself: slot -> index into the backend list.")
    var dump = false

    @Option(help: "Output format: text (for people) or json (one object, stable key order).")
    var format: String = "text"

    init() {}

    func run() throws {
        print(try report())
    }

    /// The whole output, or a `CLIError` with one line naming the problem.
    func report() throws(CLIError) -> String {
        let settings = try validatedSettings()
        let options = TableOptions(ringViews: ringViews, seed: seed)
        let (table, seconds) = try timedBuild(settings.algorithm, settings.backends, options)

        var disruption: RemovalStudy?
        if remove > 0 {
            disruption = try study(full: table, options: options)
        }
        var comparison: [Comparison] = []
        if compare {
            for candidate in TableAlgorithm.allCases {
                let (built, buildSeconds) =
                    candidate == settings.algorithm
                    ? (table, seconds) : try timedBuild(candidate, settings.backends, options)
                let removal =
                    remove == 0 ? nil
                    : candidate == settings.algorithm ? disruption : try study(full: built, options: options)
                comparison.append(
                    Comparison(algorithm: candidate, maxOverMean: built.maxOverMean(), buildSeconds: buildSeconds, removal: removal))
            }
        }
        let result = Result(
            table: table, buildSeconds: seconds, disruption: disruption, comparison: comparison, seed: seed,
            ringViews: ringViews)
        return settings.json ? result.json(dump: dump).rendered(pretty: true) : result.text(dump: dump)
    }

    // MARK: Validation

    struct Settings {
        var algorithm: TableAlgorithm
        var backends: [BackendSpec]
        var json: Bool
    }

    func validatedSettings() throws(CLIError) -> Settings {
        guard let algorithm = TableAlgorithm(rawValue: algorithm) else {
            throw CLIError("unknown --algorithm \"\(algorithm)\"; use maglev, ring, rendezvous or modulo")
        }
        guard format == "text" || format == "json" else {
            throw CLIError("unknown --format \"\(format)\"; use text or json")
        }
        guard generatedCount >= 0 else { throw CLIError("--backends \(generatedCount) is negative; give a count of 0 or more") }
        guard generatedCount <= TableError.maximumSize else {
            throw CLIError("--backends \(generatedCount) is more than a table can hold (\(TableError.maximumSize))")
        }
        guard ringViews >= 1 else { throw CLIError("--ring-views \(ringViews) must be at least 1") }
        var backends = (0..<generatedCount).map { BackendSpec(name: "backend-\($0)") }
        for argument in backendArguments {
            backends.append(try Self.parseBackend(argument))
        }
        guard !backends.isEmpty else {
            throw CLIError("no backends given; add --backend NAME[=WEIGHT] (repeatable) or --backends N")
        }
        guard remove >= 0 && remove < backends.count else {
            throw CLIError("--remove \(remove) must be from 0 to \(backends.count - 1) (fewer than the \(backends.count) backends)")
        }
        if let trials {
            guard remove > 0 else { throw CLIError("--trials needs --remove K: there is nothing to average without removals") }
            guard trials >= 1 else { throw CLIError("--trials \(trials) must be at least 1") }
        }
        return Settings(algorithm: algorithm, backends: backends, json: format == "json")
    }

    /// `NAME` or `NAME=WEIGHT`, split at the last `=`.
    static func parseBackend(_ argument: String) throws(CLIError) -> BackendSpec {
        guard let split = argument.lastIndex(of: "=") else { return BackendSpec(name: argument) }
        let name = String(argument[..<split])
        let weightText = String(argument[argument.index(after: split)...])
        guard !weightText.isEmpty, weightText.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let weight = UInt32(weightText) else {
            throw CLIError(
                "invalid weight \"\(weightText)\" in --backend \(argument): use an integer from 0 to \(UInt32.max)")
        }
        return BackendSpec(name: name, weight: weight)
    }

    // MARK: Work

    func timedBuild(
        _ algorithm: TableAlgorithm, _ backends: [BackendSpec], _ options: TableOptions
    ) throws(CLIError) -> (LookupTable, Double) {
        let clock = ContinuousClock()
        let start = clock.now
        let table: LookupTable
        do {
            table = try LookupTableBuilder.build(algorithm, backends: backends, size: size, options: options)
        } catch {
            throw CLIError(error.description)
        }
        return (table, Self.seconds(clock.now - start))
    }

    func study(full: LookupTable, options: TableOptions) throws(CLIError) -> RemovalStudy {
        do {
            return try RemovalStudy.run(full: full, options: options, removing: remove, trials: trials ?? 1, seed: seed)
        } catch {
            throw CLIError("after removing \(remove) backends: \(error.description)")
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        let parts = duration.components
        return Double(parts.seconds) + Double(parts.attoseconds) * 1e-18
    }
}

// MARK: Output

extension TableCommand {
    struct Comparison {
        var algorithm: TableAlgorithm
        var maxOverMean: Double
        var buildSeconds: Double
        var removal: RemovalStudy?
    }

    struct Result {
        var table: LookupTable
        var buildSeconds: Double
        var disruption: RemovalStudy?
        var comparison: [Comparison]
        var seed: UInt64
        var ringViews: Int

        var counts: [Int] { table.slotCounts() }

        /// Min and max slots over backends of positive weight; mean = size / their number.
        var slotStats: (min: Int, mean: Double, max: Int) {
            let owned = zip(table.backends, counts).filter { $0.0.weight > 0 }.map(\.1)
            return (owned.min() ?? 0, Double(table.size) / Double(max(owned.count, 1)), owned.max() ?? 0)
        }

        func json(dump: Bool) -> JSONValue {
            let counts = counts
            let stats = slotStats
            var members: [(String, JSONValue)] = [
                ("algorithm", .string(table.algorithm.rawValue)),
                ("size", JSONValue(table.size)),
                (
                    "backends",
                    .array(
                        table.backends.indices.map { i in
                            .object([
                                ("name", .string(table.backends[i].name)),
                                ("weight", JSONValue(table.backends[i].weight)),
                                ("slots", JSONValue(counts[i])),
                            ])
                        })
                ),
                ("slots_min", JSONValue(stats.min)),
                ("slots_mean", .fixed(stats.mean, digits: 3)),
                ("slots_max", JSONValue(stats.max)),
                ("max_over_mean", .fixed(table.maxOverMean(), digits: 6)),
                ("build_seconds", .fixed(buildSeconds, digits: 9)),
            ]
            if let disruption {
                members.append(
                    (
                        "disruption",
                        .object([
                            ("removed", JSONValue(disruption.removed)),
                            ("trials", JSONValue(disruption.trials)),
                            ("seed", .string(String(seed))),
                            ("changed_all", .fixed(disruption.changedAll, digits: 6)),
                            ("changed_extra", .fixed(disruption.changedExtra, digits: 6)),
                        ])
                    ))
            }
            if !comparison.isEmpty {
                members.append(("ring_views", JSONValue(ringViews)))
                members.append(
                    (
                        "algorithms",
                        .object(
                            comparison.map { row in
                                var fields: [(String, JSONValue)] = [
                                    ("max_over_mean", .fixed(row.maxOverMean, digits: 6)),
                                    ("build_seconds", .fixed(row.buildSeconds, digits: 9)),
                                ]
                                if let removal = row.removal {
                                    fields.append(("changed_all", .fixed(removal.changedAll, digits: 6)))
                                    fields.append(("changed_extra", .fixed(removal.changedExtra, digits: 6)))
                                }
                                return (row.algorithm.rawValue, .object(fields))
                            })
                    ))
            }
            if dump {
                members.append(("table", .array(table.entries.map { JSONValue($0) })))
            }
            return .object(members)
        }

        static let listedBackends = 20
        static let nameWidth = 40

        func text(dump: Bool) -> String {
            let counts = counts
            let stats = slotStats
            let ratio = table.maxOverMean()
            var lines: [String] = []
            lines.append("\(table.algorithm.rawValue) table: \(table.size) slots, \(table.backends.count) backends")
            lines.append("  slots per backend  min \(stats.min), mean \(JSONValue.number(stats.mean, digits: 2)), max \(stats.max)")
            lines.append(
                "  max/mean           \(JSONValue.number(ratio, digits: 4)) (over-provisioning \(Self.percent(ratio - 1)))")
            lines.append("  build time         \(Self.duration(buildSeconds))")
            lines.append("")

            let shown = min(table.backends.count, Self.listedBackends)
            let width = min(
                Self.nameWidth, max(7, table.backends.prefix(shown).map { $0.name.count }.max() ?? 7))
            lines.append(
                "  " + Self.pad("backend", width) + "  " + Self.left("weight", 10) + "  " + Self.left("slots", 9) + "  "
                    + Self.left("share", 8))
            for i in 0..<shown {
                let backend = table.backends[i]
                lines.append(
                    "  " + Self.pad(Self.truncate(backend.name, width), width) + "  "
                        + Self.left(String(backend.weight), 10) + "  " + Self.left(String(counts[i]), 9) + "  "
                        + Self.left(Self.percent(Double(counts[i]) / Double(table.size)), 8))
            }
            if table.backends.count > shown {
                lines.append("  \u{2026} \(table.backends.count - shown) more")
            }

            if let disruption {
                lines.append("")
                lines.append(
                    "Disruption: removing \(disruption.removed) of \(table.backends.count) backends at random"
                        + " (mean of \(disruption.trials) trial\(disruption.trials == 1 ? "" : "s"), seed \(seed))")
                lines.append("  changed, all slots                 " + Self.left(Self.percent(disruption.changedAll), 8))
                lines.append("  changed, extra (old owner remains) " + Self.left(Self.percent(disruption.changedExtra), 8))
            }

            if !comparison.isEmpty {
                lines.append("")
                lines.append("Comparison (ring: \(ringViews) views per backend):")
                var header = "  " + Self.pad("algorithm", 12) + Self.left("max/mean", 10)
                if disruption != nil { header += Self.left("changed all", 14) + Self.left("changed extra", 15) }
                header += Self.left("build", 12)
                lines.append(header)
                for row in comparison {
                    var line = "  " + Self.pad(row.algorithm.rawValue, 12) + Self.left(JSONValue.number(row.maxOverMean, digits: 4), 10)
                    if let removal = row.removal {
                        line += Self.left(Self.percent(removal.changedAll), 14) + Self.left(Self.percent(removal.changedExtra), 15)
                    }
                    line += Self.left(Self.duration(row.buildSeconds), 12)
                    lines.append(line)
                }
            }

            if dump {
                lines.append("")
                lines.append("Table (slot -> backend index in the list above):")
                var line = " "
                for entry in table.entries {
                    let item = " " + String(entry)
                    if line.count + item.count > 100 {
                        lines.append(line)
                        line = " "
                    }
                    line += item
                }
                if line.count > 1 { lines.append(line) }
            }
            return lines.joined(separator: "\n")
        }

        static func percent(_ fraction: Double) -> String { JSONValue.number(fraction * 100, digits: 2) + "%" }

        static func duration(_ seconds: Double) -> String {
            seconds >= 1 ? JSONValue.number(seconds, digits: 3) + " s" : JSONValue.number(seconds * 1000, digits: 3) + " ms"
        }

        static func pad(_ s: String, _ width: Int) -> String {
            s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
        }

        static func left(_ s: String, _ width: Int) -> String {
            s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
        }

        static func truncate(_ s: String, _ width: Int) -> String {
            s.count <= width ? s : String(s.prefix(width - 1)) + "\u{2026}"
        }
    }
}
