import ArgumentParser
import MaglevControl
import MaglevCore
import MaglevLinux
import MaglevReplay

#if canImport(Glibc)
    import Glibc
#endif

/// `maglev trace rewrite`: a capture's TCP and UDP packets, moved onto the namespace lab's VIPs.
struct TraceRewriteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rewrite",
        abstract: "Rewrite a capture's TCP and UDP packets onto the lab's VIPs (Ethernet pcap), for Tools/lab replay.",
        discussion: """
            Every TCP packet (not an ICMP error, not cut short by the capture) goes to the TCP \
            VIP of its family, --vip4 or --vip6 (address and port), every UDP packet to the UDP \
            VIP of its family, --udp-vip4 or --udp-vip6, in an untagged Ethernet frame from \
            --src-mac to --dst-mac, with correct IPv4 header and TCP/UDP checksums and the \
            original timestamp. Fragments go to the same VIP address: a first fragment also gets \
            the VIP's port (its checksum adjusted, RFC 1624), later ones only the addresses. \
            A packet whose family has no VIP of its protocol is skipped. \
            Sources are kept, except that sources in the \
            lab's own subnets (198.18.0.0/23, 2001:db8::/47) move to the next /23 or /47 \
            (198.18.2.0/23, 2001:db8:2::/47), and unroutable sources (multicast, loopback, ...) \
            are skipped. Everything else is skipped and counted by reason.

            Prints one line: packets read, written, and skipped by reason.

            Example:
              maglev trace rewrite Traces/mixed-small.pcap --out lab.pcap --vip4 198.19.0.10:80 \\
                  --udp-vip4 198.19.0.11:53 --src-mac 02:00:00:00:00:01 --dst-mac 02:00:00:00:00:02
            """)

    @Argument(help: ArgumentHelp("The capture to read (pcap or pcapng).", valueName: "trace"))
    var trace: String

    @Option(help: ArgumentHelp("The pcap file to write (Ethernet, created or replaced).", valueName: "path"))
    var out: String

    @Option(help: ArgumentHelp("IPv4 VIP the IPv4 TCP packets go to (they are skipped without).", valueName: "address:port"))
    var vip4: String?

    @Option(help: ArgumentHelp("IPv6 VIP the IPv6 TCP packets go to (they are skipped without).", valueName: "[address]:port"))
    var vip6: String?

    @Option(name: .customLong("udp-vip4"), help: ArgumentHelp("IPv4 VIP the IPv4 UDP packets go to (they are skipped without).", valueName: "address:port"))
    var udpVIP4: String?

    @Option(name: .customLong("udp-vip6"), help: ArgumentHelp("IPv6 VIP the IPv6 UDP packets go to (they are skipped without).", valueName: "[address]:port"))
    var udpVIP6: String?

    @Option(name: .customLong("src-mac"), help: "Source MAC of every frame (the sender's interface).")
    var sourceMAC: String

    @Option(name: .customLong("dst-mac"), help: "Destination MAC of every frame (the router's interface).")
    var destinationMAC: String

    @Option(name: .customLong("max-packets"), help: "Write at most this many packets; the rest are skipped.")
    var maxPackets: Int = 100_000

    @Option(help: "The largest IP packet the lab's links carry; longer ones are skipped.")
    var mtu: Int = 1500

    init() {}

    static func endpoint(_ text: String, ipv6: Bool, option: String? = nil) throws(CLIError) -> (address: IPAddress, port: UInt16) {
        let option = option ?? (ipv6 ? "--vip6" : "--vip4")
        let address: Substring
        let port: Substring
        if ipv6 {
            guard text.hasPrefix("["), let close = text.firstIndex(of: "]"),
                text[text.index(after: close)...].hasPrefix(":")
            else { throw CLIError("\(option) must look like [2001:db8:100::10]:80, not \(text)") }
            address = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw CLIError("\(option) must look like 198.19.0.10:80, not \(text)") }
            address = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard let a = IPAddress(address), a.isIPv6 == ipv6, let p = UInt16(port) else {
            throw CLIError("cannot read \(text) as an \(ipv6 ? "IPv6" : "IPv4") address and port")
        }
        return (a, p)
    }

    static func mac(_ text: String) throws(CLIError) -> [UInt8] {
        let parts = text.split(separator: ":")
        let bytes = parts.compactMap { $0.count == 2 ? UInt8($0, radix: 16) : nil }
        guard parts.count == 6, bytes.count == 6 else { throw CLIError("not a MAC address: \(text)") }
        return bytes
    }

    func validate() throws {
        if vip4 == nil && vip6 == nil && udpVIP4 == nil && udpVIP6 == nil {
            throw CLIError("give at least one of --vip4, --vip6, --udp-vip4, --udp-vip6")
        }
        if maxPackets < 1 { throw CLIError("--max-packets must be at least 1") }
    }

    func run() throws {
        print(try rewrite())
    }

    func rewrite() throws(CLIError) -> String {
        let rewriter = LabRewriter(
            vip4: try vip4.map { v throws(CLIError) in try Self.endpoint(v, ipv6: false) },
            vip6: try vip6.map { v throws(CLIError) in try Self.endpoint(v, ipv6: true) },
            udpVIP4: try udpVIP4.map { v throws(CLIError) in try Self.endpoint(v, ipv6: false, option: "--udp-vip4") },
            udpVIP6: try udpVIP6.map { v throws(CLIError) in try Self.endpoint(v, ipv6: true, option: "--udp-vip6") },
            sourceMAC: try Self.mac(sourceMAC), destinationMAC: try Self.mac(destinationMAC), maximumIPLength: mtu)
        var read = 0
        var skipped: [String: Int] = [:]
        let writer: PcapWriter
        do {
            let reader = try CaptureReader(paths: [trace])
            writer = try PcapWriter(path: out, linkType: .ethernet)
            while let packet = try reader.next() {
                read += 1
                switch rewriter.rewrite(packet.bytes, linkType: packet.linkType) {
                case .skipped(let reason): skipped[reason, default: 0] += 1
                case .frame(let frame):
                    if writer.packetsWritten >= maxPackets {
                        skipped["over --max-packets", default: 0] += 1
                    } else {
                        frame.withUnsafeBytes { writer.write($0, timestampNs: packet.timestampNs) }
                    }
                }
            }
            for (reason, count) in reader.skipped { skipped[reason, default: 0] += count }
            try writer.finish()
        } catch {
            throw CLIError(error.description)
        }
        let reasons = skipped.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        return "\(read) packets read, \(writer.packetsWritten) written to \(out)"
            + (skipped.isEmpty ? "" : ", skipped: \(reasons)")
    }
}

/// `maglev trace send`: a capture's Ethernet frames, sent out of an interface at a bounded rate.
struct TraceSendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send a capture's Ethernet frames out of an interface (AF_PACKET), at a bounded rate.",
        discussion: """
            Sends each frame as it is (its own MAC addresses; nothing is routed), in file order, \
            paced to --pps packets per second (at most 20000), and refuses files of more than \
            --max-packets frames. Meant for a lab's client namespace (Tools/lab replay): run it \
            with `ip netns exec`. Frames longer than the interface's MTU + 14 are skipped.

            Prints one line: frames sent, skipped, seconds taken.
            """)

    @Argument(help: ArgumentHelp("The capture to send (Ethernet link type).", valueName: "trace"))
    var trace: String

    @Option(help: "The interface to send out of.")
    var interface: String

    @Option(help: "Packets per second, 1 to 20000.")
    var pps: Int = 5000

    @Option(name: .customLong("max-packets"), help: "Refuse a capture with more frames than this.")
    var maxPackets: Int = 100_000

    init() {}

    func validate() throws {
        if !(1...20_000).contains(pps) { throw CLIError("--pps must be 1 to 20000") }
        if !(1...1_000_000).contains(maxPackets) { throw CLIError("--max-packets must be 1 to 1000000") }
    }

    func run() throws {
        // First pass: count, and check the link type, before sending anything.
        var frames = 0
        do {
            let reader = try CaptureReader(paths: [trace])
            while let packet = try reader.next() {
                if packet.linkType != .ethernet { throw CLIError("\(trace): not an Ethernet capture") }
                frames += 1
                if frames > maxPackets {
                    throw CLIError("\(trace) holds more than \(maxPackets) frames (--max-packets)")
                }
            }
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError("\(error)")
        }
        let sender = try PacketSender(interface: interface)
        let clock = ContinuousClock()
        let start = clock.now
        var sent = 0
        var skipped = 0
        let reader = try CaptureReader(paths: [trace])
        while let packet = try reader.next() {
            if packet.bytes.count > sender.mtu + 14 {
                skipped += 1
                continue
            }
            // Pacing: packet n leaves no earlier than n / pps seconds after the start.
            let due = start + .nanoseconds(Int64(sent) * 1_000_000_000 / Int64(pps))
            let early = due - clock.now
            if early > .zero {
                let c = early.components
                var wait = timespec(tv_sec: Int(c.seconds), tv_nsec: Int(c.attoseconds / 1_000_000_000))
                var left = timespec()
                while nanosleep(&wait, &left) != 0 && errno == EINTR { wait = left }
            }
            try sender.send(packet.bytes)
            sent += 1
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        print("\(sent) frames sent on \(interface), \(skipped) skipped (longer than the MTU) in \(JSONValue.number(seconds, digits: 2)) s")
    }
}

/// `maglev trace compare`: replay decisions vs. what backend hosts captured.
struct TraceCompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare, flow by flow, a replay's decisions with the GRE packets backend hosts received.",
        discussion: """
            --decisions is `maglev replay --decisions` output; each --host names a backend host, \
            the configured backends it carries and a capture of the GRE packets it received \
            (tcpdump -w on its interface, filter 'ip proto 47 or ip6 proto 47'): \
            --host be1=backend-1,backend6-1:be1.pcap. A flow (the inner 5-tuple) matches when \
            the hosts the replay forwards it to are exactly the hosts that received it (none, \
            for a flow the replay passes or drops).

            Prints `matched M of N flows`, flows per host (predicted and live), flows per live \
            forwarder, and up to 10 mismatches; exits 1 unless every flow matches.
            """)

    @Option(help: ArgumentHelp("The decisions CSV of `maglev replay`.", valueName: "path"))
    var decisions: String

    @Option(help: ArgumentHelp("A backend host: NAME=BACKEND[,BACKEND...]:CAPTURE (repeatable).", valueName: "spec"))
    var host: [String] = []

    init() {}

    static func parseHost(_ spec: String) throws(CLIError) -> DeliveryCheck.Host {
        guard let equals = spec.firstIndex(of: "="), let colon = spec[equals...].firstIndex(of: ":") else {
            throw CLIError("--host must look like be1=backend-1,backend6-1:be1.pcap, not \(spec)")
        }
        let name = String(spec[..<equals])
        let backends = spec[spec.index(after: equals)..<colon].split(separator: ",").map(String.init)
        let capture = String(spec[spec.index(after: colon)...])
        if name.isEmpty || backends.isEmpty || capture.isEmpty {
            throw CLIError("--host must look like be1=backend-1,backend6-1:be1.pcap, not \(spec)")
        }
        return DeliveryCheck.Host(name: name, backends: Set(backends), capture: capture)
    }

    func validate() throws {
        if host.isEmpty { throw CLIError("give at least one --host") }
    }

    func run() throws {
        let hosts = try host.map { s throws(CLIError) in try Self.parseHost(s) }
        let result: DeliveryCheck.Result
        do {
            result = try DeliveryCheck.run(decisions: decisions, hosts: hosts)
        } catch {
            throw CLIError(error.description)
        }
        print(Self.render(result, hosts: hosts))
        if result.matched != result.flows || result.flows == 0 { throw ExitCode(1) }
    }

    static func render(_ r: DeliveryCheck.Result, hosts: [DeliveryCheck.Host]) -> String {
        var lines: [String] = []
        lines.append("flows per host (replay / live):")
        for name in Set(hosts.map(\.name)).union(r.predictedFlowsPerHost.keys).sorted() {
            let p = r.predictedFlowsPerHost[name] ?? 0
            let l = r.receivedFlowsPerHost[name] ?? 0
            lines.append("  \(name.padding(16)) \(String(p).leftPadding(6)) / \(String(l).leftPadding(6))")
        }
        if !r.liveFlowsPerForwarder.isEmpty {
            lines.append("flows per live forwarder (GRE source): "
                + r.liveFlowsPerForwarder.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        lines.append("packets: replay forwarded \(r.predictedPackets), backends received \(r.receivedPackets)"
            + (r.packetCountDifferences > 0 ? " (\(r.packetCountDifferences) matched flows lost or gained packets)" : ""))
        for e in r.packetCountExamples {
            lines.append("  e.g. \(e.flow): replay forwarded \(e.predicted) packets, backends received \(e.received)")
        }
        if r.icmpErrorsReceived > 0 {
            lines.append("\(r.icmpErrorsReceived) ICMP errors about the flows also reached hosts (counted for matching, "
                + "not in packets; in the lab: the router's unreachables for backend replies)")
        }
        if r.unreadablePackets > 0 { lines.append("\(r.unreadablePackets) captured packets were not GRE with an IP packet inside") }
        for m in r.mismatches {
            let predicted = m.predicted.isEmpty ? "none" : m.predicted.sorted().joined(separator: ",")
            let received = m.received.isEmpty ? "none" : m.received.sorted().joined(separator: ",")
            lines.append("MISMATCH \(m.flow): replay \(predicted), live \(received)")
        }
        if r.flows - r.matched > r.mismatches.count {
            lines.append("... and \(r.flows - r.matched - r.mismatches.count) more mismatches")
        }
        lines.append("matched \(r.matched) of \(r.flows) flows")
        return lines.joined(separator: "\n")
    }
}

extension String {
    fileprivate func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
    fileprivate func leftPadding(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
