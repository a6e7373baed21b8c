import Logging
import MaglevControl
import MaglevCore
import MaglevLinux
import ServiceLifecycle
import Synchronization

/// The trace reporter's counters (control side; read by tests and the log line).
public final class TraceReporterCounters: Sendable {
    let sent = Atomic<UInt64>(0)
    let rateLimited = Atomic<UInt64>(0)
    let sendErrors = Atomic<UInt64>(0)
    let queueDropped = Atomic<UInt64>(0)

    public init() {}

    /// Reports sent, one UDP datagram each.
    public var reportsSent: UInt64 { sent.load(ordering: .relaxed) }
    /// Records not reported because the rate limit was reached.
    public var reportsRateLimited: UInt64 { rateLimited.load(ordering: .relaxed) }
    /// Sends that failed (no route to the collector, ...).
    public var reportSendErrors: UInt64 { sendErrors.load(ordering: .relaxed) }
    /// Records lost in the workers' full queues (`TraceQueue`), summed over workers.
    public var recordsDroppedInQueues: UInt64 { queueDropped.load(ordering: .relaxed) }
}

/// Turns the workers' tracer records into reports (`TraceReport`, one compact JSON object per
/// UDP datagram) and sends each to its probe's collector, at most `ratePerSecond` a second
/// (burst `ratePerSecond`); the rest are counted, not sent. Every 10 ms it empties every
/// worker's `TraceQueue`. Owned by one task (the service's).
final class TraceReporter: @unchecked Sendable {
    static let ratePerSecond = 100

    let forwarder: Forwarder
    let name: String
    let counters: TraceReporterCounters
    let logger: Logger
    var bucket = TokenBucket(ratePerSecond: TraceReporter.ratePerSecond, burst: TraceReporter.ratePerSecond)
    var socket4: UDPSocket?
    var socket6: UDPSocket?
    var lastWarningMs: UInt64 = 0
    var warnedCounts: (UInt64, UInt64, UInt64) = (0, 0, 0)

    init(forwarder: Forwarder, name: String, counters: TraceReporterCounters, logger: Logger) {
        self.forwarder = forwarder
        self.name = name
        self.counters = counters
        self.logger = logger
    }

    /// Sends what the workers recorded since the last call.
    func drain(nowMs: UInt64) {
        var snapshot: ForwardingSnapshot?
        var dropped: UInt64 = 0
        for link in forwarder.links {
            let (records, linkDropped) = link.traces.take()
            dropped += linkDropped
            for record in records {
                guard bucket.take(nowMs: nowMs) else {
                    counters.rateLimited.add(1, ordering: .relaxed)
                    continue
                }
                if snapshot == nil { snapshot = forwarder.mailbox.current.snapshot }
                let report = TraceReport(record: record, forwarder: name, worker: link.id, snapshot: snapshot!)
                send(report, to: record.probe)
            }
        }
        counters.queueDropped.store(dropped, ordering: .relaxed)
        warnIfLosing(nowMs: nowMs)
    }

    func send(_ report: TraceReport, to probe: TraceProbe) {
        let text = Array(report.json.rendered().utf8)
        let ipv6 = probe.collector.isIPv6
        do throws(SystemError) {
            if ipv6 {
                if socket6 == nil { socket6 = try UDPSocket(ipv6: true) }
                try socket6!.send(text, to: probe.collector.networkBytes, port: probe.collectorPort)
            } else {
                if socket4 == nil { socket4 = try UDPSocket(ipv6: false) }
                try socket4!.send(text, to: probe.collector.networkBytes, port: probe.collectorPort)
            }
            counters.sent.add(1, ordering: .relaxed)
        } catch {
            counters.sendErrors.add(1, ordering: .relaxed)
            logger.debug(
                "trace report not sent",
                metadata: ["collector": "\(probe.collector):\(probe.collectorPort)", "error": "\(error)"])
        }
    }

    /// At most one warning a second, when reports were rate-limited, lost or not sent.
    func warnIfLosing(nowMs: UInt64) {
        let now = (
            counters.rateLimited.load(ordering: .relaxed), counters.queueDropped.load(ordering: .relaxed),
            counters.sendErrors.load(ordering: .relaxed)
        )
        guard now != warnedCounts, nowMs >= lastWarningMs + 1000 else { return }
        logger.warning(
            "trace reports lost",
            metadata: [
                "rate_limited": "\(now.0)", "queue_dropped": "\(now.1)", "send_errors": "\(now.2)",
                "sent": "\(counters.sent.load(ordering: .relaxed))",
            ])
        warnedCounts = now
        lastWarningMs = nowMs
    }
}

/// Runs the trace reporter: every 10 ms, the workers' tracer records become reports.
struct TraceReportService: Service {
    let reporter: TraceReporter

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: .milliseconds(10))
                reporter.drain(nowMs: MonotonicClock.now() / 1_000_000)
            }
        }
    }
}
