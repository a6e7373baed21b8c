import Testing
@testable import MaglevReplay

@Suite struct ReportTextTests {
    static let reports: [(String, ReplayReport)] = [
        ("realistic", ReportFixture.realistic()), ("hostile", ReportFixture.hostileNames()),
        ("many", ReportFixture.many(1000)), ("one", ReportFixture.many(1)), ("empty", ReplayReport()),
    ]

    @Test(arguments: [ReportFormat.text, .markdown])
    func noLineWiderThanHundredColumns(format: ReportFormat) {
        for (name, report) in Self.reports {
            let out = ReportRenderer.render(report, as: format)
            for line in out.split(separator: "\n", omittingEmptySubsequences: false) {
                #expect(line.count <= 100, "\(name) \(format): \(line.count) columns: \(line)")
            }
            #expect(out.hasSuffix("\n"))
        }
    }

    @Test func textHasEverySection() {
        let out = ReportRenderer.render(ReportFixture.realistic(), as: .text)
        for needle in [
            "Summary", "captures/edge-fra1-extra.pcap", "forwarded", "3,407,150", "passed: not_ip 1,204",
            "dropped: bad_icmp_quote 3, no_backend 12", "skipped: link_type_147 9", "59.873 s",
            "Backends (10)", "flow share", "peak conns", "draining", "216 MiB",
            "Balance", "flows max/mean    1.0482", "Jain index", "flows CoV",
            "Events", "unavoidable", "collateral", "slots all", "slots extra",
            "slots extra: slots that changed owner although their", "Algorithms compared", "rendezvous",
            "Warnings", "truncated",
        ] {
            #expect(out.contains(needle), "missing \(needle)")
        }
        // Columns line up: every backend row puts its state at the same column.
        let rows = out.split(separator: "\n").filter { $0.hasPrefix("web-") }
        #expect(rows.count == 10)
        let headerLine = out.split(separator: "\n").first { $0.hasPrefix("name ") }!
        let stateColumn = headerLine.distance(from: headerLine.startIndex, to: headerLine.firstRange(of: "state")!.lowerBound)
        for row in rows {
            let state = row.dropFirst(stateColumn)
            #expect(["active", "removed", "draining"].contains(String(state)), "\(row)")
        }
    }

    @Test func markdownUsesHeadingsAndTables() {
        let out = ReportRenderer.render(ReportFixture.realistic(), as: .markdown)
        #expect(out.hasPrefix("# Maglev replay report\n"))
        for heading in ["## Summary", "## Backends (10)", "## Balance", "## Events", "## Warnings"] {
            #expect(out.contains("\n" + heading + "\n"), "missing \(heading)")
        }
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false)
        // Every table: header, delimiter row, rows, all with the same number of cells, and a
        // blank line before it.
        for (i, line) in lines.enumerated() where line.hasPrefix("|:") || line.hasPrefix("|-") {
            let header = lines[i - 1]
            #expect(lines[i - 2].isEmpty, "no blank line before table \(header)")
            func cells(_ s: Substring) -> Int { s.replacing("\\|", with: "").filter { $0 == "|" }.count }
            var j = i + 1
            while j < lines.count, lines[j].hasPrefix("|") {
                #expect(cells(lines[j]) == cells(header), "\(lines[j])")
                j += 1
            }
        }
        #expect(out.contains("not\\_ip"))
    }

    @Test func markdownEscapesNames() {
        let out = ReportRenderer.render(ReportFixture.hostileNames(), as: .markdown)
        #expect(out.contains("\\<script>alert"))
        #expect(out.contains("a&b\\|c\\*d\\_e\\`f\\[g\\]"))
        #expect(!out.contains("| <script>"))
    }

    @Test func manyBackendsShowTopAndBottomTen() {
        let report = ReportFixture.many(1000)
        for format in [ReportFormat.text, .markdown] {
            let out = ReportRenderer.render(report, as: format)
            #expect(out.contains("… 980 more"))
            let rows = out.split(separator: "\n").filter { $0.hasPrefix("backend-") || $0.hasPrefix("| backend-") }
            #expect(rows.count == 20, "\(format)")
        }
        let text = ReportRenderer.render(report, as: .text)
        let order = report.backendIndicesByFlowsDescending
        let first = report.backends[order[0]].name
        let last = report.backends[order[999]].name
        #expect(text.contains(first) && text.contains(last))
        #expect(!text.contains(report.backends[order[500]].name + " "))
    }

    @Test func smallCountsListEveryBackendInNameOrder() {
        let report = ReportFixture.many(25)
        let out = ReportRenderer.render(report, as: .text)
        #expect(!out.contains("more"))
        let rows = out.split(separator: "\n").filter { $0.hasPrefix("backend-") }
        #expect(rows.map { String($0.prefix(12)) } == report.backends.map(\.name))
    }

    @Test func emptyReportSaysSo() {
        let out = ReportRenderer.render(ReplayReport(), as: .text)
        #expect(out.contains("No backends."))
        #expect(out.contains("No membership events."))
        #expect(!out.contains("Algorithms compared"))
        #expect(!out.contains("Warnings"))
    }

    @Test func formatting() {
        typealias F = ReportFormatting
        #expect(F.grouped(0) == "0")
        #expect(F.grouped(999) == "999")
        #expect(F.grouped(1000) == "1,000")
        #expect(F.grouped(-1_234_567) == "-1,234,567")
        #expect(F.bytes(512) == "512 B")
        #expect(F.bytes(1536) == "1.50 KiB")
        #expect(F.bytes(226_492_416) == "216 MiB")
        #expect(F.percent(0.123456) == "12.35%")
        #expect(F.truncate("abcdef", to: 4) == "abc…")
        #expect(F.wrap("aa bb cc", width: 5) == ["aa bb", "cc"])
        #expect(F.wrap(String(repeating: "x", count: 12), width: 5, first: "", rest: "") == ["xxxxx", "xxxxx", "xx"])
    }
}
