public import Logging
public import MaglevConfig
import MaglevControl
import MaglevCore
import NIOCore
import NIOPosix
import ServiceLifecycle

/// How `maglev forward` runs its control side.
public struct RuntimeOptions: Sendable {
    public var admin: AdminAddress?
    public var allowDisruptiveReload = false
    public var statisticsInterval: Double?
    public var duration: Double?
    /// With BGP: how long a graceful stop keeps forwarding after withdrawing the routes.
    public var drainSeconds: Double = 3
    /// This forwarder's shard: reloads keep only its VIPs (the caller filters the first file).
    public var shard: String?
    /// This forwarder's name in trace reports (`--name`; default: the host name, with the
    /// network namespace's name when the process runs in a named one).
    public var name: String = "forwarder"
    /// The trace reporter's counters (tests read them).
    public var traceCounters = TraceReporterCounters()

    public init() {}
}

/// `maglev forward` once the workers run: the control plane and its services, started in
/// order and stopped in reverse (swift-service-lifecycle):
///
///     1. workers        (already running; stopped last, so forwarding goes on to the end)
///     2. control        (SIGHUP reloads, next hops, drain deadlines, statistics lines)
///     3. health checks  (probes, dampened, written into the desired state)
///     4. trace reports  (tracer probes' records from the workers, sent to their collectors)
///     5. admin API
///     6. BGP speaker    (stopped first: withdraw every route, forward for --drain-seconds, Cease)
///
/// SIGTERM and SIGINT stop the group gracefully; SIGHUP reloads. One signal mechanism (the
/// service group's) for the whole process.
public enum ForwarderRuntime {
    /// Runs until SIGTERM / SIGINT, the duration, or a failed worker; returns the final counters.
    /// `onStarted` runs once the control plane exists (and the admin API is bound).
    public static func run(
        forwarder: Forwarder, file: MaglevConfigFile, configPath: String?, options: RuntimeOptions, logger: Logger,
        onStarted: @Sendable (ControlPlane) async -> Void = { _ in },
        onStatistics: @escaping @Sendable (ForwarderStatistics) -> Void = { _ in }
    ) async throws(ForwarderError) -> ForwarderStatistics {
        let control = ControlPlane(
            forwarder: forwarder, file: file, configPath: configPath,
            allowDisruptiveReload: options.allowDisruptiveReload, shard: options.shard, logger: logger)
        await control.commitInitial()
        await control.setTraceCounters(options.traceCounters)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

        let tunnels = GREProbeTunnelHolder(logger: logger)
        defer { tunnels.stop() }

        var services: [any Service] = [
            WorkersService(forwarder: forwarder, logger: logger),
            ControlService(
                control: control, statisticsInterval: options.statisticsInterval, duration: options.duration,
                onStatistics: onStatistics),
            HealthCheckService(
                control: control, probe: HealthProbe(group: group, tunnels: tunnels),
                logger: logger),
            TraceReportService(
                reporter: TraceReporter(forwarder: forwarder, name: options.name, counters: options.traceCounters, logger: logger)),
        ]
        if let admin = options.admin {
            services.append(try await AdminServer.bind(admin, control: control, group: group, logger: logger))
        }
        if let bgp = file.bgp {
            services.append(
                BGPSpeakerService(config: bgp, control: control, group: group, logger: logger, drainSeconds: options.drainSeconds))
        }
        await onStarted(control)
        let serviceGroup = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services.map {
                    .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)
                },
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        var failure: (any Error)?
        do {
            try await serviceGroup.run()
        } catch {
            failure = error
        }
        let final = forwarder.stop()
        try? await group.shutdownGracefully()
        if let failure {
            if let e = failure as? ForwarderError { throw e }
            throw ForwarderError("stopped: \(failure)")
        }
        return final
    }
}

extension ControlPlane {
    /// Publishes the initial desired state (the file with no overlay yet gives the same tables
    /// the forwarder started with, except where pools choose differently).
    func commitInitial() {
        // Publish only when pools or overlays make it differ from what the workers started with.
        if state.dataplaneConfig.vips != forwarder.snapshot.config.vips { commit("start") }
    }
}
