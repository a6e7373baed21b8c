/// Prometheus text exposition (format 0.0.4) built from `MetricFamily` values: each family's
/// HELP and TYPE once, then its samples in the order added. Passes `promtool check metrics`
/// (a test runs it).
public struct MetricsExposition: Sendable {
    private var order: [MetricFamily] = []
    private var samples: [String: [String]] = [:]

    public init() {}

    /// Adds one sample; `labels` are the values of `family.labels`, in order.
    public mutating func add(_ family: MetricFamily, _ labels: [String] = [], _ value: Double) {
        precondition(labels.count == family.labels.count, "\(family.name) takes \(family.labels.count) labels")
        if samples[family.name] == nil {
            order.append(family)
            samples[family.name] = []
        }
        var line = family.name
        if !labels.isEmpty {
            line += "{"
            for (i, (name, value)) in zip(family.labels, labels).enumerated() {
                if i > 0 { line += "," }
                line += name + "=\"" + Self.escape(value) + "\""
            }
            line += "}"
        }
        line += " " + Self.number(value)
        samples[family.name]!.append(line)
    }

    public mutating func add(_ family: MetricFamily, _ labels: [String] = [], _ value: UInt64) {
        add(family, labels, Double(value))
    }

    public mutating func add(_ family: MetricFamily, _ labels: [String] = [], _ value: Bool) {
        add(family, labels, value ? 1.0 : 0.0)
    }

    public var text: String {
        var out = ""
        for f in order {
            out += "# HELP \(f.name) \(Self.escapeHelp(f.help))\n# TYPE \(f.name) \(f.kind.rawValue)\n"
            for line in samples[f.name]! { out += line + "\n" }
        }
        return out
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }

    static func escapeHelp(_ s: String) -> String {
        s.replacing("\\", with: "\\\\").replacing("\n", with: "\\n")
    }

    static func number(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d > 0 ? "+Inf" : "-Inf" }
        if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
        return "\(d)"
    }
}
