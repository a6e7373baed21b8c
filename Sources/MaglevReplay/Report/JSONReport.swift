import MaglevControl

/// The machine-readable report: one object, snake_case keys in a fixed order, integers for
/// counts, six digits after the point for fractions and seconds; written by the one JSON
/// writer (`JSONValue`), indented, with arrays and objects of scalars on one line.
enum JSONReport {
    static func render(_ report: ReplayReport) -> String {
        value(of: report).rendered(.report) + "\n"
    }

    static func value(of report: ReplayReport) -> JSONValue {
        var members: [(String, JSONValue)] = []
        func add(_ key: String, _ value: JSONValue) {
            members.append((key, value))
        }
        add("inputs", .array(report.inputs.map { .string($0) }))
        add("algorithm", .string(report.algorithm))
        add("table_size", JSONValue(report.tableSize))
        add("forwarders", JSONValue(report.forwarders))
        add("connection_tracking", .bool(report.connectionTracking))
        add("duration_seconds", .fraction(report.durationSeconds))
        add(
            "time_went_backwards",
            .object([
                ("packets", JSONValue(report.timeWentBackwards.packets)),
                ("max_seconds", .fraction(report.timeWentBackwards.maxSeconds)),
            ]))
        add("packets", packets(report.packets))
        add("flows", JSONValue(report.flows))
        add("connections", JSONValue(report.connections))
        add("backends", .array(report.backends.map(backend)))
        add("balance", balance(report.balance))
        add("events", .array(report.events.map(event)))
        add("timeline", timeline(report))
        if !report.comparison.isEmpty {
            add(
                "comparison",
                .array(
                    report.comparison.map {
                        .object([
                            ("algorithm", .string($0.algorithm)),
                            ("balance", balance($0.balance)),
                            ("events", .array($0.events.map(event))),
                        ])
                    }))
        }
        add("warnings", .array(report.warnings.map { .string($0) }))
        return .object(members)
    }

    static func counts(_ list: [(reason: String, count: Int)]) -> JSONValue {
        .object(list.map { ($0.reason, JSONValue($0.count)) })
    }

    static func packets(_ p: ReplayReport.PacketCounts) -> JSONValue {
        .object([
            ("total", JSONValue(p.total)),
            ("forwarded", JSONValue(p.forwarded)),
            ("icmp_replies", JSONValue(p.icmpReplies)),
            ("passed", counts(p.passed)),
            ("dropped", counts(p.dropped)),
            ("dropped_total", JSONValue(p.droppedTotal)),
            ("skipped", JSONValue(p.skippedTotal)),
            ("skipped_by_reason", counts(p.skipped)),
        ])
    }

    static func backend(_ b: ReplayReport.BackendLoad) -> JSONValue {
        .object([
            ("name", .string(b.name)),
            ("address", .string(b.address)),
            ("state", .string(b.state)),
            ("flows", JSONValue(b.flows)),
            ("connections", JSONValue(b.connections)),
            ("packets", JSONValue(b.packets)),
            ("bytes", JSONValue(b.bytes)),
            ("peak_connections", JSONValue(b.peakConnections)),
        ])
    }

    static func balance(_ b: ReplayReport.Balance) -> JSONValue {
        .object([
            ("flows_max_over_mean", .fraction(b.flowsMaxOverMean)),
            ("packets_max_over_mean", .fraction(b.packetsMaxOverMean)),
            ("bytes_max_over_mean", .fraction(b.bytesMaxOverMean)),
            ("flows_cov", .fraction(b.flowsCoV)),
            ("jain", .fraction(b.jain)),
        ])
    }

    static func event(_ e: ReplayReport.EventResult) -> JSONValue {
        .object([
            ("at", .string(e.at)),
            // false: the capture ended before it (packet and seconds null, figures 0).
            ("reached", .bool(e.reached)),
            ("packet", e.reached ? JSONValue(e.packet) : .null),
            ("seconds", e.reached ? .fraction(e.seconds) : .null),
            ("action", .string(e.action)),
            ("target", .string(e.target)),
            ("connections_alive", JSONValue(e.connectionsAlive)),
            ("broken", JSONValue(e.broken)),
            ("broken_unavoidable", JSONValue(e.brokenUnavoidable)),
            ("broken_collateral", JSONValue(e.brokenCollateral)),
            // When the breaks charged to this event showed (seconds from the first packet; null
            // when none broke), and how many showed only after a later event.
            ("broken_visible_first_seconds", .fraction(e.brokenVisible?.firstSeconds)),
            ("broken_visible_median_seconds", .fraction(e.brokenVisible?.medianSeconds)),
            ("broken_visible_last_seconds", .fraction(e.brokenVisible?.lastSeconds)),
            ("broken_visible_after_later_event", JSONValue(e.brokenVisible?.afterLaterEvent ?? 0)),
            // "all": every slot that changed owner; "extra": those whose old owner survived.
            ("slots_changed_all", .fraction(e.slotsChangedAll)),
            ("slots_changed_extra", .fraction(e.slotsChangedExtra)),
            // Alive at the event and sent elsewhere by their next packet (what-if).
            ("at_risk", JSONValue(e.atRisk)),
            ("by_vip", .array(e.byVIP.map(vipImpact))),
            ("by_backend", .array(e.byBackend.map(backendImpact))),
            // config=FILE: what a live reload refuses without --allow-disruptive-reload.
            ("disruptive", .array(e.disruptive.map { .string($0) })),
            ("notices", .array(e.notices.map { .string($0) })),
        ])
    }

    static func vipImpact(_ v: ReplayReport.VIPImpact) -> JSONValue {
        .object([
            ("name", .string(v.name)),
            ("slots_changed_all", .fraction(v.slotsChangedAll)),
            ("slots_changed_extra", .fraction(v.slotsChangedExtra)),
            ("alive", JSONValue(v.alive)),
            ("broken", JSONValue(v.broken)),
            ("at_risk", JSONValue(v.atRisk)),
        ])
    }

    static func backendImpact(_ b: ReplayReport.BackendImpact) -> JSONValue {
        .object([("name", .string(b.name)), ("broken", JSONValue(b.broken)), ("at_risk", JSONValue(b.atRisk))])
    }

    static func timeline(_ report: ReplayReport) -> JSONValue {
        .object([
            ("bucket_seconds", .fraction(report.timelineBucketSeconds)),
            ("start_seconds", .array(report.timeline.map { .fraction($0.startSeconds) })),
            (
                "packets_by_backend",
                .object(
                    report.backends.indices.map { i in
                        (report.backends[i].name, .array(report.timelinePackets(ofBackend: i).map { JSONValue($0) }))
                    })
            ),
        ])
    }
}

extension JSONValue {
    /// Fractions and seconds in reports: six digits after the point.
    static func fraction(_ value: Double) -> JSONValue { .fixed(value, digits: 6) }
    /// An undefined figure is `null`.
    static func fraction(_ value: Double?) -> JSONValue { value.map { .fixed($0, digits: 6) } ?? .null }
}
