/// One self-contained page: inline CSS, inline SVG charts drawn here, no scripts, no fonts or
/// images from elsewhere. Every piece of text from the model is escaped.
enum HTMLReport {
    private typealias F = ReportFormatting

    static func esc(_ s: String) -> String { F.htmlEscaped(s) }

    static let style = """
        :root { color-scheme: light; }
        body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
          sans-serif; color: #222; background: #fafafa; margin: 0; }
        main { max-width: 1160px; margin: 0 auto; padding: 24px; }
        h1 { font-size: 26px; margin: 0 0 4px; }
        h2 { font-size: 20px; margin: 32px 0 10px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
        .sub { color: #555; margin: 0 0 18px; overflow-wrap: anywhere; }
        .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; }
        .card { background: #fff; border: 1px solid #e2e2e2; border-radius: 6px; padding: 10px 12px; }
        .card b { display: block; font-size: 20px; }
        .card span { color: #666; font-size: 13px; }
        figure { background: #fff; border: 1px solid #e2e2e2; border-radius: 6px; margin: 16px 0;
          padding: 12px; }
        figcaption { font-weight: 600; margin-bottom: 6px; }
        figure p { color: #555; font-size: 13px; margin: 4px 0 0; }
        svg.chart { width: 100%; height: auto; display: block; font-family: inherit; }
        table { border-collapse: collapse; background: #fff; font-size: 14px; margin: 8px 0; }
        th, td { border: 1px solid #e2e2e2; padding: 4px 8px; }
        th { background: #f0f0f0; text-align: left; }
        td.n { text-align: right; font-variant-numeric: tabular-nums; }
        td.name { max-width: 320px; overflow-wrap: anywhere; }
        tr.more td { color: #666; font-style: italic; }
        .note { color: #555; font-size: 13px; max-width: 900px; }
        ul.warnings li { color: #8a4b00; }
        details { margin: 8px 0; }
        """

    static func render(_ report: ReplayReport) -> String {
        var h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        h += "<title>Maglev replay report</title>\n<style>\n\(style)\n</style>\n</head>\n<body>\n<main>\n"
        h += "<h1>Maglev replay report</h1>\n"
        h += "<p class=\"sub\">" + esc(report.inputs.isEmpty ? "(no inputs)" : report.inputs.joined(separator: ", "))
        h += " &middot; \(esc(report.algorithm)), table of \(F.grouped(report.tableSize)) slots, "
        h += esc(F.count(report.forwarders, "forwarder")) + ", connection tracking "
        h += (report.connectionTracking ? "on" : "off") + "</p>\n"
        h += summary(report)
        h += "<h2>Charts</h2>\n"
        h += figure(ReportCharts.loadPerBackend(report), "Load per backend")
        h += figure(ReportCharts.loadOverTime(report), "Load over time")
        h += figure(ReportCharts.disruption(report), "Disruption per event")
        h += packets(report)
        h += backends(report)
        h += balance(report)
        h += events(report)
        h += comparison(report)
        if !report.warnings.isEmpty {
            h += "<h2>Warnings</h2>\n<ul class=\"warnings\">\n"
            for w in report.warnings { h += "<li>\(esc(w))</li>\n" }
            h += "</ul>\n"
        }
        h += "</main>\n</body>\n</html>\n"
        return h
    }

    private static func figure(_ svg: String, _ caption: String) -> String {
        "<figure>\n<figcaption>\(esc(caption))</figcaption>\n\(svg)\n</figure>\n"
    }

    private static func summary(_ r: ReplayReport) -> String {
        let p = r.packets
        let cards: [(String, String)] = [
            (F.grouped(p.total), "packets"),
            (F.grouped(p.forwarded), "forwarded (\(F.percent(fraction(p.forwarded, of: p.total))))"),
            (F.grouped(p.droppedTotal), "dropped"),
            (F.grouped(p.passed.reduce(0) { $0 + $1.count }), "passed (not ours)"),
            (F.grouped(p.skippedTotal), "skipped (not replayed)"),
            (F.grouped(r.flows), "flows"),
            (F.grouped(r.connections), "connections"),
            (F.grouped(r.backends.count), "backends"),
            (F.seconds(r.durationSeconds), "duration"),
            (F.fixed(r.balance.flowsMaxOverMean, 4), "flows max/mean"),
        ]
        var h = "<div class=\"cards\">\n"
        for (value, label) in cards {
            h += "<div class=\"card\"><b>\(esc(value))</b><span>\(esc(label))</span></div>\n"
        }
        return h + "</div>\n"
    }

    /// A table: `numeric` columns are right-aligned; `name` columns may wrap anywhere.
    static func table(
        _ headers: [String], _ rows: [[String]], numeric: Set<Int> = [], name: Set<Int> = [],
        more: (row: Int, text: String)? = nil
    ) -> String {
        var h = "<table>\n<thead><tr>"
        for header in headers { h += "<th>\(esc(header))</th>" }
        h += "</tr></thead>\n<tbody>\n"
        for (r, row) in rows.enumerated() {
            if let more, more.row == r {
                h += "<tr class=\"more\"><td colspan=\"\(headers.count)\">\(esc(more.text))</td></tr>\n"
            }
            h += "<tr>"
            for (i, cell) in row.enumerated() {
                let cls = numeric.contains(i) ? " class=\"n\"" : name.contains(i) ? " class=\"name\"" : ""
                h += "<td\(cls)>\(esc(cell))</td>"
            }
            h += "</tr>\n"
        }
        return h + "</tbody>\n</table>\n"
    }

    private static func reasons(_ list: [(reason: String, count: Int)]) -> String {
        list.isEmpty ? "" : list.map { "\($0.reason) \(F.grouped($0.count))" }.joined(separator: ", ")
    }

    private static func packets(_ r: ReplayReport) -> String {
        let p = r.packets
        func row(_ name: String, _ n: Int, _ why: String) -> [String] {
            [name, F.grouped(n), F.percent(fraction(n, of: p.total)), why]
        }
        return "<h2>Packets</h2>\n"
            + table(
                ["outcome", "packets", "share", "by reason"],
                [
                    row("total", p.total, ""), row("forwarded", p.forwarded, ""),
                    row("ICMP replies", p.icmpReplies, "fragmentation needed / packet too big"),
                    row("passed (not ours)", p.passed.reduce(0) { $0 + $1.count }, reasons(p.passed)),
                    row("dropped", p.droppedTotal, reasons(p.dropped)),
                    row("skipped (not replayed)", p.skippedTotal, reasons(p.skipped)),
                ], numeric: [1, 2])
    }

    private static func backendRow(_ r: ReplayReport, _ i: Int, flows: Int) -> [String] {
        let b = r.backends[i]
        return [
            b.name, b.address, F.grouped(b.flows), F.grouped(b.connections), F.grouped(b.packets),
            F.bytes(b.bytes), F.percent(fraction(b.flows, of: flows)), F.grouped(b.peakConnections),
            b.state,
        ]
    }

    private static let backendHeaders = [
        "name", "address", "flows", "connections", "packets", "bytes", "flow share",
        "peak connections", "state",
    ]

    private static func backends(_ r: ReplayReport) -> String {
        var h = "<h2>Backends</h2>\n"
        guard !r.backends.isEmpty else { return h + "<p class=\"note\">No backends.</p>\n" }
        let flows = r.backendFlowsTotal
        let listed = r.listedBackends()
        let rows = (listed.top + listed.bottom).map { backendRow(r, $0, flows: flows) }
        if listed.omitted > 0 {
            h += "<p class=\"note\">The 10 busiest and the 10 idlest of \(F.grouped(r.backends.count)) backends by flows.</p>\n"
        }
        h += table(
            backendHeaders, rows, numeric: [2, 3, 4, 5, 6, 7], name: [0],
            more: listed.omitted > 0 ? (listed.top.count, "… \(F.grouped(listed.omitted)) more") : nil)
        if listed.omitted > 0 {
            h += "<details><summary>All \(F.grouped(r.backends.count)) backends, by name</summary>\n"
            h += table(
                backendHeaders, r.backends.indices.map { backendRow(r, $0, flows: flows) },
                numeric: [2, 3, 4, 5, 6, 7], name: [0])
            h += "</details>\n"
        }
        return h
    }

    private static func balance(_ r: ReplayReport) -> String {
        let b = r.balance
        return "<h2>Balance</h2>\n<p class=\"note\">Over the backends that own table slots at the end, in VIPs that saw traffic.</p>\n"
            + table(
                ["measure", "value", "meaning"],
                [
                    ["flows max/mean", F.fixed(b.flowsMaxOverMean, 4), "the busiest backend's flows over the mean; 1 is perfect, 1.2 needs 20% headroom"],
                    ["packets max/mean", F.fixed(b.packetsMaxOverMean, 4), "the same for packets"],
                    ["bytes max/mean", F.fixed(b.bytesMaxOverMean, 4), "the same for bytes"],
                    ["flows CoV", F.fixed(b.flowsCoV, 4), "standard deviation / mean of flows per backend; 0 is perfect"],
                    ["Jain index", F.fixed(b.jain, 4), "(Σx)² / (n·Σx²) of flows per backend; 1 is perfect, 1/n means one backend takes all"],
                ], numeric: [1])
    }

    private static let eventNotes = """
        <p class="note"><b>alive</b>: connections open at the event; <b>broken</b>: of those, the \
        ones whose later packets reached another backend; <b>unavoidable</b>: broken because their \
        own backend was removed or failed; <b>collateral</b>: broken although their backend \
        stayed.<br><b>slots changed (all)</b>: every table slot that changed owner; <b>slots \
        changed (extra)</b>: slots that changed owner although their old owner survived. Both \
        are fractions of the table, over all VIPs.</p>

        """

    private static func events(_ r: ReplayReport) -> String {
        var h = "<h2>Events</h2>\n"
        guard !r.events.isEmpty else { return h + "<p class=\"note\">No membership events.</p>\n" }
        h += table(
            [
                "#", "at", "time", "packet", "action", "target", "alive", "broken", "unavoidable",
                "collateral", "slots changed (all)", "slots changed (extra)",
            ],
            r.events.enumerated().map { i, e in
                guard e.reached else {
                    return ["\(i + 1)", e.at, "never reached", "-", e.action, e.target, "-", "-", "-", "-", "-", "-"]
                }
                return [
                    "\(i + 1)", e.at, F.seconds(e.seconds), F.grouped(e.packet), e.action, e.target,
                    F.grouped(e.connectionsAlive), F.grouped(e.broken), F.grouped(e.brokenUnavoidable),
                    F.grouped(e.brokenCollateral), F.percent(e.slotsChangedAll),
                    F.percent(e.slotsChangedExtra),
                ]
            }, numeric: [0, 2, 3, 6, 7, 8, 9, 10, 11], name: [5])
        h += eventNotes
        for e in r.events where !e.disruptive.isEmpty {
            h += "<p class=\"note\" style=\"color:#a00000\"><b>\(esc(TextReport.disruptiveNote(e)))</b></p>\n"
        }
        return h + visibility(r) + impact(r)
    }

    /// When each event's breaks became visible (events with breaks only).
    static func visibility(_ r: ReplayReport) -> String {
        let rows: [[String]] = r.events.enumerated().compactMap { i, e in
            guard let v = e.brokenVisible else { return nil }
            return [
                "\(i + 1). \(e.at) \(e.action)", F.grouped(e.broken), F.seconds(v.firstSeconds), F.seconds(v.medianSeconds),
                F.seconds(v.lastSeconds), F.grouped(v.afterLaterEvent),
            ]
        }
        guard !rows.isEmpty else { return "" }
        var h = "<h3>When breaks became visible</h3>\n"
        h += table(
            ["event", "broken", "first", "median", "last", "after a later event"], rows, numeric: [1, 2, 3, 4, 5])
        h += "<p class=\"note\">\(esc(TextReport.visibilityNote))</p>\n"
        return h
    }

    /// Per VIP and per backend: what each event broke and put at risk.
    static func impact(_ r: ReplayReport) -> String {
        var rows: [[String]] = []
        for (i, e) in r.events.enumerated() where e.reached {
            let label = "\(i + 1). \(e.at) \(e.action)"
            for v in e.byVIP where v.broken > 0 || v.atRisk > 0 || v.slotsChangedAll != 0 {
                rows.append([
                    label, "VIP", v.name, F.grouped(v.broken), F.grouped(v.atRisk),
                    v.slotsChangedAll.map { F.percent($0) } ?? "new", v.slotsChangedExtra.map { F.percent($0) } ?? "new",
                ])
            }
            for b in e.byBackend {
                rows.append([label, "backend", b.name, F.grouped(b.broken), F.grouped(b.atRisk), "", ""])
            }
        }
        guard !rows.isEmpty else { return "" }
        var h = "<h3>Event impact by VIP and backend</h3>\n"
        h += table(
            ["event", "kind", "name", "broken", "at risk", "slots changed (all)", "slots changed (extra)"], rows,
            numeric: [3, 4, 5, 6], name: [2])
        h += "<p class=\"note\"><b>at risk</b>: connections alive at the event whose next packet goes to another "
        h += "backend (their forwarder's connection table and the new tables asked); <b>broken</b> counts those that "
        h += "did send again. A backend's row counts the connections that were on it. VIPs not listed: no slot moved, "
        h += "nothing broke.</p>\n"
        return h
    }

    private static func comparison(_ r: ReplayReport) -> String {
        guard !r.comparison.isEmpty else { return "" }
        var h = "<h2>Algorithms compared on the same trace and events</h2>\n"
        h += table(
            ["algorithm", "flows max/mean", "packets max/mean", "bytes max/mean", "flows CoV", "Jain"],
            r.comparison.map {
                [
                    $0.algorithm, F.fixed($0.balance.flowsMaxOverMean, 4),
                    F.fixed($0.balance.packetsMaxOverMean, 4), F.fixed($0.balance.bytesMaxOverMean, 4),
                    F.fixed($0.balance.flowsCoV, 4), F.fixed($0.balance.jain, 4),
                ]
            }, numeric: [1, 2, 3, 4, 5])
        let rows = r.comparison.flatMap { result in
            result.events.enumerated().map { i, e in
                [
                    result.algorithm, "\(i + 1). \(e.action) \(e.target)".trimmingSuffixSpaces,
                    F.grouped(e.broken), F.grouped(e.brokenUnavoidable), F.grouped(e.brokenCollateral),
                    F.percent(e.slotsChangedAll), F.percent(e.slotsChangedExtra),
                ]
            }
        }
        if !rows.isEmpty {
            h += "<p class=\"note\">Disruption by algorithm (events numbered as above).</p>\n"
            h += table(
                [
                    "algorithm", "event", "broken", "unavoidable", "collateral", "slots changed (all)",
                    "slots changed (extra)",
                ], rows, numeric: [2, 3, 4, 5, 6], name: [1])
            h += eventNotes
        }
        return h
    }
}
