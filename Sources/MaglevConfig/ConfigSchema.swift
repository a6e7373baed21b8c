import MaglevCore
import Yams

/// The schema of a config file (see docs/config.md): decodes a composed YAML tree into a
/// `MaglevConfigFile`, checking every field and the rules between fields, and collects all
/// problems instead of stopping at the first.
struct ConfigSchema {
    static let rootKeys = [
        "table_size", "algorithm", "ring_views", "hash_seed", "path_mtu", "encap", "fragments",
        "connection_tracking", "icmp", "pools", "vips", "bgp", "forwarders", "fragment_hold",
    ]
    static let encapKeys = ["source_ipv4", "source_ipv6"]
    static let trackingKeys = ["enabled", "capacity", "timeouts"]
    static let timeoutKeys = ["tcp_established", "tcp_half_open", "tcp_closing", "udp", "fragment"]
    static let icmpKeys = ["rate_per_second", "burst"]
    static let vipKeys = ["name", "address", "protocol", "port", "pool", "pools", "backends", "when_all_down", "table_size", "shard"]
    static let poolKeys = ["backends", "health_check", "min_healthy"]
    static let healthKeys = ["type", "port", "path", "expect", "interval", "timeout", "rise", "fall", "query_name"]
    static let backendKeys = ["name", "address", "weight", "state"]
    static let protocols: [(String, UInt8)] = [
        ("tcp", IPProtocol.tcp), ("udp", IPProtocol.udp), ("icmp", IPProtocol.icmp),
        ("icmpv6", IPProtocol.icmpv6), ("sctp", IPProtocol.sctp),
    ]
    /// Protocols whose packets carry ports a VIP can match on.
    static let protocolsWithPorts: Set<UInt8> = [IPProtocol.tcp, IPProtocol.udp, IPProtocol.sctp]

    static let defaultConnectionCapacity = 1 << 20

    let problems: ProblemList
    let d: Decoder

    init(problems: ProblemList) {
        self.problems = problems
        self.d = Decoder(problems: problems)
    }

    // MARK: Decoded pieces, with where they came from

    struct Backend {
        var name: String?
        var address: IPAddress?
        var weight: UInt32?
        var state: BackendState?
        var path: String
        var node: Node
        var nameNode: Node?
        var addressNode: Node?

        var config: BackendConfig? {
            guard let name, let address, let weight, let state else { return nil }
            return BackendConfig(name: name, address: address, weight: weight, state: state)
        }
    }

    struct Pool {
        /// The pool's name, or the VIP's for an inline `backends:` list.
        var name: String
        var label: String
        var path: String
        var node: Node
        var backends: [Backend]
        var valid: Bool
        var health: HealthCheck?
        var minHealthy: MinHealthy = .count(1)
    }

    /// A pool's `health_check`, before the port and VIP defaults are filled in.
    struct HealthCheck {
        var check: HealthCheckConfig
        var portGiven: Bool
        var node: Node
        var path: String
    }

    struct VIP {
        var name: String?
        var network: (IPAddress, Int)?
        var proto: UInt8?
        var port: UInt16?
        var pool: Pool?
        /// Every pool, in order (`pool` is the first); more than one only with `pools:`.
        var pools: [Pool] = []
        var whenAllDown: WhenAllDown = .failOpen
        var shard: String?
        /// The pool with the most backends: every pool's table must fit them.
        var largestPool: Pool? { pools.max { $0.backends.count < $1.backends.count } }
        var path: String
        var node: Node
        var nameNode: Node?
        var addressNode: Node?
        var poolDefined: Bool
        /// Its own table size, when it sets a valid one.
        var tableSize: Int?
        /// Where it sets `table_size`, valid or not.
        var tableSizeNode: Node?
    }

    // MARK: The document

    func decode(_ root: Node, path file: String) -> MaglevConfigFile? {
        guard case .mapping = root else {
            problems.add(
                root.location, "",
                "the config must be a mapping of settings (table_size, vips, ...), got \(root.kindDescription)")
            return nil
        }
        guard let f = d.fields(root, "", keys: Self.rootKeys) else { return nil }
        var config = DataplaneConfig(vips: [])
        var capacity = Self.defaultConnectionCapacity

        var tableSizeValid = true
        if let n = f["table_size"] {
            if let size = d.int(n, "table_size", 1...Int.max, "a prime table size") {
                if !isPrime(size) {
                    d.fail(n, "table_size", TableError.sizeNotPrime(size).description)
                    tableSizeValid = false
                } else if size > TableError.maximumSize {
                    d.fail(n, "table_size", TableError.sizeTooLarge(size).description)
                    tableSizeValid = false
                } else {
                    config.tableSize = size
                }
            } else {
                tableSizeValid = false
            }
        }
        if let n = f["algorithm"], let a = d.choice(n, "algorithm", TableAlgorithm.allCases.map(\.rawValue)) {
            config.algorithm = TableAlgorithm(rawValue: a)!
        }
        if let n = f["ring_views"], let v = d.int(n, "ring_views", 1...100_000) {
            config.tableOptions.ringViews = v
        }
        if let n = f["hash_seed"], let v = d.integer(n, "hash_seed", 0...UInt64.max, "an unsigned 64-bit integer") {
            config.hashSeed = v
        }
        config.tableOptions.seed = config.hashSeed
        if let n = f["path_mtu"], let v = d.int(n, "path_mtu", 620...65535) {
            config.pathMTU = v
        }
        var encap: Fields?
        if let n = f["encap"], let e = d.fields(n, "encap", keys: Self.encapKeys) {
            encap = e
            if let a = e["source_ipv4"] { config.encapSourceIPv4 = d.address(a, e.path("source_ipv4"), family: false) }
            if let a = e["source_ipv6"] { config.encapSourceIPv6 = d.address(a, e.path("source_ipv6"), family: true) }
        }
        if let n = f["fragments"], let v = d.choice(n, "fragments", FragmentPolicy.allCases.map(\.rawValue)) {
            config.fragmentPolicy = FragmentPolicy(rawValue: v)!
        }
        decodeForwarders(f, into: &config)
        if let n = f["connection_tracking"], let t = d.fields(n, "connection_tracking", keys: Self.trackingKeys) {
            if let v = t["enabled"], let b = d.bool(v, t.path("enabled")) { config.connectionTracking = b }
            if let v = t["capacity"], let c = d.int(v, t.path("capacity"), 8...(1 << 32)) { capacity = c }
            if let v = t["timeouts"], let o = d.fields(v, t.path("timeouts"), keys: Self.timeoutKeys) {
                func read(_ key: String, _ into: WritableKeyPath<ConnectionTimeouts, UInt32>) {
                    if let v = o[key], let ms = d.duration(v, o.path(key)) { config.timeouts[keyPath: into] = ms }
                }
                read("tcp_established", \.tcpEstablishedMs)
                read("tcp_half_open", \.tcpHalfOpenMs)
                read("tcp_closing", \.tcpClosingMs)
                read("udp", \.datagramMs)
                read("fragment", \.fragmentMs)
            }
        }
        if let n = f["icmp"], let i = d.fields(n, "icmp", keys: Self.icmpKeys) {
            if let v = i["rate_per_second"], let r = d.int(v, i.path("rate_per_second"), 0...1_000_000) {
                config.icmpRatePerSecond = r
            }
            if let v = i["burst"], let b = d.int(v, i.path("burst"), 0...1_000_000) { config.icmpBurst = b }
        }

        // Pools, then the VIPs that use them.
        var pools: [(String, Pool)] = []
        if let n = f["pools"] {
            if case .mapping(let mapping) = n {
                for (key, value) in mapping {
                    guard case .scalar(let k) = key, !k.string.isEmpty else {
                        d.fail(key, "pools", "a pool name must be a non-empty word, got \(key.kindDescription)")
                        continue
                    }
                    let path = "pools.\(k.string)"
                    pools.append((k.string, decodeNamedPool(value, path: path, name: k.string)))
                }
            } else {
                d.expected("a mapping of pool names to lists of backends", n, "pools")
            }
        }
        let poolByName = Dictionary(pools, uniquingKeysWith: { first, _ in first })

        var vips: [VIP] = []
        if let n = d.required(f, "vips", "a list of VIPs") {
            if let items = d.sequence(n, "vips") {
                if items.isEmpty { d.fail(n, "vips", "at least one VIP is required") }
                for (i, item) in items.enumerated() {
                    vips.append(decodeVIP(item, path: "vips[\(i)]", pools: poolByName))
                }
            }
        }

        checkVIPs(vips)
        let allPools = pools.map(\.1) + vips.compactMap { $0.poolDefined ? nil : $0.pool }
        let checks = resolveHealthChecks(pools: pools.map(\.1), vips: vips)
        checkBackendAddresses(allPools)
        let used = vips.flatMap(\.pools)
        checkEncap(used, config: config, encap: encap, root: root)
        if tableSizeValid {
            // VIPs with their own table_size were checked against it in decodeVIP.
            for vip in vips where vip.tableSizeNode == nil {
                guard let pool = vip.largestPool, pool.backends.count > config.tableSize else { continue }
                let size = config.tableSize
                let message = TableError.sizeTooSmall(size: size, backends: pool.backends.count).description
                if let n = f["table_size"] {
                    d.fail(n, "table_size", "\(message) (\(pool.label))")
                } else {
                    d.fail(pool.node, pool.path, "\(message): set table_size")
                }
            }
        }

        let bgp = f["bgp"].flatMap { decodeBGP($0, path: "bgp") }
        guard problems.isEmpty else { return nil }
        config.vips = vips.map { vip in
            VIPConfig(
                name: vip.name!, address: vip.network!.0, prefixLength: vip.network!.1, proto: vip.proto,
                port: vip.port, backends: vip.pool!.backends.map { $0.config! }, tableSize: vip.tableSize)
        }
        let poolConfigs = allPools.map { pool in
            PoolConfig(
                name: pool.name, backends: pool.backends.map { $0.config! }, healthCheck: checks[pool.name],
                minHealthy: pool.minHealthy)
        }
        let choices = vips.map { vip in
            VIPPoolChoice(vip: vip.name!, pools: vip.pools.map(\.name), whenAllDown: vip.whenAllDown, shard: vip.shard)
        }
        var file = MaglevConfigFile(
            dataplane: config, connectionCapacity: capacity, path: file, pools: poolConfigs, vipPools: choices)
        file.bgp = bgp
        // The snapshot is what the forwarder builds: whatever it refuses is a config problem too.
        do {
            _ = try ForwardingSnapshot(config: config)
        } catch {
            report(error, vips: vips, fields: f, root: root)
            return nil
        }
        return file
    }

    // MARK: Pools and backends

    func decodePool(_ node: Node, path: String, name: String, label: String) -> Pool {
        var pool = Pool(name: name, label: label, path: path, node: node, backends: [], valid: false)
        guard let items = d.sequence(node, path) else { return pool }
        if items.isEmpty {
            d.fail(node, path, "\(label) has no backends: list at least one")
            return pool
        }
        pool.backends = items.enumerated().map { i, item in decodeBackend(item, path: "\(path)[\(i)]") }
        pool.valid = pool.backends.allSatisfy { $0.config != nil }
        var firstByName: [String: Backend] = [:]
        for b in pool.backends {
            guard let name = b.name, let nameNode = b.nameNode else { continue }
            if let first = firstByName[name] {
                d.fail(
                    nameNode, "\(b.path).name",
                    "backend name '\(name)' is used twice in \(label) (first at line \(first.node.location.line)): "
                        + "backend names must be unique in a pool")
                pool.valid = false
            } else {
                firstByName[name] = b
            }
        }
        if pool.backends.allSatisfy({ $0.weight == 0 }) {
            d.fail(node, path, "every backend of \(label) has weight 0, so none could take traffic: give at least one a positive weight")
            pool.valid = false
        }
        return pool
    }

    func decodeBackend(_ node: Node, path: String) -> Backend {
        var b = Backend(path: path, node: node)
        guard let f = d.fields(node, path, keys: Self.backendKeys) else { return b }
        if let n = d.required(f, "name", "a backend name") {
            b.nameNode = n
            if let name = d.string(n, f.path("name")) {
                if name.isEmpty {
                    d.fail(n, f.path("name"), "a backend name must not be empty")
                } else {
                    b.name = name
                }
            }
        }
        if let n = d.required(f, "address", "the backend's IP address") {
            b.addressNode = n
            b.address = d.address(n, f.path("address"))
        }
        b.weight = 1
        if let n = f["weight"] {
            b.weight = d.integer(n, f.path("weight"), 0...UInt64(UInt32.max), "a non-negative integer below 2^32")
                .map { UInt32($0) }
        }
        b.state = .active
        if let n = f["state"] {
            b.state = d.choice(n, f.path("state"), BackendState.allCases.map(\.description)).flatMap { s in
                BackendState.allCases.first { $0.description == s }
            }
        }
        return b
    }

    // MARK: VIPs

    func decodeVIP(_ node: Node, path: String, pools: [String: Pool]) -> VIP {
        var vip = VIP(path: path, node: node, poolDefined: false)
        guard let f = d.fields(node, path, keys: Self.vipKeys) else { return vip }
        if let n = d.required(f, "name", "a VIP name") {
            vip.nameNode = n
            if let name = d.string(n, f.path("name")) {
                if name.isEmpty { d.fail(n, f.path("name"), "a VIP name must not be empty") } else { vip.name = name }
            }
        }
        if let n = d.required(f, "address", "the VIP's address or prefix") {
            vip.addressNode = n
            vip.network = d.prefix(n, f.path("address"))
        }
        if let n = f["protocol"] {
            vip.proto = decodeProtocol(n, f.path("protocol"))
            if let p = vip.proto, let (address, _) = vip.network {
                if p == IPProtocol.icmp && address.isIPv6 {
                    d.fail(n, f.path("protocol"), "an IPv6 VIP sees no icmp (IPv4) packets: use icmpv6")
                } else if p == IPProtocol.icmpv6 && !address.isIPv6 {
                    d.fail(n, f.path("protocol"), "an IPv4 VIP sees no icmpv6 packets: use icmp")
                }
            }
        }
        if let n = f["port"] {
            if let port = d.int(n, f.path("port"), 1...65535, "a port number 1-65535") {
                vip.port = UInt16(port)
                if !f.has("protocol") {
                    d.fail(n, f.path("port"), "a port needs a protocol: add protocol: tcp, udp or sctp")
                } else if let p = vip.proto, !Self.protocolsWithPorts.contains(p) {
                    let name = Self.protocols.first { $0.1 == p }?.0 ?? "\(p)"
                    d.fail(n, f.path("port"), "protocol \(name) has no ports: use tcp, udp or sctp, or remove port")
                }
            }
        }
        let given = ["pool", "pools", "backends"].filter { f.has($0) }
        if given.isEmpty {
            d.fail(node, path, "needs its backends: pool: NAME, pools: [NAME, ...] or backends: [...]")
        } else if given.count > 1 {
            problems.add(
                f.location(given[1]), path, "has both \(given[0]) and \(given[1]): use one of them")
        } else if let n = f["pool"] {
            if let name = d.string(n, f.path("pool")), let pool = lookupPool(name, n, f.path("pool"), pools) {
                vip.pools = [pool]
            }
        } else if let n = f["pools"], let items = d.sequence(n, f.path("pools")) {
            if items.isEmpty { d.fail(n, f.path("pools"), "list at least one pool") }
            var seen = Set<String>()
            for (i, item) in items.enumerated() {
                let p = "\(f.path("pools"))[\(i)]"
                guard let name = d.string(item, p) else { continue }
                if !seen.insert(name).inserted {
                    d.fail(item, p, "pool '\(name)' is listed twice")
                } else if let pool = lookupPool(name, item, p, pools) {
                    vip.pools.append(pool)
                }
            }
        } else if let n = f["backends"] {
            if let name = vip.name, pools[name] != nil, let nameNode = vip.nameNode {
                // Inline backends form a pool named after the VIP: it must not shadow a named pool.
                d.fail(
                    nameNode, f.path("name"),
                    "VIP '\(name)' lists its own backends but a pool is also named '\(name)': rename the VIP "
                        + "or the pool, or use pool: \(name)")
            }
            let label = vip.name.map { "VIP '\($0)'" } ?? path
            vip.pools = [decodePool(n, path: f.path("backends"), name: vip.name ?? path, label: label)]
        }
        vip.pool = vip.pools.first
        vip.poolDefined = vip.pool != nil && !f.has("backends")
        if let n = f["when_all_down"], let v = d.choice(n, f.path("when_all_down"), WhenAllDown.allCases.map(\.rawValue)) {
            vip.whenAllDown = WhenAllDown(rawValue: v)!
        }
        if let n = f["shard"], let v = d.string(n, f.path("shard")) {
            if v.isEmpty || v.contains(where: { $0 == " " || $0 == "," }) {
                d.fail(n, f.path("shard"), "a shard is a non-empty name without spaces or commas, got '\(v)'")
            } else {
                vip.shard = v
            }
        }
        if let n = f["table_size"] {
            vip.tableSizeNode = n
            let key = f.path("table_size")
            if let size = d.int(n, key, 1...Int.max, "a prime table size") {
                if !isPrime(size) {
                    d.fail(n, key, TableError.sizeNotPrime(size).description)
                } else if size > TableError.maximumSize {
                    d.fail(n, key, TableError.sizeTooLarge(size).description)
                } else if let pool = vip.largestPool, pool.backends.count > size {
                    let message = TableError.sizeTooSmall(size: size, backends: pool.backends.count).description
                    d.fail(n, key, "\(message) (\(pool.label))")
                } else {
                    vip.tableSize = size
                }
            }
        }
        return vip
    }

    func lookupPool(_ name: String, _ n: Node, _ path: String, _ pools: [String: Pool]) -> Pool? {
        if let pool = pools[name] { return pool }
        if pools.isEmpty {
            d.fail(n, path, "unknown pool '\(name)': no pools are defined (add pools: or use backends:)")
        } else {
            let hint = suggestion(for: name, among: pools.keys).map { " (did you mean '\($0)'?)" }
                ?? "; defined pools: \(pools.keys.sorted().joined(separator: ", "))"
            d.fail(n, path, "unknown pool '\(name)'\(hint)")
        }
        return nil
    }

    func decodeProtocol(_ node: Node, _ path: String) -> UInt8? {
        let names = Self.protocols.map(\.0)
        let what = "tcp, udp, icmp, icmpv6, sctp or a protocol number 0-255"
        guard case .scalar(let s) = node, !node.isNull else {
            d.expected(what, node, path)
            return nil
        }
        if let p = Self.protocols.first(where: { $0.0 == s.string.lowercased() }) { return p.1 }
        if node.plainText != nil, parseInteger(s.string) != .notInteger {
            return d.integer(node, path, 0...255, "a protocol number").map { UInt8($0) }
        }
        d.fail(node, path, "expected \(what), got '\(s.string)'\(didYouMean(s.string, among: names))")
        return nil
    }

    // MARK: Rules between fields

    func checkVIPs(_ vips: [VIP]) {
        var firstByName: [String: VIP] = [:]
        for vip in vips {
            guard let name = vip.name, let nameNode = vip.nameNode else { continue }
            if let first = firstByName[name] {
                d.fail(
                    nameNode, "\(vip.path).name",
                    "VIP name '\(name)' is used twice (first at line \(first.node.location.line)): VIP names must be unique")
            } else {
                firstByName[name] = vip
            }
        }
        // Two VIPs that match exactly the same packets: the second is never used.
        for (j, vip) in vips.enumerated() {
            guard let (a, len) = vip.network, let node = vip.addressNode else { continue }
            for earlier in vips[..<j] {
                guard let (b, lenB) = earlier.network, a == b, len == lenB, earlier.proto == vip.proto,
                    earlier.port == vip.port
                else { continue }
                let other = earlier.name.map { "VIP '\($0)'" } ?? earlier.path
                d.fail(
                    node, "\(vip.path).address",
                    "matches exactly the same traffic as \(other) (line \(earlier.node.location.line)), "
                        + "which comes first, so this VIP would never be used")
                break
            }
        }
    }

    /// A backend name names one host: the same name with two addresses anywhere is a mistake.
    func checkBackendAddresses(_ pools: [Pool]) {
        // Within a pool a repeated name is already a problem of its own: check the first ones.
        let backends = pools.flatMap { pool in
            var seen = Set<String>()
            return pool.backends.filter { b in b.name.map { seen.insert($0).inserted } ?? false }
        }.sorted { $0.node.location < $1.node.location }
        var firstByName: [String: Backend] = [:]
        for b in backends {
            guard let name = b.name, let address = b.address, let node = b.addressNode else { continue }
            if let first = firstByName[name], let firstAddress = first.address {
                if firstAddress != address {
                    d.fail(
                        node, "\(b.path).address",
                        "backend '\(name)' has address \(address) here but \(firstAddress) at \(first.path) "
                            + "(line \(first.node.location.line)): a backend name names one host")
                }
            } else {
                firstByName[name] = b
            }
        }
    }

    /// Every backend family in use needs its encapsulation source address.
    func checkEncap(_ pools: [Pool], config: DataplaneConfig, encap: Fields?, root: Node) {
        var reported = Set<Bool>()
        for b in pools.flatMap(\.backends) {
            guard let address = b.address, let node = b.addressNode else { continue }
            let v6 = address.isIPv6
            let set = v6 ? config.encapSourceIPv6 != nil : config.encapSourceIPv4 != nil
            let key = v6 ? "source_ipv6" : "source_ipv4"
            // An encap source that was given but is malformed was reported already.
            if set || reported.contains(v6) || encap?[key] != nil { continue }
            reported.insert(v6)
            let location = encap?.node.location ?? node.location
            problems.add(
                location, "encap.\(key)",
                "missing: backend '\(b.name ?? b.path)' (line \(node.location.line)) is IPv\(v6 ? 6 : 4), "
                    + "so this forwarder's IPv\(v6 ? 6 : 4) address is needed as the encapsulation source")
        }
    }

    /// What the snapshot refused, at the field it concerns.
    func report(_ error: SnapshotError, vips: [VIP], fields f: Fields, root: Node) {
        func vip(_ name: String) -> VIP? { vips.first { $0.name == name } }
        func at(_ key: String) -> SourceLocation { f[key]?.location ?? f.location(key) }
        switch error {
        case .noVIPs:
            problems.add(at("vips"), "vips", error.description)
        case .badPrefix(let name, _):
            let v = vip(name)
            problems.add(v?.addressNode?.location ?? .start, "\(v?.path ?? "vips").address", error.description)
        case .duplicateVIP(let name):
            let v = vips.last { $0.name == name }
            problems.add(v?.nameNode?.location ?? .start, "\(v?.path ?? "vips").name", error.description)
        case .conflictingBackend(let name, _, _):
            let b = vips.compactMap(\.pool).flatMap(\.backends).last { $0.name == name }
            problems.add(b?.addressNode?.location ?? .start, "\(b?.path ?? "vips").address", error.description)
        case .missingEncapSource(_, let v6):
            problems.add(at("encap"), "encap.source_ipv\(v6 ? 6 : 4)", error.description)
        case .pathMTUTooSmall:
            problems.add(at("path_mtu"), "path_mtu", error.description)
        case .forwarderGroup:
            problems.add(at("forwarders"), "forwarders", error.description)
        case .table(let name, let tableError):
            switch tableError {
            case .sizeNotPrime, .sizeTooLarge, .sizeTooSmall:
                if let v = vip(name), let n = v.tableSizeNode {
                    problems.add(n.location, "\(v.path).table_size", error.description)
                } else {
                    problems.add(at("table_size"), "table_size", error.description)
                }
            default:
                let pool = vip(name)?.pool
                problems.add(pool?.node.location ?? .start, pool?.path ?? "vips", error.description)
            }
        }
    }
}
