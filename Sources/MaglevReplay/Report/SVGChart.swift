/// A tiny SVG writer: shapes appended as text with coordinates at one decimal, every text
/// escaped. Charts are drawn in a fixed `viewBox` and scale with the page.
struct SVGCanvas {
    let width: Double
    let height: Double
    private(set) var body = ""

    init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    static func n(_ v: Double) -> String { ReportFormatting.fixed(v, 1) }
    private static func esc(_ s: String) -> String { ReportFormatting.htmlEscaped(s) }

    mutating func raw(_ s: String) { body += s + "\n" }

    mutating func rect(
        x: Double, y: Double, width: Double, height: Double, fill: String, tooltip: String? = nil,
        extra: String = ""
    ) {
        var s = "<rect x=\"\(Self.n(x))\" y=\"\(Self.n(y))\" width=\"\(Self.n(max(width, 0)))\""
        s += " height=\"\(Self.n(max(height, 0)))\" fill=\"\(fill)\"\(extra)"
        if let tooltip { s += "><title>\(Self.esc(tooltip))</title></rect>" } else { s += "/>" }
        raw(s)
    }

    mutating func line(
        x1: Double, y1: Double, x2: Double, y2: Double, stroke: String, width: Double = 1,
        dash: String? = nil
    ) {
        var s = "<line x1=\"\(Self.n(x1))\" y1=\"\(Self.n(y1))\" x2=\"\(Self.n(x2))\""
        s += " y2=\"\(Self.n(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(Self.n(width))\""
        if let dash { s += " stroke-dasharray=\"\(dash)\"" }
        raw(s + "/>")
    }

    enum Anchor: String { case start, middle, end }

    mutating func text(
        _ text: String, x: Double, y: Double, anchor: Anchor = .start, size: Double = 12,
        fill: String = "#333", bold: Bool = false, rotate: Double? = nil
    ) {
        var s = "<text x=\"\(Self.n(x))\" y=\"\(Self.n(y))\" font-size=\"\(Self.n(size))\""
        if anchor != .start { s += " text-anchor=\"\(anchor.rawValue)\"" }
        if fill != "#333" { s += " fill=\"\(fill)\"" }
        if bold { s += " font-weight=\"bold\"" }
        if let rotate { s += " transform=\"rotate(\(Self.n(rotate)) \(Self.n(x)) \(Self.n(y)))\"" }
        raw(s + ">" + Self.esc(text) + "</text>")
    }

    mutating func polygon(_ points: [(Double, Double)], fill: String, tooltip: String? = nil) {
        let list = points.map { "\(Self.n($0.0)),\(Self.n($0.1))" }.joined(separator: " ")
        var s = "<polygon points=\"\(list)\" fill=\"\(fill)\" stroke=\"#fff\" stroke-width=\"0.5\""
        if let tooltip { s += "><title>\(Self.esc(tooltip))</title></polygon>" } else { s += "/>" }
        raw(s)
    }

    /// The finished element: `<title>` first (read by screen readers, shown as a tooltip).
    func svg(id: String, title: String, description: String) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"\(id)\" class=\"chart\""
            + " viewBox=\"0 0 \(Self.n(width)) \(Self.n(height))\" role=\"img\""
            + " aria-labelledby=\"\(id)-title \(id)-desc\">\n"
            + "<title id=\"\(id)-title\">\(Self.esc(title))</title>\n"
            + "<desc id=\"\(id)-desc\">\(Self.esc(description))</desc>\n" + body + "</svg>"
    }
}

/// Axis ticks at 1, 2 or 5 times a power of ten, from 0 to at least `maximum`.
struct NiceScale {
    let step: Double
    let top: Double
    var ticks: [Double] {
        var out: [Double] = []
        var i = 0.0
        while i * step <= top + step / 1e6 {
            out.append(i * step)
            i += 1
        }
        return out
    }

    init(maximum: Double, ticks count: Int = 5) {
        let maximum = maximum.isFinite && maximum > 0 ? maximum : 1
        let rough = maximum / Double(max(count, 1))
        var power = 1.0
        while power * 10 <= rough { power *= 10 }
        while power > rough { power /= 10 }
        let step = [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= rough } ?? power * 10
        self.step = step
        self.top = (maximum / step).rounded(.up) * step
    }

    /// A tick label: integers grouped, small steps with the decimals they need.
    func label(_ v: Double, suffix: String = "") -> String {
        if step >= 1 { return ReportFormatting.grouped(Int(v.rounded())) + suffix }
        var digits = 0
        var s = step
        while s < 1 && digits < 6 {
            s *= 10
            digits += 1
        }
        return ReportFormatting.fixed(v, digits) + suffix
    }
}

/// The three charts of the HTML report.
enum ReportCharts {
    /// Tableau 10: distinct, readable on white, friendly to most colour-vision deficiencies.
    static let palette = [
        "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
        "#9c755f", "#bab0ac",
    ]
    static let flowsColour = "#4e79a7"
    static let packetsColour = "#f28e2b"
    static let unavoidableColour = "#8c8c8c"
    static let collateralColour = "#e15759"
    static let axisColour = "#666"
    static let gridColour = "#e5e5e5"

    static let maxBars = 40

    private typealias F = ReportFormatting

    /// Draws the frame of a chart: horizontal grid lines with y tick labels, the axes and the
    /// y-axis title.
    private static func frame(
        _ c: inout SVGCanvas, plot: (x: Double, y: Double, w: Double, h: Double), scale: NiceScale,
        suffix: String, yTitle: String
    ) {
        for tick in scale.ticks {
            let y = plot.y + plot.h - tick / scale.top * plot.h
            c.line(x1: plot.x, y1: y, x2: plot.x + plot.w, y2: y, stroke: gridColour)
            c.text(scale.label(tick, suffix: suffix), x: plot.x - 6, y: y + 4, anchor: .end, size: 11)
        }
        c.line(x1: plot.x, y1: plot.y, x2: plot.x, y2: plot.y + plot.h, stroke: axisColour)
        c.line(
            x1: plot.x, y1: plot.y + plot.h, x2: plot.x + plot.w, y2: plot.y + plot.h,
            stroke: axisColour)
        c.text(
            yTitle, x: 16, y: plot.y + plot.h / 2, anchor: .middle, size: 12, rotate: -90)
    }

    private static func legend(_ c: inout SVGCanvas, x: Double, y: Double, items: [(String, String)])
    {
        var x = x
        for (label, colour) in items {
            c.rect(x: x, y: y - 10, width: 12, height: 12, fill: colour)
            c.text(label, x: x + 17, y: y, size: 12)
            x += 17 + Double(label.count) * 6.6 + 18
        }
    }

    /// A chart with nothing to draw: a short canvas that says why.
    private static func message(_ c: inout SVGCanvas, _ text: String) {
        c = SVGCanvas(width: c.width, height: 90)
        c.text(text, x: c.width / 2, y: 50, anchor: .middle, size: 16, fill: "#777")
    }

    // MARK: 1. Load per backend

    struct Bar {
        var label: String
        var flows: Double
        var packets: Double
        var tooltip: String
    }

    /// Bars of each backend's share of flows and of packets; beyond `maxBars` backends the
    /// busiest and idlest by flows are drawn and the ones between become one bar of their mean.
    static func bars(_ report: ReplayReport) -> (bars: [Bar], aggregated: Int) {
        let flows = report.backendFlowsTotal
        let packets = report.backendPacketsTotal
        func bar(_ i: Int) -> Bar {
            let b = report.backends[i]
            let fs = fraction(b.flows, of: flows)
            let ps = fraction(b.packets, of: packets)
            return Bar(
                label: b.name, flows: fs, packets: ps,
                tooltip: "\(b.name) (\(b.state)): flows \(F.grouped(b.flows)) (\(F.percent(fs))),"
                    + " packets \(F.grouped(b.packets)) (\(F.percent(ps)))")
        }
        let n = report.backends.count
        guard n > maxBars else { return (report.backends.indices.map(bar), 0) }
        let order = report.backendIndicesByFlowsDescending
        let top = maxBars / 2
        let bottom = maxBars - top - 1
        let middle = order[top..<(n - bottom)]
        let count = middle.count
        let mf = Double(middle.reduce(0) { $0 + report.backends[$1].flows }) / Double(count)
        let mp = Double(middle.reduce(0) { $0 + report.backends[$1].packets }) / Double(count)
        let others = Bar(
            label: "\(F.grouped(count)) others (mean)", flows: flows == 0 ? 0 : mf / Double(flows),
            packets: packets == 0 ? 0 : mp / Double(packets),
            tooltip: "the \(F.grouped(count)) backends between the busiest \(top) and the idlest"
                + " \(bottom), as their mean")
        return (order.prefix(top).map(bar) + [others] + order.suffix(bottom).map(bar), count)
    }

    static func loadPerBackend(_ report: ReplayReport) -> String {
        let longest = Double(min(bars(report).bars.map { $0.label.count }.max() ?? 0, 22))
        var c = SVGCanvas(width: 1100, height: 40 + 250 + 24 + longest * 5.2)
        let title = "Load per backend"
        let n = report.backends.count
        let (bars, aggregated) = bars(report)
        let description =
            aggregated > 0
            ? "Share of flows and packets of the \(maxBars / 2) busiest and \(maxBars / 2 - 1)"
                + " idlest of \(n) backends by flows; the \(aggregated) between are one bar of"
                + " their mean. The dashed line is the mean share."
            : "Share of all flows and packets per backend; the dashed line is the mean share (1/\(n))."
        guard !bars.isEmpty else {
            message(&c, "No backends")
            return c.svg(id: "chart-load", title: title, description: "No backends in this replay.")
        }
        let plot = (x: 70.0, y: 40.0, w: 1010.0, h: 250.0)
        let maxShare = bars.map { max($0.flows, $0.packets) }.max() ?? 0
        let mean = 1 / Double(n)
        let scale = NiceScale(maximum: max(maxShare, mean) * 100)
        frame(&c, plot: plot, scale: scale, suffix: "%", yTitle: "share of total (%)")
        let slot = plot.w / Double(bars.count)
        let barWidth = min(slot * 0.38, 28)
        for (i, bar) in bars.enumerated() {
            let centre = plot.x + slot * (Double(i) + 0.5)
            for (value, colour, offset) in [
                (bar.flows, flowsColour, -barWidth), (bar.packets, packetsColour, 0.0),
            ] {
                let h = value * 100 / scale.top * plot.h
                c.rect(
                    x: centre + offset, y: plot.y + plot.h - h, width: barWidth, height: h,
                    fill: colour, tooltip: bar.tooltip)
            }
            let label = F.truncate(bar.label, to: 22)
            let aggregate = aggregated > 0 && i == maxBars / 2
            c.text(
                label, x: centre + 3, y: plot.y + plot.h + 12, anchor: .end,
                size: bars.count > 24 ? 10 : 11, fill: aggregate ? "#b00" : "#333",
                bold: aggregate, rotate: -45)
        }
        let meanY = plot.y + plot.h - mean * 100 / scale.top * plot.h
        c.line(
            x1: plot.x, y1: meanY, x2: plot.x + plot.w, y2: meanY, stroke: "#222", width: 1.5,
            dash: "6 4")
        c.text(
            "mean \(F.percent(mean))", x: plot.x + plot.w - 4, y: meanY - 5, anchor: .end, size: 11,
            fill: "#222")
        legend(
            &c, x: plot.x, y: 22,
            items: [
                ("flows share", flowsColour), ("packets share", packetsColour),
            ])
        c.line(x1: plot.x + 260, y1: 17, x2: plot.x + 290, y2: 17, stroke: "#222", width: 1.5, dash: "6 4")
        c.text("mean share (1/\(n))", x: plot.x + 296, y: 22, size: 12)
        return c.svg(id: "chart-load", title: title, description: description)
    }

    // MARK: 2. Load over time

    /// The series drawn over time: every backend when there are at most ten, otherwise the
    /// nine busiest over the timeline and one "others" series.
    static func series(_ report: ReplayReport) -> [(name: String, values: [Int])] {
        let all = report.backends.indices.map {
            (name: report.backends[$0].name, values: report.timelinePackets(ofBackend: $0))
        }
        guard all.count > palette.count else { return all }
        let totals = all.map { $0.values.reduce(0, +) }
        let order = all.indices.sorted { totals[$0] != totals[$1] ? totals[$0] > totals[$1] : $0 < $1 }
        let shown = Set(order.prefix(palette.count - 1))
        var others = [Int](repeating: 0, count: report.timeline.count)
        for i in all.indices where !shown.contains(i) {
            for (t, v) in all[i].values.enumerated() { others[t] += v }
        }
        let rest = all.count - shown.count
        return all.indices.filter(shown.contains).map { all[$0] }
            + [(name: "\(F.grouped(rest)) others", values: others)]
    }

    static func loadOverTime(_ report: ReplayReport) -> String {
        var c = SVGCanvas(width: 1100, height: 400)
        let title = "Load over time"
        guard !report.timeline.isEmpty, !report.backends.isEmpty else {
            message(&c, "No timeline recorded")
            return c.svg(id: "chart-time", title: title, description: "No timeline in this replay.")
        }
        let bucket = report.timelineBucketSeconds > 0 ? report.timelineBucketSeconds : 1
        if report.backends.count > palette.count {
            return spreadOverTime(report, canvas: c, bucket: bucket)
        }
        let series = series(report)
        let count = report.timeline.count
        var stacked = [[Double]](repeating: [Double](repeating: 0, count: count), count: series.count + 1)
        for (k, s) in series.enumerated() {
            for t in 0..<count { stacked[k + 1][t] = stacked[k][t] + Double(s.values[t]) / bucket }
        }
        let start = report.timeline[0].startSeconds
        let end = max(report.timeline[count - 1].startSeconds + bucket, report.durationSeconds, start + bucket)
        let plot = (x: 80.0, y: 60.0, w: 1000.0, h: 280.0)
        let yScale = NiceScale(maximum: stacked[series.count].max() ?? 0)
        frame(&c, plot: plot, scale: yScale, suffix: "", yTitle: "packets per second")
        func x(_ s: Double) -> Double { plot.x + (s - start) / (end - start) * plot.w }
        func y(_ v: Double) -> Double { plot.y + plot.h - v / yScale.top * plot.h }
        xAxis(&c, plot: plot, start: start, end: end)
        // Each bucket's rate drawn as a flat step across the bucket.
        for k in series.indices {
            var top: [(Double, Double)] = []
            var base: [(Double, Double)] = []
            for t in 0..<count {
                let s0 = report.timeline[t].startSeconds
                let s1 = t + 1 < count ? report.timeline[t + 1].startSeconds : s0 + bucket
                top += [(x(s0), y(stacked[k + 1][t])), (x(s1), y(stacked[k + 1][t]))]
                base += [(x(s0), y(stacked[k][t])), (x(s1), y(stacked[k][t]))]
            }
            let total = series[k].values.reduce(0, +)
            c.polygon(
                top + base.reversed(), fill: palette[k % palette.count],
                tooltip: "\(series[k].name): \(F.grouped(total)) packets")
        }
        eventMarkers(&c, report: report, plot: plot, start: start, end: end)
        var lx = plot.x
        var ly = 20.0
        for (k, s) in series.enumerated() {
            let label = F.truncate(s.name, to: 24)
            let w = 17 + Double(label.count) * 6.6 + 16
            if lx + w > plot.x + plot.w {
                lx = plot.x
                ly += 18
            }
            c.rect(x: lx, y: ly - 10, width: 12, height: 12, fill: palette[k % palette.count])
            c.text(label, x: lx + 17, y: ly, size: 12)
            lx += w
        }
        let description =
            "Packets per second in \(F.fixed(bucket, 3)) s buckets, stacked by backend"
            + (series.count < report.backends.count ? " (the nine busiest, the rest as others)" : "")
            + "; dashed lines mark the membership events."
        return c.svg(id: "chart-time", title: title, description: description)
    }

    /// Beyond ten backends a stack of areas is one colour of "others": draw the spread instead,
    /// per bucket the lowest and highest backend (a band), the mean and the busiest backend.
    static func spreadOverTime(_ report: ReplayReport, canvas: SVGCanvas, bucket: Double) -> String {
        var c = canvas
        let n = report.backends.count
        let count = report.timeline.count
        var low = [Double](repeating: 0, count: count)
        var high = [Double](repeating: 0, count: count)
        var mean = [Double](repeating: 0, count: count)
        for (t, b) in report.timeline.enumerated() {
            let values = (0..<n).map { Double($0 < b.packets.count ? b.packets[$0] : 0) / bucket }
            low[t] = values.min() ?? 0
            high[t] = values.max() ?? 0
            mean[t] = values.reduce(0, +) / Double(n)
        }
        let totals = (0..<n).map { report.timelinePackets(ofBackend: $0).reduce(0, +) }
        let busiest = totals.indices.max { totals[$0] != totals[$1] ? totals[$0] < totals[$1] : $0 > $1 } ?? 0
        let busiestValues = report.timelinePackets(ofBackend: busiest).map { Double($0) / bucket }
        let start = report.timeline[0].startSeconds
        let end = max(report.timeline[count - 1].startSeconds + bucket, report.durationSeconds, start + bucket)
        let plot = (x: 80.0, y: 60.0, w: 1000.0, h: 280.0)
        let yScale = NiceScale(maximum: high.max() ?? 0)
        frame(&c, plot: plot, scale: yScale, suffix: "", yTitle: "packets per second per backend")
        func x(_ s: Double) -> Double { plot.x + (s - start) / (end - start) * plot.w }
        func y(_ v: Double) -> Double { plot.y + plot.h - v / yScale.top * plot.h }
        xAxis(&c, plot: plot, start: start, end: end)
        func steps(_ values: [Double]) -> [(Double, Double)] {
            var out: [(Double, Double)] = []
            for t in 0..<count {
                let s0 = report.timeline[t].startSeconds
                let s1 = t + 1 < count ? report.timeline[t + 1].startSeconds : s0 + bucket
                out += [(x(s0), y(values[t])), (x(s1), y(values[t]))]
            }
            return out
        }
        c.polygon(steps(high) + steps(low).reversed(), fill: "#c6d6ea", tooltip: "lowest to highest backend")
        for (values, colour, width) in [(mean, flowsColour, 2.0), (busiestValues, packetsColour, 1.5)] {
            let points = steps(values).map { "\(SVGCanvas.n($0.0)),\(SVGCanvas.n($0.1))" }
            c.raw(
                "<polyline points=\"\(points.joined(separator: " "))\" fill=\"none\" stroke=\"\(colour)\""
                    + " stroke-width=\"\(SVGCanvas.n(width))\"/>")
        }
        eventMarkers(&c, report: report, plot: plot, start: start, end: end)
        legend(
            &c, x: plot.x, y: 22,
            items: [
                ("lowest to highest of \(F.grouped(n)) backends", "#c6d6ea"),
                ("mean per backend", flowsColour),
                ("busiest: " + F.truncate(report.backends[busiest].name, to: 30), packetsColour),
            ])
        return c.svg(
            id: "chart-time", title: "Load over time",
            description: "Packets per second per backend in \(F.fixed(bucket, 3)) s buckets: the band"
                + " spans the lowest to the highest backend, with the mean and the busiest backend;"
                + " dashed lines mark the membership events.")
    }

    private static func xAxis(
        _ c: inout SVGCanvas, plot: (x: Double, y: Double, w: Double, h: Double), start: Double,
        end: Double
    ) {
        let xScale = NiceScale(maximum: end - start, ticks: 10)
        func x(_ s: Double) -> Double { plot.x + (s - start) / (end - start) * plot.w }
        for tick in xScale.ticks where tick <= end - start + 1e-9 {
            c.line(x1: x(start + tick), y1: plot.y + plot.h, x2: x(start + tick), y2: plot.y + plot.h + 5, stroke: axisColour)
            c.text(xScale.label(start + tick), x: x(start + tick), y: plot.y + plot.h + 18, anchor: .middle, size: 11)
        }
        c.text("seconds from the first packet", x: plot.x + plot.w / 2, y: plot.y + plot.h + 38, anchor: .middle)
    }

    /// Events: a dashed marker and a numbered label, staggered so close events stay legible.
    private static func eventMarkers(
        _ c: inout SVGCanvas, report: ReplayReport, plot: (x: Double, y: Double, w: Double, h: Double),
        start: Double, end: Double
    ) {
        func x(_ s: Double) -> Double { plot.x + (s - start) / (end - start) * plot.w }
        for (i, e) in report.events.enumerated() where e.reached && e.seconds >= start && e.seconds <= end {
            let ex = x(e.seconds)
            c.line(x1: ex, y1: plot.y - 4, x2: ex, y2: plot.y + plot.h, stroke: "#111", width: 1.5, dash: "5 3")
            let label = F.truncate("\(i + 1). \(e.action) \(e.target)".trimmingSuffixSpaces, to: 30)
            let right = ex > plot.x + plot.w * 0.8
            c.text(
                label, x: ex + (right ? -4 : 4), y: plot.y + 10 + Double(i % 3) * 14,
                anchor: right ? .end : .start, size: 11, fill: "#111", bold: true)
        }
    }

    // MARK: 3. Disruption per event

    static func disruption(_ report: ReplayReport) -> String {
        var c = SVGCanvas(width: 1100, height: 400)
        let title = "Disruption per event"
        guard !report.events.isEmpty else {
            message(&c, "No membership events")
            return c.svg(id: "chart-disruption", title: title, description: "No events in this replay.")
        }
        let plot = (x: 80.0, y: 50.0, w: 1000.0, h: 230.0)
        let events = report.events
        let scale = NiceScale(
            maximum: Double(events.map { max($0.broken, $0.brokenUnavoidable + $0.brokenCollateral) }.max() ?? 0))
        frame(&c, plot: plot, scale: scale, suffix: "", yTitle: "broken connections")
        let slot = plot.w / Double(events.count)
        let barWidth = min(slot * 0.5, 90)
        func h(_ v: Int) -> Double { Double(v) / scale.top * plot.h }
        for (i, e) in events.enumerated() {
            let centre = plot.x + slot * (Double(i) + 0.5)
            let base = plot.y + plot.h
            let hu = h(e.brokenUnavoidable)
            let hc = h(e.brokenCollateral)
            c.rect(
                x: centre - barWidth / 2, y: base - hu, width: barWidth, height: hu,
                fill: unavoidableColour,
                tooltip: "\(F.grouped(e.brokenUnavoidable)) unavoidable (their backend left)")
            c.rect(
                x: centre - barWidth / 2, y: base - hu - hc, width: barWidth, height: hc,
                fill: collateralColour,
                tooltip: "\(F.grouped(e.brokenCollateral)) collateral (their backend stayed)")
            c.text(
                e.reached ? "\(F.grouped(e.broken)) of \(F.grouped(e.connectionsAlive)) alive" : "never reached",
                x: centre, y: base - max(hu + hc, h(e.broken)) - 6, anchor: .middle, size: 11,
                bold: true)
            let fine = events.count <= 12
            let label = "\(i + 1). \(e.action) \(e.target)".trimmingSuffixSpaces
            c.text(
                F.truncate(label, to: fine ? 28 : 10), x: centre, y: base + 18, anchor: .middle,
                size: 12)
            if fine {
                c.text(e.reached ? "at \(e.at) (\(F.seconds(e.seconds)))" : "at \(e.at)", x: centre, y: base + 34, anchor: .middle, size: 11, fill: "#555")
                c.text("slots all \(F.percent(e.slotsChangedAll))", x: centre, y: base + 52, anchor: .middle, size: 11, fill: "#555")
                c.text("slots extra \(F.percent(e.slotsChangedExtra))", x: centre, y: base + 67, anchor: .middle, size: 11, fill: "#555")
            }
        }
        legend(
            &c, x: plot.x, y: 22,
            items: [
                ("unavoidable: their own backend was removed or failed", unavoidableColour),
                ("collateral: their backend stayed", collateralColour),
            ])
        c.text(
            "slots all: every table slot that changed owner; slots extra: those whose old owner survived",
            x: plot.x, y: c.height - 10, size: 11, fill: "#555")
        return c.svg(
            id: "chart-disruption", title: title,
            description: "Connections broken by each event, split into unavoidable and collateral,"
                + " with the share of table slots that changed owner (all and extra).")
    }
}

extension String {
    var trimmingSuffixSpaces: String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}
