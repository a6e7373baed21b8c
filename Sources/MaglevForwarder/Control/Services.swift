import Logging
import MaglevControl
import MaglevLinux
import ServiceLifecycle
import UnixSignals

/// The workers' service: the blocking worker loops run on their own pinned threads (started
/// before the group runs); this service watches them and, when the group stops (it is stopped
/// last, so forwarding goes on while the other services wind down), stops and joins them.
struct WorkersService: Service {
    let forwarder: Forwarder
    let logger: Logger

    func run() async throws {
        var failure: String?
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    try await Task.sleep(for: .milliseconds(100))
                    if let stopped = forwarder.stoppedWorker { throw ForwarderError(stopped) }
                }
            }
        } catch let e as ForwarderError {
            failure = e.message
        } catch {
            // Cancelled by the graceful shutdown: the normal way out.
        }
        if let failure { logger.critical("worker failed: stopping", metadata: ["error": .string(failure)]) }
        logger.info("stopping workers: finishing in-flight sends")
        forwarder.stopWorkers()
        if let failure { throw ForwarderError(failure) }
    }
}

/// Periodic control work and SIGHUP: next-hop lookups (every second, every 100 ms while one is
/// unresolved), drain deadlines, statistics lines, and the optional run duration.
struct ControlService: Service {
    let control: ControlPlane
    let statisticsInterval: Double?
    let duration: Double?
    let onStatistics: @Sendable (ForwarderStatistics) -> Void

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await _ in await UnixSignalsSequence(trapping: .sighup) {
                        _ = await control.reload()
                    }
                }
                group.addTask { try await periodic() }
                // The periodic loop returns when the duration elapsed; then the group stops.
                try await group.next()
                group.cancelAll()
            }
        }
    }

    func periodic() async throws {
        let start = MonotonicClock.now()
        var nextResolve = start + 1_000_000_000
        var nextTick = start + 1_000_000_000
        var nextStats = statisticsInterval.map { start + UInt64($0 * 1e9) }
        let end = duration.map { start + UInt64($0 * 1e9) }
        while true {
            try await Task.sleep(for: .milliseconds(50))
            let now = MonotonicClock.now()
            if let end, now >= end { return }
            if now >= nextResolve {
                let resolved = await control.refreshNextHops()
                nextResolve = now + (resolved ? 1_000_000_000 : 100_000_000)
            }
            if now >= nextTick {
                await control.tick()
                nextTick = now + 1_000_000_000
            }
            if let n = nextStats, now >= n, let interval = statisticsInterval {
                onStatistics(await control.statistics())
                nextStats = max(n + UInt64(interval * 1e9), now + 1_000_000)
            }
        }
    }
}

/// Probes every health-check target on its own interval, at most `maxInFlight` at once, and
/// feeds the results to the control plane. Targets are read from the control plane each round,
/// so a reload's new targets are probed from the next round on (de-duplicated by address and
/// check: a backend shared by ten VIPs is probed once per interval).
struct HealthCheckService: Service {
    let control: ControlPlane
    let probe: HealthProbe
    let logger: Logger
    static let maxInFlight = 64

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            try await withThrowingDiscardingTaskGroup { group in
                var due: [HealthTarget: UInt64] = [:]
                let inFlight = InFlight()
                var announced = false
                while true {
                    let targets = await control.healthTargets()
                    if !announced && !targets.isEmpty {
                        logger.info("health checks running", metadata: ["targets": .stringConvertible(targets.count)])
                        announced = true
                    }
                    let now = MonotonicClock.now() / 1_000_000
                    let greChecks = targets.compactMap { $0.check.type.throughGRE ? $0.check : nil }
                    let sources = await control.encapSources()
                    probe.tunnels.update(needed: !greChecks.isEmpty, source4: sources.0, source6: sources.1, nowMs: now)
                    probe.tunnels.current.0?.ensureRoutes(for: greChecks)
                    let live = Set(targets)
                    due = due.filter { live.contains($0.key) }
                    for target in targets where (due[target] ?? 0) <= now && !inFlight.contains(target) {
                        guard inFlight.count < Self.maxInFlight else { break }
                        due[target] = now + UInt64(target.check.intervalMs)
                        inFlight.insert(target)
                        group.addTask {
                            let error = await probe.run(target)
                            await control.record(target, success: error == nil, error: error)
                            inFlight.remove(target)
                        }
                    }
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
        }
    }
}

/// The set of targets being probed now (one probe per target at a time).
final class InFlight: Sendable {
    let targets = Mutex<Set<HealthTarget>>([])
    func contains(_ t: HealthTarget) -> Bool { targets.withLock { $0.contains(t) } }
    func insert(_ t: HealthTarget) { _ = targets.withLock { $0.insert(t) } }
    func remove(_ t: HealthTarget) { _ = targets.withLock { $0.remove(t) } }
    var count: Int { targets.withLock { $0.count } }
}

import Synchronization
