import MaglevControl

/// Number and text formatting shared by the text, markdown and HTML reports: fixed precision,
/// no locale, no Foundation, so the same model always prints the same bytes.
enum ReportFormatting {
    /// `1234567` -> `1,234,567`.
    static func grouped(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
            out.append(c)
        }
        return value < 0 ? "-" + out : out
    }

    /// `digits` digits after the point, as the JSON writer prints fixed numbers (so a text
    /// report and the JSON report agree; a non-finite value prints `null`).
    static func fixed(_ value: Double, _ digits: Int) -> String {
        JSONValue.number(value, digits: digits)
    }

    /// A figure that may be undefined (a balance over zero backends or zero traffic): `n/a`
    /// then, never a number that would read as perfect.
    static func fixed(_ value: Double?, _ digits: Int) -> String {
        guard let value else { return "n/a" }
        return fixed(value, digits)
    }

    /// A fraction as a percentage: `0.12345` -> `12.35%`.
    static func percent(_ fraction: Double, digits: Int = 2) -> String {
        fixed(fraction * 100, digits) + "%"
    }

    /// Bytes with binary units: `512 B`, `1.5 KiB`, `12.3 MiB`, three significant digits.
    static func bytes(_ value: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var v = Double(value)
        var unit = 0
        while abs(v) >= 1024 && unit + 1 < units.count {
            v /= 1024
            unit += 1
        }
        if unit == 0 { return "\(value) B" }
        let digits = abs(v) >= 100 ? 0 : abs(v) >= 10 ? 1 : 2
        return fixed(v, digits) + " " + units[unit]
    }

    /// Seconds with millisecond precision: `12.345 s`.
    static func seconds(_ value: Double) -> String { fixed(value, 3) + " s" }

    /// Terminal columns a string takes: one per character (wide CJK glyphs are not measured).
    static func width(_ s: String) -> Int { s.count }

    /// Cuts `s` to at most `width` columns, ending in "…" when something was cut.
    static func truncate(_ s: String, to width: Int) -> String {
        guard s.count > width else { return s }
        guard width > 1 else { return String(s.prefix(max(width, 0))) }
        return String(s.prefix(width - 1)) + "…"
    }

    /// Word-wraps `text` to `width` columns; the first line starts with `first`, the rest with
    /// `rest`. Words longer than a line are cut across lines.
    static func wrap(_ text: String, width: Int, first: String = "", rest: String = "")
        -> [String]
    {
        var lines: [String] = []
        var line = first
        var lineHasWord = false
        for word in text.split(separator: " ", omittingEmptySubsequences: true) {
            var word = String(word)
            let room = width - line.count - (lineHasWord ? 1 : 0)
            if word.count <= room {
                line += (lineHasWord ? " " : "") + word
                lineHasWord = true
                continue
            }
            if lineHasWord {
                lines.append(line)
                line = rest
                lineHasWord = false
            }
            // A word wider than a whole line: cut it.
            while line.count + word.count > width {
                let take = max(width - line.count, 1)
                lines.append(line + String(word.prefix(take)))
                word = String(word.dropFirst(take))
                line = rest
            }
            line += word
            lineHasWord = !word.isEmpty
        }
        if lineHasWord || lines.isEmpty { lines.append(line) }
        return lines
    }

    /// Escapes the characters markdown would read as markup, so names print as written.
    static func markdownEscaped(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "\\", "|", "*", "_", "`", "<", "[", "]", "~":
                out.append("\\")
                out.append(c)
            case "\n", "\r", "\t": out.append(" ")
            default: out.append(c)
            }
        }
        return out
    }

    /// Escapes text for HTML element content and attribute values.
    static func htmlEscaped(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                // Control characters other than tab and newline are not allowed in HTML.
                if scalar.value < 0x20 && scalar != "\t" && scalar != "\n" {
                    out += " "
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// "1 item" / "3 items".
    static func count(_ n: Int, _ singular: String, _ plural: String? = nil) -> String {
        "\(grouped(n)) " + (n == 1 ? singular : plural ?? singular + "s")
    }
}

/// A table printed as aligned columns (text) or as a markdown table, never wider than
/// `maxWidth`: the column marked `shrinks` (a name) gives up width first, cut with "…".
struct ReportTable {
    enum Alignment { case left, right }

    struct Column {
        var title: String
        var alignment: Alignment
        var shrinks: Bool
        init(_ title: String, _ alignment: Alignment = .right, shrinks: Bool = false) {
            self.title = title
            self.alignment = alignment
            self.shrinks = shrinks
        }
    }

    enum Row {
        case cells([String])
        /// A line across the table ("… 980 more").
        case note(String)
    }

    var columns: [Column]
    var rows: [Row] = []

    init(_ columns: [Column]) { self.columns = columns }

    mutating func add(_ cells: [String]) { rows.append(.cells(cells)) }
    mutating func addNote(_ note: String) { rows.append(.note(note)) }

    private func cell(_ row: [String], _ i: Int, markdown: Bool) -> String {
        let raw = i < row.count ? row[i] : ""
        return markdown ? ReportFormatting.markdownEscaped(raw) : raw
    }

    /// Column widths that fit `maxWidth`, cutting the shrinking columns where needed.
    private func widths(markdown: Bool, compact: Bool = false, maxWidth: Int) -> [Int] {
        var widths = columns.map { ReportFormatting.width($0.title) }
        for row in rows {
            switch row {
            case .cells(let row):
                for i in columns.indices {
                    widths[i] = max(
                        widths[i], ReportFormatting.width(cell(row, i, markdown: markdown)))
                }
            case .note(let note):
                // Text prints a note across the table; markdown puts it in the first column.
                if markdown && !columns.isEmpty {
                    widths[0] = max(widths[0], ReportFormatting.width(note))
                }
            }
        }
        let overhead =
            markdown
            ? (compact ? columns.count + 1 : 3 * columns.count + 1)
            : 2 * max(columns.count - 1, 0)
        var excess = widths.reduce(overhead, +) - maxWidth
        // Take one column at a time from the widest shrinking column, down to a floor.
        let floors = columns.map { max(ReportFormatting.width($0.title), 6) }
        while excess > 0 {
            let candidates = columns.indices.filter { columns[$0].shrinks && widths[$0] > floors[$0] }
            guard let widest = candidates.max(by: { widths[$0] < widths[$1] }) else { break }
            widths[widest] -= 1
            excess -= 1
        }
        return widths
    }

    private func pad(_ s: String, _ width: Int, _ alignment: Alignment) -> String {
        let fill = String(repeating: " ", count: max(width - ReportFormatting.width(s), 0))
        return alignment == .left ? s + fill : fill + s
    }

    /// Aligned columns two spaces apart under a dashed rule.
    func text(maxWidth: Int = 100, indent: String = "") -> [String] {
        let widths = widths(markdown: false, maxWidth: maxWidth - indent.count)
        func line(_ cells: [String]) -> String {
            var parts: [String] = []
            for i in columns.indices {
                let s = ReportFormatting.truncate(cells[i], to: widths[i])
                let last = i == columns.count - 1 && columns[i].alignment == .left
                parts.append(last ? s : pad(s, widths[i], columns[i].alignment))
            }
            return indent + parts.joined(separator: "  ")
        }
        var out = [line(columns.map(\.title))]
        out.append(indent + widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "))
        for row in rows {
            switch row {
            case .cells(let cells): out.append(line(columns.indices.map { cell(cells, $0, markdown: false) }))
            case .note(let note):
                out.append(ReportFormatting.truncate(indent + note, to: maxWidth))
            }
        }
        return out
    }

    /// A markdown table, padded so it also reads well as plain text; a table too wide for
    /// padding drops the spaces around the pipes (`|a|b|`) before it cuts any name.
    func markdown(maxWidth: Int = 100) -> [String] {
        let natural = widths(markdown: true, maxWidth: Int.max)
        let compact = natural.reduce(3 * columns.count + 1, +) > maxWidth
        let widths = widths(markdown: true, compact: compact, maxWidth: maxWidth)
        let space = compact ? "" : " "
        func fit(_ s: String, _ i: Int) -> String {
            // Never leave an escaping backslash alone before the "…".
            var s = ReportFormatting.truncate(s, to: widths[i])
            if s.hasSuffix("\\…") { s = String(s.dropLast(2)) + "…" }
            return s
        }
        func line(_ cells: [String]) -> String {
            "|" + space
                + columns.indices.map { pad(fit(cells[$0], $0), widths[$0], columns[$0].alignment) }
                .joined(separator: space + "|" + space) + space + "|"
        }
        var out = [line(columns.map(\.title))]
        out.append(
            "|"
                + columns.indices.map { i in
                    let dashes = String(repeating: "-", count: max(widths[i] + (compact ? -1 : 1), 2))
                    return columns[i].alignment == .left ? ":" + dashes : dashes + ":"
                }.joined(separator: "|") + "|")
        for row in rows {
            switch row {
            case .cells(let cells):
                out.append(line(columns.indices.map { cell(cells, $0, markdown: true) }))
            case .note(let note):
                out.append(
                    line(
                        [ReportFormatting.markdownEscaped(note)]
                            + Array(repeating: "", count: columns.count - 1)))
            }
        }
        return out
    }
}
