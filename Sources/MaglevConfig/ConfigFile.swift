public import MaglevCore
import Yams

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A loaded, validated config file: what the forwarder and the offline replay run from.
/// The format is YAML; docs/config.md lists every field.
public struct MaglevConfigFile: Sendable {
    public var dataplane: DataplaneConfig
    /// Connection-table entries per worker (per simulated forwarder in replay).
    public var connectionCapacity: Int
    public var path: String
    /// Every pool (named ones, and one per VIP with inline `backends:`, named after the VIP), in
    /// file order. `dataplane.vips[i].backends` is the first pool of VIP i as the file gives it.
    public var pools: [PoolConfig]
    /// Per VIP, in `dataplane.vips` order: its pools in order and its `when_all_down` policy.
    public var vipPools: [VIPPoolChoice]
    /// The `bgp` section, if any: the forwarder announces its usable VIPs to these peers.
    public var bgp: BGPConfig?

    /// `connection_tracking.capacity` when the file does not set it: 2^20 entries per worker.
    public static let defaultConnectionCapacity = ConfigSchema.defaultConnectionCapacity

    /// A config whose VIPs each have one pool (named after the VIP) with no health check,
    /// unless `pools` and `vipPools` are given.
    public init(
        dataplane: DataplaneConfig, connectionCapacity: Int, path: String, pools: [PoolConfig]? = nil,
        vipPools: [VIPPoolChoice]? = nil
    ) {
        self.dataplane = dataplane
        self.connectionCapacity = connectionCapacity
        self.path = path
        self.pools = pools ?? dataplane.vips.map { PoolConfig(name: $0.name, backends: $0.backends) }
        self.vipPools = vipPools ?? dataplane.vips.map { VIPPoolChoice(vip: $0.name, pools: [$0.name]) }
    }

    /// The config a forwarder of shard `name` runs: the VIPs of that shard and the VIPs with
    /// no shard (nil: every VIP). Throws when that leaves no VIP.
    public func forShard(_ name: String?) throws(ConfigError) -> MaglevConfigFile {
        guard let name else { return self }
        let keep = vipPools.indices.filter { vipPools[$0].shard == nil || vipPools[$0].shard == name }
        guard !keep.isEmpty else {
            let shards = Set(vipPools.compactMap(\.shard)).sorted()
            throw ConfigError(problems: [
                ConfigProblem(
                    file: path, line: 0, column: 0, field: "vips",
                    message: "no VIP belongs to shard '\(name)'"
                        + (shards.isEmpty ? " (no VIP has a shard)" : "; shards: \(shards.joined(separator: ", "))"))
            ])
        }
        var out = self
        out.dataplane.vips = keep.map { dataplane.vips[$0] }
        out.vipPools = keep.map { vipPools[$0] }
        return out
    }

    /// The pool named `name`.
    public func pool(named name: String) -> PoolConfig? { pools.first { $0.name == name } }

    /// Reads and checks the file at `path`. An unreadable file is one problem at line 0 that
    /// says why; otherwise every problem in the file is reported (see `parse(yaml:path:)`).
    public static func load(path: String) throws(ConfigError) -> MaglevConfigFile {
        let text: String
        switch readFile(path) {
        case .success(let t): text = t
        case .failure(let reason):
            throw ConfigError(problems: [
                ConfigProblem(file: path, line: 0, column: 0, field: "", message: "cannot read the config file: \(reason)")
            ])
        }
        return try parse(yaml: text, path: path)
    }

    /// Parses and checks YAML text; `path` names the file in problems. Throws every problem
    /// found (unknown keys, wrong types, values out of range, broken rules between fields, and
    /// whatever the forwarding snapshot refuses), in file order.
    public static func parse(yaml: String, path: String) throws(ConfigError) -> MaglevConfigFile {
        let problems = ProblemList(file: path)
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            problems.add(yamlProblem(error, yaml: yaml))
            throw ConfigError(problems: problems.sorted)
        } catch {
            problems.add(.start, "", "invalid YAML: \(error)")
            throw ConfigError(problems: problems.sorted)
        }
        guard let root, !root.isNull else {
            problems.add(.file, "", "the config file is empty: it needs at least a vips: list")
            throw ConfigError(problems: problems.sorted)
        }
        let schema = ConfigSchema(problems: problems)
        guard let file = schema.decode(root, path: path), problems.isEmpty else {
            throw ConfigError(problems: problems.sorted)
        }
        return file
    }

    /// The config `maglev replay --backends N` runs when no `--config` is given: VIPs
    /// `0.0.0.0/0` (`any-ipv4`) and `::/0` (`any-ipv6`), both served by backends
    /// `backend-0` ... `backend-<N-1>` of weight 1 at 198.18.1.1, 198.18.1.2, ... (254 per /24,
    /// then 198.18.2.1 and on), encapsulation sources 198.18.0.2 and 2001:db8::2.
    /// Traces/configs/catch-all.yaml is this config for N = 8.
    public static func catchAll(
        backends count: Int, tableSize: Int = 65537, algorithm: TableAlgorithm = .maglev, hashSeed: UInt64 = 0,
        connectionCapacity: Int = defaultConnectionCapacity
    ) -> MaglevConfigFile {
        precondition(count >= 1 && count <= 1 << 22, "catchAll needs 1...2^22 backends, got \(count)")
        let backends = (0..<count).map { BackendConfig(name: "backend-\($0)", address: catchAllBackendAddress($0)) }
        let dataplane = DataplaneConfig(
            vips: [
                VIPConfig(name: "any-ipv4", address: IPAddress("0.0.0.0")!, prefixLength: 0, backends: backends),
                VIPConfig(name: "any-ipv6", address: IPAddress("::")!, prefixLength: 0, backends: backends),
            ],
            tableSize: tableSize, algorithm: algorithm, tableOptions: TableOptions(seed: hashSeed), hashSeed: hashSeed,
            encapSourceIPv4: IPAddress("198.18.0.2")!, encapSourceIPv6: IPAddress("2001:db8::2")!)
        return MaglevConfigFile(dataplane: dataplane, connectionCapacity: connectionCapacity, path: "<catch-all>")
    }

    /// Backend `i` of `catchAll`: 198.18.1.(i+1) for i < 254, then on into the next /24s.
    public static func catchAllBackendAddress(_ i: Int) -> IPAddress {
        let block = UInt32(1 + i / 254)
        let host = UInt32(i % 254 + 1)
        return IPAddress(ipv4: 0xC612_0000 &+ block << 8 &+ host)
    }
}

extension ProblemList {
    func add(_ problem: ConfigProblem) {
        add(SourceLocation(line: problem.line, column: problem.column), problem.field, problem.message)
    }
}

/// A YAML syntax error as a problem at its line and column.
func yamlProblem(_ error: YamlError, yaml: String) -> ConfigProblem {
    func problem(_ mark: Mark?, _ message: String) -> ConfigProblem {
        problem(mark?.line ?? 0, mark?.column ?? 0, message)
    }
    func problem(_ line: Int, _ column: Int, _ message: String) -> ConfigProblem {
        ConfigProblem(file: "", line: line, column: column, field: "", message: message)
    }
    func context(_ c: YamlError.Context?) -> String {
        guard let c else { return "" }
        return " (\(c.text) at line \(c.mark.line), column \(c.mark.column))"
    }
    switch error {
    case .scanner(let c, let p, let mark, _), .parser(let c, let p, let mark, _):
        return problem(mark, "invalid YAML: \(p)\(context(c))")
    case .composer(let c, let p, let mark, _):
        return problem(mark, "invalid YAML: \(p)\(context(c))")
    case .duplicatedKeysInMapping(let duplicates, let c):
        let keys = duplicates.map { "'\($0)'" }.joined(separator: ", ")
        return problem(c.mark, "duplicate key \(keys) in one mapping: each key may appear once")
    case .reader(let p, let offset, _, _):
        guard let offset else { return problem(nil, "invalid YAML: \(p)") }
        var line = 1
        var column = 1
        for byte in yaml.utf8.prefix(offset) {
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
        }
        return problem(line, column, "invalid YAML: \(p)")
    default:
        return problem(nil, "invalid YAML: \(error)")
    }
}

/// The file's text, or why it cannot be read (the system's words, e.g. "No such file or directory").
func readFile(_ path: String) -> Result<String, ReadFailure> {
    guard let f = fopen(path, "rb") else { return .failure(ReadFailure(errno)) }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
        bytes.append(contentsOf: chunk[..<n])
        if n < chunk.count {
            if ferror(f) != 0 { return .failure(ReadFailure(errno)) }
            break
        }
        if bytes.count > 64 << 20 { return .failure(ReadFailure(message: "the file is larger than 64 MiB")) }
    }
    guard let text = String(validating: bytes, as: UTF8.self) else {
        return .failure(ReadFailure(message: "the file is not UTF-8 text"))
    }
    return .success(text)
}

struct ReadFailure: Error, CustomStringConvertible {
    let description: String
    init(message: String) { description = message }
    init(_ code: Int32) { description = String(cString: strerror(code)) }
}
