import Foundation
import MaglevControl
import Testing

/// The one JSON writer: ordered keys, RFC 8259 string escaping, non-finite numbers as null,
/// and output Foundation's parser reads back to the same values.
@Suite struct JSONValueTests {
    /// Parses `text` with Foundation (fragments allowed).
    func parse(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
    }

    @Test func scalars() {
        #expect(JSONValue.null.rendered() == "null")
        #expect(JSONValue.bool(true).rendered() == "true" && JSONValue.bool(false).rendered() == "false")
        #expect(JSONValue.int(-42).rendered() == "-42")
        #expect(JSONValue.int(.min).rendered() == "-9223372036854775808")
        #expect(JSONValue.uint(.max).rendered() == "18446744073709551615")
        #expect(JSONValue.double(2).rendered() == "2")
        #expect(JSONValue.double(0.25).rendered() == "0.25")
        #expect(JSONValue.double(-1.5e300).rendered() == "-1.5e+300")
        // Past 1e15 integral values are written as Swift's shortest form, which reads back exactly.
        for big in [1e15, 1e16, 123_456_789_012_345_678.0, 1e300] {
            #expect(Double(JSONValue.double(big).rendered()) == big)
        }
        #expect(JSONValue.double(-0.0).rendered() == "0")
        #expect(JSONValue("x").rendered() == "\"x\"")
        #expect(JSONValue(nil as String?) == .null)
        #expect(JSONValue(3) == .int(3) && JSONValue(UInt64(3)) == .uint(3) && JSONValue(true) == .bool(true))
        #expect(JSONValue(0.5) == .double(0.5))
    }

    @Test(arguments: [Double.nan, .infinity, -.infinity, .signalingNaN])
    func nonFiniteNumbersAreNull(value: Double) throws {
        #expect(JSONValue.double(value).rendered() == "null")
        #expect(JSONValue.number(value) == "null")
        let doc = JSONValue.object([("v", .double(value)), ("list", .array([.double(value)]))]).rendered()
        #expect(doc == "{\"v\":null,\"list\":[null]}")
        let back = try #require(try parse(doc) as? [String: Any])
        #expect(back["v"] is NSNull)
    }

    @Test func stringEscaping() {
        #expect(JSONValue.quoted("plain") == "\"plain\"")
        #expect(JSONValue.quoted("a\"b\\c/d") == "\"a\\\"b\\\\c/d\"")
        #expect(JSONValue.quoted("\n\r\t") == "\"\\n\\r\\t\"")
        #expect(JSONValue.quoted("\u{0}\u{1}\u{8}\u{c}\u{1f}\u{7f}") == "\"\\u0000\\u0001\\u0008\\u000c\\u001f\\u007f\"")
        #expect(JSONValue.quoted(" ~") == "\" ~\"")
        // Non-ASCII is written as UTF-8, not escaped (RFC 8259 allows both).
        #expect(JSONValue.quoted("é ✓ 😀 \u{2028}") == "\"é ✓ 😀 \u{2028}\"")
        // Combining sequences stay as they are (scalars, not characters).
        #expect(JSONValue.quoted("e\u{301}\r\n") == "\"e\u{301}\\r\\n\"")
    }

    @Test func everyControlCharacterIsEscaped() {
        for v in UInt32(0)..<0x20 {
            let s = String(Character(Unicode.Scalar(v)!))
            let out = JSONValue.quoted(s)
            #expect(!out.unicodeScalars.contains { $0.value < 0x20 }, "U+\(String(v, radix: 16)) -> \(out.debugDescription)")
        }
    }

    @Test func objectsKeepKeyOrderAndEscapeKeys() {
        let v = JSONValue.object([("z", 1), ("a", 2), ("k\"ey\n", "v"), ("m", .array([]))])
        #expect(v.rendered() == "{\"z\":1,\"a\":2,\"k\\\"ey\\n\":\"v\",\"m\":[]}")
        #expect(JSONValue.object([]).rendered() == "{}")
        #expect(JSONValue.array([]).rendered(pretty: true) == "[]")
    }

    @Test func pretty() {
        let v = JSONValue.object([("a", .array([1, .object([("b", .null)])])), ("c", .object([])), ("d", "x")])
        #expect(
            v.rendered(pretty: true) == """
                {
                  "a": [
                    1,
                    {
                      "b": null
                    }
                  ],
                  "c": {},
                  "d": "x"
                }
                """)
    }

    @Test func equalityIsByRendering() {
        #expect(JSONValue.object([("a", 1), ("b", 2)]) != JSONValue.object([("b", 2), ("a", 1)]))
        #expect(JSONValue.double(1) == JSONValue.int(1))
        #expect(JSONValue.double(.nan) == JSONValue.null)
    }

    @Test(arguments: [false, true])
    func roundTripsThroughJSONSerialization(pretty: Bool) throws {
        var weird = ""
        for v in UInt32(0)..<0x80 { weird.unicodeScalars.append(Unicode.Scalar(v)!) }
        weird += "é✓😀\u{2028}\u{2029}\u{FEFF}\u{10FFFF}"
        let value = JSONValue.object([
            ("string", .string(weird)), (weird, .string("key with everything")),
            ("int", .int(-9_007_199_254_740_991)), ("uint", .uint(4_294_967_296)),
            ("double", .double(0.1)), ("tiny", .double(.leastNonzeroMagnitude)), ("huge", .double(1.7976931348623157e308)),
            ("bools", .array([true, false])), ("null", .null), ("nan", .double(.nan)),
            ("nested", .object([("deeper", .array([.object([("x", .array([]))])]))])),
        ])
        let text = value.rendered(pretty: pretty)
        let back = try #require(try parse(text) as? NSDictionary)
        #expect(back["string"] as? String == weird)
        #expect(back[weird] as? String == "key with everything")
        #expect((back["int"] as? NSNumber)?.int64Value == -9_007_199_254_740_991)
        #expect((back["uint"] as? NSNumber)?.uint64Value == 4_294_967_296)
        #expect((back["double"] as? NSNumber)?.doubleValue == 0.1)
        #expect((back["tiny"] as? NSNumber)?.doubleValue == .leastNonzeroMagnitude)
        #expect((back["huge"] as? NSNumber)?.doubleValue == 1.7976931348623157e308)
        #expect((back["bools"] as? [Bool]) == [true, false])
        #expect(back["null"] is NSNull && back["nan"] is NSNull)
        let nested = try #require(back["nested"] as? [String: Any])
        let deeper = try #require(nested["deeper"] as? [[String: Any]])
        #expect((deeper.first?["x"] as? [Any])?.isEmpty == true)
        #expect(back.count == 11)
    }

    @Test func largeUnsignedRoundTrips() throws {
        let back = try #require(try parse(JSONValue.array([.uint(.max)]).rendered()) as? [NSNumber])
        #expect(back.first?.uint64Value == .max)
    }

    @Test func literals() {
        let v = JSONValue.array(["s", 1, true, 2.5])
        #expect(v.rendered() == "[\"s\",1,true,2.5]")
    }

    // MARK: Fixed digits

    @Test(arguments: [
        (3.0, 2, "3.00"), (0.1, 3, "0.100"), (1234.5678, 1, "1234.6"), (0.125, 2, "0.13"), (1.5, 0, "2"),
        (2.5, 0, "3"), (-2.5, 0, "-3"), (-0.125, 2, "-0.13"), (-0.001, 2, "0.00"), (-0.0, 1, "0.0"), (0.0, 0, "0"),
        (42.0, -3, "42"), (0.5, 25, "0.500000000000000000"), (1e300, 2, "1e+300"), (-1e300, 2, "-1e+300"),
    ] as [(Double, Int, String)])
    func fixedDigits(value: Double, digits: Int, text: String) throws {
        #expect(JSONValue.number(value, digits: digits) == text)
        #expect(JSONValue.fixed(value, digits: digits).rendered() == text)
        // Always a JSON number that reads back close to the value.
        let back = try #require(try parse(text) as? NSNumber).doubleValue
        #expect(abs(back - value) <= 0.5 * pow(10, -Double(min(max(digits, 0), 18))) * (1 + 1e-9) || abs(value) > 1e17)
    }

    @Test(arguments: [Double.nan, .infinity, -.infinity])
    func fixedNonFiniteIsNull(value: Double) {
        #expect(JSONValue.fixed(value, digits: 3).rendered() == "null")
        #expect(JSONValue.number(value, digits: 0) == "null")
    }

    // MARK: Shortest form of large numbers

    @Test func largeIntegralDoublesUseTheExponentForm() throws {
        #expect(JSONValue.number(999_999_999_999_999) == "999999999999999")
        #expect(JSONValue.number(1e15) == "1e+15")
        #expect(JSONValue.number(-1e15) == "-1e+15")
        #expect(JSONValue.number(1.5e15) == "1.5e+15")
        #expect(JSONValue.number(9_007_199_254_740_992) == "9.007199254740992e+15")
        for d in [1e15, 1.5e15, 9_007_199_254_740_992, 123_456_789_012_345_680, 1e300, -4e18, 0.1, 1e-7] {
            let text = JSONValue.number(d)
            #expect(!text.hasSuffix(".0"), "\(text)")
            #expect(Double(text) == d, "\(text)")
            #expect((try parse(text) as? NSNumber)?.doubleValue == d, "\(text)")
        }
    }

    @Test func integersOfAnyWidth() {
        #expect(JSONValue(Int32(-5)) == .int(-5))
        #expect(JSONValue(UInt8(7)).rendered() == "7")
        #expect(JSONValue(UInt64.max).rendered() == "18446744073709551615")
        #expect(JSONValue(Int64.min).rendered() == "-9223372036854775808")
    }

    // MARK: Layouts

    static let sample = JSONValue.object([
        ("slots", .array([1, 2, 3])),
        ("backends", .array([.object([("name", "a"), ("flows", 3)]), .object([("name", "b"), ("flows", .fixed(0.5, digits: 2))])])),
        ("empty", .array([])), ("nested", .object([("list", .array([.array([1]), 2]))])),
    ])

    @Test func compactLayout() {
        #expect(
            Self.sample.rendered(.compact)
                == #"{"slots":[1,2,3],"backends":[{"name":"a","flows":3},{"name":"b","flows":0.50}],"empty":[],"nested":{"list":[[1],2]}}"#)
        #expect(Self.sample.rendered() == Self.sample.rendered(.compact))
        #expect(JSONValue.Layout(indent: -3) == .compact)
    }

    @Test func indentedLayoutKeepsArraysOfScalarsOnOneLine() {
        #expect(Self.sample.rendered(pretty: true) == Self.sample.rendered(.indented))
        #expect(
            Self.sample.rendered(.indented) == """
                {
                  "slots": [1, 2, 3],
                  "backends": [
                    {
                      "name": "a",
                      "flows": 3
                    },
                    {
                      "name": "b",
                      "flows": 0.50
                    }
                  ],
                  "empty": [],
                  "nested": {
                    "list": [
                      [1],
                      2
                    ]
                  }
                }
                """)
    }

    @Test func reportLayoutKeepsObjectsOfScalarsOnOneLine() {
        #expect(
            Self.sample.rendered(.report) == """
                {
                  "slots": [1, 2, 3],
                  "backends": [
                    {"name": "a", "flows": 3},
                    {"name": "b", "flows": 0.50}
                  ],
                  "empty": [],
                  "nested": {
                    "list": [
                      [1],
                      2
                    ]
                  }
                }
                """)
        #expect(JSONValue.object([("a", 1)]).rendered(JSONValue.Layout(indent: 4)) == "{\n    \"a\": 1\n}")
    }

    @Test(arguments: [JSONValue.Layout.compact, .indented, .report, JSONValue.Layout(indent: 4)])
    func everyLayoutParsesToTheSameValue(layout: JSONValue.Layout) throws {
        let text = Self.sample.rendered(layout)
        let a = try #require(try parse(text) as? NSDictionary)
        let b = try #require(try parse(Self.sample.rendered(.compact)) as? NSDictionary)
        #expect(a == b)
    }
}
