import Testing
@testable import MaglevReplay

@Suite struct ReportHTMLTests {
    static let checkedTags: Set<String> = [
        "html", "head", "body", "main", "svg", "table", "thead", "tbody", "tr", "td", "th", "div",
        "figure", "figcaption", "details", "summary", "ul", "li", "p", "title", "desc", "text",
        "style", "h1", "h2",
    ]

    static let reports: [(String, ReplayReport)] = [
        ("realistic", ReportFixture.realistic()), ("hostile", ReportFixture.hostileNames()),
        ("many", ReportFixture.many(1000)), ("one", ReportFixture.many(1)), ("empty", ReplayReport()),
        ("no timeline", { var r = ReportFixture.realistic(); r.timeline = []; r.events = []; return r }()),
    ]

    @Test func wellFormedWithEveryChartTitled() {
        for (name, report) in Self.reports {
            let html = ReportRenderer.render(report, as: .html)
            #expect(html.hasPrefix("<!DOCTYPE html>"), "\(name)")
            #expect(unbalancedTags(in: html, names: Self.checkedTags) == [], "\(name)")
            for (id, title) in [
                ("chart-load", "Load per backend"), ("chart-time", "Load over time"),
                ("chart-disruption", "Disruption per event"),
            ] {
                #expect(html.contains("<title id=\"\(id)-title\">\(title)</title>"), "\(name): \(id)")
                #expect(html.contains("<figcaption>\(title)</figcaption>"), "\(name): \(id)")
            }
            #expect(html.ranges(of: "<svg ").count == 3, "\(name)")
        }
    }

    @Test func selfContained() {
        let html = ReportRenderer.render(ReportFixture.realistic(), as: .html)
        for forbidden in ["<script", "<link", "<img", "@import", "url(", "src=", "href="] {
            #expect(!html.contains(forbidden), "found \(forbidden)")
        }
        #expect(html.contains("<style>"))
    }

    @Test func escapesEveryName() {
        let report = ReportFixture.hostileNames()
        let html = ReportRenderer.render(report, as: .html)
        #expect(!html.contains("<script"))
        #expect(!html.contains("<b>not bold</b>"))
        #expect(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"))
        #expect(html.contains("a&amp;b|c*d_e`f[g]"))
        #expect(html.contains("&lt;/svg&gt;&lt;b&gt;not bold&lt;/b&gt; &amp; &#39;quotes&#39;"))
        // Every '&' starts an entity.
        var rest = Substring(html)
        while let amp = rest.firstIndex(of: "&") {
            let tail = rest[amp...].prefix(8)
            #expect(tail.contains(";") && !tail.hasPrefix("& "), "bare & at \(tail)")
            rest = rest[rest.index(after: amp)...]
        }
    }

    @Test func chartsShowTheirParts() {
        let html = ReportRenderer.render(ReportFixture.realistic(), as: .html)
        // Chart 1: the dashed mean line and both legends.
        #expect(html.contains("mean 10.00%"))
        #expect(html.contains("flows share") && html.contains("packets share"))
        // Chart 2: one area per backend and the event markers.
        #expect(html.ranges(of: "<polygon ").count == 10)
        #expect(html.contains("1. remove web-04") && html.contains("2. add web-10"))
        #expect(html.contains("seconds from the first packet"))
        // Chart 3: slot labels spelled out.
        #expect(html.contains("slots all 11.11%") && html.contains("slots extra 0.10%"))
        #expect(html.contains("unavoidable: their own backend was removed or failed"))
        #expect(html.contains("slots changed (extra)"))
    }

    @Test func edgeCasesSayWhatIsMissing() {
        let empty = ReportRenderer.render(ReplayReport(), as: .html)
        #expect(empty.contains("No backends"))
        #expect(empty.contains("No timeline recorded"))
        #expect(empty.contains("No membership events"))
        let one = ReportRenderer.render(ReportFixture.many(1), as: .html)
        #expect(one.contains("mean 100.00%"))
    }

    @Test func thousandBackendsAggregateBars() {
        let report = ReportFixture.many(1000)
        let (bars, aggregated) = ReportCharts.bars(report)
        #expect(bars.count == ReportCharts.maxBars)
        #expect(aggregated == 961)
        #expect(bars[20].label == "961 others (mean)")
        let series = ReportCharts.series(report)
        #expect(series.count == 10)
        #expect(series.last?.name == "991 others")
        let html = ReportRenderer.render(report, as: .html)
        // Over time: the spread of a thousand backends, not a stack of "others".
        #expect(html.contains("lowest to highest of 1,000 backends"))
        #expect(html.contains("busiest: backend-"))
        #expect(html.contains("… 980 more"))
        #expect(html.contains("All 1,000 backends"))
        // Timeline totals survive aggregation.
        let total = report.timeline.reduce(0) { $0 + $1.packets.reduce(0, +) }
        #expect(series.reduce(0) { $0 + $1.values.reduce(0, +) } == total)
    }

    @Test func niceScales() {
        let s = NiceScale(maximum: 13.7)
        #expect(s.step == 5 && s.top == 15)
        #expect(s.ticks == [0, 5, 10, 15])
        let z = NiceScale(maximum: 0)
        #expect(z.top == 1)
        #expect(NiceScale(maximum: 0.034).label(0.02, suffix: "%") == "0.020%" || NiceScale(maximum: 0.034).step == 0.01)
    }
}
