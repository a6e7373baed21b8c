import ArgumentParser
import Logging
import MaglevConfig
import MaglevCore
import MaglevForwarder
import MaglevLinux

#if canImport(Glibc)
    import Glibc
#endif

struct ForwardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "Forward live traffic: VIP packets in, GRE to the chosen backend out.",
        discussion: """
            Receives the frames for the configured VIPs on --interface (one AF_PACKET socket per \
            worker in a PACKET_FANOUT_HASH group, filtered in the kernel by a classic BPF program \
            for the VIP prefixes), runs them through the data plane in batches (io_uring \
            multishot receive into provided buffers; outer headers written in place, no copy) \
            and sends each packet GRE-encapsulated to its backend. Packets too big for the path \
            get ICMP "fragmentation needed" / ICMPv6 "packet too big" replies.

            --send packet (default, either loop) sends whole Ethernet frames through an AF_PACKET socket that \
            bypasses the queueing discipline: the worker writes the backend's next-hop Ethernet \
            header in front of the outer IP header and sends it out of the interface the kernel's \
            route names (which may differ from --interface). Next hops come from the kernel's \
            route and neighbour tables (looked up again every second and after each reload; \
            missing or stale neighbours are handed to the kernel to resolve); a backend whose \
            next hop is not resolved yet, or not on an Ethernet interface, takes the raw IP \
            socket meanwhile (counted as next_hop_fallbacks). --send raw always \
            uses raw IP sockets: the kernel routes each packet and builds its Ethernet header. \
            Frames sent with --send packet skip the interface's taps: tcpdump on the forwarder's \
            own interface does not see them (capture at the next hop instead).

            One worker per core, pinned. SIGHUP re-reads the config (an invalid one is reported \
            and the running one kept; a change of hash_seed, table_size (also a VIP's own), algorithm \
            or ring_views, which would move almost every connection, is refused unless \
            --allow-disruptive-reload is given); \
            SIGINT / SIGTERM stop once in-flight sends complete and print the final counters.

            Pools with a health_check are probed off the data path (tcp, http, udp-dns, and \
            gre-tcp / gre-http through the same GRE encapsulation to the VIP on the backend); a \
            backend that fails `fall` probes in a row owns no slots until it passes `rise` again. \
            --admin serves GET /metrics (Prometheus), GET /status (JSON), POST \
            /backends/NAME/drain|undrain and POST /reload; `maglev ctl` is its client. Logs go \
            to standard output (warnings and errors to standard error) with timestamps and \
            levels, as text or JSON lines (--log-format json).

            With a bgp section in the config, a built-in announce-only BGP speaker announces each \
            usable single-address VIP as a host route (/32, /128) with this forwarder's \
            encapsulation source as next hop, while the workers run and make progress; a stalled \
            worker withdraws everything. SIGTERM withdraws first, keeps forwarding for \
            --drain-seconds while the routers move traffic away, then stops. `maglev ctl \
            withdraw|announce` does the same by hand.

            --io mmsg swaps the io_uring loop for plain recvmmsg/sendmmsg batches of 64 (same \
            sockets, same data plane): a baseline for benchmarks, and a fallback without io_uring. \
            --io ring receives through a TPACKET_V3 ring mapped into each worker (the kernel \
            copies frames into it a block at a time; no per-frame receive) and sends through \
            io_uring in one submit per batch, straight from the ring. --io ring-frames is the same \
            with a TPACKET_V2 receive ring (a slot per frame, visible at once; a V3 block waits to \
            fill or for its 1 ms retire timer). --io xdp attaches an XDP program to the interface \
            that steers only VIP traffic (and GRE to this forwarder's group address) to one AF_XDP \
            socket per receive queue (--workers up to the queue count); the rest of the host's \
            traffic passes untouched. Native mode where the driver has it, else generic; zero-copy \
            where the driver has it, else copy mode (veth). Needs root (CAP_BPF, CAP_NET_ADMIN, \
            locked memory for the UMEM); the program detaches when the forwarder stops or dies.

            Needs CAP_NET_RAW (root) and io_uring (sysctl kernel.io_uring_disabled=0). The \
            packet socket gets a copy of each frame and the kernel still handles the original: \
            never configure a VIP on the forwarder itself, and keep net.ipv4.ip_forward=0 there.

            Examples:
              maglev forward --config /etc/maglev.yaml --interface eth0
              maglev forward --config lb.yaml --interface eth1 --workers 4 --stats-interval 5
              maglev forward --config lb.yaml --interface eth1 --send raw
              maglev forward --config lb.yaml --interface eth1 --io xdp   # AF_XDP
              maglev forward --config lb.yaml --interface veth0 --json-stats \\
                --stats-interval 1 --duration 30
              maglev forward --config lb.yaml --interface eth0 --admin 127.0.0.1:9100
              curl -s http://127.0.0.1:9100/metrics
              maglev ctl --admin 127.0.0.1:9100 drain web-3
              maglev forward --config fleet.yaml --interface eth0 --shard blue   # VIPs with shard: blue
              maglev forward --config lb.yaml --interface eth0 --name fwd1   # fragments: redirect, member fwd1
              kill -HUP $(pidof maglev)    # reload the config
            """)

    @Option(help: "Config file (YAML): VIPs, pools, encapsulation sources, table, seed.")
    var config: String

    @Option(help: "Interface the VIP traffic arrives on.")
    var interface: String

    @Option(help: "Worker threads (one per core, pinned). Default: the CPUs this process may use.")
    var workers: Int?

    @Option(help: "Print counters every S seconds (per worker, total, per backend).")
    var statsInterval: Double?

    @Flag(help: "Print counters as one JSON object per line.")
    var jsonStats = false

    @Option(help: "Stop by itself after S seconds.")
    var duration: Double?

    @Option(help: "Kernel filter: vips (only packets to a VIP, default) or ethertype (all IPv4/IPv6).")
    var filter = "vips"

    @Option(
        help: "Worker I/O: io_uring (default: multishot RECVMSG), ring (TPACKET_V3 receive ring, TX ring and io_uring sends), ring-frames (the same with a TPACKET_V2 receive ring), xdp (AF_XDP sockets fed by an XDP program) or mmsg (plain recvmmsg/sendmmsg, batches of 64).")
    var io = "io_uring"

    @Option(help: "--io xdp: where the XDP program runs: auto (native where the driver has it, else generic), native or generic.")
    var xdpMode = "auto"

    @Option(help: "How GRE leaves: packet (AF_PACKET frames with the next hop's Ethernet header, qdisc bypass; default) or raw (raw IP sockets).")
    var send: String?

    @Flag(help: "Workers never sleep (io_uring loop): each keeps its core 100% busy, for lower, steadier latency.")
    var busyPoll = false

    @Flag(help: "Do not pin workers to CPUs.")
    var noPin = false

    @Option(help: "Serve the admin API (metrics, status, drain, reload) on HOST:PORT or PORT (loopback).")
    var admin: String?

    @Flag(help: "Allow --admin on an address that is not loopback (the API has no authentication).")
    var adminAllowRemote = false

    @Flag(help: "Apply reloads that change hash_seed, table_size or algorithm (they move most connections).")
    var allowDisruptiveReload = false

    @Option(help: "This forwarder's shard: it loads, forwards and announces only the VIPs with that shard (and those with none).")
    var shard: String?

    @Option(
        help: "This forwarder's name: in packet-tracer reports, and its member of the forwarder group (`forwarders:`) for `fragments: redirect` (default: the host name, with /NETNS when in a named network namespace).")
    var name: String?

    @Option(help: "With BGP: seconds a graceful stop (SIGTERM) keeps forwarding after withdrawing the VIP routes.")
    var drainSeconds: Double = 3

    @Option(help: "Log lines as text (default) or json (one JSON object per line).")
    var logFormat = "text"

    @Option(help: "Least log level shown: trace, debug, info (default), notice, warning, error, critical.")
    var logLevel = "info"

    func validate() throws {
        if let w = workers, !(1...1024).contains(w) { throw ValidationError("--workers must be between 1 and 1024") }
        if let s = statsInterval, !(s > 0) { throw ValidationError("--stats-interval must be more than 0 seconds") }
        if let d = duration, !(d > 0) { throw ValidationError("--duration must be more than 0 seconds") }
        if VIPFilter.Mode(rawValue: filter) == nil { throw ValidationError("--filter must be vips or ethertype") }
        if ForwarderIO(rawValue: io) == nil { throw ValidationError("--io must be io_uring, ring, ring-frames, xdp or mmsg") }
        if busyPoll && io == "mmsg" { throw ValidationError("--busy-poll needs --io io_uring, ring, ring-frames or xdp") }
        if XDPProgram.AttachMode(rawValue: xdpMode) == nil { throw ValidationError("--xdp-mode must be auto, native or generic") }
        if io == "xdp" && filter == "ethertype" {
            throw ValidationError(
                "--filter ethertype does not apply to --io xdp: its XDP program takes only VIP traffic (all IP "
                    + "frames would take the host's own traffic from the kernel)")
        }
        if let send, ForwarderSend(rawValue: send) == nil { throw ValidationError("--send must be packet or raw") }
        if let admin {
            guard let a = AdminAddress(admin) else {
                throw ValidationError("--admin must be PORT, HOST:PORT or [IPv6]:PORT with a port 1-65535, got '\(admin)'")
            }
            if !a.isLoopback && !adminAllowRemote {
                throw ValidationError(
                    "--admin \(admin) is not a loopback address and the admin API has no authentication: "
                        + "use 127.0.0.1:PORT, or add --admin-allow-remote if the network is trusted")
            }
        }
        if !(drainSeconds >= 0 && drainSeconds <= 3600) {
            throw ValidationError("--drain-seconds must be between 0 and 3600")
        }
        if LogFormat(rawValue: logFormat) == nil { throw ValidationError("--log-format must be text or json") }
        if Logger.Level(rawValue: logLevel) == nil {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
    }

    func run() async throws {
        let file: MaglevConfigFile
        do {
            file = try MaglevConfigFile.load(path: config).forShard(shard)
        } catch {
            throw CLIError("invalid config \(config):\n\(error)\nfix it, then check it with `maglev config check \(config)`")
        }
        let ioMode = ForwarderIO(rawValue: io) ?? .ioUring
        if ioMode != .mmsg, case .unavailable(_, let hint) = IORingProbe.check() {
            throw CLIError(
                "io_uring is not available: \(hint) (sysctl kernel.io_uring_disabled); `--io mmsg` works without it")
        }
        let cpus = ThreadContext.allowedCPUs()
        var defaultWorkers = max(1, cpus.count)
        if ioMode == .xdp {
            // One worker per receive queue (an XSK socket serves one queue).
            do {
                defaultWorkers = try XDPProgram.receiveQueues(interface: interface)
            } catch {
                throw CLIError("--io xdp: cannot read the receive queues of '\(interface)': \(error)")
            }
        }
        var options = ForwarderOptions(interface: interface, workers: workers ?? defaultWorkers)
        options.connectionCapacity = file.connectionCapacity
        options.filterMode = VIPFilter.Mode(rawValue: filter) ?? .vips
        options.io = ioMode
        options.send = send.flatMap(ForwarderSend.init(rawValue:)) ?? .packet
        if noPin { options.cpus = [] }
        options.busyPoll = busyPoll
        options.xdpMode = XDPProgram.AttachMode(rawValue: xdpMode) ?? .auto
        let forwarderName = name ?? HostName.forwarderDefault()
        options.memberName = forwarderName
        if file.dataplane.fragmentPolicy == .redirect,
            !file.dataplane.forwarders.contains(where: { $0.name == forwarderName })
        {
            throw CLIError(
                "this forwarder's name '\(forwarderName)' is not in the forwarder group of \(config) "
                    + "(forwarders: \(file.dataplane.forwarders.map(\.name).joined(separator: ", "))), which "
                    + "`fragments: redirect` needs: start it with --name NAME, NAME one of those")
        }
        let format = LogFormat(rawValue: logFormat) ?? .text
        let level = Logger.Level(rawValue: logLevel) ?? .info
        let logger = Logger(label: "maglev.forward") { _ in LineLogHandler(format: format, level: level) }
        let forwarder: Forwarder
        do {
            forwarder = try Forwarder(config: file.dataplane, configPath: config, options: options)
            try forwarder.start()
        } catch {
            throw CLIError(error.message)
        }
        let first = forwarder.statistics()
        logger.notice(
            "forwarding",
            metadata: [
                "interface": .string(options.interface), "workers": .stringConvertible(first.workers.count),
                "ring": .string(Set(first.workers.map(\.ringMode)).sorted().joined(separator: "/")),
                "filter": .string(Set(first.workers.map(\.filterMode)).sorted().joined(separator: "/")),
                "send": .string(forwarder.sendPath.rawValue), "config": .string(config),
            ])
        for warning in forwarder.warnings { logger.warning("\(warning)") }
        for (id, hop) in forwarder.nextHopDescriptions.enumerated() {
            logger.info("next hop", metadata: ["backend": .string(forwarder.snapshot.backendNames[id]), "via": .string(hop)])
        }
        var runtime = RuntimeOptions()
        runtime.admin = admin.flatMap(AdminAddress.init)
        runtime.allowDisruptiveReload = allowDisruptiveReload
        runtime.statisticsInterval = statsInterval
        runtime.duration = duration
        runtime.drainSeconds = drainSeconds
        runtime.shard = shard
        runtime.name = forwarderName
        let json = jsonStats
        let previous = PreviousStatistics()
        let final: ForwarderStatistics
        do {
            final = try await ForwarderRuntime.run(
                forwarder: forwarder, file: file, configPath: config, options: runtime, logger: logger,
                onStatistics: { s in
                    print(json ? StatisticsFormat.json(s) : StatisticsFormat.text(s, previous: previous.swap(s)))
                    fflush(nil)
                })
        } catch {
            throw CLIError(error.message)
        }
        print(json ? StatisticsFormat.json(final) : "final counters:\n" + StatisticsFormat.text(final))
        fflush(nil)
    }

    func printError(_ message: String) {
        var line = message + "\n"
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }
}

/// The last statistics printed (for rates between two lines).
final class PreviousStatistics: @unchecked Sendable {
    // @unchecked: only the control service's loop calls `swap`, one call at a time.
    private var last: ForwarderStatistics?
    func swap(_ s: ForwarderStatistics) -> ForwarderStatistics? {
        defer { last = s }
        return last
    }
}
