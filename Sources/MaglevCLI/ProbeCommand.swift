import ArgumentParser
import MaglevControl
import MaglevCore
import MaglevLinux
import MaglevReplay

#if canImport(Glibc)
    import Glibc
#endif

/// `maglev probe`: the packet tracer's client.
struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Send marked probe packets to a VIP and print which forwarder sent each to which backend, and why.",
        discussion: """
            Sends COUNT tracer probes to the VIP, each on its own 5-tuple (source ports \
            --first-port, +1, ...): a TCP SYN (--protocol tcp, the default) or a UDP datagram \
            (--protocol udp) carrying the tracer's marker (IPv4 reserved flag, or IPv6 flow label \
            0x7ACED) and a 40-byte trailer naming the collector and the probe id \
            (docs/maglev.md, "The packet tracer"). Probes are forwarded like any packet: they reach \
            a backend. Every forwarder that handles one sends a report (one JSON datagram) to the \
            collector, where this command listens. One line per report: probe, 5-tuple, forwarder, \
            backend, reason (connection-hit, table-lookup, reselected, fragment-table-hit, \
            three-tuple-fragment, icmp-quote); with --format json one JSON object per line. Probes \
            with no report within --timeout seconds are listed as unanswered, and the exit status \
            is then 1. Needs root (raw socket). Forwarders send at most 100 reports a second \
            each (burst 100) and drop the rest: probes go out at --rate a second (default 100).

            Examples:
              maglev probe --vip 198.19.0.10:80 --count 16 --collector 198.18.0.10:9999
              maglev probe --vip 198.19.0.11:53 --protocol udp --count 8 --collector 198.18.0.10:9999 --format json
              maglev probe --vip [2001:db8:100::10]:80 --count 4 --collector [2001:db8::10]:9999 --pcap probes.pcap
              ip netns exec mglab-client maglev probe --vip 198.19.0.10:80 --collector 198.18.0.10:9999
            """)

    @Option(help: "The VIP and port: ADDR:PORT or [IPv6]:PORT.")
    var vip: String

    @Option(help: "tcp (a SYN, the default) or udp.")
    var `protocol` = "tcp"

    @Option(help: "Probes to send, each on its own 5-tuple (1-10000).")
    var count = 16

    @Option(help: "Where forwarders send reports and this command listens: ADDR:PORT or [IPv6]:PORT.")
    var collector: String

    @Option(help: "The probes' source address (default: the address the kernel would use toward the VIP).")
    var source: String?

    @Option(help: "The first probe's source port; the others follow (default: random in 20000-59999).")
    var firstPort: Int?

    @Option(help: "Seconds to wait for reports after the last probe.")
    var timeout: Double = 2

    @Option(help: "text (default) or json (one object per line).")
    var format = "text"

    @Option(help: "Probes sent per second (forwarders report at most 100 a second each, burst 100).")
    var rate: Double = 100

    @Option(help: "Also write the probes as sent (raw IP) to this pcap, for `maglev replay`.")
    var pcap: String?

    func validate() throws {
        guard Self.endpoint(vip) != nil else { throw ValidationError("--vip must be ADDR:PORT or [IPv6]:PORT, got '\(vip)'") }
        guard Self.endpoint(collector) != nil else {
            throw ValidationError("--collector must be ADDR:PORT or [IPv6]:PORT, got '\(collector)'")
        }
        guard ["tcp", "udp"].contains(`protocol`) else { throw ValidationError("--protocol must be tcp or udp") }
        guard (1...10000).contains(count) else { throw ValidationError("--count must be between 1 and 10000") }
        guard timeout > 0 && timeout <= 3600 else { throw ValidationError("--timeout must be more than 0 seconds") }
        guard rate > 0 && rate <= 100_000 else { throw ValidationError("--rate must be more than 0 and at most 100000") }
        guard ["text", "json"].contains(format) else { throw ValidationError("--format must be text or json") }
        if let source, IPAddress(source) == nil { throw ValidationError("--source must be an IP address, got '\(source)'") }
        if let p = firstPort, !(1...65535).contains(p) || p + count - 1 > 65535 {
            throw ValidationError("--first-port must leave room for --count ports up to 65535")
        }
    }

    /// `ADDR:PORT` or `[IPv6]:PORT`.
    static func endpoint(_ text: String) -> (address: IPAddress, port: UInt16)? {
        let host: Substring
        let port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), text.firstIndex(of: ":") == colon else { return nil }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard let address = IPAddress(host), let p = UInt16(port), p > 0 else { return nil }
        return (address, p)
    }

    struct Sent {
        var index: Int
        var id: UInt64
        var key: FlowKey
    }

    func run() throws {
        let (vipAddress, vipPort) = Self.endpoint(vip)!
        let (collectorAddress, collectorPort) = Self.endpoint(collector)!
        let ipv6 = vipAddress.isIPv6
        let proto = `protocol` == "tcp" ? IPProtocol.tcp : IPProtocol.udp
        let sourceAddress: IPAddress
        if let source {
            sourceAddress = IPAddress(source)!
        } else {
            do {
                let bytes = try UDPSocket.sourceAddress(toward: vipAddress.networkBytes)
                sourceAddress = IPAddress(networkBytes: bytes)
            } catch {
                throw CLIError("no route to \(vipAddress): \(error) (say --source ADDR)")
            }
        }
        guard sourceAddress.isIPv6 == ipv6 else { throw CLIError("--source \(sourceAddress) is not of the VIP's family") }

        // Listen first, so no report can arrive before we do.
        let listener: UDPSocket
        do {
            listener = try Self.listen(collectorAddress, collectorPort)
        } catch {
            throw CLIError("cannot listen on the collector \(collector): \(error)")
        }
        let raw: RawIPSocket
        do {
            raw = try RawIPSocket(ipv6: ipv6)
        } catch {
            throw CLIError("cannot open a raw socket (\(error)): maglev probe needs root or CAP_NET_RAW")
        }

        var rng = SystemRandomNumberGenerator()
        // Ids: a random run tag in the high 48 bits, the probe index below; reports of other runs
        // (late answers to an earlier probe) are ignored.
        let tag = rng.next() & ~0xFFFF
        let firstPort = self.firstPort ?? Int.random(in: 20000...(60000 - count), using: &rng)
        let writer: PcapWriter?
        do {
            writer = try pcap.map { path throws(CaptureError) in try PcapWriter(path: path, linkType: .rawIP) }
        } catch {
            throw CLIError("cannot write \(pcap ?? ""): \(error)")
        }
        var sent: [Sent] = []
        let start = MonotonicClock.now()
        for i in 0..<count {
            let id = tag | UInt64(i)
            let port = UInt16(firstPort + i)
            let packet = TraceMarker.probePacket(
                source: sourceAddress, destination: vipAddress, sourcePort: port, destinationPort: vipPort, proto: proto,
                probe: TraceProbe(collector: collectorAddress, collectorPort: collectorPort, id: id),
                identification: UInt16.random(in: 1...UInt16.max, using: &rng), sequence: UInt32.random(in: 0...UInt32.max, using: &rng))
            do {
                try raw.send(packet)
            } catch {
                throw CLIError("sending probe \(i + 1) failed: \(error)")
            }
            packet.withUnsafeBytes { writer?.write($0, timestampNs: start + UInt64(i) * 1000) }
            sent.append(
                Sent(
                    index: i + 1, id: id,
                    key: FlowKey(source: sourceAddress, destination: vipAddress, sourcePort: port, destinationPort: vipPort, proto: proto)))
            // Paced: a forwarder drops (and counts) reports beyond 100 a second.
            let due = start + UInt64(Double(i + 1) / rate * 1e9)
            let now = MonotonicClock.now()
            if i + 1 < count && due > now { usleep(UInt32(min((due - now) / 1000, 1_000_000))) }
        }
        do { try writer?.finish() } catch { throw CLIError("cannot write \(pcap ?? ""): \(error)") }

        // Collect until every probe is answered or the timeout passes after the last send.
        var reports: [Int: [TraceReport]] = [:]
        let deadline = MonotonicClock.now() + UInt64(timeout * 1e9)
        while reports.count < count {
            let now = MonotonicClock.now()
            if now >= deadline { break }
            let waitMs = Int32(min(1000, (deadline - now) / 1_000_000 + 1))
            let datagram: [UInt8]?
            do { datagram = try listener.receive(timeoutMilliseconds: waitMs) } catch { throw CLIError("collector: \(error)") }
            guard let datagram, let report = TraceReport(datagram: datagram), report.probeID & ~0xFFFF == tag else { continue }
            let index = Int(report.probeID & 0xFFFF)
            guard index < count else { continue }
            reports[index, default: []].append(report)
        }
        // A short grace for a second forwarder's report of an answered probe.
        while let datagram = try? listener.receive(timeoutMilliseconds: 50) {
            if let report = TraceReport(datagram: datagram), report.probeID & ~0xFFFF == tag, Int(report.probeID & 0xFFFF) < count {
                reports[Int(report.probeID & 0xFFFF), default: []].append(report)
            }
        }

        var unanswered = 0
        var byForwarder: [String: Int] = [:]
        for s in sent {
            let answers = reports[s.index - 1] ?? []
            if answers.isEmpty { unanswered += 1 }
            for r in answers { byForwarder[r.forwarder, default: 0] += 1 }
            print(Self.lines(s, answers, json: format == "json"), terminator: "")
        }
        if format == "text" {
            let forwarders = byForwarder.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            print(
                "\(count) probes: \(count - unanswered) answered, \(unanswered) unanswered"
                    + (forwarders.isEmpty ? "" : " (reports by forwarder: \(forwarders))"))
        }
        fflush(nil)
        if unanswered > 0 { throw ExitCode(1) }
    }

    /// A UDP socket bound to the collector's address, or to any address on its port when the
    /// collector's address is not local (reached through NAT, say).
    static func listen(_ address: IPAddress, _ port: UInt16) throws(SystemError) -> UDPSocket {
        let socket = try UDPSocket(ipv6: address.isIPv6)
        do {
            try socket.bind(address: address.networkBytes, port: port)
        } catch {
            try socket.bind(address: [UInt8](repeating: 0, count: address.isIPv6 ? 16 : 4), port: port)
        }
        return socket
    }


    static func endpointText(_ a: IPAddress, _ port: UInt16) -> String { a.isIPv6 ? "[\(a)]:\(port)" : "\(a):\(port)" }

    /// One line per report of probe `s` (or one "unanswered" line).
    static func lines(_ s: Sent, _ answers: [TraceReport], json: Bool) -> String {
        let proto = TraceReport.protocolName(s.key.proto)
        let tuple = "\(proto) \(endpointText(s.key.source, s.key.sourcePort)) -> \(endpointText(s.key.destination, s.key.destinationPort))"
        func common(_ answered: Bool) -> [(String, JSONValue)] {
            [
                ("probe", JSONValue(s.index)), ("probe_id", .uint(s.id)), ("answered", .bool(answered)),
                ("protocol", .string(proto)), ("source", .string("\(s.key.source)")), ("source_port", JSONValue(Int(s.key.sourcePort))),
                ("destination", .string("\(s.key.destination)")), ("destination_port", JSONValue(Int(s.key.destinationPort))),
            ]
        }
        if answers.isEmpty {
            return json ? JSONValue.object(common(false)).rendered() + "\n" : "probe \(s.index)  \(tuple)  unanswered\n"
        }
        var out = ""
        for r in answers {
            if json {
                out +=
                    JSONValue.object(
                        common(true) + [
                            ("forwarder", .string(r.forwarder)), ("worker", JSONValue(r.worker)), ("vip", JSONValue(r.vip)),
                            ("action", .string(r.action)), ("backend", JSONValue(r.backend)),
                            ("backend_address", JSONValue(r.backendAddress)), ("reason", .string(r.reason)),
                        ]
                    ).rendered() + "\n"
            } else {
                let backend = r.backend.map { "\($0) (\(r.backendAddress ?? "?"))" } ?? "none"
                let action = r.action == "forward" ? "" : "  action \(r.action)"
                out += "probe \(s.index)  \(tuple)  forwarder \(r.forwarder)  backend \(backend)  reason \(r.reason)\(action)\n"
            }
        }
        return out
    }
}
