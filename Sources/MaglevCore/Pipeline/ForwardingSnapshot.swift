import Synchronization

/// What a snapshot cannot be built from, said so a person can fix the config.
public enum SnapshotError: Error, Equatable, Sendable, CustomStringConvertible {
    case noVIPs
    case badPrefix(vip: String, prefixLength: Int)
    case duplicateVIP(String)
    case conflictingBackend(name: String, first: IPAddress, second: IPAddress)
    case missingEncapSource(backend: String, ipv6: Bool)
    case table(vip: String, TableError)
    case pathMTUTooSmall(Int)
    /// The forwarder group (`forwarders`) is unusable: the reason, in words.
    case forwarderGroup(String)

    public var description: String {
        switch self {
        case .noVIPs: "no VIPs configured: add at least one VIP with a backend pool"
        case .badPrefix(let vip, let p): "VIP \(vip): prefix length \(p) is out of range for its address family"
        case .duplicateVIP(let name): "VIP name \(name) is used twice: VIP names must be unique"
        case .conflictingBackend(let name, let a, let b):
            "backend \(name) has two addresses (\(a) and \(b)): a backend name names one host"
        case .missingEncapSource(let backend, let v6):
            "backend \(backend) is IPv\(v6 ? 6 : 4) but no IPv\(v6 ? 6 : 4) encapsulation source address is set"
        case .table(let vip, let e): "VIP \(vip): \(e)"
        case .pathMTUTooSmall(let mtu): "path MTU \(mtu) is too small: use at least 576 (IPv4) / 1280 (IPv6) plus 44 bytes of encapsulation"
        case .forwarderGroup(let why): "forwarders: \(why)"
        }
    }
}

/// How a VIP is matched against a packet's destination, laid out flat for the per-packet scan,
/// with where its table lies.
struct VIPMatch {
    var networkHigh: UInt64
    var networkLow: UInt64
    var maskHigh: UInt64
    var maskLow: UInt64
    var isIPv6: Bool
    var matchesAnyProtocol: Bool
    var proto: UInt8
    var matchesAnyPort: Bool
    var port: UInt16
    /// The VIP's stable id: what its counters and verdicts are indexed by.
    var id: Int
    /// The VIP's `VIPTable.slots` (retained by the snapshot through `vipTables`).
    var slots: UnsafePointer<UInt32>
    var tableSize: Int
}

/// What the data path needs of a backend, indexed by its stable id.
struct BackendRecord {
    var address: IPAddress
    /// Present in this snapshot and not down: its existing connections stay with it.
    var keepsConnections: Bool
    /// `GREEncapsulator.ipv4HeaderPartialSum` from the IPv4 encapsulation source to this
    /// backend (0 for an IPv6 backend): the outer header's checksum without summing it per packet.
    var ipv4HeaderSum: UInt32 = 0
}

/// A forwarder group member as the fragment redirect reads it: its address, and the salt its
/// rendezvous score mixes in (a hash of its name, so owners depend on names, not list order).
struct MemberRecord {
    var address: IPAddress
    var salt: UInt64
}

/// The immutable forwarding state a worker reads: VIPs, lookup tables, backends, settings.
/// Built off the data path, published, and swapped in by each worker between batches.
///
/// Backend and VIP ids are stable across snapshots built with `previous:`: a backend (a VIP)
/// keeps its id while its name stays in the config, so connection-table entries (which store
/// backend ids) and per-VIP counters stay with their owner across reloads; one that left keeps
/// its id (no longer present) so entries pointing at it are reselected and its counts are kept.
/// New names are appended, in config order.
///
/// Each VIP's table is a `VIPTable` object that the next snapshot reuses as is (same object,
/// nothing rebuilt or copied) when all of its inputs are unchanged: eligible backends (names,
/// weights, order), their ids, table size, algorithm and table options. Only changed VIPs are
/// rebuilt.
///
/// Lineage: a snapshot built without `previous` starts a lineage (a process-wide unique id) at
/// generation 0; one built with `previous:` continues it at `previous.generation + 1`. A
/// `Dataplane` installs only descendants of what it runs (`descends(from:)`), since ids only
/// mean the same thing within one lineage.
public final class ForwardingSnapshot: @unchecked Sendable {
    // @unchecked: all storage is written once in init and only read afterwards.

    public let config: DataplaneConfig
    /// Backend names by id (ids are indices). Includes backends that left earlier snapshots.
    public let backendNames: [String]
    /// Per backend id: whether it is in this snapshot's config at all.
    public let backendPresent: [Bool]
    /// VIP names by id (ids are indices). Includes VIPs that left earlier snapshots.
    public let vipNames: [String]
    /// Per VIP id: whether it is in this snapshot's config.
    public let vipPresent: [Bool]
    /// Per VIP (config order): the VIP's id.
    public let vipIDs: [Int]
    /// Per VIP (config order): its table storage, shared with the snapshots that reuse it.
    public let vipTables: [VIPTable]
    /// Per VIP (config order): its lookup table over the backends that take new connections,
    /// or nil when none does. (The values share their `entries` with `vipTables`.)
    public let tables: [LookupTable?]
    /// Per VIP (config order): the backend id of each index of `tables[v].backends`.
    public let tableBackendIDs: [[UInt32]]
    /// The lineage this snapshot belongs to: unique per snapshot built without `previous`.
    public let lineage: UInt64
    /// 0 for a lineage's first snapshot, `previous.generation + 1` after.
    public let generation: UInt64

    /// What the per-packet path reads: plain pointers and scalars, no references, so reading
    /// it costs no reference counting. Valid while this snapshot lives.
    let view: SnapshotView

    static let noBackend = UInt32.max
    /// Lineage ids handed out so far.
    static let lineages = Atomic<UInt64>(0)

    /// VIPs in this snapshot's config.
    public var vipCount: Int { view.vipMatches.count }
    /// VIP ids in use: this snapshot's VIPs and those that left earlier ones.
    public var vipIDCount: Int { vipNames.count }
    public var backendCount: Int { view.backends.count }

    /// Builds a snapshot; `previous` keeps backend and VIP ids stable across reloads and lends
    /// its tables to VIPs whose inputs did not change.
    public init(config: DataplaneConfig, previous: ForwardingSnapshot? = nil) throws(SnapshotError) {
        guard !config.vips.isEmpty else { throw .noVIPs }
        guard config.pathMTU >= 576 + 44 else { throw .pathMTUTooSmall(config.pathMTU) }
        let members = try ForwardingSnapshot.memberRecords(config)

        // Stable ids: previous names first, in their order, then new names in config order.
        var names = previous?.backendNames ?? []
        var idByName: [String: Int] = [:]
        for (i, n) in names.enumerated() { idByName[n] = i }
        var vipNames = previous?.vipNames ?? []
        var vipIDByName: [String: Int] = [:]
        for (i, n) in vipNames.enumerated() { vipIDByName[n] = i }
        var addressByName: [String: IPAddress] = [:]
        var vipIDs: [Int] = []
        var seenVIPs: Set<String> = []
        for vip in config.vips {
            guard seenVIPs.insert(vip.name).inserted else { throw .duplicateVIP(vip.name) }
            let maxPrefix = vip.address.isIPv6 ? 128 : 32
            guard (0...maxPrefix).contains(vip.prefixLength) else {
                throw .badPrefix(vip: vip.name, prefixLength: vip.prefixLength)
            }
            if let id = vipIDByName[vip.name] {
                vipIDs.append(id)
            } else {
                vipIDByName[vip.name] = vipNames.count
                vipIDs.append(vipNames.count)
                vipNames.append(vip.name)
            }
            for b in vip.backends {
                if let a = addressByName[b.name], a != b.address {
                    throw .conflictingBackend(name: b.name, first: a, second: b.address)
                }
                addressByName[b.name] = b.address
                if b.address.isIPv6 ? config.encapSourceIPv6 == nil : config.encapSourceIPv4 == nil {
                    throw .missingEncapSource(backend: b.name, ipv6: b.address.isIPv6)
                }
                if idByName[b.name] == nil {
                    idByName[b.name] = names.count
                    names.append(b.name)
                }
            }
        }
        var vipPresent = [Bool](repeating: false, count: vipNames.count)
        for id in vipIDs { vipPresent[id] = true }

        // Backend records by id.
        var keeps = [Bool](repeating: false, count: names.count)
        var present = [Bool](repeating: false, count: names.count)
        var records = [BackendRecord](
            repeating: BackendRecord(address: IPAddress(ipv4: 0), keepsConnections: false), count: names.count)
        if let previous {
            for id in 0..<previous.view.backends.count { records[id].address = previous.view.backends[id].address }
        }
        for vip in config.vips {
            for b in vip.backends {
                let id = idByName[b.name]!
                present[id] = true
                records[id].address = b.address
                if b.state != .down { keeps[id] = true }
            }
        }
        for id in 0..<names.count {
            records[id].keepsConnections = keeps[id]
            if !records[id].address.isIPv6, let source = config.encapSourceIPv4 {
                records[id].ipv4HeaderSum = GREEncapsulator.ipv4HeaderPartialSum(
                    source: source, destination: records[id].address)
            }
        }

        // Tables: only backends that take new connections own slots. A VIP whose inputs equal
        // those of its previous table (found by name) takes that table object as it is.
        var previousTables: [String: VIPTable] = [:]
        if let previous {
            for (vip, table) in zip(previous.config.vips, previous.vipTables) { previousTables[vip.name] = table }
        }
        var vipTables: [VIPTable] = []
        vipTables.reserveCapacity(config.vips.count)
        // Equal inputs give identical tables, so the tables this snapshot builds are built once
        // per distinct inputs and shared (the catch-all config's IPv4 and IPv6 VIPs: replay built
        // two equal tables at every start and event). Keyed by backend ids: the position in
        // `vipTables` of the first table built here with those ids. Tables taken from `previous`
        // are not entered, so that a reload of one VIP of many hashes no other VIP's ids.
        var firstWithIDs: [[UInt32]: Int] = [:]
        for vip in config.vips {
            let eligible = vip.backends.filter { $0.state == .active && $0.weight > 0 }
            let inputs = VIPTable.Inputs(
                backends: eligible.map { BackendSpec(name: $0.name, weight: $0.weight) },
                backendIDs: eligible.map { UInt32(idByName[$0.name]!) }, size: vip.tableSize ?? config.tableSize,
                algorithm: config.algorithm, options: config.tableOptions)
            if let old = previousTables[vip.name], old.inputs == inputs {
                vipTables.append(old)
                continue
            }
            if let same = firstWithIDs[inputs.backendIDs], vipTables[same].inputs == inputs {
                vipTables.append(vipTables[same])
                continue
            }
            do {
                firstWithIDs[inputs.backendIDs] = firstWithIDs[inputs.backendIDs] ?? vipTables.count
                vipTables.append(try VIPTable(inputs))
            } catch {
                throw .table(vip: vip.name, error)
            }
        }
        var matches: [VIPMatch] = []
        matches.reserveCapacity(config.vips.count)
        for (v, vip) in config.vips.enumerated() {
            matches.append(ForwardingSnapshot.match(for: vip, id: vipIDs[v], table: vipTables[v]))
        }

        if let previous {
            lineage = previous.lineage
            generation = previous.generation + 1
        } else {
            lineage = ForwardingSnapshot.lineages.add(1, ordering: .relaxed).newValue
            generation = 0
        }
        self.config = config
        self.backendNames = names
        self.backendPresent = present
        self.vipNames = vipNames
        self.vipPresent = vipPresent
        self.vipIDs = vipIDs
        self.vipTables = vipTables
        self.tables = vipTables.map(\.table)
        self.tableBackendIDs = vipTables.map(\.backendIDs)
        let vipMatches = UnsafeMutableBufferPointer<VIPMatch>.allocate(capacity: matches.count)
        _ = vipMatches.initialize(from: matches)
        let backends = UnsafeMutableBufferPointer<BackendRecord>.allocate(capacity: records.count)
        _ = backends.initialize(from: records)
        let memberBuffer = UnsafeMutableBufferPointer<MemberRecord>.allocate(capacity: max(1, members.count))
        _ = memberBuffer.initialize(from: members)
        self.view = SnapshotView(
            vipMatches: vipMatches, backends: backends, seed: config.hashSeed,
            pathMTU: config.pathMTU, encapSourceIPv4: config.encapSourceIPv4 ?? IPAddress(ipv4: 0),
            encapSourceIPv6: config.encapSourceIPv6 ?? IPAddress(high: 0, low: 0, isIPv6: true),
            connectionTracking: config.connectionTracking, fragmentPolicy: config.fragmentPolicy,
            acceptTruncated: config.acceptTruncated, icmpRatePerSecond: config.icmpRatePerSecond,
            icmpBurst: config.icmpBurst,
            members: UnsafeMutableBufferPointer(rebasing: memberBuffer[0..<members.count]),
            redirect: config.fragmentPolicy == .redirect, holdTimeoutMs: config.fragmentHold.timeoutMs)
        self.memberStorage = memberBuffer
    }

    /// Owns `view.members` (at least one element, so it is never empty to allocate).
    private let memberStorage: UnsafeMutableBufferPointer<MemberRecord>

    deinit {
        view.vipMatches.deallocate()
        view.backends.deallocate()
        memberStorage.deallocate()
    }

    /// The group's records, checked: names unique and non-empty, addresses unique and of one
    /// family; `fragments: redirect` needs at least one member.
    static func memberRecords(_ config: DataplaneConfig) throws(SnapshotError) -> [MemberRecord] {
        let group = config.forwarders
        if config.fragmentPolicy == .redirect && group.isEmpty {
            throw .forwarderGroup("fragments: redirect needs the forwarder group: list every forwarder (name, address)")
        }
        var names: Set<String> = []
        var addresses: Set<IPAddress> = []
        for m in group {
            guard !m.name.isEmpty else { throw .forwarderGroup("a member has an empty name") }
            guard names.insert(m.name).inserted else { throw .forwarderGroup("the name \(m.name) is listed twice") }
            guard addresses.insert(m.address).inserted else {
                throw .forwarderGroup("the address \(m.address) is listed twice")
            }
            guard m.address.isIPv6 == group[0].address.isIPv6 else {
                throw .forwarderGroup("every member's address must be of one family (\(group[0].name) and \(m.name) differ)")
            }
        }
        return group.map { MemberRecord(address: $0.address, salt: XXH64.hash($0.name, seed: 0x4D47_4752)) }
    }

    /// The index in `config.forwarders` of the member named `name`, or nil.
    public func memberIndex(named name: String) -> Int? { config.forwarders.firstIndex { $0.name == name } }

    /// The index in `config.forwarders` of the member that owns fragments of the 3-tuple
    /// (`source`, `destination`, `proto`) (`fragments: redirect`); nil without a group.
    /// Control side (replay, `maglev which`): the data plane's own choice.
    public func fragmentOwner(source: IPAddress, destination: IPAddress, proto: UInt8) -> Int? {
        guard view.members.count > 0 else { return nil }
        let key = FlowKey(source: source, destination: destination, sourcePort: 0, destinationPort: 0, proto: proto)
        return view.owner(ofFragmentHash: FlowHash.hash(key, seed: view.seed))
    }

    /// Whether this snapshot continues `other`'s lineage at a later generation: what a
    /// `Dataplane` running `other` may install.
    public func descends(from other: ForwardingSnapshot) -> Bool {
        lineage == other.lineage && generation > other.generation
    }

    /// The id of the VIP named `name` (present or not), or nil.
    public func vipID(named name: String) -> Int? { vipNames.firstIndex(of: name) }

    static func match(for vip: VIPConfig, id: Int, table: VIPTable) -> VIPMatch {
        let bits = vip.address.isIPv6 ? vip.prefixLength : vip.prefixLength + 96
        func mask(_ n: Int) -> UInt64 { n <= 0 ? 0 : n >= 64 ? ~0 : ~(~0 >> UInt64(n)) }
        let maskHigh = mask(bits)
        let maskLow = mask(bits - 64)
        return VIPMatch(
            networkHigh: vip.address.high & maskHigh, networkLow: vip.address.low & maskLow,
            maskHigh: maskHigh, maskLow: maskLow, isIPv6: vip.address.isIPv6,
            matchesAnyProtocol: vip.proto == nil, proto: vip.proto ?? 0,
            matchesAnyPort: vip.port == nil, port: vip.port ?? 0,
            id: id, slots: UnsafePointer(table.slots.baseAddress!), tableSize: table.slots.count)
    }

    /// The backend id that a flow hash selects in VIP `vip` (config order; control side:
    /// simulators, tests).
    public func backendID(vip: Int, hash: UInt64) -> Int? {
        let id = view.select(vip: vip, hash: hash)
        return id == ForwardingSnapshot.noBackend ? nil : Int(id)
    }

    public func address(ofBackend id: Int) -> IPAddress { view.backends[id].address }

    /// Where the lookup tables send a flow: the data plane's own VIP match, flow hash and
    /// table lookup, without a connection table (control side: `maglev which`, replay's
    /// what-if figures). nil when no VIP matches the flow (the data plane passes it).
    public func route(_ key: FlowKey) -> TableRoute? {
        let vip = view.findVIP(key, hasPorts: true)
        guard vip >= 0 else { return nil }
        let hash = FlowHash.hash(key, seed: view.seed)
        let match = view.vipMatches[vip]
        let id = view.select(vip: vip, hash: hash)
        return TableRoute(
            vip: vip, vipID: match.id, hash: hash, slot: FlowHash.slot(hash, size: match.tableSize),
            tableSize: match.tableSize, backend: id == ForwardingSnapshot.noBackend ? nil : Int(id))
    }
}

/// What `ForwardingSnapshot.route` found for a flow.
public struct TableRoute: Sendable, Equatable {
    /// The VIP's index in the config (`config.vips`) and its stable id (`vipNames`).
    public var vip: Int
    public var vipID: Int
    /// The flow hash under the snapshot's seed, and the table slot it selects.
    public var hash: UInt64
    public var slot: Int
    public var tableSize: Int
    /// The backend id that slot holds, nil when the VIP has no backend to give.
    public var backend: Int?
}

/// The per-packet part of a snapshot: pointers into the snapshot's storage and scalar settings.
struct SnapshotView {
    var vipMatches: UnsafeMutableBufferPointer<VIPMatch>
    var backends: UnsafeMutableBufferPointer<BackendRecord>
    var seed: UInt64
    var pathMTU: Int
    var encapSourceIPv4: IPAddress
    var encapSourceIPv6: IPAddress
    var connectionTracking: Bool
    var fragmentPolicy: FragmentPolicy
    var acceptTruncated: Bool
    var icmpRatePerSecond: Int
    var icmpBurst: Int
    /// The forwarder group (`fragments: redirect`; may be empty otherwise).
    var members: UnsafeMutableBufferPointer<MemberRecord>
    /// `fragments: redirect`.
    var redirect: Bool
    var holdTimeoutMs: UInt32

    /// The group member that owns a fragment whose 3-tuple hashes (seeded, ports 0) to `hash`:
    /// the highest rendezvous score (hash mixed with the member's salt). Members must not be
    /// empty.
    @inline(__always)
    func owner(ofFragmentHash hash: UInt64) -> Int {
        var best = 0
        var bestScore: UInt64 = 0
        for i in 0..<members.count {
            let score = FlowHash.fmix64(hash ^ members[i].salt)
            if i == 0 || score > bestScore {
                best = i
                bestScore = score
            }
        }
        return best
    }

    /// The VIP index for a destination, or -1. First match in config order wins.
    @inline(__always)
    func findVIP(_ key: FlowKey, hasPorts: Bool) -> Int {
        let d = key.destination
        for i in 0..<vipMatches.count {
            let m = vipMatches[i]
            if m.isIPv6 == d.isIPv6 && d.high & m.maskHigh == m.networkHigh && d.low & m.maskLow == m.networkLow
                && (m.matchesAnyProtocol || m.proto == key.proto)
                && (m.matchesAnyPort || !hasPorts || m.port == key.destinationPort)
            {
                return i
            }
        }
        return -1
    }

    /// The backend id for `hash` in the table of VIP `vip` (config order), or `noBackend`.
    @inline(__always)
    func select(vip: Int, hash: UInt64) -> UInt32 {
        let m = vipMatches[vip]
        return m.slots[FlowHash.slot(hash, size: m.tableSize)]
    }

    /// The stable id of VIP `vip` (config order).
    @inline(__always)
    func id(ofVIP vip: Int) -> Int { vipMatches[vip].id }

}
