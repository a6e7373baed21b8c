public import MaglevConfig
public import MaglevCore

/// What one health check target is: a backend address probed by one pool's check. Backends
/// shared by several pools (or VIPs) with the same check are one target, probed once.
public struct HealthTarget: Sendable, Hashable, CustomStringConvertible {
    public var address: IPAddress
    public var check: HealthCheckConfig

    public init(address: IPAddress, check: HealthCheckConfig) {
        self.address = address
        self.check = check
    }

    public var description: String { "\(checkLabel)@\(address)" }

    /// The check as metrics and logs name it: its summary, with the probed VIP for gre- checks
    /// (one backend checked through two VIPs is two targets).
    public var checkLabel: String {
        guard check.type.throughGRE, let vip = address.isIPv6 ? check.vipIPv6 : check.vipIPv4 else { return check.summary }
        return "\(check.type.rawValue):\(vip.isIPv6 ? "[\(vip)]" : vip.description):\(check.port)\(check.type.isHTTP ? check.path : "")"
    }
}

/// An operator's hold on a backend (admin API, `maglev ctl`, replay events).
public enum OperatorHold: Sendable, Equatable {
    /// Keeps its connections, takes no new ones; past `deadlineMs` (if any) it is taken out.
    case draining(sinceMs: UInt64, deadlineMs: UInt64?)
    /// The drain's deadline passed: treated as down (its connections move).
    case drainExpired(sinceMs: UInt64)
}

/// The desired state of the forwarder: the config file, plus a health overlay (what the checks
/// say), plus an operator overlay (drains, forced failures, removals, additions, weights).
/// Together they give the `DataplaneConfig` the data plane runs. A reload replaces only the
/// file layer: the overlays survive it, and entries of backends that left are dropped.
///
/// Pure: no I/O, no clock (time is passed in, in milliseconds of any monotonic clock).
public struct DesiredState: Sendable {
    public private(set) var file: MaglevConfigFile
    /// Targets whose checks say down (absent: up; a backend is up until its checks fail `fall` times).
    public private(set) var healthDown: Set<HealthTarget> = []
    public private(set) var holds: [String: OperatorHold] = [:]
    /// Backends failed by an edit (`fail`, replay scenarios), by name: treated exactly as a
    /// failed health check (so a VIP with no qualifying pool fails open over them too).
    public private(set) var failed: Set<String> = []
    /// Removed backends (by name).
    public private(set) var removed: Set<String> = []
    /// Backends added by edits that the file does not have, in order.
    public private(set) var added: [BackendConfig] = []
    public private(set) var weights: [String: UInt32] = [:]
    /// Bumped by every change that can change the data plane config.
    public private(set) var generation: UInt64 = 1

    public init(file: MaglevConfigFile) {
        self.file = file
    }

    // MARK: Layers

    /// Replaces the file layer (a reload). Overlay entries of backends (and health targets)
    /// that are no longer in the file are dropped; additions the file now has itself are
    /// dropped too (the file wins).
    public mutating func replaceFile(_ new: MaglevConfigFile) {
        file = new
        let names = Set(new.pools.flatMap { $0.backends.map(\.name) })
        added.removeAll { names.contains($0.name) }
        let all = names.union(added.map(\.name))
        holds = holds.filter { all.contains($0.key) }
        removed = removed.filter { all.contains($0) }
        failed = failed.filter { all.contains($0) }
        weights = weights.filter { all.contains($0.key) }
        let targets = Set(healthTargets)
        healthDown = healthDown.filter { targets.contains($0) }
        generation &+= 1
    }

    /// Every backend name this state knows (file and additions), sorted.
    public var backendNames: [String] {
        var names = Set(file.pools.flatMap { $0.backends.map(\.name) })
        for b in added { names.insert(b.name) }
        return names.sorted()
    }

    /// The (de-duplicated) health check targets of the current file and additions, sorted
    /// for a stable probe order.
    public var healthTargets: [HealthTarget] {
        var set = Set<HealthTarget>()
        for pool in file.pools {
            guard let check = pool.healthCheck else { continue }
            for b in members(of: pool) where !removed.contains(b.name) {
                set.insert(HealthTarget(address: b.address, check: check))
            }
        }
        return set.sorted { ($0.address.description, $0.check.summary) < ($1.address.description, $1.check.summary) }
    }

    /// Records a health verdict (from the dampener). Returns whether it changed anything.
    @discardableResult
    public mutating func setHealth(_ target: HealthTarget, up: Bool) -> Bool {
        let changed = up ? healthDown.remove(target) != nil : healthDown.insert(target).inserted
        if changed { generation &+= 1 }
        return changed
    }

    /// Applies an edit at time `nowMs`. Unknown backends are an error listing the known ones
    /// (`add` of an unknown name creates it).
    public mutating func apply(_ edit: BackendEdit, nowMs: UInt64 = 0) throws(EditError) {
        let name = edit.target
        let known = backendNames.contains(name)
        if case .add = edit {} else if !known {
            throw EditError(edit: edit, known: backendNames)
        }
        switch edit {
        case .remove:
            // A backend added back later comes back clean.
            removed.insert(name)
            holds[name] = nil
            failed.remove(name)
        case .add(_, let address):
            if removed.remove(name) == nil && !known {
                added.append(BackendConfig(name: name, address: address ?? newBackendAddress()))
            }
        case .drain(_, let timeout):
            holds[name] = .draining(sinceMs: nowMs, deadlineMs: timeout.map { nowMs &+ $0 })
        case .undrain:
            holds[name] = nil
        case .fail:
            failed.insert(name)
        case .recover:
            holds[name] = nil
            failed.remove(name)
            healthDown = healthDown.filter { t in !addresses(of: name).contains(t.address) }
        case .weight(_, let w):
            weights[name] = w
        }
        generation &+= 1
    }

    /// Ends drains whose deadline passed (the backend is then treated as down). Returns the
    /// names whose drain expired now.
    public mutating func expireDrains(nowMs: UInt64) -> [String] {
        var expired: [String] = []
        for (name, hold) in holds.sorted(by: { $0.key < $1.key }) {
            if case .draining(_, let deadline?) = hold, nowMs >= deadline {
                holds[name] = .drainExpired(sinceMs: nowMs)
                expired.append(name)
            }
        }
        if !expired.isEmpty { generation &+= 1 }
        return expired
    }

    func addresses(of name: String) -> [IPAddress] {
        file.pools.flatMap(\.backends).filter { $0.name == name }.map(\.address) + added.filter { $0.name == name }.map(\.address)
    }

    /// A pool's backends: the file's, then additions.
    func members(of pool: PoolConfig) -> [BackendConfig] {
        added.isEmpty ? pool.backends : pool.backends + added.filter { a in !pool.backends.contains { $0.name == a.name } }
    }

    /// An address for a backend added under a new name: 198.18.2.x and on (replay scenarios).
    func newBackendAddress() -> IPAddress {
        var used = Set(file.pools.flatMap { $0.backends.map(\.address) })
        for b in added { used.insert(b.address) }
        var candidate: UInt32 = 0xC612_0200
        while used.contains(IPAddress(ipv4: candidate)) { candidate += 1 }
        return IPAddress(ipv4: candidate)
    }

    // MARK: The result

    /// How one backend stands in one pool, every layer applied.
    public struct Member: Sendable, Equatable {
        public var name: String
        public var address: IPAddress
        public var weight: UInt32
        /// The file's state.
        public var fileState: BackendState
        /// nil: no check (and not failed by an edit); else what the check (or `fail`) says.
        public var healthy: Bool?
        public var hold: OperatorHold?
        /// Every layer applied.
        public var state: BackendState

        /// Takes new connections.
        public var takesNew: Bool { state == .active && weight > 0 }
    }

    public struct Pool: Sendable, Equatable {
        public var name: String
        public var members: [Member]
        public var check: HealthCheckConfig?
        public var minHealthy: MinHealthy
        /// Backends needed, and those that take new connections now.
        public var required: Int
        public var available: Int
        public var qualifies: Bool { available >= required && available > 0 }
    }

    public struct VIP: Sendable, Equatable {
        public var name: String
        public var pools: [Pool]
        public var whenAllDown: WhenAllDown
        /// The pool serving new connections: the first that qualifies, or under fail-open the
        /// first (health ignored); nil when the VIP drops new connections.
        public var serving: String?
        /// No pool qualified and the VIP fails open.
        public var failingOpen: Bool
        /// The backends the data plane gets for this VIP.
        public var backends: [BackendConfig]
        /// This forwarder can serve the VIP: a pool serves it (or it fails open) and some
        /// backend takes new connections.
        public var usable: Bool { serving != nil && backends.contains { $0.state == .active && $0.weight > 0 } }
    }

    func member(_ b: BackendConfig, check: HealthCheckConfig?, ignoreHealth: Bool) -> Member {
        var healthy = check.map { !healthDown.contains(HealthTarget(address: b.address, check: $0)) }
        if failed.contains(b.name) { healthy = false }
        let hold = holds[b.name]
        var state = b.state
        switch hold {
        case .drainExpired?: state = .down
        case .draining?: if state == .active { state = .draining }
        case nil: break
        }
        if healthy == false && !ignoreHealth { state = .down }
        return Member(
            name: b.name, address: b.address, weight: weights[b.name] ?? b.weight, fileState: b.state, healthy: healthy,
            hold: hold, state: state)
    }

    func pool(_ p: PoolConfig, ignoreHealth: Bool = false) -> Pool {
        let members = members(of: p).filter { !removed.contains($0.name) }.map {
            member($0, check: p.healthCheck, ignoreHealth: ignoreHealth)
        }
        return Pool(
            name: p.name, members: members, check: p.healthCheck, minHealthy: p.minHealthy,
            required: p.minHealthy.required(of: members.count), available: members.filter(\.takesNew).count)
    }

    /// Every VIP with its pools and the one chosen, in config order.
    public var vips: [VIP] {
        zip(file.dataplane.vips, file.vipPools).map { vip, choice in
            let pools = choice.pools.compactMap { file.pool(named: $0) }.map { pool($0) }
            var serving: Pool? = pools.first { $0.qualifies }
            var failingOpen = false
            if serving == nil, choice.whenAllDown == .failOpen, let first = choice.pools.first.flatMap({ file.pool(named: $0) }) {
                serving = pool(first, ignoreHealth: true)
                failingOpen = true
            }
            // The serving pool's backends, then the others' as draining (their connections
            // stay where they are) or down.
            var backends: [BackendConfig] = []
            var seen = Set<String>()
            for m in (serving ?? pools.first)?.members ?? [] where seen.insert(m.name).inserted {
                backends.append(
                    BackendConfig(name: m.name, address: m.address, weight: m.weight, state: serving == nil && m.state == .active ? .draining : m.state))
            }
            for p in pools {
                for m in p.members where seen.insert(m.name).inserted {
                    backends.append(
                        BackendConfig(name: m.name, address: m.address, weight: m.weight, state: m.state == .down ? .down : .draining))
                }
            }
            return VIP(
                name: vip.name, pools: pools, whenAllDown: choice.whenAllDown,
                serving: serving.map(\.name), failingOpen: failingOpen, backends: backends)
        }
    }

    /// The config the data plane runs: the file's settings with each VIP's backends chosen.
    public var dataplaneConfig: DataplaneConfig {
        var config = file.dataplane
        for (i, vip) in vips.enumerated() { config.vips[i].backends = vip.backends }
        return config
    }

    /// Whether the backend is draining and may be reported "drained" once its connections are 0.
    public func isDraining(_ name: String) -> Bool {
        if case .draining? = holds[name] { return true }
        return false
    }
}
