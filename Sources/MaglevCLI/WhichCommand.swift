import ArgumentParser
import MaglevConfig
import MaglevControl
import MaglevCore
import MaglevReplay

/// `maglev which`: the VIP, table slot and backend (and forwarder) of one 5-tuple.
struct WhichCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "which",
        abstract: "Which VIP, table slot and backend (and forwarder) a 5-tuple goes to.",
        discussion: """
            Answers with the data plane's own code: the VIP match, the flow hash under the \
            config's hash_seed and the lookup table of the pool that serves the VIP \
            (ForwardingSnapshot.route), for a new connection (no connection-table entry yet). \
            It agrees with `maglev replay --decisions` for every flow of a trace replayed with \
            the same config and no events. With --forwarders K it also names the forwarder \
            (0 to K-1, as the decisions CSV numbers them) under the ECMP model of `maglev replay \
            --forwarders` (hash-threshold over the 5-tuple, or the addresses with --ecmp l3). \
            With `fragments: redirect` it also names the group member its fragments meet on.

            FLOW is PROTO:SRC:SPORT-DST:DPORT, PROTO tcp, udp, sctp or a number; IPv6 addresses \
            in brackets. Exit status 0, or 1 when no VIP matches (the data plane passes the packet).

            Examples:
              maglev which --config Traces/configs/example.yaml --flow tcp:198.51.100.7:34567-198.19.0.10:80
              maglev which --config lb.yaml --flow 'tcp:[2001:db8::7]:34567-[2001:db8:100::10]:443' --format json
              maglev which --config lb.yaml --flow udp:198.51.100.7:5353-198.19.0.11:53 --forwarders 4
            """)

    @Option(help: "Config file (YAML).")
    var config: String

    @Option(help: "PROTO:SRC:SPORT-DST:DPORT, e.g. tcp:198.51.100.7:34567-198.19.0.10:80 (IPv6 in brackets).")
    var flow: String

    @Option(help: "Forwarders behind ECMP: also name the forwarder (0-based).")
    var forwarders: Int?

    @Option(help: "Routers' ECMP hash with --forwarders: l4 (5-tuple) or l3 (addresses only).")
    var ecmp = "l4"

    @Option(help: "text or json.")
    var format = "text"

    func run() throws {
        guard format == "text" || format == "json" else { throw CLIError("--format must be text or json, not '\(format)'") }
        guard let ecmpHash = ECMPHash(rawValue: ecmp) else { throw CLIError("--ecmp must be l4 or l3, not '\(ecmp)'") }
        if let k = forwarders, !(1...64).contains(k) { throw CLIError("--forwarders must be between 1 and 64") }
        let key: FlowKey
        do { key = try Self.parseFlow(flow) } catch { throw CLIError("--flow \(flow): \(error.description)") }
        let file: MaglevConfigFile
        do { file = try MaglevConfigFile.load(path: config) } catch {
            throw CLIError("\(error)\nfix the config (maglev config check \(config) lists every problem)")
        }
        let snapshot: ForwardingSnapshot
        do { snapshot = try ForwardingSnapshot(config: DesiredState(file: file).dataplaneConfig) } catch {
            throw CLIError("\(config): \(error)")
        }
        let route = snapshot.route(key)
        let forwarder = forwarders.map { ReplayEngine.forwarder(of: key, forwarders: $0, hash: ecmpHash) }
        let flowText = Self.describe(key)
        // fragments: redirect: the group member that owns this flow's fragments.
        let owner = snapshot.fragmentOwner(source: key.source, destination: key.destination, proto: key.proto)
            .map { snapshot.config.forwarders[$0].name }
        if format == "json" {
            var m: [(String, JSONValue)] = [("flow", .string(flowText))]
            if let route {
                let vip = snapshot.config.vips[route.vip]
                m += [
                    ("vip", .string(vip.name)), ("vip_address", .string(Self.vipText(vip))), ("slot", JSONValue(route.slot)),
                    ("table_size", JSONValue(route.tableSize)), ("hash", .string(Self.hex(route.hash))),
                    ("backend", JSONValue(route.backend.map { snapshot.backendNames[$0] })),
                    ("backend_address", JSONValue(route.backend.map { snapshot.address(ofBackend: $0).description })),
                ]
            } else {
                m += [("vip", .null), ("slot", .null), ("backend", .null), ("verdict", .string("pass:unknown_vip"))]
            }
            if let forwarder { m.append(("forwarder", JSONValue(forwarder))) }
            if let owner { m.append(("fragment_owner", .string(owner))) }
            try writeOrFail(JSONValue.object(m).rendered(.indented) + "\n")
        } else {
            var lines = ["flow       \(flowText)"]
            if let route {
                let vip = snapshot.config.vips[route.vip]
                lines.append("vip        \(vip.name) (\(Self.vipText(vip)))")
                lines.append("slot       \(route.slot) of \(route.tableSize) (flow hash \(Self.hex(route.hash)))")
                if let b = route.backend {
                    lines.append("backend    \(snapshot.backendNames[b]) (\(snapshot.address(ofBackend: b)))")
                } else {
                    lines.append("backend    none: the VIP has no backend taking new connections (dropped: no_backend)")
                }
            } else {
                let known = snapshot.config.vips.map { "\($0.name) (\(Self.vipText($0)))" }.joined(separator: ", ")
                lines.append("vip        none: no VIP of \(config) matches; the data plane passes it (unknown_vip)")
                lines.append("           VIPs: \(known)")
            }
            if let forwarder, let k = forwarders { lines.append("forwarder  \(forwarder) (0-based, of \(k); ECMP \(ecmp))") }
            if let owner {
                lines.append("fragments  to \(owner), which owns the flow's 3-tuple (fragments: redirect); there they follow the backend above")
            }
            try writeOrFail(lines.joined(separator: "\n") + "\n")
        }
        if route == nil { throw ExitCode(1) }
    }

    func writeOrFail(_ text: String) throws {
        do { try writeStandardOutput(text) } catch { throw CLIError("\(error)") }
    }

    static func hex(_ v: UInt64) -> String {
        let digits = String(v, radix: 16)
        return "0x" + String(repeating: "0", count: 16 - digits.count) + digits
    }

    static func vipText(_ vip: VIPConfig) -> String {
        let full = vip.prefixLength == (vip.address.isIPv6 ? 128 : 32)
        var s = full ? vip.address.description : "\(vip.address)/\(vip.prefixLength)"
        if let p = vip.proto { s += " " + protoName(p) }
        if let port = vip.port { s += (vip.proto == nil ? " port " : "/") + "\(port)" }
        return s
    }

    static func protoName(_ p: UInt8) -> String {
        switch p {
        case IPProtocol.tcp: "tcp"
        case IPProtocol.udp: "udp"
        case IPProtocol.sctp: "sctp"
        default: "proto \(p)"
        }
    }

    static func describe(_ k: FlowKey) -> String {
        func end(_ a: IPAddress, _ p: UInt16) -> String { a.isIPv6 ? "[\(a)]:\(p)" : "\(a):\(p)" }
        return "\(protoName(k.proto)) \(end(k.source, k.sourcePort)) -> \(end(k.destination, k.destinationPort))"
    }

    struct FlowError: Error, CustomStringConvertible {
        let description: String
    }

    /// `PROTO:SRC:SPORT-DST:DPORT`; IPv6 addresses in brackets.
    static func parseFlow(_ text: String) throws(FlowError) -> FlowKey {
        let example = "expected PROTO:SRC:SPORT-DST:DPORT, e.g. tcp:198.51.100.7:34567-198.19.0.10:80"
            + " or tcp:[2001:db8::7]:34567-[2001:db8:100::10]:443"
        guard let colon = text.firstIndex(of: ":") else { throw FlowError(description: example) }
        let protoText = text[..<colon].lowercased()
        let proto: UInt8
        switch protoText {
        case "tcp": proto = IPProtocol.tcp
        case "udp": proto = IPProtocol.udp
        case "sctp": proto = IPProtocol.sctp
        default:
            guard let n = UInt8(protoText) else {
                throw FlowError(description: "protocol '\(protoText)' must be tcp, udp, sctp or a number 0-255; \(example)")
            }
            proto = n
        }
        let ends = text[text.index(after: colon)...].split(separator: "-", omittingEmptySubsequences: false)
        guard ends.count == 2 else { throw FlowError(description: example) }
        func endpoint(_ s: Substring, _ which: String) throws(FlowError) -> (IPAddress, UInt16) {
            let address: Substring
            let port: Substring
            if s.hasPrefix("[") {
                guard let close = s.firstIndex(of: "]"), s[s.index(after: close)...].hasPrefix(":") else {
                    throw FlowError(description: "\(which) '\(s)': an IPv6 address in brackets, then :PORT; \(example)")
                }
                address = s[s.index(after: s.startIndex)..<close]
                port = s[s.index(close, offsetBy: 2)...]
            } else {
                guard let c = s.lastIndex(of: ":") else { throw FlowError(description: "\(which) '\(s)' has no :PORT; \(example)") }
                address = s[..<c]
                port = s[s.index(after: c)...]
                if address.contains(":") {
                    throw FlowError(description: "\(which) '\(s)': put an IPv6 address in brackets, e.g. [2001:db8::7]:34567")
                }
            }
            guard let a = IPAddress(address) else { throw FlowError(description: "\(which) address '\(address)' is not an IP address") }
            guard let p = UInt16(port) else { throw FlowError(description: "\(which) port '\(port)' must be 0-65535") }
            return (a, p)
        }
        let (src, sport) = try endpoint(ends[0], "source")
        let (dst, dport) = try endpoint(ends[1], "destination")
        guard src.isIPv6 == dst.isIPv6 else { throw FlowError(description: "source and destination are of different families") }
        return FlowKey(source: src, destination: dst, sourcePort: sport, destinationPort: dport, proto: proto)
    }
}
