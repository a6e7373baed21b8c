/// A small JSON parser for the report tests: enough to read back what the renderer wrote
/// (objects keep their key order so order can be checked too).
indirect enum ParsedJSON: Equatable {
    case object([(String, ParsedJSON)])
    case array([ParsedJSON])
    case string(String)
    /// Numbers keep their text so the tests can check the printed precision.
    case number(String)
    case bool(Bool)
    case null

    static func == (a: ParsedJSON, b: ParsedJSON) -> Bool {
        switch (a, b) {
        case (.object(let x), .object(let y)):
            x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case (.array(let x), .array(let y)): x == y
        case (.string(let x), .string(let y)): x == y
        case (.number(let x), .number(let y)): x == y
        case (.bool(let x), .bool(let y)): x == y
        case (.null, .null): true
        default: false
        }
    }

    subscript(key: String) -> ParsedJSON? {
        if case .object(let members) = self { return members.first { $0.0 == key }?.1 }
        return nil
    }
    subscript(index: Int) -> ParsedJSON? {
        if case .array(let items) = self, index < items.count { return items[index] }
        return nil
    }
    var keys: [String] {
        if case .object(let members) = self { return members.map(\.0) }
        return []
    }
    var array: [ParsedJSON]? {
        if case .array(let items) = self { return items }
        return nil
    }
    var numberText: String? {
        if case .number(let s) = self { return s }
        return nil
    }
    var int: Int? { numberText.flatMap { Int($0) } }
    var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    struct ParseError: Error { let offset: Int; let message: String }

    static func parse(_ text: String) throws -> ParsedJSON {
        var p = Parser(bytes: Array(text.utf8))
        let value = try p.value()
        p.skipSpace()
        guard p.i == p.bytes.count else { throw ParseError(offset: p.i, message: "trailing text") }
        return value
    }

    private struct Parser {
        let bytes: [UInt8]
        var i = 0

        mutating func skipSpace() {
            while i < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[i]) { i += 1 }
        }

        mutating func expect(_ c: UInt8) throws {
            skipSpace()
            guard i < bytes.count, bytes[i] == c else {
                throw ParseError(offset: i, message: "expected \(Character(Unicode.Scalar(c)))")
            }
            i += 1
        }

        mutating func literal(_ word: String) throws {
            for b in word.utf8 {
                guard i < bytes.count, bytes[i] == b else { throw ParseError(offset: i, message: "bad literal") }
                i += 1
            }
        }

        mutating func value() throws -> ParsedJSON {
            skipSpace()
            guard i < bytes.count else { throw ParseError(offset: i, message: "end of input") }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                i += 1
                var members: [(String, ParsedJSON)] = []
                skipSpace()
                if bytes[i] == UInt8(ascii: "}") {
                    i += 1
                    return .object(members)
                }
                while true {
                    skipSpace()
                    let key = try string()
                    try expect(UInt8(ascii: ":"))
                    members.append((key, try value()))
                    skipSpace()
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    try expect(UInt8(ascii: "}"))
                    return .object(members)
                }
            case UInt8(ascii: "["):
                i += 1
                var items: [ParsedJSON] = []
                skipSpace()
                if bytes[i] == UInt8(ascii: "]") {
                    i += 1
                    return .array(items)
                }
                while true {
                    items.append(try value())
                    skipSpace()
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    try expect(UInt8(ascii: "]"))
                    return .array(items)
                }
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            default:
                let start = i
                while i < bytes.count, "-+.eE0123456789".utf8.contains(bytes[i]) { i += 1 }
                guard i > start else { throw ParseError(offset: i, message: "unexpected byte") }
                return .number(String(decoding: bytes[start..<i], as: UTF8.self))
            }
        }

        mutating func string() throws -> String {
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else {
                throw ParseError(offset: i, message: "expected a string")
            }
            i += 1
            var out: [UInt8] = []
            while i < bytes.count {
                let b = bytes[i]
                i += 1
                if b == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
                guard b >= 0x20 else { throw ParseError(offset: i, message: "raw control character") }
                if b != UInt8(ascii: "\\") {
                    out.append(b)
                    continue
                }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "u"):
                    let hex = String(decoding: bytes[i..<i + 4], as: UTF8.self)
                    i += 4
                    out += Array(String(Character(Unicode.Scalar(UInt32(hex, radix: 16)!)!)).utf8)
                default: out.append(e)
                }
            }
            throw ParseError(offset: i, message: "unterminated string")
        }
    }
}

/// Checks that the tags named in `names` open and close in a properly nested way.
func unbalancedTags(in html: String, names: Set<String>) -> [String] {
    var stack: [String] = []
    var problems: [String] = []
    var rest = Substring(html)
    while let open = rest.firstIndex(of: "<") {
        guard let close = rest[open...].firstIndex(of: ">") else {
            problems.append("unterminated tag")
            break
        }
        let tag = rest[rest.index(after: open)..<close]
        rest = rest[rest.index(after: close)...]
        let closing = tag.hasPrefix("/")
        let name = String((closing ? tag.dropFirst() : tag).prefix { $0.isLetter || $0.isNumber }).lowercased()
        guard names.contains(name), !tag.hasSuffix("/") else { continue }
        if closing {
            if stack.last == name { stack.removeLast() } else { problems.append("</\(name)> closes \(stack.last ?? "nothing")") }
        } else {
            stack.append(name)
        }
    }
    return problems + stack.map { "<\($0)> never closed" }
}
