/// A small JSON value with deterministic key order (insertion order) and fixed number
/// formatting, so machine output is stable from run to run and diffable.
enum JSON: Sendable {
    case object([(String, JSON)])
    case array([JSON])
    case string(String)
    case int(Int)
    /// A number printed with `digits` digits after the point (trailing zeros kept).
    case number(Double, digits: Int)
    case bool(Bool)
    case null

    static func double(_ v: Double, _ digits: Int = 6) -> JSON { .number(v, digits: digits) }

    /// Renders the value; `indent` > 0 pretty-prints nested objects and arrays of objects.
    func render(indent: Int = 2) -> String {
        var out = ""
        write(to: &out, level: 0, indent: indent)
        return out
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
            out += indent > 0 ? "{\n" : "{"
            for (i, (key, value)) in members.enumerated() {
                out += indent > 0 ? pad : ""
                out += JSON.quote(key) + (indent > 0 ? ": " : ":")
                value.write(to: &out, level: level + 1, indent: indent)
                if i + 1 < members.count { out += "," }
                if indent > 0 { out += "\n" }
            }
            out += (indent > 0 ? closePad : "") + "}"
        case .array(let items):
            // Arrays of scalars stay on one line: tables of thousands of indices stay readable.
            let scalar = items.allSatisfy { if case .object = $0 { false } else if case .array = $0 { false } else { true } }
            if items.isEmpty || scalar || indent == 0 {
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
        case .string(let s): out += JSON.quote(s)
        case .int(let v): out += String(v)
        case .number(let v, let digits): out += JSON.format(v, digits: digits)
        case .bool(let v): out += v ? "true" : "false"
        case .null: out += "null"
        }
    }

    /// Fixed-point formatting without Foundation; non-finite values become null.
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
                if scalar.value < 0x20 {
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

/// An error for the person at the terminal: one line that names the problem and, where it
/// helps, what to do. ArgumentParser prints it as `Error: <description>` and exits non-zero.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
