import ArgumentParser
import MaglevCore
import MaglevForwarder
import MaglevLinux

#if canImport(Glibc)
    import Glibc
#endif

/// `maglev decap`: the backend-side GRE decapsulator for hosts without a kernel GRE driver.
struct DecapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decap",
        abstract: "Decapsulate the forwarder's GRE on a backend and hand the inner packets to the local stack.",
        discussion: """
            Forwarders wrap client packets in GRE (outer IPv4 or IPv6, a 4-byte GRE header with \
            protocol 0x0800 or 0x86DD, the inner packet unchanged) and send them to a backend's own \
            address. This command receives them on raw IPPROTO_GRE sockets (which work with no GRE \
            driver in the kernel), checks the GRE header, and writes each inner packet to a TUN \
            device, so the kernel receives it as if the client had sent it directly. The backend \
            answers the client itself (direct server return).

            The backend also needs, once:
              - the VIP on a local interface:   ip addr add 198.19.0.10/32 dev lo
                                                ip addr add 2001:db8:100::10/128 dev lo
              - reverse-path filtering relaxed (the inner source is a client that is not routed \
            over the TUN device; the kernel uses the larger of "all" and the device's value):
                  sysctl -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
                  sysctl -w net.ipv4.conf.<tun>.rp_filter=0   (after the device exists)
              - a service listening on the VIP (or on 0.0.0.0).

            Packets dropped are counted by reason: truncated, bad outer header, GRE version other \
            than 0, GRE flags set (checksum, key, sequence, routing: the forwarder sends none), \
            protocol other than IPv4/IPv6, inner header not matching the protocol, outer source \
            not in --only-from, and TUN write failures. Counters are printed every \
            --stats-interval seconds and on exit (SIGINT or SIGTERM; a second signal kills).

            Needs CAP_NET_ADMIN (TUN device) and CAP_NET_RAW (raw sockets): run as root or \
            setcap cap_net_admin,cap_net_raw+ep on the binary. The TUN device is removed when the \
            command exits.

            With a kernel GRE driver you need none of this; use the kernel instead:
              ip tunnel add gre1 mode gre local <backend-ip> remote <forwarder-ip> ttl 64
              ip link set gre1 up
              ip link add gre6 type ip6gre local <backend-ip6> remote <forwarder-ip6>
              ip link set gre6 up
            (one tunnel per forwarder, or "remote any" on a tunnel without a remote address), \
            the VIP on lo, and rp_filter relaxed as above, for the gre devices too.

            Examples:
              maglev decap --tun mgdecap
              maglev decap --tun mgdecap --stats-interval 10
              maglev decap --tun mgdecap --only-from 198.18.1.11 --only-from 198.18.1.12
              ip netns exec mglab-be1 maglev decap --tun mgdecap --duration 30
            """)

    @Option(help: ArgumentHelp("Name of the TUN device to create (at most 15 bytes).", valueName: "name"))
    var tun: String

    @Option(
        name: .customLong("stats-interval"),
        help: ArgumentHelp("Print the counters every S seconds (0: only on exit).", valueName: "s"))
    var statsInterval: Double = 0

    @Option(help: ArgumentHelp("Stop after S seconds (0: run until SIGINT or SIGTERM).", valueName: "s"))
    var duration: Double = 0

    @Option(
        name: .customLong("only-from"),
        help: ArgumentHelp(
            "Accept GRE only from this outer source address (a forwarder); repeatable. Default: any source.",
            valueName: "addr"))
    var onlyFrom: [String] = []

    @Flag(name: .customLong("ipv4-only"), help: "Do not open the IPv6 GRE socket.")
    var ipv4Only = false

    func validate() throws {
        guard !tun.isEmpty, tun.utf8.count <= 15 else { throw ValidationError("--tun needs a name of 1 to 15 bytes") }
        guard !tun.contains(where: { $0 == "/" || $0 == " " || $0 == ":" || $0 == "\t" }), tun != ".", tun != ".." else {
            throw ValidationError("--tun \(tun): an interface name may not contain '/', ':' or spaces")
        }
        guard statsInterval >= 0, statsInterval.isFinite else { throw ValidationError("--stats-interval must be 0 or more seconds") }
        guard duration >= 0, duration.isFinite else { throw ValidationError("--duration must be 0 or more seconds") }
        for a in onlyFrom where IPAddress(a) == nil {
            throw ValidationError("--only-from \(a) is not an IPv4 or IPv6 address")
        }
    }

    func run() throws {
        let allowed = onlyFrom.compactMap { IPAddress($0) }
        let device = try Self.openDevice(tun)
        let receiver = try Self.openReceiver(ipv6: !ipv4Only)
        var families = ["IPv4"]
        if receiver.ipv6Descriptor >= 0 {
            families.append("IPv6")
        } else if !ipv4Only {
            Self.write("maglev decap: IPv6 is not available here; receiving GRE over IPv4 only", to: 2)
        }
        let name = device.name
        GREReceiveStopSignals.install()
        var loop = DecapLoop(tun: device, receiver: receiver, allowedSources: allowed)
        say(
            "maglev decap: TUN device \(name) is up; receiving GRE over \(families.joined(separator: " and "))"
                + (allowed.isEmpty ? " from any source" : " from \(onlyFrom.joined(separator: ", "))")
                + "; stop with SIGINT or SIGTERM")
        let counters: DecapCounters
        do {
            counters = try loop.run(
                duration: duration > 0 ? .milliseconds(Int64(duration * 1000)) : nil,
                statsInterval: statsInterval > 0 ? .milliseconds(Int64(statsInterval * 1000)) : nil,
                shouldStop: { GREReceiveStopSignals.stopRequested },
                report: { say("stats: " + Self.line($0)) })
        } catch {
            throw CLIError("\(error)")
        }
        say("maglev decap: stopped; counters:")
        for row in counters.rows { say("  \(row.name) \(row.value)") }
    }

    private static func openDevice(_ name: String) throws(CLIError) -> TunDevice {
        do {
            let device = try TunDevice(name: name)
            try device.setUp()
            return device
        } catch {
            throw CLIError("\(error)")
        }
    }

    private static func openReceiver(ipv6: Bool) throws(CLIError) -> GREReceiver {
        do {
            return try GREReceiver(ipv4: true, ipv6: ipv6)
        } catch {
            throw CLIError("\(error)")
        }
    }

    /// The counters on one line, drops only when non-zero.
    static func line(_ c: DecapCounters) -> String {
        var parts = ["received=\(c.received)", "delivered_ipv4=\(c.deliveredIPv4)", "delivered_ipv6=\(c.deliveredIPv6)", "dropped=\(c.dropped)"]
        for reason in DecapDropReason.allCases where c[reason] > 0 { parts.append("\(reason.name)=\(c[reason])") }
        return parts.joined(separator: " ")
    }

    /// Prints a line to standard output unbuffered, so that a log file shows it at once.
    private func say(_ text: String) { Self.write(text, to: 1) }

    private static func write(_ text: String, to fd: Int32) {
        var line = text + "\n"
        line.withUTF8 { _ = Glibc.write(fd, $0.baseAddress, $0.count) }
    }
}
