/// What the terminal shows: the same sections as plain aligned columns (`.text`) or as
/// markdown headings and tables (`.markdown`), never wider than `maxWidth` columns.
struct TextReport {
    static let maxWidth = 100

    enum Block {
        case heading(String)
        /// Label/value pairs: aligned in text, a bullet list in markdown.
        case fields([(label: String, value: String)])
        case table(ReportTable)
        /// Wrapped sentences: indented lines in text, bullets in markdown.
        case notes([String])
    }

    let report: ReplayReport
    let markdown: Bool

    static func render(_ report: ReplayReport, markdown: Bool) -> String {
        TextReport(report: report, markdown: markdown).render()
    }

    func render() -> String {
        var out: [String] = []
        let title = "Maglev replay report"
        if markdown {
            out.append("# " + title)
        } else {
            out.append(title)
            out.append(String(repeating: "=", count: title.count))
        }
        for block in blocks() {
            switch block {
            case .heading(let text):
                out.append("")
                if markdown {
                    out.append("## " + ReportFormatting.markdownEscaped(text))
                } else {
                    out.append(text)
                    out.append(String(repeating: "-", count: text.count))
                }
                out.append("")
            case .fields(let fields):
                out.append(contentsOf: render(fields: fields))
            case .table(let table):
                if markdown {
                    out.append(contentsOf: table.markdown(maxWidth: Self.maxWidth))
                    out.append("")
                } else {
                    out.append(contentsOf: table.text(maxWidth: Self.maxWidth))
                }
            case .notes(let notes):
                out.append("")
                for note in notes {
                    if markdown {
                        out.append(
                            contentsOf: ReportFormatting.wrap(
                                ReportFormatting.markdownEscaped(note), width: Self.maxWidth,
                                first: "- ", rest: "  "))
                    } else {
                        out.append(
                            contentsOf: ReportFormatting.wrap(
                                note, width: Self.maxWidth, first: "  ", rest: "    "))
                    }
                }
                out.append("")
            }
        }
        // One blank line at most between blocks, one newline at the end.
        var lines: [String] = []
        for line in out {
            let trimmed = String(line.reversed().drop(while: { $0 == " " }).reversed())
            if trimmed.isEmpty && (lines.last?.isEmpty ?? true) { continue }
            lines.append(trimmed)
        }
        while lines.last?.isEmpty == true { lines.removeLast() }
        return lines.joined(separator: "\n") + "\n"
    }

    private func render(fields: [(label: String, value: String)]) -> [String] {
        var out: [String] = []
        if markdown {
            for field in fields {
                let value = ReportFormatting.markdownEscaped(field.value)
                out.append(
                    contentsOf: ReportFormatting.wrap(
                        "**\(field.label):** " + value, width: Self.maxWidth, first: "- ",
                        rest: "  "))
            }
            out.append("")
            return out
        }
        let labelWidth = fields.map { $0.label.count }.max() ?? 0
        let rest = String(repeating: " ", count: labelWidth + 2)
        for field in fields {
            let label = field.label + String(repeating: " ", count: labelWidth - field.label.count)
            out.append(
                contentsOf: ReportFormatting.wrap(
                    field.value, width: Self.maxWidth, first: label + "  ", rest: rest))
        }
        out.append("")
        return out
    }

    // MARK: Sections

    func blocks() -> [Block] {
        var blocks: [Block] = []
        blocks += summary()
        blocks += backends()
        blocks += balance()
        blocks += events()
        blocks += comparison()
        if !report.warnings.isEmpty {
            blocks.append(.heading("Warnings"))
            blocks.append(.notes(report.warnings))
        }
        return blocks
    }

    private typealias F = ReportFormatting

    private func reasons(_ list: [(reason: String, count: Int)]) -> String {
        list.map { "\($0.reason) \(F.grouped($0.count))" }.joined(separator: ", ")
    }

    func summary() -> [Block] {
        let p = report.packets
        var blocks: [Block] = [.heading("Summary")]
        let setup =
            "\(report.algorithm), table of \(F.grouped(report.tableSize)) slots, "
            + F.count(report.forwarders, "forwarder") + ", connection tracking "
            + (report.connectionTracking ? "on" : "off")
        var fields: [(label: String, value: String)] = [
            ("Inputs", report.inputs.isEmpty ? "(none)" : report.inputs.joined(separator: ", ")),
            ("Setup", setup),
            ("Duration", F.seconds(report.durationSeconds)),
        ]
        let back = report.timeWentBackwards
        if back.packets > 0 {
            fields.append(
                (
                    "Time went back",
                    F.count(back.packets, "packet") + " older than one before (by up to "
                        + F.fixed(back.maxSeconds, 6) + " s), replayed at the latest time seen"
                ))
        }
        fields += [
            ("Flows", F.grouped(report.flows)),
            ("Connections", F.grouped(report.connections)),
            ("Backends", F.grouped(report.backends.count)),
        ]
        blocks.append(.fields(fields))
        var table = ReportTable([
            .init("packets", .left), .init("count"), .init("share of total"),
        ])
        func row(_ name: String, _ n: Int) {
            table.add([name, F.grouped(n), F.percent(fraction(n, of: p.total))])
        }
        row("total", p.total)
        row("forwarded", p.forwarded)
        row("ICMP replies", p.icmpReplies)
        row("passed (not ours)", p.passed.reduce(0) { $0 + $1.count })
        row("dropped", p.droppedTotal)
        row("skipped (not replayed)", p.skippedTotal)
        blocks.append(.table(table))
        var notes: [String] = []
        if !p.passed.isEmpty { notes.append("passed: " + reasons(p.passed)) }
        if !p.dropped.isEmpty { notes.append("dropped: " + reasons(p.dropped)) }
        if !p.skipped.isEmpty { notes.append("skipped: " + reasons(p.skipped)) }
        if !notes.isEmpty { blocks.append(.notes(notes)) }
        return blocks
    }

    func backends() -> [Block] {
        let backends = report.backends
        guard !backends.isEmpty else {
            return [.heading("Backends"), .notes(["No backends."])]
        }
        let listed = report.listedBackends()
        let heading =
            listed.omitted == 0
            ? "Backends (\(backends.count))"
            : "Backends: the 10 busiest and the 10 idlest of \(F.grouped(backends.count)) by flows"
        let totalFlows = report.backendFlowsTotal
        var table = ReportTable([
            .init("name", .left, shrinks: true), .init("flows"), .init("conns"), .init("packets"),
            .init("bytes"), .init("flow share"), .init("peak conns"), .init("state", .left),
        ])
        func add(_ i: Int) {
            let b = backends[i]
            table.add([
                b.name, F.grouped(b.flows), F.grouped(b.connections), F.grouped(b.packets),
                F.bytes(b.bytes), F.percent(fraction(b.flows, of: totalFlows)),
                F.grouped(b.peakConnections), b.state,
            ])
        }
        listed.top.forEach(add)
        if listed.omitted > 0 { table.addNote("… \(F.grouped(listed.omitted)) more") }
        listed.bottom.forEach(add)
        return [
            .heading(heading), .table(table),
            .notes([
                "conns: connections received; flow share: of all flows; peak conns: most"
                    + " connections open at once; state: at the end of the replay."
            ]),
        ]
    }

    func balance() -> [Block] {
        let b = report.balance
        var table = ReportTable([.init("measure", .left), .init("value"), .init("meaning", .left)])
        table.add([
            "flows max/mean", F.fixed(b.flowsMaxOverMean, 4),
            "busiest backend's flows over the mean; 1 is perfect",
        ])
        table.add([
            "packets max/mean", F.fixed(b.packetsMaxOverMean, 4), "the same for packets",
        ])
        table.add(["bytes max/mean", F.fixed(b.bytesMaxOverMean, 4), "the same for bytes"])
        table.add([
            "flows CoV", F.fixed(b.flowsCoV, 4),
            "standard deviation / mean of flows per backend; 0 is perfect",
        ])
        table.add([
            "Jain index", F.fixed(b.jain, 4),
            "(sum x)^2 / (n * sum x^2) of flows; 1 is perfect, 1/n is all on one",
        ])
        return [
            .heading("Balance"),
            .notes(["Over the backends that own table slots at the end, in VIPs that saw traffic."]),
            .table(table),
        ]
    }

    private static let eventLegend = [
        "alive: connections open at the event; broken: of those, connections whose later"
            + " packets reached another backend; unavoidable: broken because their own backend"
            + " was removed or failed; collateral: broken although their backend stayed.",
        "slots all: table slots that changed owner; slots extra: slots that changed owner"
            + " although their old owner survived. Both are fractions of the table over all VIPs.",
    ]

    func events() -> [Block] {
        guard !report.events.isEmpty else {
            return [.heading("Events"), .notes(["No membership events."])]
        }
        var table = ReportTable([
            .init("at", .left, shrinks: true), .init("time s"), .init("action", .left),
            .init("target", .left, shrinks: true), .init("alive"), .init("broken"),
            .init("unavoidable"), .init("collateral"), .init("slots all"), .init("slots extra"),
        ])
        for e in report.events {
            guard e.reached else {
                table.add([e.at, "never", e.action, e.target.isEmpty ? "-" : e.target, "-", "-", "-", "-", "-", "-"])
                continue
            }
            table.add([
                e.at, F.fixed(e.seconds, 3), e.action, e.target.isEmpty ? "-" : e.target,
                F.grouped(e.connectionsAlive), F.grouped(e.broken), F.grouped(e.brokenUnavoidable),
                F.grouped(e.brokenCollateral), F.percent(e.slotsChangedAll),
                F.percent(e.slotsChangedExtra),
            ])
        }
        var legend = Self.eventLegend
        if report.events.contains(where: { !$0.reached }) {
            legend.append("never: the capture ended before the event's time; it did not take effect.")
        }
        var blocks: [Block] = [.heading("Events"), .table(table), .notes(legend)]
        for e in report.events where !e.disruptive.isEmpty {
            blocks.append(.notes([Self.disruptiveNote(e)]))
        }
        blocks += visibility()
        blocks += impact()
        return blocks
    }

    static let visibilityNote =
        "A break becomes visible at the capture time of the packet that shows it: the connection's first packet"
        + " to reach another backend after the event. Times in seconds from the first packet; median: the lower"
        + " median. after later event: breaks that showed only after a later event (a silent connection),"
        + " still charged to this one."

    /// When each event's breaks became visible (events with breaks only).
    func visibility() -> [Block] {
        var table = ReportTable([
            .init("event", .left, shrinks: true), .init("broken"), .init("first s"), .init("median s"),
            .init("last s"), .init("after later event"),
        ])
        for (i, e) in report.events.enumerated() {
            guard let v = e.brokenVisible else { continue }
            table.add([
                "\(i + 1). \(e.at) \(e.action)", F.grouped(e.broken), F.fixed(v.firstSeconds, 3),
                F.fixed(v.medianSeconds, 3), F.fixed(v.lastSeconds, 3), F.grouped(v.afterLaterEvent),
            ])
        }
        guard case .cells = table.rows.first else { return [] }
        return [.heading("When breaks became visible"), .table(table), .notes([Self.visibilityNote])]
    }

    /// The loud line for a disruptive `config=FILE` event (also a warning).
    static func disruptiveNote(_ e: ReplayReport.EventResult) -> String {
        "DISRUPTIVE: event '\(e.at):config=\(e.target)': \(e.disruptive.joined(separator: "; ")). "
            + "A live reload refuses it unless --allow-disruptive-reload; the replay applied it."
    }

    /// Per VIP and per backend, what each event broke and put at risk.
    func impact() -> [Block] {
        var table = ReportTable([
            .init("event", .left, shrinks: true), .init("vip / backend", .left, shrinks: true), .init("broken"),
            .init("at risk"), .init("slots all"), .init("slots extra"),
        ])
        for (i, e) in report.events.enumerated() where e.reached {
            let label = "\(i + 1). \(e.at) \(e.action)"
            for v in e.byVIP where v.broken > 0 || v.atRisk > 0 || v.slotsChangedAll != 0 {
                table.add([
                    label, "vip " + v.name, F.grouped(v.broken), F.grouped(v.atRisk),
                    v.slotsChangedAll.map { F.percent($0) } ?? "new", v.slotsChangedExtra.map { F.percent($0) } ?? "new",
                ])
            }
            for b in e.byBackend {
                table.add([label, "backend " + b.name, F.grouped(b.broken), F.grouped(b.atRisk), "", ""])
            }
        }
        guard case .cells = table.rows.first else { return [] }
        return [
            .heading("Event impact by VIP and backend"), .table(table),
            .notes([
                "at risk: connections alive at the event whose next packet goes to another backend"
                    + " (their forwarder's connection table and the new tables asked); broken counts those"
                    + " that did send again. A backend's row counts the connections that were on it."
                    + " VIPs not listed: no slot moved, nothing broke.",
            ]),
        ]
    }

    func comparison() -> [Block] {
        guard !report.comparison.isEmpty else { return [] }
        var balance = ReportTable([
            .init("algorithm", .left, shrinks: true), .init("flows max/mean"),
            .init("packets max/mean"), .init("bytes max/mean"), .init("flows CoV"), .init("Jain"),
        ])
        var disruption = ReportTable([
            .init("algorithm", .left, shrinks: true), .init("event", .left, shrinks: true), .init("broken"),
            .init("unavoidable"), .init("collateral"), .init("slots all"), .init("slots extra"),
        ])
        for result in report.comparison {
            let b = result.balance
            balance.add([
                result.algorithm, F.fixed(b.flowsMaxOverMean, 4), F.fixed(b.packetsMaxOverMean, 4),
                F.fixed(b.bytesMaxOverMean, 4), F.fixed(b.flowsCoV, 4), F.fixed(b.jain, 4),
            ])
            for e in result.events {
                disruption.add([
                    result.algorithm, "\(e.at) \(e.action)", F.grouped(e.broken),
                    F.grouped(e.brokenUnavoidable), F.grouped(e.brokenCollateral),
                    F.percent(e.slotsChangedAll), F.percent(e.slotsChangedExtra),
                ])
            }
        }
        var blocks: [Block] = [
            .heading("Algorithms compared on the same trace and events"), .table(balance),
        ]
        if case .cells = disruption.rows.first {
            blocks.append(.notes(["Disruption by algorithm (events as in Events, by when they happened and what they did):"]))
            blocks.append(.table(disruption))
            blocks.append(.notes(Self.eventLegend))
        }
        return blocks
    }
}
