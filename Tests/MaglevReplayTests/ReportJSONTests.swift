import Testing
@testable import MaglevReplay

@Suite struct ReportJSONTests {
    let report = ReportFixture.realistic()

    func parsed(_ report: ReplayReport) throws -> ParsedJSON {
        try ParsedJSON.parse(ReportRenderer.render(report, as: .json))
    }

    @Test func hasEveryContractKeyInOrder() throws {
        let json = try parsed(report)
        #expect(
            json.keys == [
                "inputs", "algorithm", "table_size", "forwarders", "connection_tracking",
                "duration_seconds", "time_went_backwards", "packets", "flows", "connections", "backends", "balance",
                "events", "timeline", "comparison", "warnings",
            ])
        #expect(
            json["packets"]?.keys == [
                "total", "forwarded", "icmp_replies", "passed", "dropped", "dropped_total",
                "skipped", "skipped_by_reason",
            ])
        #expect(json["packets"]?["dropped"]?.keys == ["bad_icmp_quote", "no_backend", "truncated_l4_header"])
        #expect(json["packets"]?["dropped"]?["no_backend"]?.int == 12)
        #expect(json["packets"]?["skipped"]?.int == 9)
        #expect(json["packets"]?["skipped_by_reason"]?["link_type_147"]?.int == 9)
        #expect(json["packets"]?["passed"]?["not_ip"]?.int == 1_204)
        #expect(json["packets"]?["icmp_replies"]?.int == 37)
        #expect(json["packets"]?["total"]?.int == report.packets.total)
        let backend = try #require(json["backends"]?[0])
        for key in ["name", "flows", "packets", "bytes", "connections", "peak_connections", "address", "state"] {
            #expect(backend[key] != nil, "backend lacks \(key)")
        }
        #expect(json["backends"]?.array?.count == 10)
        #expect(backend["name"]?.string == "web-01")
        #expect(backend["flows"]?.int == report.backends[0].flows)
        #expect(
            json["balance"]?.keys == [
                "flows_max_over_mean", "packets_max_over_mean", "bytes_max_over_mean", "flows_cov", "jain",
            ])
        let event = try #require(json["events"]?[0])
        for key in [
            "at", "action", "target", "connections_alive", "broken", "broken_unavoidable",
            "broken_collateral", "packet", "seconds", "slots_changed_all", "slots_changed_extra",
        ] {
            #expect(event[key] != nil, "event lacks \(key)")
        }
        #expect(event["target"]?.string == "web-04")
        #expect(json["timeline"]?.keys == ["bucket_seconds", "start_seconds", "packets_by_backend"])
        #expect(json["timeline"]?["start_seconds"]?.array?.count == 60)
        #expect(json["timeline"]?["packets_by_backend"]?.keys == report.backends.map(\.name))
        #expect(json["timeline"]?["packets_by_backend"]?["web-04"]?.array?.count == 60)
        #expect(json["timeline"]?["packets_by_backend"]?["web-04"]?[30]?.int == 0)
        #expect(json["comparison"]?.array?.map { $0["algorithm"]?.string } == ["maglev", "ring", "rendezvous", "modulo"])
        #expect(json["comparison"]?[3]?["events"]?[0]?["broken_collateral"]?.int == 10_402)
        #expect(json["warnings"]?.array?.count == 2)
    }

    @Test func fractionsHaveSixDecimals() throws {
        let json = try parsed(report)
        #expect(json["balance"]?["flows_max_over_mean"]?.numberText == "1.048213")
        #expect(json["balance"]?["jain"]?.numberText == "0.999005")
        #expect(json["events"]?[0]?["slots_changed_extra"]?.numberText == "0.000977")
        #expect(json["events"]?[1]?["seconds"]?.numberText == "40.112500")
        #expect(json["duration_seconds"]?.numberText == "59.873215")
        #expect(json["timeline"]?["bucket_seconds"]?.numberText == "1.000000")
        #expect(json["timeline"]?["start_seconds"]?[2]?.numberText == "2.000000")
        // Every non-integer number in the document has exactly six digits after the point.
        func check(_ v: ParsedJSON) {
            switch v {
            case .number(let s):
                if let dot = s.firstIndex(of: ".") { #expect(s[s.index(after: dot)...].count == 6, "\(s)") }
            case .object(let m): m.forEach { check($0.1) }
            case .array(let a): a.forEach(check)
            default: break
            }
        }
        check(json)
    }

    @Test func sameModelSameBytes() {
        let a = ReportRenderer.render(ReportFixture.realistic(), as: .json)
        let b = ReportRenderer.render(ReportFixture.realistic(), as: .json)
        #expect(a == b)
        for format in ReportFormat.allCases {
            #expect(ReportRenderer.render(report, as: format) == ReportRenderer.render(report, as: format))
        }
    }

    @Test func comparisonOnlyWhenPresentAndEmptyReportParses() throws {
        var r = report
        r.comparison = []
        #expect(try parsed(r)["comparison"] == nil)
        let empty = try parsed(ReplayReport())
        #expect(empty["backends"]?.array?.isEmpty == true)
        #expect(empty["timeline"]?["bucket_seconds"]?.numberText == "0.000000")
        #expect(empty["timeline"]?["packets_by_backend"]?.keys == [])
        #expect(empty["packets"]?["dropped"]?.keys == [])
    }

    @Test func namesAreEscaped() throws {
        var r = report
        r.backends[0].name = "q\"uote\\back\nline\u{1}"
        let json = try parsed(r)
        #expect(json["backends"]?[0]?["name"]?.string == "q\"uote\\back\nline\u{1}")
    }

    @Test func nonFiniteNumbersAreNull() throws {
        var r = report
        r.balance.jain = .nan
        r.durationSeconds = .infinity
        let json = try parsed(r)
        #expect(json["balance"]?["jain"] == .null)
        #expect(json["duration_seconds"] == .null)
        #expect(json["balance"]?["flows_cov"]?.numberText != nil)
    }

    @Test func textReportsUseTheWritersFixedDigits() {
        // The fixed-digit rules themselves are pinned in MaglevControlTests/JSONWriterTests.
        #expect(ReportFormatting.fixed(0.5, 6) == "0.500000")
        #expect(ReportFormatting.fixed(-1.25, 1) == "-1.3")
        #expect(ReportFormatting.fixed(12, 0) == "12")
    }
}
