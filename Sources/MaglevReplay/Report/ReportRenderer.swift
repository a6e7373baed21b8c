public enum ReportFormat: String, Sendable, CaseIterable {
    case json, text, markdown, html, csv

    /// The format a report file's extension asks for: .json, .txt, .md, .html, .csv.
    public init?(pathExtension path: String) {
        if path.hasSuffix(".json") { self = .json }
        else if path.hasSuffix(".txt") { self = .text }
        else if path.hasSuffix(".md") { self = .markdown }
        else if path.hasSuffix(".html") || path.hasSuffix(".htm") { self = .html }
        else if path.hasSuffix(".csv") { self = .csv }
        else { return nil }
    }

    /// The extensions `init(pathExtension:)` knows, for messages.
    public static let extensions = [".json", ".txt", ".md", ".html", ".csv"]
}

/// Renders a `ReplayReport`. Every format is deterministic: the same model gives the same
/// bytes. Disruption is reported under both metrics, each labelled: "all" (every table slot
/// that changed owner) and "extra" (slots whose old owner survived).
public enum ReportRenderer {
    /// - `.json`: one object, snake_case keys, fractions with six digits after the point.
    /// - `.text`, `.markdown`: the terminal view, at most 100 columns per line.
    /// - `.html`: one self-contained page (inline CSS and SVG charts, no scripts).
    /// - `.csv`: the per-backend table (RFC 4180), one row per backend.
    public static func render(_ report: ReplayReport, as format: ReportFormat) -> String {
        switch format {
        case .json: JSONReport.render(report)
        case .text: TextReport.render(report, markdown: false)
        case .markdown: TextReport.render(report, markdown: true)
        case .html: HTMLReport.render(report)
        case .csv: CSV.backends(report)
        }
    }
}
