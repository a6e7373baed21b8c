import MaglevCore
import Yams

// Typed reads of a composed YAML tree (`Yams.Node`) that report every problem with the node's
// line and column and the field's path, and return nil for a value that cannot be used.

extension Node {
    var location: SourceLocation {
        mark.map { SourceLocation(line: $0.line, column: $0.column) } ?? .start
    }

    /// A plain `~`, `null` or empty scalar: the field is there but has no value.
    var isNull: Bool {
        guard case .scalar(let s) = self, s.style == .plain || s.style == .any else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(s.string)
    }

    /// A scalar written without quotes (numbers and booleans must be).
    var plainText: String? {
        guard case .scalar(let s) = self, s.style == .plain || s.style == .any else { return nil }
        return s.string
    }

    /// What the value is, for "expected X, got Y" messages.
    var kindDescription: String {
        switch self {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let s):
            if isNull { return "no value" }
            let text = s.string.count > 40 ? String(s.string.prefix(40)) + "..." : s.string
            return s.style == .plain || s.style == .any ? "'\(text)'" : "the string \"\(text)\""
        }
    }
}

/// The fields of one YAML mapping, after its keys were checked against the schema.
struct Fields {
    let path: String
    let node: Node
    private var entries: [String: (key: Node, value: Node)] = [:]

    init(path: String, node: Node, entries: [String: (key: Node, value: Node)]) {
        self.path = path
        self.node = node
        self.entries = entries
    }

    /// The value of `key`, or nil when the key is absent or has no value (`key:` or `key: ~`).
    subscript(_ key: String) -> Node? {
        guard let v = entries[key]?.value, !v.isNull else { return nil }
        return v
    }

    func has(_ key: String) -> Bool { self[key] != nil }

    /// The path of `key` below this mapping.
    func path(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// Where `key` is written, else where the mapping starts.
    func location(_ key: String) -> SourceLocation { entries[key]?.key.location ?? node.location }
}

/// Turns YAML nodes into typed values, collecting problems.
struct Decoder {
    let problems: ProblemList

    func fail(_ node: Node, _ path: String, _ message: String) {
        problems.add(node.location, path, message)
    }

    func expected(_ what: String, _ node: Node, _ path: String) {
        fail(node, path, "expected \(what), got \(node.kindDescription)")
    }

    /// A mapping whose keys must all be in `keys` (unknown keys are problems, with a suggestion).
    func fields(_ node: Node, _ path: String, keys: [String]) -> Fields? {
        guard case .mapping(let mapping) = node else {
            expected("a mapping", node, path)
            return nil
        }
        var entries: [String: (key: Node, value: Node)] = [:]
        for (key, value) in mapping {
            guard case .scalar(let k) = key else {
                fail(key, path, "keys must be plain words, got \(key.kindDescription)")
                continue
            }
            guard keys.contains(k.string) else {
                let at = path.isEmpty ? "" : " in \(path)"
                let known = keys.map { "'\($0)'" }.joined(separator: ", ")
                let hint = suggestion(for: k.string, among: keys).map { " (did you mean '\($0)'?)" }
                    ?? "; known keys: \(known)"
                fail(key, path.isEmpty ? k.string : "\(path).\(k.string)", "unknown key '\(k.string)'\(at)\(hint)")
                continue
            }
            entries[k.string] = (key, value)
        }
        return Fields(path: path, node: node, entries: entries)
    }

    /// A value that must be present.
    func required(_ fields: Fields, _ key: String, _ what: String) -> Node? {
        if let v = fields[key] { return v }
        problems.add(fields.location(key), fields.path(key), "missing: \(what) is required")
        return nil
    }

    func sequence(_ node: Node, _ path: String) -> [Node]? {
        guard case .sequence(let s) = node else {
            expected("a list", node, path)
            return nil
        }
        return Array(s)
    }

    func string(_ node: Node, _ path: String) -> String? {
        guard case .scalar(let s) = node, !node.isNull else {
            expected("a string", node, path)
            return nil
        }
        return s.string
    }

    /// A non-negative integer in `range`: decimal (underscores allowed) or `0x` hexadecimal.
    func integer(_ node: Node, _ path: String, _ range: ClosedRange<UInt64>, _ what: String = "an integer") -> UInt64? {
        guard let text = node.plainText, !node.isNull else {
            expected(what, node, path)
            return nil
        }
        switch parseInteger(text) {
        case .value(let v):
            if v < range.lowerBound {
                fail(node, path, "must be at least \(range.lowerBound), got \(v)")
                return nil
            }
            if v > range.upperBound {
                fail(node, path, "must be at most \(range.upperBound), got \(text)")
                return nil
            }
            return v
        case .negative:
            fail(node, path, "expected \(what), got \(text): negative values are not allowed")
        case .tooLarge:
            fail(node, path, "must be at most \(range.upperBound), got \(text)")
        case .notInteger:
            expected(what, node, path)
        }
        return nil
    }

    func int(_ node: Node, _ path: String, _ range: ClosedRange<Int>, _ what: String = "an integer") -> Int? {
        integer(node, path, UInt64(range.lowerBound)...UInt64(range.upperBound), what).map { Int($0) }
    }

    func bool(_ node: Node, _ path: String) -> Bool? {
        switch node.plainText {
        case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON": return true
        case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF": return false
        default:
            expected("true or false", node, path)
            return nil
        }
    }

    /// One of `options` (a suggestion is offered for a near miss).
    func choice(_ node: Node, _ path: String, _ options: [String]) -> String? {
        guard case .scalar(let s) = node, !node.isNull else {
            expected("one of \(options.joined(separator: ", "))", node, path)
            return nil
        }
        if options.contains(s.string) { return s.string }
        fail(
            node, path,
            "expected one of \(options.joined(separator: ", ")), got '\(s.string)'\(didYouMean(s.string, among: options))")
        return nil
    }

    /// A duration in milliseconds: "300s", "500ms", "5m", "1h", or a bare number of seconds.
    func duration(_ node: Node, _ path: String) -> UInt32? {
        let what = "a duration such as 300s, 500ms, 5m or a number of seconds"
        guard case .scalar(let s) = node, !node.isNull else {
            expected(what, node, path)
            return nil
        }
        guard let ms = parseDuration(s.string) else {
            expected(what, node, path)
            return nil
        }
        guard ms > 0 else {
            fail(node, path, "must be longer than 0, got \(s.string)")
            return nil
        }
        guard ms <= UInt64(Int32.max) else {
            fail(node, path, "must be at most 2147483647ms (about 24.8 days), got \(s.string)")
            return nil
        }
        return UInt32(ms)
    }

    /// One IP address (IPv4 or IPv6), not a prefix.
    func address(_ node: Node, _ path: String, family: Bool? = nil) -> IPAddress? {
        guard let text = string(node, path) else { return nil }
        if text.contains("/") {
            fail(node, path, "expected an IP address, got the prefix '\(text)'")
            return nil
        }
        guard let address = IPAddress(text) else {
            fail(node, path, "'\(text)' is not an IPv4 or IPv6 address")
            return nil
        }
        if let v6 = family, address.isIPv6 != v6 {
            fail(node, path, "expected an IPv\(v6 ? 6 : 4) address, got '\(text)'")
            return nil
        }
        return address
    }

    /// An address or a prefix `ADDRESS/LENGTH`: the network and its length.
    func prefix(_ node: Node, _ path: String) -> (IPAddress, Int)? {
        guard let text = string(node, path) else { return nil }
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parts[0]) else {
            fail(node, path, "'\(parts[0])' is not an IPv4 or IPv6 address")
            return nil
        }
        let maxLength = address.isIPv6 ? 128 : 32
        guard parts.count == 2 else { return (address, maxLength) }
        guard !parts[1].isEmpty, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), parts[1].count <= 3,
            let length = Int(parts[1]), length <= maxLength
        else {
            fail(
                node, path,
                "prefix length '\(parts[1])' is out of range: an IPv\(address.isIPv6 ? 6 : 4) prefix length is 0-\(maxLength)")
            return nil
        }
        let network = masked(address, length)
        if network != address {
            fail(node, path, "'\(text)' has host bits set: did you mean '\(network)/\(length)'?")
            return nil
        }
        return (address, length)
    }
}

/// `address` with all but the first `length` bits of its family cleared.
func masked(_ address: IPAddress, _ length: Int) -> IPAddress {
    let bits = address.isIPv6 ? length : length + 96
    func mask(_ n: Int) -> UInt64 { n <= 0 ? 0 : n >= 64 ? ~0 : ~(~0 >> UInt64(n)) }
    return IPAddress(high: address.high & mask(bits), low: address.low & mask(bits - 64), isIPv6: address.isIPv6)
}

enum IntegerText: Equatable {
    case value(UInt64)
    case negative
    case tooLarge
    case notInteger
}

/// Decimal with optional `_` separators (`1_048_576`), or `0x` hexadecimal.
func parseInteger(_ text: String) -> IntegerText {
    var t = Substring(text)
    var negative = false
    if t.hasPrefix("-") {
        negative = true
        t = t.dropFirst()
    } else if t.hasPrefix("+") {
        t = t.dropFirst()
    }
    var radix = 10
    if t.hasPrefix("0x") || t.hasPrefix("0X") {
        radix = 16
        t = t.dropFirst(2)
    }
    let digits = t.filter { $0 != "_" }
    guard !digits.isEmpty, !t.hasPrefix("_"), !t.hasSuffix("_"),
        digits.allSatisfy({ $0.isASCII && $0.isHexDigit && (radix == 16 || $0.isNumber) })
    else { return .notInteger }
    guard let v = UInt64(digits, radix: radix) else { return .tooLarge }
    if negative { return v == 0 ? .value(0) : .negative }
    return .value(v)
}

/// Milliseconds of "500ms", "10s", "5m", "1h", or a bare number of seconds; nil if malformed.
func parseDuration(_ text: String) -> UInt64? {
    let units: [(String, UInt64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
    var number = Substring(text)
    var scale: UInt64 = 1000
    for (suffix, s) in units where number.hasSuffix(suffix) {
        number = number.dropLast(suffix.count)
        scale = s
        break
    }
    guard !number.isEmpty, number.allSatisfy({ $0.isASCII && $0.isNumber }), number.count <= 12,
        let v = UInt64(number)
    else { return nil }
    return v * scale
}
