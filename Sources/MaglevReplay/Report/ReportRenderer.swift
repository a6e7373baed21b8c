// PLACEHOLDER: the reports engineer replaces this file with the real renderers (same API).

public enum ReportFormat: String, Sendable, CaseIterable {
    case json, text, markdown, html

    /// The format a report file's extension asks for: .json, .txt, .md, .html.
    public init?(pathExtension path: String) {
        if path.hasSuffix(".json") { self = .json }
        else if path.hasSuffix(".txt") { self = .text }
        else if path.hasSuffix(".md") { self = .markdown }
        else if path.hasSuffix(".html") || path.hasSuffix(".htm") { self = .html }
        else { return nil }
    }
}

public enum ReportRenderer {
    public static func render(_ report: ReplayReport, as format: ReportFormat) -> String { "" }
}
