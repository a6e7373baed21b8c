public import MaglevConfig
import MaglevCore

/// What a reload would change beyond backends and VIPs, judged before it is applied.
///
/// - `disruptive`: changes that move almost every connection to another backend (hash seed,
///   table size, algorithm, ring views). Refused unless the operator allows disruptive reloads.
/// - `notices`: changes that are applied but worth a log line (a backend's address changed
///   under the same name), or that are not applied live (the connection-table capacity, which
///   needs a restart).
public struct ReloadCheck: Sendable, Equatable {
    public var disruptive: [String] = []
    public var notices: [String] = []

    public init(old: MaglevConfigFile, new: MaglevConfigFile) {
        let a = old.dataplane
        let b = new.dataplane
        if a.hashSeed != b.hashSeed {
            disruptive.append("hash_seed changes from \(a.hashSeed) to \(b.hashSeed)")
        }
        if a.tableSize != b.tableSize {
            disruptive.append("table_size changes from \(a.tableSize) to \(b.tableSize)")
        }
        if a.algorithm != b.algorithm {
            disruptive.append("algorithm changes from \(a.algorithm.rawValue) to \(b.algorithm.rawValue)")
        }
        if a.algorithm == .ring && b.algorithm == .ring && a.tableOptions.ringViews != b.tableOptions.ringViews {
            disruptive.append("ring_views changes from \(a.tableOptions.ringViews) to \(b.tableOptions.ringViews)")
        }
        for vip in b.vips {
            guard let before = a.vips.first(where: { $0.name == vip.name }) else { continue }
            let sizeBefore = before.tableSize ?? a.tableSize
            let sizeAfter = vip.tableSize ?? b.tableSize
            if sizeBefore != sizeAfter && a.tableSize == b.tableSize {
                disruptive.append("VIP \(vip.name): table_size changes from \(sizeBefore) to \(sizeAfter)")
            }
        }
        if old.connectionCapacity != new.connectionCapacity {
            notices.append(
                "connection_tracking.capacity changes from \(old.connectionCapacity) to \(new.connectionCapacity): "
                    + "not applied live (connection tables keep their size); restart the forwarder to apply it")
        }
        if old.bgp == nil && new.bgp != nil {
            notices.append("the bgp section was added: not applied live (no BGP speaker runs); restart the forwarder to start it")
        } else if old.bgp != nil && new.bgp == nil {
            notices.append("the bgp section was removed: every BGP session ends (the routers withdraw this forwarder's routes)")
        } else if old.bgp != new.bgp {
            notices.append(
                "the bgp section changed: applied live (sessions of removed or changed peers end with a Cease, new peers "
                    + "are connected; a new local_as or router_id restarts every session)")
        }
        var oldAddress: [String: IPAddress] = [:]
        for p in old.pools { for backend in p.backends { oldAddress[backend.name] = backend.address } }
        var reported = Set<String>()
        for p in new.pools {
            for backend in p.backends {
                if let was = oldAddress[backend.name], was != backend.address, reported.insert(backend.name).inserted {
                    notices.append(
                        "backend \(backend.name) moves from \(was) to \(backend.address): its tracked connections follow it")
                }
            }
        }
    }

    public var isDisruptive: Bool { !disruptive.isEmpty }
}

extension ReloadCheck {
    /// Why a live reload refuses a disruptive change (what the forwarder logs).
    public var refusal: String {
        disruptive.joined(separator: "; ")
            + ": this would move almost every connection to another backend. Restart the forwarder "
            + "to apply it, or run with --allow-disruptive-reload"
    }
}

/// The outcome of `DesiredState.reload`: applied (with what it noticed), or refused.
public enum ReloadDecision: Sendable, Equatable {
    /// The file layer was replaced. `notices` start with the disruptive changes when they were
    /// allowed.
    case applied(ReloadCheck, notices: [String])
    /// A disruptive change, not allowed: the state is unchanged.
    case refused(ReloadCheck, reason: String)

    public var check: ReloadCheck {
        switch self {
        case .applied(let c, _), .refused(let c, _): c
        }
    }
}

extension DesiredState {
    /// A reload with a new config file: the one path the live forwarder (`ControlPlane`, on
    /// SIGHUP or `POST /reload`) and `maglev replay --event AT:config=FILE` take. Compares the
    /// files (`ReloadCheck`); a disruptive change is refused unless `allowDisruptive`;
    /// otherwise the file layer is replaced (the overlays survive, see `replaceFile`). The
    /// caller then builds the snapshot with `ForwardingSnapshot(config: dataplaneConfig,
    /// previous: running)`, so backend and VIP ids, and connection entries, carry over.
    public mutating func reload(_ new: MaglevConfigFile, allowDisruptive: Bool) -> ReloadDecision {
        let check = ReloadCheck(old: file, new: new)
        if check.isDisruptive && !allowDisruptive {
            return .refused(check, reason: check.refusal)
        }
        var notices = check.notices
        if check.isDisruptive {
            notices.insert("disruptive change applied (--allow-disruptive-reload): \(check.disruptive.joined(separator: "; "))", at: 0)
        }
        replaceFile(new)
        return .applied(check, notices: notices)
    }
}
