/// What a snapshot cannot be built from, said so a person can fix the config.
public enum SnapshotError: Error, Equatable, Sendable, CustomStringConvertible {
    case noVIPs
    case badPrefix(vip: String, prefixLength: Int)
    case duplicateVIP(String)
    case conflictingBackend(name: String, first: IPAddress, second: IPAddress)
    case missingEncapSource(backend: String, ipv6: Bool)
    case table(vip: String, TableError)
    case pathMTUTooSmall(Int)

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
        }
    }
}

/// How a VIP is matched against a packet's destination, laid out flat for the per-packet scan.
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
    /// Where this VIP's table starts in `ForwardingSnapshot.tableStorage`.
    var tableOffset: Int
    var tableSize: Int
}

/// What the data path needs of a backend, indexed by its stable id.
struct BackendRecord {
    var address: IPAddress
    /// Present in this snapshot and not down: its existing connections stay with it.
    var keepsConnections: Bool
}

/// The immutable forwarding state a worker reads: VIPs, lookup tables, backends, settings.
/// Built off the data path, published, and swapped in by each worker between batches.
///
/// Backend ids are stable across snapshots built with `previous:`: a backend keeps its id while
/// its name stays in the config, so connection-table entries stay valid across reloads; a
/// backend that left keeps its id (no longer present) so entries pointing at it are reselected.
public final class ForwardingSnapshot: @unchecked Sendable {
    // @unchecked: all storage is written once in init and only read afterwards.

    public let config: DataplaneConfig
    /// Backend names by id (ids are indices). Includes backends that left earlier snapshots.
    public let backendNames: [String]
    /// Per backend id: whether it is in this snapshot's config at all.
    public let backendPresent: [Bool]
    /// Per VIP (config order): its lookup table over the backends that take new connections,
    /// or nil when none does.
    public let tables: [LookupTable?]
    /// Per VIP: the backend id of each index of `tables[v].backends`.
    public let tableBackendIDs: [[UInt32]]

    /// What the per-packet path reads: plain pointers and scalars, no references, so reading
    /// it costs no reference counting. Valid while this snapshot lives.
    let view: SnapshotView

    static let noBackend = UInt32.max

    public var vipCount: Int { view.vipMatches.count }
    public var backendCount: Int { view.backends.count }

    /// Builds a snapshot; `previous` keeps backend ids stable across reloads.
    public init(config: DataplaneConfig, previous: ForwardingSnapshot? = nil) throws(SnapshotError) {
        guard !config.vips.isEmpty else { throw .noVIPs }
        guard config.pathMTU >= 576 + 44 else { throw .pathMTUTooSmall(config.pathMTU) }

        // Stable ids: previous names first, in their order, then new names in config order.
        var names = previous?.backendNames ?? []
        var idByName: [String: Int] = [:]
        for (i, n) in names.enumerated() { idByName[n] = i }
        var addressByName: [String: IPAddress] = [:]
        var seenVIPs: Set<String> = []
        for vip in config.vips {
            guard seenVIPs.insert(vip.name).inserted else { throw .duplicateVIP(vip.name) }
            let maxPrefix = vip.address.isIPv6 ? 128 : 32
            guard (0...maxPrefix).contains(vip.prefixLength) else {
                throw .badPrefix(vip: vip.name, prefixLength: vip.prefixLength)
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
        for id in 0..<names.count { records[id].keepsConnections = keeps[id] }

        // Tables: only backends that take new connections own slots.
        var tables: [LookupTable?] = []
        var ids: [[UInt32]] = []
        var storage: [UInt32] = []
        var matches: [VIPMatch] = []
        for vip in config.vips {
            let eligible = vip.backends.filter { $0.state == .active && $0.weight > 0 }
            var table: LookupTable?
            var tableIDs: [UInt32] = []
            let offset = storage.count
            if eligible.isEmpty {
                storage.append(ForwardingSnapshot.noBackend)
            } else {
                do {
                    table = try LookupTableBuilder.build(
                        config.algorithm, backends: eligible.map { BackendSpec(name: $0.name, weight: $0.weight) },
                        size: config.tableSize, options: config.tableOptions)
                } catch {
                    throw .table(vip: vip.name, error)
                }
                tableIDs = table!.backends.map { UInt32(idByName[$0.name]!) }
                for e in table!.entries {
                    storage.append(e < 0 ? ForwardingSnapshot.noBackend : tableIDs[Int(e)])
                }
            }
            tables.append(table)
            ids.append(tableIDs)
            matches.append(ForwardingSnapshot.match(for: vip, tableOffset: offset, tableSize: storage.count - offset))
        }

        self.config = config
        self.backendNames = names
        self.backendPresent = present
        self.tables = tables
        self.tableBackendIDs = ids
        let vipMatches = UnsafeMutableBufferPointer<VIPMatch>.allocate(capacity: matches.count)
        _ = vipMatches.initialize(from: matches)
        let backends = UnsafeMutableBufferPointer<BackendRecord>.allocate(capacity: records.count)
        _ = backends.initialize(from: records)
        let tableStorage = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: storage.count)
        _ = tableStorage.initialize(from: storage)
        self.view = SnapshotView(
            vipMatches: vipMatches, backends: backends, tableStorage: tableStorage, seed: config.hashSeed,
            pathMTU: config.pathMTU, encapSourceIPv4: config.encapSourceIPv4 ?? IPAddress(ipv4: 0),
            encapSourceIPv6: config.encapSourceIPv6 ?? IPAddress(high: 0, low: 0, isIPv6: true),
            connectionTracking: config.connectionTracking, fragmentPolicy: config.fragmentPolicy,
            acceptTruncated: config.acceptTruncated, icmpRatePerSecond: config.icmpRatePerSecond,
            icmpBurst: config.icmpBurst)
    }

    deinit {
        view.vipMatches.deallocate()
        view.backends.deallocate()
        view.tableStorage.deallocate()
    }

    static func match(for vip: VIPConfig, tableOffset: Int, tableSize: Int) -> VIPMatch {
        let bits = vip.address.isIPv6 ? vip.prefixLength : vip.prefixLength + 96
        func mask(_ n: Int) -> UInt64 { n <= 0 ? 0 : n >= 64 ? ~0 : ~(~0 >> UInt64(n)) }
        let maskHigh = mask(bits)
        let maskLow = mask(bits - 64)
        return VIPMatch(
            networkHigh: vip.address.high & maskHigh, networkLow: vip.address.low & maskLow,
            maskHigh: maskHigh, maskLow: maskLow, isIPv6: vip.address.isIPv6,
            matchesAnyProtocol: vip.proto == nil, proto: vip.proto ?? 0,
            matchesAnyPort: vip.port == nil, port: vip.port ?? 0,
            tableOffset: tableOffset, tableSize: tableSize)
    }

    /// The backend id that a flow hash selects in VIP `vip` (control side: simulators, tests).
    public func backendID(vip: Int, hash: UInt64) -> Int? {
        let id = view.select(vip: vip, hash: hash)
        return id == ForwardingSnapshot.noBackend ? nil : Int(id)
    }

    public func address(ofBackend id: Int) -> IPAddress { view.backends[id].address }
}

/// The per-packet part of a snapshot: pointers into the snapshot's storage and scalar settings.
struct SnapshotView {
    var vipMatches: UnsafeMutableBufferPointer<VIPMatch>
    var backends: UnsafeMutableBufferPointer<BackendRecord>
    /// All VIPs' tables, concatenated: slot -> backend id, or `noBackend`.
    var tableStorage: UnsafeMutableBufferPointer<UInt32>
    var seed: UInt64
    var pathMTU: Int
    var encapSourceIPv4: IPAddress
    var encapSourceIPv6: IPAddress
    var connectionTracking: Bool
    var fragmentPolicy: FragmentPolicy
    var acceptTruncated: Bool
    var icmpRatePerSecond: Int
    var icmpBurst: Int

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

    /// The backend id for `hash` in VIP `vip`'s table, or `noBackend`.
    @inline(__always)
    func select(vip: Int, hash: UInt64) -> UInt32 {
        let m = vipMatches[vip]
        return tableStorage[m.tableOffset &+ FlowHash.slot(hash, size: m.tableSize)]
    }

}
