import Foundation
import MaglevControl
import Testing

/// The one JSON writer as its producers use it: fixed-digit numbers (reports, bench, table,
/// statistics), the layouts (compact, indented with arrays of scalars on one line, the report
/// layout with objects of scalars on one line too), non-finite numbers as null everywhere,
/// escaping, and a round trip of every case through Foundation's parser.
@Suite struct JSONWriterTests {
    func parse(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
    }

    // MARK: Fixed digits

    @Test func fixedDigits() {
        #expect(JSONValue.number(0.5, digits: 6) == "0.500000")
        #expect(JSONValue.number(1.714_285_7, digits: 6) == "1.714286")
        #expect(JSONValue.number(12, digits: 0) == "12")
        #expect(JSONValue.number(12.5, digits: 0) == "13")
        #expect(JSONValue.number(0, digits: 3) == "0.000")
        #expect(JSONValue.number(1.5, digits: 3) == "1.500")
        #expect(JSONValue.number(100, digits: 1) == "100.0")
        #expect(JSONValue.number(0.000_977, digits: 6) == "0.000977")
        #expect(JSONValue.number(0.000_000_001_234, digits: 9) == "0.000000001")
        // Rounded half away from zero; a negative that rounds to zero has no sign.
        #expect(JSONValue.number(-1.25, digits: 1) == "-1.3")
        #expect(JSONValue.number(-0.000_000_1, digits: 6) == "0.000000")
        #expect(JSONValue.number(-0.0, digits: 2) == "0.00")
        #expect(JSONValue.number(-2.5, digits: 3) == "-2.500")
        // Too large for fixed digits: the shortest form, still a JSON number.
        #expect(JSONValue.number(1e20, digits: 6) == "1e+20")
        #expect(JSONValue.number(-1e300, digits: 1) == "-1e+300")
        // Digits out of range are clamped, never a trap.
        #expect(JSONValue.number(1.5, digits: -1) == "2")
        #expect(JSONValue.number(0.5, digits: 40) == "0." + "5" + String(repeating: "0", count: 17))
        #expect(JSONValue.fixed(2, digits: 3).rendered() == "2.000")
        #expect(JSONValue.fixed(2, digits: 3) != JSONValue.double(2))
    }

    @Test func shortestDoubles() throws {
        #expect(JSONValue.number(2) == "2" && JSONValue.number(-0.0) == "0")
        #expect(JSONValue.number(999_999_999_999_999) == "999999999999999")
        #expect(JSONValue.number(1e15) == "1e+15")
        #expect(JSONValue.number(-1_234_567_890_123_456) == "-1.234567890123456e+15")
        #expect(JSONValue.number(9_007_199_254_740_992) == "9.007199254740992e+15")
        #expect(JSONValue.number(1e16) == "1e+16")
        #expect(JSONValue.number(0.1) == "0.1" && JSONValue.number(1e-5) == "1e-05")
        for d in [1e15, 1_234_567_890_123_456, -4_503_599_627_370_497, 9_007_199_254_740_992, 1e300, .leastNonzeroMagnitude] {
            let back = try #require(try parse(JSONValue.number(d)) as? NSNumber)
            #expect(back.doubleValue == d, "\(d)")
        }
    }

    // MARK: Non-finite numbers

    @Test(arguments: [Double.nan, .infinity, -.infinity, .signalingNaN])
    func nonFiniteIsNullInEveryCaseAndLayout(value: Double) throws {
        #expect(JSONValue.number(value) == "null")
        for digits in [0, 1, 6, 9] { #expect(JSONValue.number(value, digits: digits) == "null") }
        let doc = JSONValue.object([
            ("double", .double(value)), ("fixed", .fixed(value, digits: 6)),
            ("list", .array([.double(value), .fixed(value, digits: 1)])),
            ("inner", .object([("v", .fixed(value, digits: 3))])),
        ])
        for layout in [JSONValue.Layout.compact, .indented, .report] {
            let text = doc.rendered(layout)
            #expect(!text.lowercased().contains("nan") && !text.lowercased().contains("inf"), "\(text)")
            let back = try #require(try parse(text) as? [String: Any])
            #expect(back["double"] is NSNull && back["fixed"] is NSNull)
            #expect((back["list"] as? [Any])?.allSatisfy { $0 is NSNull } == true)
            #expect((back["inner"] as? [String: Any])?["v"] is NSNull)
        }
        #expect(doc.rendered() == "{\"double\":null,\"fixed\":null,\"list\":[null,null],\"inner\":{\"v\":null}}")
    }

    // MARK: Escaping

    @Test func escaping() {
        #expect(JSONValue.quoted("q\"uote\\back\nline\u{1}") == "\"q\\\"uote\\\\back\\nline\\u0001\"")
        #expect(JSONValue.quoted("tab\there\r") == "\"tab\\there\\r\"")
        #expect(JSONValue.quoted("\u{8}\u{c}\u{1b}\u{7f}") == "\"\\u0008\\u000c\\u001b\\u007f\"")
        // The solidus and non-ASCII are written as they are.
        #expect(JSONValue.quoted("a/b é 😀") == "\"a/b é 😀\"")
        // Keys are escaped the same way, in every layout.
        let v = JSONValue.object([("k\"\n", .string("v\\"))])
        #expect(v.rendered() == "{\"k\\\"\\n\":\"v\\\\\"}")
        #expect(v.rendered(.report) == "{\"k\\\"\\n\": \"v\\\\\"}")
        #expect(v.rendered(.indented) == "{\n  \"k\\\"\\n\": \"v\\\\\"\n}")
    }

    // MARK: Layouts

    /// A table-command-shaped document: what `maglev table --format json` prints.
    let tableLike = JSONValue.object([
        ("algorithm", "maglev"), ("size", 7),
        ("backends", .array([.object([("name", "a"), ("weight", 1), ("slots", 4)]), .object([("name", "b")])])),
        ("max_over_mean", .fixed(1.714_285_7, digits: 6)),
        ("disruption", .object([("removed", 1)])),
        ("table", .array([2, 4, 0, 1])),
        ("empty", .array([])), ("none", .object([])),
    ])

    @Test func compactIsOneLineWithoutSpaces() {
        #expect(
            tableLike.rendered(.compact)
                == "{\"algorithm\":\"maglev\",\"size\":7,\"backends\":[{\"name\":\"a\",\"weight\":1,\"slots\":4},"
                + "{\"name\":\"b\"}],\"max_over_mean\":1.714286,\"disruption\":{\"removed\":1},\"table\":[2,4,0,1],"
                + "\"empty\":[],\"none\":{}}")
        #expect(tableLike.rendered() == tableLike.rendered(.compact))
    }

    @Test func indentedKeepsArraysOfScalarsOnOneLine() {
        #expect(
            tableLike.rendered(.indented) == """
                {
                  "algorithm": "maglev",
                  "size": 7,
                  "backends": [
                    {
                      "name": "a",
                      "weight": 1,
                      "slots": 4
                    },
                    {
                      "name": "b"
                    }
                  ],
                  "max_over_mean": 1.714286,
                  "disruption": {
                    "removed": 1
                  },
                  "table": [2, 4, 0, 1],
                  "empty": [],
                  "none": {}
                }
                """)
        #expect(tableLike.rendered(pretty: true) == tableLike.rendered(.indented))
        // Arrays of arrays, or of scalars and containers, are not "of scalars".
        #expect(JSONValue.array([.array([1]), .array([])]).rendered(.indented) == "[\n  [1],\n  []\n]")
        #expect(JSONValue.array([1, .object([])]).rendered(.indented) == "[\n  1,\n  {}\n]")
        #expect(JSONValue.array([.null, true, "s", .fixed(1, digits: 1)]).rendered(.indented) == "[null, true, \"s\", 1.0]")
    }

    @Test func reportLayoutKeepsObjectsOfScalarsOnOneLine() {
        #expect(
            tableLike.rendered(.report) == """
                {
                  "algorithm": "maglev",
                  "size": 7,
                  "backends": [
                    {"name": "a", "weight": 1, "slots": 4},
                    {"name": "b"}
                  ],
                  "max_over_mean": 1.714286,
                  "disruption": {"removed": 1},
                  "table": [2, 4, 0, 1],
                  "empty": [],
                  "none": {}
                }
                """)
        // Wider indents work as well.
        let four = JSONValue.Layout(indent: 4)
        #expect(JSONValue.object([("a", .object([("b", .array([1, 2]))]))]).rendered(four) == "{\n    \"a\": {\n        \"b\": [1, 2]\n    }\n}")
    }

    // MARK: Integers

    @Test func integersOfEveryWidth() {
        #expect(JSONValue(Int32(-7)) == .int(-7))
        #expect(JSONValue(UInt32.max) == .int(4_294_967_295))
        #expect(JSONValue(UInt64.max).rendered() == "18446744073709551615")
        #expect(JSONValue(UInt64(5)) == .uint(5))
        #expect(JSONValue(UInt8(200)).rendered() == "200")
        #expect(JSONValue(Int.min).rendered() == "-9223372036854775808")
    }

    // MARK: Round trip

    @Test(arguments: [JSONValue.Layout.compact, .indented, .report, .init(indent: 3)])
    func roundTripsThroughJSONSerialization(layout: JSONValue.Layout) throws {
        var controls = ""
        for v in UInt32(0)..<0x20 { controls.unicodeScalars.append(Unicode.Scalar(v)!) }
        controls += "\u{7f}\"\\/é😀\u{2028}"
        let value = JSONValue.object([
            ("fixed", .fixed(59.873_215, digits: 6)), ("fixed0", .fixed(3, digits: 0)),
            ("negative", .fixed(-0.25, digits: 2)), ("double", .double(0.1)),
            ("int", .int(.min)), ("uint", .uint(.max)), ("string", .string(controls)), (controls, true),
            ("series", .array((0..<50).map { .fixed(Double($0) / 8, digits: 3) })),
            ("rows", .array([.object([("n", "x"), ("v", .null)]), .object([("nested", .array([.array([]), .object([])]))])])),
            ("nan", .fixed(.nan, digits: 6)),
        ])
        let text = value.rendered(layout)
        let back = try #require(try parse(text) as? NSDictionary)
        #expect((back["fixed"] as? NSNumber)?.doubleValue == 59.873_215)
        #expect((back["fixed0"] as? NSNumber)?.intValue == 3)
        #expect((back["negative"] as? NSNumber)?.doubleValue == -0.25)
        #expect((back["double"] as? NSNumber)?.doubleValue == 0.1)
        #expect((back["int"] as? NSNumber)?.int64Value == .min)
        #expect((back["uint"] as? NSNumber)?.uint64Value == .max)
        #expect(back["string"] as? String == controls)
        #expect(back[controls] as? Bool == true)
        let series = try #require(back["series"] as? [NSNumber])
        #expect(series.map(\.doubleValue) == (0..<50).map { Double($0) / 8 })
        let rows = try #require(back["rows"] as? [[String: Any]])
        #expect(rows.first?["n"] as? String == "x" && rows.first?["v"] is NSNull)
        #expect(back["nan"] is NSNull)
        #expect(back.count == 11)
        // Same value, same bytes.
        #expect(value.rendered(layout) == text)
    }
}
