public import MaglevConfig
import MaglevControl
public import MaglevCore

/// What replacing config OLD with NEW would do (`maglev diff`): per VIP, the flow-hash space
/// that moves ("all" and "extra", `TableDiff`), the backends added, removed, re-weighted or
/// changing state, the reload check's disruptive flags and notices; and, with a trace, the
/// connections alive when NEW is applied and those it would break, by VIP and backend.
///
/// NEW is applied as a live reload applies it: `DesiredState.reload`, then a snapshot built
/// with `previous:` from OLD's (so every figure is the one the forwarder would see).
public struct ConfigDiff: Sendable, Equatable {
    public struct Change: Sendable, Equatable {
        public var name: String
        public var from: String
        public var to: String
    }

    public struct VIP: Sendable, Equatable {
        public var name: String
        /// `changed`, `unchanged`, `added` or `removed`.
        public var status: String
        /// nil for an added or removed VIP (no table on one side).
        public var slotsChangedAll: Double?
        public var slotsChangedExtra: Double?
        public var backendsAdded: [String] = []
        public var backendsRemoved: [String] = []
        public var backendsReweighted: [Change] = []
        public var backendsStateChanged: [Change] = []
        /// With a trace.
        public var connectionsAlive = 0
        public var connectionsBroken = 0
        public var brokenByBackend: [(name: String, count: Int)] = []

        public static func == (a: VIP, b: VIP) -> Bool {
            a.name == b.name && a.status == b.status && a.slotsChangedAll == b.slotsChangedAll
                && a.slotsChangedExtra == b.slotsChangedExtra && a.backendsAdded == b.backendsAdded
                && a.backendsRemoved == b.backendsRemoved && a.backendsReweighted == b.backendsReweighted
                && a.backendsStateChanged == b.backendsStateChanged && a.connectionsAlive == b.connectionsAlive
                && a.connectionsBroken == b.connectionsBroken
                && a.brokenByBackend.elementsEqual(b.brokenByBackend, by: { $0 == $1 })
        }
    }

    /// What a trace says, NEW applied at `at`.
    public struct Trace: Sendable, Equatable {
        public var inputs: [String]
        /// As written (`100%` by default: after the last packet).
        public var at: String
        public var packet: Int
        public var seconds: Double
        public var connectionsAlive: Int
        /// Alive connections whose next packet NEW sends to another backend (or none).
        public var connectionsBroken: Int
        /// The backends those connections were on, sorted by name.
        public var brokenByBackend: [(name: String, count: Int)]

        public static func == (a: Trace, b: Trace) -> Bool {
            a.inputs == b.inputs && a.at == b.at && a.packet == b.packet && a.seconds == b.seconds
                && a.connectionsAlive == b.connectionsAlive && a.connectionsBroken == b.connectionsBroken
                && a.brokenByBackend.elementsEqual(b.brokenByBackend, by: { $0 == $1 })
        }
    }

    public var old: String
    public var new: String
    /// `ReloadCheck`: what a live reload refuses without `--allow-disruptive-reload`, and notes.
    public var disruptive: [String]
    public var notices: [String]
    /// NEW's VIPs in its order, then the VIPs it removes.
    public var vips: [VIP]
    public var trace: Trace?

    /// Compares the files. Throws a `SnapshotError` when a file's VIPs give no snapshot.
    public init(old oldFile: MaglevConfigFile, new newFile: MaglevConfigFile) throws(SnapshotError) {
        old = oldFile.path
        new = newFile.path
        var state = DesiredState(file: oldFile)
        let before = try ForwardingSnapshot(config: state.dataplaneConfig)
        let check = state.reload(newFile, allowDisruptive: true).check
        disruptive = check.disruptive
        notices = check.notices
        let after = try ForwardingSnapshot(config: state.dataplaneConfig, previous: before)

        var oldIndex: [String: Int] = [:]
        for (i, v) in before.config.vips.enumerated() { oldIndex[v.name] = i }
        var vips: [VIP] = []
        var seen = Set<String>()
        for (n, vip) in after.config.vips.enumerated() {
            seen.insert(vip.name)
            guard let o = oldIndex[vip.name] else {
                var v = VIP(name: vip.name, status: "added")
                v.backendsAdded = vip.backends.map(\.name)
                vips.append(v)
                continue
            }
            let was = before.config.vips[o]
            var v = VIP(name: vip.name, status: "unchanged")
            if let a = before.tables[o], let b = after.tables[n] {
                let d = TableDiff(old: a, oldSeed: before.config.hashSeed, new: b, newSeed: after.config.hashSeed)
                v.slotsChangedAll = d.changedAll
                v.slotsChangedExtra = d.changedExtra
            }
            var oldBackends: [String: BackendConfig] = [:]
            for b in was.backends { oldBackends[b.name] = b }
            let newNames = Set(vip.backends.map(\.name))
            for b in vip.backends {
                guard let p = oldBackends[b.name] else {
                    v.backendsAdded.append(b.name)
                    continue
                }
                if p.weight != b.weight { v.backendsReweighted.append(Change(name: b.name, from: "\(p.weight)", to: "\(b.weight)")) }
                if p.state != b.state {
                    v.backendsStateChanged.append(Change(name: b.name, from: p.state.description, to: b.state.description))
                }
            }
            v.backendsRemoved = was.backends.map(\.name).filter { !newNames.contains($0) }
            let moved = (v.slotsChangedAll ?? 0) > 0
            if moved || !v.backendsAdded.isEmpty || !v.backendsRemoved.isEmpty || !v.backendsReweighted.isEmpty
                || !v.backendsStateChanged.isEmpty || was.address != vip.address || was.prefixLength != vip.prefixLength
                || was.proto != vip.proto || was.port != vip.port
            {
                v.status = "changed"
            }
            vips.append(v)
        }
        for vip in before.config.vips where !seen.contains(vip.name) {
            var v = VIP(name: vip.name, status: "removed")
            v.backendsRemoved = vip.backends.map(\.name)
            vips.append(v)
        }
        self.vips = vips
    }

    /// Adds what a trace says: replays it with OLD and a `config=NEW` event at `at` (N%, Ns or
    /// #N; `100%` is after the last packet), and reads that event's figures. Throws a
    /// `ScenarioError` when the event is never reached, and what the replay throws.
    public mutating func addTrace(
        inputs: [String], old oldFile: MaglevConfigFile, new newFile: MaglevConfigFile, at: String = "100%",
        forwarders: Int = 1, ecmpHash: ECMPHash = .fiveTuple
    ) throws {
        var options = ReplayOptions(inputs: inputs, config: oldFile)
        options.config.dataplane.acceptTruncated = true
        var newConfig = newFile
        newConfig.dataplane.acceptTruncated = true
        let event = try ScenarioEvent(parsing: "\(at):config=\(newFile.path)")
        options.events = [event]
        options.eventConfigs = [newFile.path: newConfig]
        options.forwarders = forwarders
        options.ecmpHash = ecmpHash
        let (report, captureError) = try ReplayEngine.replay(options, compareAlgorithms: false)
        if let captureError { throw captureError }
        guard let e = report.events.first, e.reached else {
            throw ScenarioError(
                "--at \(at) lies past the end of the trace (it ends at \(ReportFormatting.fixed(report.durationSeconds, 3)) s,"
                    + " packet \(report.packets.total)); use N% or an earlier time")
        }
        trace = Trace(
            inputs: inputs, at: at, packet: e.packet, seconds: e.seconds, connectionsAlive: e.connectionsAlive,
            connectionsBroken: e.atRisk, brokenByBackend: e.byBackend.filter { $0.atRisk > 0 }.map { ($0.name, $0.atRisk) })
        for v in e.byVIP {
            guard let i = vips.firstIndex(where: { $0.name == v.name }) else { continue }
            vips[i].connectionsAlive = v.alive
            vips[i].connectionsBroken = v.atRisk
            vips[i].brokenByBackend = v.atRiskByBackend.map { ($0.name, $0.atRisk) }
        }
    }
}
