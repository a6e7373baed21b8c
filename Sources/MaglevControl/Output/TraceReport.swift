public import MaglevCore

/// One forwarder's answer to one tracer probe (docs/operations.md, "Packet tracer"): what a
/// forwarder sends to the probe's collector as one UDP datagram holding one compact JSON object,
/// and what `maglev probe` reads back. Pure: built from a `TraceRecord` and the snapshot's names.
///
///     {"type":"maglev-trace","probe_id":7,"forwarder":"fwd1","worker":0,"vip":"web4",
///      "vip_address":"198.19.0.10","protocol":"tcp","source":"198.18.0.10","source_port":40001,
///      "destination":"198.19.0.10","destination_port":80,"fragment":"none","action":"forward",
///      "backend":"backend-2","backend_address":"198.18.1.102","reason":"table-lookup"}
///
/// `backend` and `backend_address` are null when no backend was chosen; `vip` and
/// `vip_address` when no VIP matched. `action` is `forward`, `icmp`, `pass` or `drop:REASON`.
public struct TraceReport: Sendable, Equatable {
    public var probeID: UInt64
    public var forwarder: String
    public var worker: Int
    public var vip: String?
    public var vipAddress: String?
    /// "tcp", "udp", "icmp", ... or the protocol number.
    public var proto: String
    public var source: String
    public var sourcePort: Int
    public var destination: String
    public var destinationPort: Int
    /// "none", "first" or "non-first".
    public var fragment: String
    public var action: String
    public var backend: String?
    public var backendAddress: String?
    /// `SelectionReason.description`.
    public var reason: String

    public static let type = "maglev-trace"

    public init(
        probeID: UInt64, forwarder: String, worker: Int, vip: String?, vipAddress: String?, proto: String,
        source: String, sourcePort: Int, destination: String, destinationPort: Int, fragment: String,
        action: String, backend: String?, backendAddress: String?, reason: String
    ) {
        self.probeID = probeID
        self.forwarder = forwarder
        self.worker = worker
        self.vip = vip
        self.vipAddress = vipAddress
        self.proto = proto
        self.source = source
        self.sourcePort = sourcePort
        self.destination = destination
        self.destinationPort = destinationPort
        self.fragment = fragment
        self.action = action
        self.backend = backend
        self.backendAddress = backendAddress
        self.reason = reason
    }

    /// The report of `record`, handled by `worker` of `forwarder`, named with `snapshot` (ids
    /// are stable across a snapshot lineage, so a later snapshot names them too).
    public init(record r: TraceRecord, forwarder: String, worker: Int, snapshot: ForwardingSnapshot) {
        let vipID = Int(r.vip)
        let hasVIP = vipID >= 0 && vipID < snapshot.vipNames.count
        let vipName = hasVIP ? snapshot.vipNames[vipID] : nil
        let backendID = Int(r.backend)
        let hasBackend = backendID >= 0 && backendID < snapshot.backendCount
        let action: String =
            switch r.action {
            case .forward: "forward"
            case .icmpReply: "icmp"
            case .pass: "pass"
            case .drop: "drop:\(r.dropReason?.description ?? "unknown")"
            case .redirect: "redirect"
            case .held: "held"
            }
        self.init(
            probeID: r.probe.id, forwarder: forwarder, worker: worker, vip: vipName,
            vipAddress: vipName.flatMap { name in snapshot.config.vips.first { $0.name == name }?.address.description },
            proto: TraceReport.protocolName(r.key.proto), source: r.key.source.description,
            sourcePort: Int(r.key.sourcePort), destination: r.key.destination.description,
            destinationPort: Int(r.key.destinationPort),
            fragment: r.fragment == .none ? "none" : r.fragment == .first ? "first" : "non-first",
            action: action, backend: hasBackend ? snapshot.backendNames[backendID] : nil,
            backendAddress: hasBackend ? snapshot.address(ofBackend: backendID).description : nil,
            reason: r.reason.description)
    }

    public static func protocolName(_ proto: UInt8) -> String {
        switch proto {
        case IPProtocol.tcp: "tcp"
        case IPProtocol.udp: "udp"
        case IPProtocol.sctp: "sctp"
        case IPProtocol.icmp: "icmp"
        case IPProtocol.icmpv6: "icmpv6"
        default: String(proto)
        }
    }

    public var json: JSONValue {
        .object([
            ("type", .string(TraceReport.type)),
            ("probe_id", .uint(probeID)),
            ("forwarder", .string(forwarder)),
            ("worker", JSONValue(worker)),
            ("vip", JSONValue(vip)),
            ("vip_address", JSONValue(vipAddress)),
            ("protocol", .string(proto)),
            ("source", .string(source)),
            ("source_port", JSONValue(sourcePort)),
            ("destination", .string(destination)),
            ("destination_port", JSONValue(destinationPort)),
            ("fragment", .string(fragment)),
            ("action", .string(action)),
            ("backend", JSONValue(backend)),
            ("backend_address", JSONValue(backendAddress)),
            ("reason", .string(reason)),
        ])
    }

    /// Reads a report datagram back (`maglev probe`); nil when it is not one.
    public init?(datagram: [UInt8]) {
        guard let fields = FlatJSONObject.parse(datagram), fields["type"] == .string(TraceReport.type),
            case .number(let id)? = fields["probe_id"], let probeID = UInt64(id),
            case .string(let forwarder)? = fields["forwarder"],
            case .string(let proto)? = fields["protocol"], case .string(let source)? = fields["source"],
            case .string(let destination)? = fields["destination"], case .string(let action)? = fields["action"],
            case .string(let reason)? = fields["reason"]
        else { return nil }
        func string(_ k: String) -> String? { if case .string(let s)? = fields[k] { s } else { nil } }
        func int(_ k: String) -> Int { if case .number(let n)? = fields[k] { Int(n) ?? 0 } else { 0 } }
        self.init(
            probeID: probeID, forwarder: forwarder, worker: int("worker"), vip: string("vip"),
            vipAddress: string("vip_address"), proto: proto, source: source, sourcePort: int("source_port"),
            destination: destination, destinationPort: int("destination_port"),
            fragment: string("fragment") ?? "none", action: action, backend: string("backend"),
            backendAddress: string("backend_address"), reason: reason)
    }
}


/// Reads one flat JSON object (string, number, true/false/null values; no nesting): enough for
/// trace reports, which `JSONValue` writes. Numbers are kept as their text.
enum FlatJSONObject {
    enum Value: Equatable {
        case string(String)
        case number(String)
        case bool(Bool)
        case null
    }

    static func parse(_ bytes: [UInt8]) -> [String: Value]? {
        var i = 0
        func skip() { while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 } }
        func expect(_ c: UInt8) -> Bool {
            skip()
            guard i < bytes.count, bytes[i] == c else { return false }
            i += 1
            return true
        }
        func string() -> String? {
            guard expect(UInt8(ascii: "\"")) else { return nil }
            var out: [UInt8] = []
            while i < bytes.count {
                let c = bytes[i]
                i += 1
                if c == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
                if c != UInt8(ascii: "\\") {
                    out.append(c)
                    continue
                }
                guard i < bytes.count else { return nil }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "u"):
                    guard i + 4 <= bytes.count,
                        let code = UInt32(String(decoding: bytes[i..<(i + 4)], as: UTF8.self), radix: 16),
                        let scalar = Unicode.Scalar(code)
                    else { return nil }
                    i += 4
                    out.append(contentsOf: Array(String(Character(scalar)).utf8))
                default: out.append(e)  // \" \\ \/
                }
            }
            return nil
        }
        guard expect(UInt8(ascii: "{")) else { return nil }
        var fields: [String: Value] = [:]
        if expect(UInt8(ascii: "}")) { return fields }
        while true {
            guard let key = string(), expect(UInt8(ascii: ":")) else { return nil }
            skip()
            guard i < bytes.count else { return nil }
            let c = bytes[i]
            if c == UInt8(ascii: "\"") {
                guard let s = string() else { return nil }
                fields[key] = .string(s)
            } else {
                let start = i
                while i < bytes.count, !",} \t\r\n".utf8.contains(bytes[i]) { i += 1 }
                let word = String(decoding: bytes[start..<i], as: UTF8.self)
                switch word {
                case "true": fields[key] = .bool(true)
                case "false": fields[key] = .bool(false)
                case "null": fields[key] = .null
                default:
                    guard !word.isEmpty, word.utf8.allSatisfy({ "-+.eE0123456789".utf8.contains($0) }) else { return nil }
                    fields[key] = .number(word)
                }
            }
            if expect(UInt8(ascii: ",")) { continue }
            guard expect(UInt8(ascii: "}")) else { return nil }
            skip()
            return i == bytes.count ? fields : nil
        }
    }
}

/// A token bucket that reads no clock (time comes in as milliseconds): `ratePerSecond`
/// sustained, `burst` at once. Trace reports use it (100/s, burst 100).
public struct TokenBucket: Sendable {
    public let ratePerSecond: Int
    public let burst: Int
    var milliTokens: Int
    var lastMs: UInt64?

    public init(ratePerSecond: Int, burst: Int) {
        self.ratePerSecond = max(0, ratePerSecond)
        self.burst = max(1, burst)
        milliTokens = self.burst * 1000
    }

    /// Takes a token at `nowMs` if one is left.
    public mutating func take(nowMs: UInt64) -> Bool {
        if let last = lastMs, nowMs > last {
            let add = Int(min(nowMs - last, 1_000_000)) * ratePerSecond
            milliTokens = min(burst * 1000, milliTokens + add)
        }
        if lastMs == nil || nowMs > lastMs! { lastMs = nowMs }
        if milliTokens < 1000 { return false }
        milliTokens -= 1000
        return true
    }
}
