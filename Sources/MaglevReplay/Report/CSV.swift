/// RFC 4180 CSV: CRLF-free rows ending in "\n" (as the decisions CSV always had), fields
/// quoted only when they hold a comma, a double quote, CR or LF, quotes doubled inside.
enum CSV {
    static func field(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 10 || $0 == 13 })
        else { return text }
        return "\"" + text.replacing("\"", with: "\"\"") + "\""
    }

    static func row(_ fields: [String]) -> String { fields.map(field).joined(separator: ",") + "\n" }

    /// The fields of one row (without its line end), quotes undone: the inverse of `row`.
    static func fields(_ line: Substring) -> [String] {
        var fields: [String] = []
        var field = ""
        var quoted = false
        var i = line.startIndex
        while i < line.endIndex {
            let c = line[i]
            i = line.index(after: i)
            if quoted {
                if c == "\"" {
                    if i < line.endIndex && line[i] == "\"" {
                        field.append("\"")
                        i = line.index(after: i)
                    } else {
                        quoted = false
                    }
                } else {
                    field.append(c)
                }
            } else if c == "\"" && field.isEmpty {
                quoted = true
            } else if c == "," {
                fields.append(field)
                field = ""
            } else {
                field.append(c)
            }
        }
        fields.append(field)
        return fields
    }

    /// `--report r.csv`: the per-backend table, in name order, with the same figures as the
    /// JSON report's `backends` (flow share: of all backends' flows, six digits).
    static func backends(_ report: ReplayReport) -> String {
        var out = row(["name", "address", "state", "flows", "connections", "packets", "bytes", "flow_share", "peak_connections"])
        let total = report.backendFlowsTotal
        for b in report.backends {
            out += row([
                b.name, b.address, b.state, "\(b.flows)", "\(b.connections)", "\(b.packets)", "\(b.bytes)",
                ReportFormatting.fixed(fraction(b.flows, of: total), 6), "\(b.peakConnections)",
            ])
        }
        return out
    }
}
