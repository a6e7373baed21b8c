/// The machine-readable report: one object, snake_case keys in a fixed order, integers for
/// counts, six digits after the point for fractions and seconds.
enum JSONReport {
    static func render(_ report: ReplayReport) -> String {
        value(of: report).render(indent: 2) + "\n"
    }

    static func value(of report: ReplayReport) -> ReportJSON {
        var members: [ReportJSON.Member] = []
        func add(_ key: String, _ value: ReportJSON) {
            members.append(ReportJSON.Member(key: key, value: value))
        }
        add("inputs", .array(report.inputs.map { .string($0) }))
        add("algorithm", .string(report.algorithm))
        add("table_size", .int(report.tableSize))
        add("forwarders", .int(report.forwarders))
        add("connection_tracking", .bool(report.connectionTracking))
        add("duration_seconds", .fraction(report.durationSeconds))
        add("packets", packets(report.packets))
        add("flows", .int(report.flows))
        add("connections", .int(report.connections))
        add("backends", .array(report.backends.map(backend)))
        add("balance", balance(report.balance))
        add("events", .array(report.events.map(event)))
        add("timeline", timeline(report))
        if !report.comparison.isEmpty {
            add(
                "comparison",
                .array(
                    report.comparison.map {
                        .obj([
                            "algorithm": .string($0.algorithm),
                            "balance": balance($0.balance),
                            "events": .array($0.events.map(event)),
                        ])
                    }))
        }
        add("warnings", .array(report.warnings.map { .string($0) }))
        return .object(members)
    }

    static func counts(_ list: [(reason: String, count: Int)]) -> ReportJSON {
        .object(list.map { ReportJSON.Member(key: $0.reason, value: .int($0.count)) })
    }

    static func packets(_ p: ReplayReport.PacketCounts) -> ReportJSON {
        .obj([
            "total": .int(p.total),
            "forwarded": .int(p.forwarded),
            "icmp_replies": .int(p.icmpReplies),
            "passed": counts(p.passed),
            "dropped": counts(p.dropped),
            "dropped_total": .int(p.droppedTotal),
            "skipped": .int(p.skippedTotal),
            "skipped_by_reason": counts(p.skipped),
        ])
    }

    static func backend(_ b: ReplayReport.BackendLoad) -> ReportJSON {
        .obj([
            "name": .string(b.name),
            "address": .string(b.address),
            "state": .string(b.state),
            "flows": .int(b.flows),
            "connections": .int(b.connections),
            "packets": .int(b.packets),
            "bytes": .int(b.bytes),
            "peak_connections": .int(b.peakConnections),
        ])
    }

    static func balance(_ b: ReplayReport.Balance) -> ReportJSON {
        .obj([
            "flows_max_over_mean": .fraction(b.flowsMaxOverMean),
            "packets_max_over_mean": .fraction(b.packetsMaxOverMean),
            "bytes_max_over_mean": .fraction(b.bytesMaxOverMean),
            "flows_cov": .fraction(b.flowsCoV),
            "jain": .fraction(b.jain),
        ])
    }

    static func event(_ e: ReplayReport.EventResult) -> ReportJSON {
        .obj([
            "at": .string(e.at),
            "packet": .int(e.packet),
            "seconds": .fraction(e.seconds),
            "action": .string(e.action),
            "target": .string(e.target),
            "connections_alive": .int(e.connectionsAlive),
            "broken": .int(e.broken),
            "broken_unavoidable": .int(e.brokenUnavoidable),
            "broken_collateral": .int(e.brokenCollateral),
            // "all": every slot that changed owner; "extra": those whose old owner survived.
            "slots_changed_all": .fraction(e.slotsChangedAll),
            "slots_changed_extra": .fraction(e.slotsChangedExtra),
        ])
    }

    static func timeline(_ report: ReplayReport) -> ReportJSON {
        .obj([
            "bucket_seconds": .fraction(report.timelineBucketSeconds),
            "start_seconds": .array(report.timeline.map { .fraction($0.startSeconds) }),
            "packets_by_backend": .object(
                report.backends.indices.map { i in
                    ReportJSON.Member(
                        key: report.backends[i].name,
                        value: .array(report.timelinePackets(ofBackend: i).map { .int($0) }))
                }),
        ])
    }
}
