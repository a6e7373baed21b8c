import MaglevCore
import Yams

// Pools written as mappings (`backends`, `health_check`, `min_healthy`) and their health checks.
extension ConfigSchema {
    /// A named pool: a plain list of backends, or a mapping with `backends:` and the pool's
    /// `health_check` and `min_healthy`.
    func decodeNamedPool(_ node: Node, path: String, name: String) -> Pool {
        let label = "pool '\(name)'"
        guard case .mapping = node else { return decodePool(node, path: path, name: name, label: label) }
        guard let f = d.fields(node, path, keys: Self.poolKeys) else {
            return Pool(name: name, label: label, path: path, node: node, backends: [], valid: false)
        }
        var pool: Pool
        if let n = d.required(f, "backends", "the pool's list of backends") {
            pool = decodePool(n, path: f.path("backends"), name: name, label: label)
            pool.node = node
        } else {
            pool = Pool(name: name, label: label, path: path, node: node, backends: [], valid: false)
        }
        if let n = f["health_check"] { pool.health = decodeHealthCheck(n, path: f.path("health_check")) }
        if let n = f["min_healthy"] { pool.minHealthy = decodeMinHealthy(n, f.path("min_healthy"), size: pool.backends.count) ?? .count(1) }
        return pool
    }

    /// `min_healthy`: a count (1 .. the pool's size) or a percentage such as `50%`.
    func decodeMinHealthy(_ node: Node, _ path: String, size: Int) -> MinHealthy? {
        let what = "a number of backends or a percentage such as 50%"
        guard case .scalar(let s) = node, !node.isNull else {
            d.expected(what, node, path)
            return nil
        }
        let text = s.string.trimmingCharacters(in: " ")
        if text.hasSuffix("%") {
            guard let p = Int(text.dropLast()), (1...100).contains(p) else {
                d.fail(node, path, "expected a percentage from 1% to 100%, got '\(text)'")
                return nil
            }
            return .percent(p)
        }
        guard let n = d.int(node, path, 1...Int.max, what) else { return nil }
        if size > 0 && n > size {
            d.fail(node, path, "asks for \(n) healthy backends but the pool has only \(size)")
            return nil
        }
        return .count(n)
    }

    func decodeHealthCheck(_ node: Node, path: String) -> HealthCheck? {
        guard let f = d.fields(node, path, keys: Self.healthKeys) else { return nil }
        guard let tn = d.required(f, "type", "the check type (\(HealthCheckType.allCases.map(\.rawValue).joined(separator: ", ")))"),
            let t = d.choice(tn, f.path("type"), HealthCheckType.allCases.map(\.rawValue))
        else { return nil }
        let type = HealthCheckType(rawValue: t)!
        var check = HealthCheckConfig(type: type, port: type == .udpDNS ? 53 : 0)
        var valid = true
        if let n = f["port"] {
            if let p = d.int(n, f.path("port"), 1...65535, "a port number 1-65535") { check.port = UInt16(p) } else { valid = false }
        }
        if let n = f["path"] {
            if !type.isHTTP {
                d.fail(n, f.path("path"), "only http and gre-http checks have a path")
                valid = false
            } else if let p = d.string(n, f.path("path")) {
                // By scalar, not Character: "\r\n" is one Character, equal to neither "\r" nor "\n".
                func control(_ c: Unicode.Scalar) -> Bool { c.value < 0x20 || c.value == 0x7F }
                if p.hasPrefix("/") && !p.unicodeScalars.contains(where: { $0 == " " || control($0) }) {
                    check.path = p
                } else {
                    let shown = p.unicodeScalars.map { control($0) ? $0.escaped(asASCII: true) : String($0) }.joined()
                    d.fail(n, f.path("path"), "an HTTP path starts with / and has no spaces or control characters, got '\(shown)'")
                    valid = false
                }
            }
        }
        if let n = f["expect"] {
            if !type.isHTTP {
                d.fail(n, f.path("expect"), "only http and gre-http checks expect a status")
                valid = false
            } else if let r = decodeStatusRange(n, f.path("expect")) {
                check.expect = r
            } else {
                valid = false
            }
        }
        if let n = f["interval"] {
            if let ms = d.duration(n, f.path("interval")) {
                if ms < 100 {
                    d.fail(n, f.path("interval"), "must be at least 100ms")
                    valid = false
                } else {
                    check.intervalMs = ms
                }
            } else { valid = false }
        }
        if let n = f["timeout"] {
            if let ms = d.duration(n, f.path("timeout")) { check.timeoutMs = ms } else { valid = false }
        } else {
            check.timeoutMs = min(check.timeoutMs, check.intervalMs)
        }
        if check.timeoutMs > check.intervalMs, let n = f["timeout"] {
            d.fail(n, f.path("timeout"), "must not be longer than the interval (\(check.intervalMs)ms)")
            valid = false
        }
        if let n = f["rise"] {
            if let v = d.int(n, f.path("rise"), 1...100) { check.rise = v } else { valid = false }
        }
        if let n = f["fall"] {
            if let v = d.int(n, f.path("fall"), 1...100) { check.fall = v } else { valid = false }
        }
        if let n = f["query_name"] {
            if type != .udpDNS {
                d.fail(n, f.path("query_name"), "only udp-dns checks have a query name")
                valid = false
            } else if let q = d.string(n, f.path("query_name")) {
                if q.isEmpty || q.utf8.count > 253 || q.split(separator: ".").contains(where: { $0.utf8.count > 63 }) {
                    d.fail(n, f.path("query_name"), "expected a DNS name (labels of 1-63 bytes, 253 in all), got '\(q)'")
                    valid = false
                } else {
                    check.queryName = q
                }
            }
        }
        guard valid else { return nil }
        return HealthCheck(check: check, portGiven: f.has("port") || type == .udpDNS, node: node, path: path)
    }

    /// `200`, or a range `200-399`, of HTTP status codes 100-599.
    func decodeStatusRange(_ node: Node, _ path: String) -> ClosedRange<Int>? {
        let what = "an HTTP status (200) or a range (200-399)"
        guard case .scalar(let s) = node, !node.isNull else {
            d.expected(what, node, path)
            return nil
        }
        let parts = s.string.split(separator: "-", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: " ")) }
        guard (1...2).contains(parts.count), let low = parts[0], let high = parts.count == 2 ? parts[1] : low,
            (100...599).contains(low), (100...599).contains(high), low <= high
        else {
            d.fail(node, path, "expected \(what) of codes 100-599, got '\(s.string)'")
            return nil
        }
        return low...high
    }

    /// Fills in each pool's check defaults from the VIPs that use it: the port (the first such
    /// VIP's port) and, for gre- checks, the VIP address per family. Returns the checks by pool name.
    func resolveHealthChecks(pools: [Pool], vips: [VIP]) -> [String: HealthCheckConfig] {
        var result: [String: HealthCheckConfig] = [:]
        for pool in pools {
            guard var h = pool.health else { continue }
            let users = vips.filter { $0.pools.contains { $0.name == pool.name } }
            if !h.portGiven {
                if let port = users.compactMap(\.port).first {
                    h.check.port = port
                } else {
                    d.fail(
                        h.node, "\(h.path).port",
                        "missing: no VIP using pool '\(pool.name)' has a port to default to: set health_check.port")
                    continue
                }
            }
            if h.check.type.throughGRE {
                h.check.vipIPv4 = users.compactMap { $0.network }.first { !$0.0.isIPv6 && $0.1 == 32 }?.0
                h.check.vipIPv6 = users.compactMap { $0.network }.first { $0.0.isIPv6 && $0.1 == 128 }?.0
                let families = Set(pool.backends.compactMap { $0.address?.isIPv6 })
                for v6 in families.sorted(by: { !$0 && $1 }) where (v6 ? h.check.vipIPv6 : h.check.vipIPv4) == nil {
                    d.fail(
                        h.node, "\(h.path).type",
                        "\(h.check.type.rawValue) probes the VIP address through GRE, but no VIP using pool '\(pool.name)' "
                            + "is a single IPv\(v6 ? 6 : 4) address (a /\(v6 ? 128 : 32)): use \(h.check.type == .greTCP ? "tcp" : "http") instead")
                }
            }
            result[pool.name] = h.check
        }
        return result
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return String(s)
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: Character) -> String { String(self).trimmingCharacters(in: set) }
}
