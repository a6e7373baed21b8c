/// A JSON value with ordered object keys: the one JSON writer of the CLI (`table`, `bench`),
/// replay reports, the forwarder's statistics (`--json-stats`) and logs, and the admin API.
/// Nothing else in the package writes JSON text.
///
/// Rules, the same for every producer:
/// - Object keys keep the order they were given, so output is deterministic and diffable.
/// - Strings (values and keys) are escaped per RFC 8259: quote, backslash, `\n` `\r` `\t`, the
///   other control characters and DEL as `\u00XX`; everything else is written as UTF-8.
/// - A non-finite number (NaN, infinity), in `.double` or `.fixed`, is always written `null`,
///   never as text a parser rejects (and never as a made-up `0`).
/// - `.double` is the shortest text that reads back the same (integral values without a point);
///   `.fixed(x, digits: n)` has exactly `n` digits after the point (trailing zeros kept, so
///   report columns line up and files stay byte-identical from run to run).
/// - Layout (`Layout`): compact is one line without spaces; indented puts each object member
///   and each array element on its own line, except that an array whose elements are all
///   scalars stays on one line (`[1, 2, 3]`: a table of 65537 slots is one line, not 65537),
///   and, where `scalarObjectsOnOneLine` is set (replay reports), so does an object whose
///   values are all scalars (`{"name": "a", "flows": 3}`: one line per backend).
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    /// A number with exactly `digits` digits after the point (none, and no point, for 0).
    case fixed(Double, digits: Int)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool { a.rendered() == b.rendered() }

    /// How a value is laid out; the text of every scalar is the same in each.
    public struct Layout: Sendable, Equatable {
        /// Spaces per level; 0 is compact (one line, no spaces).
        public var indent: Int
        /// Objects whose values are all scalars stay on one line too.
        public var scalarObjectsOnOneLine: Bool

        public init(indent: Int, scalarObjectsOnOneLine: Bool = false) {
            self.indent = max(0, indent)
            self.scalarObjectsOnOneLine = scalarObjectsOnOneLine
        }

        /// One line, no spaces: log lines, `--json-stats`.
        public static let compact = Layout(indent: 0)
        /// Two spaces per level, arrays of scalars on one line: the CLI, the admin API.
        public static let indented = Layout(indent: 2)
        /// `indented`, and objects of scalars on one line: replay reports.
        public static let report = Layout(indent: 2, scalarObjectsOnOneLine: true)
    }

    /// Compact (one line), or indented by two spaces per level (`Layout.indented`).
    public func rendered(pretty: Bool = false) -> String {
        rendered(pretty ? .indented : .compact)
    }

    public func rendered(_ layout: Layout) -> String {
        var out = ""
        write(to: &out, layout: layout, level: 0)
        return out
    }

    /// Not an array or object.
    public var isScalar: Bool {
        switch self {
        case .array, .object: false
        default: true
        }
    }

    func write(to out: inout String, layout: Layout, level: Int) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .uint(let u): out += String(u)
        case .double(let d): out += JSONValue.number(d)
        case .fixed(let d, let digits): out += JSONValue.number(d, digits: digits)
        case .string(let s): JSONValue.quote(s, into: &out)
        case .array(let items):
            if items.isEmpty {
                out += "[]"
                return
            }
            let oneLine = layout.indent == 0 || items.allSatisfy(\.isScalar)
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += oneLine && layout.indent > 0 ? ", " : "," }
                if !oneLine { JSONValue.newline(&out, layout.indent * (level + 1)) }
                item.write(to: &out, layout: layout, level: level + 1)
            }
            if !oneLine { JSONValue.newline(&out, layout.indent * level) }
            out += "]"
        case .object(let pairs):
            if pairs.isEmpty {
                out += "{}"
                return
            }
            let oneLine = layout.indent == 0 || (layout.scalarObjectsOnOneLine && pairs.allSatisfy(\.1.isScalar))
            out += "{"
            for (i, (key, value)) in pairs.enumerated() {
                if i > 0 { out += oneLine && layout.indent > 0 ? ", " : "," }
                if !oneLine { JSONValue.newline(&out, layout.indent * (level + 1)) }
                JSONValue.quote(key, into: &out)
                out += layout.indent > 0 ? ": " : ":"
                value.write(to: &out, layout: layout, level: level + 1)
            }
            if !oneLine { JSONValue.newline(&out, layout.indent * level) }
            out += "}"
        }
    }

    static func newline(_ out: inout String, _ spaces: Int) {
        out += "\n"
        out += String(repeating: " ", count: spaces)
    }

    /// A finite double in the shortest form that reads back the same; NaN and infinities are null.
    /// Integral values below 10^15 have no point (`2`, not `2.0`); from 10^15 on they are in
    /// exponent form (`1e+15`), also where Swift would write all the digits (up to 2^53).
    public static func number(_ d: Double) -> String {
        guard d.isFinite else { return "null" }
        if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
        let text = "\(d)"
        guard text.hasSuffix(".0"), !text.contains("e") else { return text }
        var digits = String(Int64(d).magnitude)
        let exponent = digits.count - 1
        while digits.hasSuffix("0") { digits.removeLast() }
        let mantissa = digits.count > 1 ? "\(digits.first!).\(digits.dropFirst())" : digits
        return (d < 0 ? "-" : "") + mantissa + "e+" + String(exponent)
    }

    /// A finite double with exactly `digits` digits after the point (rounded half away from
    /// zero; no point when `digits` is 0; never `-0`); NaN and infinities are null. Without
    /// Foundation. A value too large for fixed digits (|x| × 10^digits ≥ 9e18) falls back to
    /// the shortest form, which is still a JSON number.
    public static func number(_ value: Double, digits: Int) -> String {
        guard value.isFinite else { return "null" }
        let digits = min(max(digits, 0), 18)
        var scale: UInt64 = 1
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(value) * Double(scale)).rounded()
        guard scaled < 9.0e18 else { return number(value) }
        let n = UInt64(scaled)
        var frac = String(n % scale)
        if frac.count < digits { frac = String(repeating: "0", count: digits - frac.count) + frac }
        let body = digits > 0 ? "\(n / scale).\(frac)" : "\(n / scale)"
        return value < 0 && n != 0 ? "-" + body : body
    }

    public static func quote(_ s: String, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    /// A quoted JSON string.
    public static func quoted(_ s: String) -> String {
        var out = ""
        quote(s, into: &out)
        return out
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByFloatLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
}

extension JSONValue {
    public init(_ s: String?) { self = s.map { .string($0) } ?? .null }
    public init(_ i: Int) { self = .int(Int64(i)) }
    public init(_ u: UInt64) { self = .uint(u) }
    public init(_ d: Double) { self = .double(d) }
    public init(_ b: Bool) { self = .bool(b) }
    /// Any integer: `.int` where it fits an Int64, `.uint` otherwise.
    public init<T: BinaryInteger>(_ v: T) {
        if let i = Int64(exactly: v) {
            self = .int(i)
        } else {
            self = .uint(UInt64(v))
        }
    }
}
