public import MaglevControl

/// `maglev diff` output: text (the terminal, at most 100 columns), JSON (the one writer,
/// `JSONValue`) or HTML (the replay report's page style and tables).
public enum DiffReport {
    private typealias F = ReportFormatting

    public static func json(_ d: ConfigDiff) -> JSONValue {
        func byBackend(_ list: [(name: String, count: Int)]) -> JSONValue {
            .object(list.map { ($0.name, JSONValue($0.count)) })
        }
        func changes(_ list: [ConfigDiff.Change]) -> JSONValue {
            .array(list.map { .object([("name", .string($0.name)), ("from", .string($0.from)), ("to", .string($0.to))]) })
        }
        let vips: [JSONValue] = d.vips.map { v in
            var m: [(String, JSONValue)] = [
                ("name", .string(v.name)),
                ("status", .string(v.status)),
                // Fractions of the VIP's flow-hash space whose backend changes ("all"), and of
                // those whose old backend stays in the table ("extra"); null for added/removed.
                ("slots_changed_all", .fraction(v.slotsChangedAll)),
                ("slots_changed_extra", .fraction(v.slotsChangedExtra)),
                ("backends_added", .array(v.backendsAdded.map { .string($0) })),
                ("backends_removed", .array(v.backendsRemoved.map { .string($0) })),
                ("backends_reweighted", changes(v.backendsReweighted)),
                ("backends_state_changed", changes(v.backendsStateChanged)),
            ]
            if d.trace != nil {
                m.append(("connections_alive", JSONValue(v.connectionsAlive)))
                m.append(("connections_broken", JSONValue(v.connectionsBroken)))
                m.append(("broken_by_backend", byBackend(v.brokenByBackend)))
            }
            return .object(m)
        }
        var members: [(String, JSONValue)] = [
            ("old", .string(d.old)),
            ("new", .string(d.new)),
            ("disruptive", .bool(!d.disruptive.isEmpty)),
            ("disruptive_changes", .array(d.disruptive.map { .string($0) })),
            ("notices", .array(d.notices.map { .string($0) })),
            ("vips", .array(vips)),
        ]
        if let t = d.trace {
            members.append(
                (
                    "trace",
                    .object([
                        ("inputs", .array(t.inputs.map { .string($0) })),
                        ("at", .string(t.at)),
                        ("packet", JSONValue(t.packet)),
                        ("seconds", .fraction(t.seconds)),
                        ("connections_alive", JSONValue(t.connectionsAlive)),
                        ("connections_broken", JSONValue(t.connectionsBroken)),
                        ("broken_by_backend", byBackend(t.brokenByBackend)),
                    ])
                ))
            members.append(("connections_alive", JSONValue(t.connectionsAlive)))
            members.append(("connections_broken", JSONValue(t.connectionsBroken)))
            members.append(("broken_by_backend", byBackend(t.brokenByBackend)))
        }
        return .object(members)
    }

    static func slots(_ v: Double?) -> String { v.map { F.percent($0) } ?? "-" }

    static func backendChanges(_ v: ConfigDiff.VIP) -> String {
        var parts: [String] = []
        if !v.backendsAdded.isEmpty { parts.append("+" + v.backendsAdded.joined(separator: " +")) }
        if !v.backendsRemoved.isEmpty { parts.append("-" + v.backendsRemoved.joined(separator: " -")) }
        for c in v.backendsReweighted { parts.append("\(c.name) weight \(c.from)->\(c.to)") }
        for c in v.backendsStateChanged { parts.append("\(c.name) \(c.from)->\(c.to)") }
        return parts.isEmpty ? "-" : parts.joined(separator: ", ")
    }

    public static func text(_ d: ConfigDiff) -> String {
        var out = ["maglev diff \(d.old) -> \(d.new)", ""]
        if !d.disruptive.isEmpty {
            out += ReportFormatting.wrap(
                "DISRUPTIVE: \(d.disruptive.joined(separator: "; ")). This moves almost every connection to another"
                    + " backend; a live reload refuses it unless --allow-disruptive-reload.", width: 100, first: "", rest: "  ")
            out.append("")
        }
        for n in d.notices { out += ReportFormatting.wrap("notice: \(n)", width: 100, first: "", rest: "  ") }
        if !d.notices.isEmpty { out.append("") }
        var headers: [ReportTable.Column] = [
            .init("vip", .left, shrinks: true), .init("status", .left), .init("slots all"), .init("slots extra"),
        ]
        if d.trace != nil { headers += [.init("alive"), .init("broken")] }
        headers.append(.init("backends", .left, shrinks: true))
        var table = ReportTable(headers)
        for v in d.vips {
            var row = [v.name, v.status, slots(v.slotsChangedAll), slots(v.slotsChangedExtra)]
            if d.trace != nil { row += [F.grouped(v.connectionsAlive), F.grouped(v.connectionsBroken)] }
            row.append(backendChanges(v))
            table.add(row)
        }
        out += table.text(maxWidth: 100)
        out.append("")
        out += ReportFormatting.wrap(
            "slots all: the share of the VIP's flows (of its flow-hash space) whose backend changes; slots extra:"
                + " those whose old backend stays (the avoidable part).", width: 100, first: "  ", rest: "    ")
        if let t = d.trace {
            out.append("")
            out.append(
                "Trace \(t.inputs.joined(separator: ", ")), NEW applied at \(t.at) (packet \(F.grouped(t.packet)), "
                    + "\(F.fixed(t.seconds, 3)) s):")
            out.append("  connections alive: \(F.grouped(t.connectionsAlive))")
            out.append("  connections NEW would break: \(F.grouped(t.connectionsBroken))")
            if !t.brokenByBackend.isEmpty {
                var b = ReportTable([.init("was on backend", .left, shrinks: true), .init("broken")])
                for (name, count) in t.brokenByBackend { b.add([name, F.grouped(count)]) }
                out += b.text(maxWidth: 100, indent: "  ")
            }
            out += ReportFormatting.wrap(
                "broken: alive connections whose next packet NEW sends to another backend (each forwarder's"
                    + " connection table kept, as a live reload keeps it).", width: 100, first: "  ", rest: "    ")
        }
        return out.joined(separator: "\n") + "\n"
    }

    public static func html(_ d: ConfigDiff) -> String {
        let esc = HTMLReport.esc
        var h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        h += "<title>maglev diff</title>\n<style>\n\(HTMLReport.style)\n</style>\n</head>\n<body>\n<main>\n"
        h += "<h1>maglev diff</h1>\n<p class=\"sub\">\(esc(d.old)) &rarr; \(esc(d.new))</p>\n"
        if !d.disruptive.isEmpty {
            h += "<p class=\"note\" style=\"color:#a00000\"><b>DISRUPTIVE: \(esc(d.disruptive.joined(separator: "; "))).</b> "
            h += "This moves almost every connection to another backend; a live reload refuses it unless "
            h += "--allow-disruptive-reload.</p>\n"
        }
        if !d.notices.isEmpty {
            h += "<ul class=\"warnings\">\n" + d.notices.map { "<li>\(esc($0))</li>\n" }.joined() + "</ul>\n"
        }
        h += "<h2>VIPs</h2>\n"
        var headers = ["VIP", "status", "slots changed (all)", "slots changed (extra)"]
        if d.trace != nil { headers += ["alive", "broken"] }
        headers.append("backends")
        let rows: [[String]] = d.vips.map { v in
            var row = [v.name, v.status, slots(v.slotsChangedAll), slots(v.slotsChangedExtra)]
            if d.trace != nil { row += [F.grouped(v.connectionsAlive), F.grouped(v.connectionsBroken)] }
            return row + [backendChanges(v)]
        }
        h += HTMLReport.table(headers, rows, numeric: d.trace != nil ? [2, 3, 4, 5] : [2, 3], name: [0])
        h += "<p class=\"note\"><b>slots changed (all)</b>: the share of the VIP's flows whose backend changes; "
        h += "<b>(extra)</b>: those whose old backend stays in the table.</p>\n"
        if let t = d.trace {
            h += "<h2>Trace</h2>\n<p class=\"note\">\(esc(t.inputs.joined(separator: ", "))), NEW applied at "
            h += "\(esc(t.at)) (packet \(F.grouped(t.packet)), \(F.fixed(t.seconds, 3)) s): "
            h += "<b>\(F.grouped(t.connectionsBroken))</b> of \(F.grouped(t.connectionsAlive)) alive connections would "
            h += "break (their next packet goes to another backend).</p>\n"
            if !t.brokenByBackend.isEmpty {
                h += HTMLReport.table(
                    ["was on backend", "broken"], t.brokenByBackend.map { [$0.name, F.grouped($0.count)] }, numeric: [1],
                    name: [0])
            }
        }
        return h + "</main>\n</body>\n</html>\n"
    }
}
