public import Logging
public import MaglevConfig
public import MaglevControl
public import MaglevCore
import MaglevLinux

/// The forwarder's control side: owns the desired state (config file + health overlay +
/// operator overlay), turns every change into a snapshot for the workers, and answers the
/// admin API. One actor, so changes from reloads, health checks and operators are applied one
/// at a time, each committed whole (a new snapshot is published or nothing changes).
public actor ControlPlane {
    public enum ReloadResult: Sendable, Equatable {
        case applied(notices: [String])
        /// The file is invalid: the running config stays.
        case rejected(String)
        /// The file is valid but the change would move most connections.
        case refused(String)

        public var label: String {
            switch self {
            case .applied: "applied"
            case .rejected: "rejected"
            case .refused: "refused"
            }
        }
    }

    let forwarder: Forwarder
    public private(set) var state: DesiredState
    let configPath: String?
    let allowDisruptiveReload: Bool
    /// This forwarder's shard (`--shard`): reloads keep only its VIPs (and unsharded ones).
    let shard: String?
    let logger: Logger
    var dampeners: [HealthTarget: HealthDampener] = [:]
    /// Probe results and verdict changes per target, kept across reloads while the target stays.
    var probeCounts: [HealthTarget: (ok: UInt64, failed: UInt64)] = [:]
    var transitionCounts: [HealthTarget: (up: UInt64, down: UInt64)] = [:]
    var reloadCounts: [String: UInt64] = ["applied": 0, "rejected": 0, "refused": 0]
    /// Backends reported drained (connections reached 0 while draining), by name.
    var drained: Set<String> = []
    /// Latest live connections per backend name (from the last statistics with counts).
    var connections: [String: UInt64] = [:]
    var lastVIPs: [DesiredState.VIP]
    let startMs: UInt64
    /// Routes withdrawn by hand (`maglev ctl withdraw`) until `announce`.
    public private(set) var withdrawnByOperator = false
    /// A graceful stop began: every route is withdrawn.
    public private(set) var stopping = false
    /// Every worker runs and answers between batches (checked about once a second).
    public private(set) var workersHealthy = true
    /// The trace reporter's counters (for /metrics), once the runtime made them.
    var traceCounters: TraceReporterCounters?
    func setTraceCounters(_ c: TraceReporterCounters) { traceCounters = c }
    /// What the BGP speaker reports of each peer, by peer address.
    public private(set) var bgpPeers: [String: BGPPeerStatus] = [:]

    public init(
        forwarder: Forwarder, file: MaglevConfigFile, configPath: String?, allowDisruptiveReload: Bool,
        shard: String? = nil, logger: Logger
    ) {
        self.shard = shard
        self.forwarder = forwarder
        self.state = DesiredState(file: file)
        self.configPath = configPath
        self.allowDisruptiveReload = allowDisruptiveReload
        self.logger = logger
        self.lastVIPs = state.vips
        self.startMs = Self.nowMs()
    }

    static func nowMs() -> UInt64 { MonotonicClock.now() / 1_000_000 }

    /// Milliseconds since the control plane started (the clock of drains and health records).
    var nowMs: UInt64 { Self.nowMs() - startMs }

    // MARK: Committing changes

    /// Builds and publishes the snapshot of the current desired state; logs VIPs whose serving
    /// pool changed. A snapshot the data plane refuses keeps the running one (logged).
    func commit(_ why: String) {
        do {
            try forwarder.publish(state.dataplaneConfig)
        } catch {
            logger.error("change not applied, running config kept", metadata: ["why": .string(why), "error": .string(error.message)])
            return
        }
        let vips = state.vips
        for vip in vips {
            let before = lastVIPs.first { $0.name == vip.name }
            if before?.serving != vip.serving || before?.failingOpen != vip.failingOpen {
                if let pool = vip.serving {
                    let level: Logger.Level = vip.failingOpen ? .warning : .notice
                    logger.log(
                        level: level, vip.failingOpen ? "VIP fails open: no pool has min_healthy backends" : "VIP served by pool",
                        metadata: ["vip": .string(vip.name), "pool": .string(pool)])
                } else {
                    logger.error(
                        "VIP has no usable pool: new connections are dropped (when_all_down: drop)",
                        metadata: ["vip": .string(vip.name)])
                }
            }
        }
        lastVIPs = vips
    }

    // MARK: Operator edits

    /// Applies an operator's edit (drain, undrain, fail, recover, weight, remove, add).
    public func apply(_ edit: BackendEdit) throws(EditError) {
        try state.apply(edit, nowMs: nowMs)
        if case .drain = edit { drained.remove(edit.target) }
        if case .recover = edit {
            // The state forgot the failures: so do the dampeners, or the next failures would
            // find them still "down" and never take the backend out again.
            let addresses = Set(state.healthTargets.map(\.address).filter { backendNames(at: $0).contains(edit.target) })
            dampeners = dampeners.filter { !addresses.contains($0.key.address) }
        }
        logger.notice("backend edit", metadata: ["edit": .string(edit.description)])
        commit(edit.description)
    }

    // MARK: Health

    /// This forwarder's encapsulation sources (the GRE probes' outer and inner source).
    public func encapSources() -> (IPAddress?, IPAddress?) {
        (state.file.dataplane.encapSourceIPv4, state.file.dataplane.encapSourceIPv6)
    }

    /// The targets the health checker should probe now.
    public func healthTargets() -> [HealthTarget] { state.healthTargets }

    /// One probe's result: fed to the target's dampener; a changed verdict changes the state.
    public func record(_ target: HealthTarget, success: Bool, error: String?) {
        guard state.healthTargets.contains(target) else { return }  // left with a reload
        var counts = probeCounts[target] ?? (0, 0)
        if success { counts.ok &+= 1 } else { counts.failed &+= 1 }
        probeCounts[target] = counts
        var dampener = dampeners[target] ?? HealthDampener(rise: target.check.rise, fall: target.check.fall)
        let verdict = dampener.record(success: success, nowMs: nowMs, error: error)
        dampeners[target] = dampener
        guard let up = verdict else { return }
        var t = transitionCounts[target] ?? (0, 0)
        if up { t.up &+= 1 } else { t.down &+= 1 }
        transitionCounts[target] = t
        let names = backendNames(at: target.address)
        let metadata: Logger.Metadata = [
            "backend": .string(names.joined(separator: ",")), "address": .string(target.address.description),
            "check": .string(target.checkLabel),
        ]
        if up {
            logger.notice("backend up: health check passes again", metadata: metadata)
        } else {
            var m = metadata
            m["reason"] = .string(error ?? "failed")
            logger.warning("backend down: health check failed \(target.check.fall) time(s) in a row", metadata: m)
        }
        state.setHealth(target, up: up)
        commit("health \(target) \(up ? "up" : "down")")
    }

    func backendNames(at address: IPAddress) -> [String] {
        var names = Set<String>()
        for p in state.file.pools { for b in p.backends where b.address == address { names.insert(b.name) } }
        for b in state.added where b.address == address { names.insert(b.name) }
        return names.sorted()
    }

    // MARK: Reload

    /// Re-reads the config file. Refused when it would move most connections (hash seed,
    /// table size, algorithm) unless disruptive reloads are allowed; the running config stays on
    /// any error. Health and operator state survive it.
    public func reload() -> ReloadResult {
        let result = reloadFile()
        reloadCounts[result.label, default: 0] &+= 1
        switch result {
        case .applied(let notices):
            for n in notices { logger.notice("reload: \(n)") }
            logger.notice(
                "config reloaded",
                metadata: [
                    "path": .string(configPath ?? ""), "vips": .stringConvertible(state.file.dataplane.vips.count),
                    "generation": .stringConvertible(state.generation),
                ])
        case .rejected(let m):
            logger.error("reload rejected, running config kept", metadata: ["problems": .string(m)])
        case .refused(let m):
            logger.error("reload refused, running config kept", metadata: ["reason": .string(m)])
        }
        return result
    }

    func reloadFile() -> ReloadResult {
        guard let path = configPath else { return .rejected("no config file to reload") }
        let file: MaglevConfigFile
        do {
            file = try MaglevConfigFile.load(path: path).forShard(shard)
        } catch {
            return .rejected("\(path):\n\(error)")
        }
        // The same path as `maglev replay --event AT:config=FILE` (DesiredState.reload).
        let notices: [String]
        switch state.reload(file, allowDisruptive: allowDisruptiveReload) {
        case .refused(_, let reason): return .refused(reason)
        case .applied(_, let n): notices = n
        }
        let targets = Set(state.healthTargets)
        dampeners = dampeners.filter { targets.contains($0.key) }
        probeCounts = probeCounts.filter { targets.contains($0.key) }
        transitionCounts = transitionCounts.filter { targets.contains($0.key) }
        commit("reload")
        return .applied(notices: notices)
    }

    // MARK: What BGP announces

    /// The VIP host routes this forwarder announces now: every single-address VIP (/32, /128)
    /// that has a usable pool (or fails open), while the workers run and make progress, no
    /// operator withdrew the routes, and no graceful stop began. Sorted.
    public func announcedVIPs() -> [IPAddress] {
        guard !withdrawnByOperator && !stopping && workersHealthy else { return [] }
        var out: [IPAddress] = []
        for (vip, config) in zip(state.vips, state.file.dataplane.vips) where vip.usable {
            if config.prefixLength == (config.address.isIPv6 ? 128 : 32) { out.append(config.address) }
        }
        return Array(Set(out)).sorted()
    }

    /// Why nothing (or less) is announced, for logs and `/status`.
    public var withdrawReason: String? {
        if stopping { return "stopping" }
        if withdrawnByOperator { return "withdrawn by the operator" }
        if !workersHealthy { return "workers not running or not making progress" }
        return nil
    }

    /// `maglev ctl withdraw` / `announce`.
    public func setWithdrawnByOperator(_ on: Bool) {
        guard on != withdrawnByOperator else { return }
        withdrawnByOperator = on
        logger.notice(on ? "routes withdrawn by the operator" : "routes announced again by the operator")
    }

    /// The BGP speaker's view of one peer (for `/status` and metrics).
    public func report(_ status: BGPPeerStatus) { bgpPeers[status.peer] = status }

    /// The bgp section of the running config (a reload may change it; the speaker follows).
    public func bgpConfig() -> BGPConfig? { state.file.bgp }

    /// A peer that left the config: its status goes from `/status` and the metrics.
    public func forget(peer: String) { bgpPeers[peer] = nil }

    /// The start of a graceful stop: withdraw everything.
    public func beginStop() {
        stopping = true
    }

    // MARK: Periodic work

    /// Looks up every backend's next hop again; returns whether all are resolved.
    public func refreshNextHops() -> Bool {
        forwarder.refreshNextHops()
        return forwarder.linkHeaders.allResolved
    }

    /// The workers' counters now.
    public func statistics() async -> ForwarderStatistics { await forwarder.statisticsAsync() }

    /// Expires drains past their deadline and notices drained backends. Called about once a
    /// second by the control service.
    public func tick() async {
        let progressing = await forwarder.workersProgressing()
        if progressing != workersHealthy {
            workersHealthy = progressing
            if progressing {
                logger.notice("workers make progress again")
            } else {
                logger.critical(
                    "workers stalled or stopped: every route is withdrawn",
                    metadata: ["worker": .string(forwarder.stoppedWorker ?? "a worker does not answer between batches")])
            }
        }
        for name in state.expireDrains(nowMs: nowMs) {
            logger.warning("drain timed out: backend taken out, its remaining connections move", metadata: ["backend": .string(name)])
            commit("drain timeout \(name)")
        }
        let draining = state.backendNames.filter { state.isDraining($0) && !drained.contains($0) }
        guard !draining.isEmpty else { return }
        let stats = await forwarder.statisticsAsync(countConnections: true)
        updateConnections(stats)
        for name in draining where (connections[name] ?? 0) == 0 {
            drained.insert(name)
            logger.notice("backend drained: no tracked connections left", metadata: ["backend": .string(name)])
        }
    }

    func updateConnections(_ stats: ForwarderStatistics) {
        var byName: [String: UInt64] = [:]
        for w in stats.workers {
            for (id, n) in w.connectionsByBackend.enumerated() where id < stats.backendNames.count {
                byName[stats.backendNames[id], default: 0] &+= n
            }
        }
        connections = byName
    }
}

/// One BGP peer as the speaker sees it.
public struct BGPPeerStatus: Sendable, Equatable {
    public var peer: String
    public var remoteAS: UInt32
    /// The session state (idle, connect, active, open-sent, open-confirm, established).
    public var state: String
    public var established: Bool
    /// Routes announced to the peer now.
    public var announced: [String]
    public var updatesSent: UInt64
    /// Why the session last went down, if it did.
    public var lastError: String?
    /// When the session last came up or went down (monotonic milliseconds; 0: not yet).
    public var sinceMs: UInt64

    public init(
        peer: String, remoteAS: UInt32, state: String, established: Bool, announced: [String], updatesSent: UInt64,
        lastError: String?, sinceMs: UInt64
    ) {
        self.peer = peer
        self.remoteAS = remoteAS
        self.state = state
        self.established = established
        self.announced = announced
        self.updatesSent = updatesSent
        self.lastError = lastError
        self.sinceMs = sinceMs
    }
}
