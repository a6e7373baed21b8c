/// One problem in a config file: where it is and what is wrong.
///
/// Printed as `FILE:LINE:COLUMN: FIELD: message` (lines and columns count from 1). A problem
/// that is not about one field (the file cannot be read, the YAML does not parse) has an empty
/// `field` and prints as `FILE:LINE:COLUMN: message`; one about the file as a whole is at line 0.
public struct ConfigProblem: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    /// The field's path, e.g. `vips[0].backends[2].address`, `pools.web[1].weight`.
    public var field: String
    public var message: String

    public var description: String {
        field.isEmpty ? "\(file):\(line):\(column): \(message)" : "\(file):\(line):\(column): \(field): \(message)"
    }

    public init(file: String, line: Int, column: Int, field: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        self.message = message
    }
}

/// Every problem found in a config file (all of them, not just the first), in file order.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var problems: [ConfigProblem]
    public var description: String { problems.map(\.description).joined(separator: "\n") }
    public init(problems: [ConfigProblem]) { self.problems = problems }
}

/// Where a value is in the file: 1-based line and column (0, 0: the file as a whole).
struct SourceLocation: Sendable, Equatable, Comparable {
    var line: Int
    var column: Int

    static let file = SourceLocation(line: 0, column: 0)
    static let start = SourceLocation(line: 1, column: 1)

    static func < (a: SourceLocation, b: SourceLocation) -> Bool { (a.line, a.column) < (b.line, b.column) }
}

/// Collects problems while a file is decoded, so all of them are reported at once.
final class ProblemList {
    let file: String
    private(set) var problems: [ConfigProblem] = []

    init(file: String) { self.file = file }

    var isEmpty: Bool { problems.isEmpty }

    func add(_ location: SourceLocation, _ field: String, _ message: String) {
        problems.append(
            ConfigProblem(file: file, line: location.line, column: location.column, field: field, message: message))
    }

    /// The problems in file order (ties keep the order they were found in).
    var sorted: [ConfigProblem] {
        problems.enumerated().sorted { a, b in
            (a.element.line, a.element.column, a.offset) < (b.element.line, b.element.column, b.offset)
        }.map(\.element)
    }
}

/// The closest of `candidates` to a misspelt `word`, when it is close enough to be a typo.
func suggestion(for word: String, among candidates: some Sequence<String>) -> String? {
    let w = Array(word.lowercased().unicodeScalars)
    var best: (String, Int)?
    for candidate in candidates {
        let c = Array(candidate.lowercased().unicodeScalars)
        let d = editDistance(w, c)
        let limit = max(w.count, c.count) <= 4 ? 1 : 2
        if d <= limit, best == nil || d < best!.1 { best = (candidate, d) }
    }
    return best?.0
}

/// " (did you mean 'x'?)" or "".
func didYouMean(_ word: String, among candidates: some Sequence<String>) -> String {
    suggestion(for: word, among: candidates).map { " (did you mean '\($0)'?)" } ?? ""
}

/// Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps.
func editDistance(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar]) -> Int {
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous2 = [Int](repeating: 0, count: b.count + 1)
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            var d = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { d = min(d, previous2[j - 2] + 1) }
            current[j] = d
        }
        (previous2, previous, current) = (previous, current, previous2)
    }
    return previous[b.count]
}
