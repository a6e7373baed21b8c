import ArgumentParser
import MaglevConfig
import MaglevCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `maglev config`: work with config files (docs/config.md).
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Check config files (the YAML the forwarder and the replay run from).",
        discussion: """
            Examples:
              maglev config check Traces/configs/example.yaml
            """,
        subcommands: [Check.self])

    init() {}

    /// `maglev config check FILE`: load the file exactly as the forwarder would.
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Validate a config file and summarise it.",
            discussion: """
                Loads FILE as the forwarder and the replay do, including building every VIP's \
                lookup table. When it is valid, prints a summary (VIPs, backends, table size, \
                algorithm, seed) and exits 0. Otherwise prints every problem, one per line as \
                FILE:LINE:COLUMN: FIELD: message, and exits 1.

                Examples:
                  maglev config check Traces/configs/example.yaml
                  maglev config check /etc/maglev.yaml && systemctl reload maglev
                """)

        @Argument(help: "The config file (YAML).")
        var file: String

        init() {}

        func run() throws {
            switch Self.check(file) {
            case .success(let summary):
                print(summary, terminator: "")
            case .failure(let error):
                for problem in error.problems { printError(problem.description) }
                let n = error.problems.count
                throw CLIError("\(file): \(n) problem\(n == 1 ? "" : "s") found")
            }
        }

        /// The summary of a valid file, or all its problems.
        static func check(_ path: String) -> Result<String, ConfigError> {
            do {
                return .success(summary(of: try MaglevConfigFile.load(path: path)))
            } catch {
                return .failure(error)
            }
        }
    }

    /// A few lines: totals, then one line per VIP.
    static func summary(of file: MaglevConfigFile) -> String {
        let c = file.dataplane
        var names: [String: BackendState] = [:]
        for vip in c.vips { for b in vip.backends { names[b.name] = b.state } }
        var counts: [BackendState: Int] = [:]
        for state in names.values { counts[state, default: 0] += 1 }
        let byState = BackendState.allCases.compactMap { s in counts[s].map { "\($0) \(s)" } }.joined(separator: ", ")
        var out = "\(file.path): OK\n"
        out += "  \(c.vips.count) VIP\(c.vips.count == 1 ? "" : "s"), \(names.count) backend"
        out += "\(names.count == 1 ? "" : "s") (\(byState))\n"
        out += "  table: \(c.algorithm), size \(c.tableSize)"
        if c.algorithm == .ring { out += ", \(c.tableOptions.ringViews) ring views" }
        out += ", hash seed \(c.hashSeed)\n"
        let encap = [c.encapSourceIPv4, c.encapSourceIPv6].compactMap { $0?.description }
        out += "  encap source \(encap.isEmpty ? "none" : encap.joined(separator: ", ")), path MTU \(c.pathMTU), "
        out += "fragments \(c.fragmentPolicy.rawValue)\n"
        if !c.forwarders.isEmpty {
            out += "  forwarder group: " + c.forwarders.map { "\($0.name) \($0.address)" }.joined(separator: ", ")
            out += c.fragmentPolicy == .redirect
                ? "; hold \(c.fragmentHold.packets) fragments per worker for \(c.fragmentHold.timeoutMs) ms\n"
                : " (used by fragments: redirect only)\n"
        }
        if c.connectionTracking {
            let t = c.timeouts
            out += "  connection tracking: on, \(file.connectionCapacity) entries per worker\n"
            out += "  timeouts: tcp established \(seconds(t.tcpEstablishedMs)), half-open "
            out += "\(seconds(t.tcpHalfOpenMs)), closing \(seconds(t.tcpClosingMs)), udp \(seconds(t.datagramMs)), fragment \(seconds(t.fragmentMs))\n"
        } else {
            out += "  connection tracking: off\n"
        }
        if let bgp = file.bgp {
            out += "  bgp: AS \(bgp.localAS), router id \(bgp.routerID), \(bgp.peers.count) peer\(bgp.peers.count == 1 ? "" : "s"): "
            out += bgp.peers.map { p in
                "\(p.address) AS \(p.remoteAS)\(p.port == 179 ? "" : " port \(p.port)") hold \(p.holdTime)s\(p.passive ? " passive" : "")"
            }.joined(separator: ", ") + "\n"
        }
        let width = min(c.vips.map(\.name.count).max() ?? 0, 24)
        for pool in file.pools where pool.healthCheck != nil || file.vipPools.contains(where: { $0.pools.count > 1 }) {
            out += "  pool \(pool.name): \(pool.backends.count) backend\(pool.backends.count == 1 ? "" : "s")"
            if let h = pool.healthCheck {
                out += ", health check \(h.summary) every \(seconds(h.intervalMs)) (timeout \(seconds(h.timeoutMs)), "
                out += "rise \(h.rise), fall \(h.fall))"
            } else {
                out += ", no health check"
            }
            out += ", min_healthy \(pool.minHealthy)\n"
        }
        for (vip, choice) in zip(c.vips, file.vipPools) {
            let full = vip.prefixLength == (vip.address.isIPv6 ? 128 : 32)
            var match = full ? "\(vip.address)" : "\(vip.address)/\(vip.prefixLength)"
            if let p = vip.proto { match += " \(protocolName(p))" + (vip.port.map { "/\($0)" } ?? "") }
            let active = vip.backends.filter { $0.state == .active && $0.weight > 0 }.count
            let pad = String(repeating: " ", count: max(0, width - vip.name.count))
            out += "  vip \(vip.name)\(pad)  \(match): \(vip.backends.count) backend"
            out += "\(vip.backends.count == 1 ? "" : "s"), \(active) taking new connections"
            if choice.pools.count > 1 || choice.whenAllDown != .failOpen {
                out += ", pools \(choice.pools.joined(separator: " > ")), when_all_down \(choice.whenAllDown.rawValue)"
            }
            out += vip.tableSize.map { ", table size \($0)\n" } ?? "\n"
        }
        return out
    }

    static func protocolName(_ p: UInt8) -> String {
        switch p {
        case IPProtocol.tcp: "tcp"
        case IPProtocol.udp: "udp"
        case IPProtocol.icmp: "icmp"
        case IPProtocol.icmpv6: "icmpv6"
        case IPProtocol.sctp: "sctp"
        default: "proto \(p)"
        }
    }

    static func seconds(_ ms: UInt32) -> String {
        ms % 1000 == 0 ? "\(ms / 1000)s" : "\(ms)ms"
    }
}

/// One line on standard error.
private func printError(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { bytes in
        var rest = UnsafeRawBufferPointer(bytes)
        while !rest.isEmpty {
            let n = write(2, rest.baseAddress, rest.count)
            if n <= 0 { break }
            rest = UnsafeRawBufferPointer(rebasing: rest[n...])
        }
    }
}
