/// A small JSON value with deterministic key order (insertion order) and fixed number
/// formatting, so report files are byte-identical from run to run and diffable.
///
/// A copy of the CLI's writer (MaglevReplay cannot import MaglevCLI), kept free of Foundation.
enum ReportJSON: Sendable, Equatable {
    case object([Member])
    case array([ReportJSON])
    case string(String)
    case int(Int)
    /// A number printed with `digits` digits after the point (trailing zeros kept).
    case number(Double, digits: Int)
    case bool(Bool)
    case null

    struct Member: Sendable, Equatable {
        var key: String
        var value: ReportJSON
    }

    /// Fractions and seconds: six digits after the point.
    static func fraction(_ value: Double) -> ReportJSON { .number(value, digits: 6) }

    static func obj(_ pairs: KeyValuePairs<String, ReportJSON>) -> ReportJSON {
        .object(pairs.map { Member(key: $0.key, value: $0.value) })
    }

    /// Renders the value; `indent` > 0 pretty-prints objects and arrays of objects, while
    /// arrays of scalars stay on one line so long series stay readable.
    func render(indent: Int = 2) -> String {
        var out = ""
        write(to: &out, level: 0, indent: indent)
        return out
    }

    private var isContainer: Bool {
        switch self {
        case .object, .array: true
        default: false
        }
    }

    private func write(to out: inout String, level: Int, indent: Int) {
        let pad = String(repeating: " ", count: (level + 1) * indent)
        let closePad = String(repeating: " ", count: level * indent)
        switch self {
        case .object(let members):
            if members.isEmpty {
                out += "{}"
                return
            }
            // Objects of scalars (a backend, an event, `dropped`) stay on one line: a thousand
            // backends make a thousand lines, not ten thousand.
            if indent == 0 || !members.contains(where: \.value.isContainer) {
                out += "{"
                for (i, member) in members.enumerated() {
                    out += ReportJSON.quote(member.key) + (indent > 0 ? ": " : ":")
                    member.value.write(to: &out, level: level + 1, indent: 0)
                    if i + 1 < members.count { out += indent > 0 ? ", " : "," }
                }
                out += "}"
                return
            }
            out += "{\n"
            for (i, member) in members.enumerated() {
                out += pad + ReportJSON.quote(member.key) + ": "
                member.value.write(to: &out, level: level + 1, indent: indent)
                if i + 1 < members.count { out += "," }
                out += "\n"
            }
            out += closePad + "}"
        case .array(let items):
            if items.isEmpty || indent == 0 || !items.contains(where: \.isContainer) {
                out += "["
                for (i, item) in items.enumerated() {
                    item.write(to: &out, level: level + 1, indent: 0)
                    if i + 1 < items.count { out += indent > 0 ? ", " : "," }
                }
                out += "]"
                return
            }
            out += "[\n"
            for (i, item) in items.enumerated() {
                out += pad
                item.write(to: &out, level: level + 1, indent: indent)
                if i + 1 < items.count { out += "," }
                out += "\n"
            }
            out += closePad + "]"
        case .string(let s): out += ReportJSON.quote(s)
        case .int(let v): out += String(v)
        case .number(let v, let digits): out += ReportJSON.format(v, digits: digits)
        case .bool(let v): out += v ? "true" : "false"
        case .null: out += "null"
        }
    }

    /// Fixed-point formatting without Foundation; non-finite values become `null`.
    static func format(_ value: Double, digits: Int) -> String {
        guard value.isFinite else { return "null" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let negative = value < 0
        let scaled = (abs(value) * scale).rounded()
        guard scaled < 9.0e18 else { return String(value) }
        let n = UInt64(scaled)
        let whole = n / UInt64(scale)
        var frac = String(n % UInt64(scale))
        while frac.count < digits { frac = "0" + frac }
        let body = digits > 0 ? "\(whole).\(frac)" : "\(whole)"
        return negative && n != 0 ? "-" + body : body
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x2028 || scalar.value == 0x2029 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
