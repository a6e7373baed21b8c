#if canImport(Glibc)
    import Glibc
#endif
public import MaglevCore

/// Compares, flow by flow, where `maglev replay` says each flow goes (its decisions CSV) with
/// where live forwarders really sent it (captures of the GRE packets each backend host
/// received, as `tcpdump -i eth0 'ip proto 47 or ip6 proto 47'` writes them): `Tools/lab
/// replay`.
///
/// A flow is the inner 5-tuple (3-tuple for fragments; the quoted flow, reversed, for ICMP
/// errors: the data plane's own `FlowKey`). Backends are compared by *host*: one host may carry
/// several configured backends (the lab's `backend-N` and `backend6-N` are the same machine).
/// A flow matches when the set of hosts the replay forwards it to equals the set of hosts whose
/// capture holds it; a flow the replay never forwards (passed, dropped, answered with ICMP)
/// matches when no host received it.
public struct DeliveryCheck {
    /// One backend host: a display name, the backend names (from the config) it carries, and
    /// the capture of what it received.
    public struct Host: Sendable {
        public var name: String
        public var backends: Set<String>
        public var capture: String
        public init(name: String, backends: Set<String>, capture: String) {
            self.name = name
            self.backends = backends
            self.capture = capture
        }
    }

    /// What the replay predicts for one flow: hosts and packets forwarded.
    public struct Prediction: Sendable, Equatable {
        public var hosts: Set<String> = []
        public var packets = 0
        public var forwarded = 0
        public init() {}
    }

    public struct Mismatch: Sendable {
        public var flow: FlowKey
        public var predicted: Set<String>
        public var received: Set<String>
    }

    public struct Result: Sendable {
        public var flows = 0
        public var matched = 0
        public var mismatches: [Mismatch] = []
        /// Flows delivered to the right hosts but with fewer (or more) packets than predicted.
        public var packetCountDifferences = 0
        /// The first few of them: flow, packets forwarded by the replay, packets received.
        public var packetCountExamples: [(flow: FlowKey, predicted: Int, received: Int)] = []
        public var predictedPackets = 0
        public var receivedPackets = 0
        /// Flows per host, predicted and received.
        public var predictedFlowsPerHost: [String: Int] = [:]
        public var receivedFlowsPerHost: [String: Int] = [:]
        /// Flows per forwarder as seen live (outer source address of the GRE packets).
        public var liveFlowsPerForwarder: [IPAddress: Int] = [:]
        /// ICMP errors about the flows that the hosts received (in the lab: the router's
        /// unreachables for backend replies to client addresses it has no route to, sent to
        /// the VIP, which the forwarders pass on to the flow's backend). They count for
        /// matching, not in `receivedPackets`.
        public var icmpErrorsReceived = 0
        /// Capture packets that were not GRE carrying a parsable IP packet.
        public var unreadablePackets = 0
    }

    /// Reads the decisions CSV (`packet,time,src,dst,proto,sport,dport,vip,forwarder,backend,
    /// verdict`) into a prediction per flow, with backend names mapped to hosts. A backend that
    /// no host carries is its own host.
    public static func predictions(decisions path: String, hosts: [Host]) throws(CaptureError) -> [FlowKey: Prediction] {
        var hostOf: [String: String] = [:]
        for host in hosts { for backend in host.backends { hostOf[backend] = host.name } }
        var result: [FlowKey: Prediction] = [:]
        var lineNumber = 0
        for line in try readLines(path) {
            lineNumber += 1
            if lineNumber == 1 || line.isEmpty { continue }
            let fields = CSV.fields(line[...])
            guard fields.count == 11 else {
                throw CaptureError(file: path, packetNumber: nil, message: "line \(lineNumber): expected 11 fields")
            }
            guard let source = IPAddress(fields[2]), let destination = IPAddress(fields[3]),
                let proto = UInt8(fields[4]), let sport = UInt16(fields[5]), let dport = UInt16(fields[6])
            else { continue }  // a packet the parser could not read: no flow
            let key = FlowKey(
                source: source, destination: destination, sourcePort: sport, destinationPort: dport, proto: proto)
            var prediction = result[key] ?? Prediction()
            prediction.packets += 1
            if fields[10] == "forward" && !fields[9].isEmpty {
                let backend = String(fields[9])
                prediction.hosts.insert(hostOf[backend] ?? backend)
                prediction.forwarded += 1
            }
            result[key] = prediction
        }
        return result
    }

    /// The inner flows of the GRE packets in one capture, with packets per flow; and the
    /// outer sources (forwarders) per flow.
    public static func receivedFlows(capture path: String) throws(CaptureError) -> (
        flows: [FlowKey: Int], forwarders: [FlowKey: IPAddress], icmpErrors: [FlowKey: Int], unreadable: Int
    ) {
        let reader = try CaptureReader(paths: [path])
        var flows: [FlowKey: Int] = [:]
        var forwarders: [FlowKey: IPAddress] = [:]
        var unreadable = 0
        var icmpErrors: [FlowKey: Int] = [:]
        while let packet = try reader.next() {
            guard case .parsed(let outer) = PacketParser.parse(packet.bytes, linkType: packet.linkType),
                outer.key.proto == IPProtocol.gre, outer.fragment == .none, outer.l4Offset >= 0
            else {
                unreadable += 1
                continue
            }
            let end = outer.l3Offset + outer.l3Length
            let gre = outer.l4Offset
            guard end - gre >= 4 else {
                unreadable += 1
                continue
            }
            let flags = packet.bytes[gre]
            // RFC 2890: checksum (C) and key (K) and sequence (S) each add 4 bytes.
            let inner = gre + 4 + (flags & 0x80 != 0 ? 4 : 0) + (flags & 0x20 != 0 ? 4 : 0) + (flags & 0x10 != 0 ? 4 : 0)
            guard inner < end,
                case .parsed(let p) = PacketParser.parse(
                    UnsafeRawBufferPointer(rebasing: packet.bytes[inner..<end]), linkType: .rawIP)
            else {
                unreadable += 1
                continue
            }
            if p.isICMPError {
                icmpErrors[p.key, default: 0] += 1
                continue
            }
            flows[p.key, default: 0] += 1
            forwarders[p.key] = outer.key.source
        }
        return (flows, forwarders, icmpErrors, unreadable)
    }

    /// Reads every host's capture and compares with the decisions.
    public static func run(decisions: String, hosts: [Host], mismatchesKept: Int = 10) throws(CaptureError) -> Result {
        let predicted = try predictions(decisions: decisions, hosts: hosts)
        var received: [FlowKey: [String: Int]] = [:]
        var result = Result()
        var forwarderOf: [FlowKey: IPAddress] = [:]
        for host in hosts {
            let (flows, forwarders, icmpErrors, unreadable) = try receivedFlows(capture: host.capture)
            result.unreadablePackets += unreadable
            for (flow, count) in icmpErrors {
                received[flow, default: [:]][host.name, default: 0] += 0
                result.icmpErrorsReceived += count
            }
            for (flow, packets) in flows {
                received[flow, default: [:]][host.name, default: 0] += packets
                result.receivedPackets += packets
            }
            result.receivedFlowsPerHost[host.name] = flows.count
            forwarderOf.merge(forwarders) { first, _ in first }
        }
        for address in forwarderOf.values { result.liveFlowsPerForwarder[address, default: 0] += 1 }
        var all = Set(predicted.keys)
        all.formUnion(received.keys)
        for flow in all.sorted(by: { ($0.source, $0.sourcePort, $0.destination) < ($1.source, $1.sourcePort, $1.destination) }) {
            let prediction = predicted[flow] ?? Prediction()
            let got = received[flow] ?? [:]
            result.flows += 1
            result.predictedPackets += prediction.forwarded
            for host in prediction.hosts { result.predictedFlowsPerHost[host, default: 0] += 1 }
            let receivedHosts = Set(got.keys)
            if receivedHosts == prediction.hosts {
                result.matched += 1
                let total = got.values.reduce(0, +)
                if total != prediction.forwarded {
                    result.packetCountDifferences += 1
                    if result.packetCountExamples.count < 3 {
                        result.packetCountExamples.append((flow, prediction.forwarded, total))
                    }
                }
            } else if result.mismatches.count < mismatchesKept {
                result.mismatches.append(Mismatch(flow: flow, predicted: prediction.hosts, received: receivedHosts))
            }
        }
        return result
    }

    static func readLines(_ path: String) throws(CaptureError) -> [Substring] {
        guard let file = fopen(path, "r") else {
            throw CaptureError(file: path, packetNumber: nil, message: "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
    }
}
