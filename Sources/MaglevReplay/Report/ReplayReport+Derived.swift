/// Figures the renderers derive from the report model; every one is deterministic (ties are
/// broken by position, which follows the model's name order).
extension ReplayReport {
    /// Width of one timeline bucket in seconds: the step between the first two buckets, or
    /// the whole duration when there is a single bucket; 0 without a timeline.
    public var timelineBucketSeconds: Double {
        if timeline.count >= 2 { return timeline[1].startSeconds - timeline[0].startSeconds }
        if timeline.count == 1 { return max(durationSeconds - timeline[0].startSeconds, 0) }
        return 0
    }

    /// Sums of the load measures over all backends.
    public var backendFlowsTotal: Int { backends.reduce(0) { $0 + $1.flows } }
    public var backendPacketsTotal: Int { backends.reduce(0) { $0 + $1.packets } }
    public var backendBytesTotal: Int { backends.reduce(0) { $0 + $1.bytes } }

    /// Indices into `backends`, busiest first by flows, then packets; ties keep name order.
    public var backendIndicesByFlowsDescending: [Int] {
        backends.indices.sorted { a, b in
            let x = backends[a]
            let y = backends[b]
            if x.flows != y.flows { return x.flows > y.flows }
            if x.packets != y.packets { return x.packets > y.packets }
            return a < b
        }
    }

    /// The backends a terminal table lists: all of them (in name order) when there are at most
    /// `limit * 2 + 5`, otherwise the `limit` busiest and the `limit` idlest by flows (busiest
    /// first) and how many were left out between them.
    public func listedBackends(limit: Int = 10) -> (top: [Int], omitted: Int, bottom: [Int]) {
        if backends.count <= limit * 2 + 5 { return (Array(backends.indices), 0, []) }
        let order = backendIndicesByFlowsDescending
        return (
            Array(order.prefix(limit)), backends.count - 2 * limit, Array(order.suffix(limit))
        )
    }

    /// The timeline packets of backend `index` in each bucket (0 where a bucket is short).
    public func timelinePackets(ofBackend index: Int) -> [Int] {
        timeline.map { index < $0.packets.count ? $0.packets[index] : 0 }
    }
}

/// `part / whole`, or 0 when the whole is 0: shares of an empty replay are 0, not NaN.
func fraction(_ part: Int, of whole: Int) -> Double {
    whole == 0 ? 0 : Double(part) / Double(whole)
}
