import Logging
import MaglevConfig
import MaglevCore
import MaglevLinux
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The path of `gre-tcp` / `gre-http` health probes: the kernel's own TCP connects to the VIP
/// address, and the packets travel to the backend inside the same GRE encapsulation as
/// forwarded traffic, so a probe also checks the backend's decapsulation and its VIP (as
/// Katran and GLB check their backends).
///
///     probe socket (SO_MARK 0x4d47, bound to encap source : leased port)
///       -> ip rule fwmark 0x4d47 lookup 19783 -> VIP/32 dev mgprobe (table 19783)
///       -> TUN mgprobe -> this tunnel's thread: leased port -> backend address
///       -> outer IPv4/IPv6 + GRE -> raw IP socket -> backend
///     backend (DSR): answers from VIP:port to encap source:port, straight to this host's stack
///
/// Each probe leases a local port, so the tunnel knows which backend a packet is for (every
/// probe of a VIP has the same destination). Control side only: nothing here touches workers.
final class GREProbeTunnel: @unchecked Sendable {
    // @unchecked: `tun`, `raw4`, `raw6` are used only by the tunnel thread after init;
    // `leases` is behind a Mutex; `thread` is written in init and read by stop.
    static let mark: UInt32 = 0x4d47
    static let table: Int32 = 0x4d47
    static let rulePriority: Int32 = 1000
    static let ports: Range<UInt16> = 40000..<60000

    let deviceName: String
    let routing: ProbeRouting
    let tunFD: Int32
    let raw4: RawIPSocket
    let raw6: RawIPSocket
    let source4: IPAddress?
    let source6: IPAddress?
    /// Port -> backend of the probe that last leased it. Entries stay after the probe ends, so
    /// the connection's last packets (its FIN, retransmissions) still reach the backend; a port
    /// is leased again only after the other 19,999 (`inUse` keeps running probes' ports).
    let leases = Mutex<(next: UInt16, backends: [UInt16: IPAddress], inUse: Set<UInt16>)>(
        (UInt16.random(in: GREProbeTunnel.ports), [:], []))
    let stopping = Atomic<Bool>(false)
    let sent = Atomic<UInt64>(0)
    let unmatched = Atomic<UInt64>(0)
    var thread: OSThread?
    private let tun: TunDeviceBox

    final class TunDeviceBox: @unchecked Sendable {
        let device: TunDevice
        init(_ d: consuming TunDevice) { device = d }
    }

    struct Lease: Sendable {
        var port: UInt16
    }

    /// Opens the TUN device and the policy routes for `vips`. Throws a message saying what failed.
    init(source4: IPAddress?, source6: IPAddress?, deviceName: String = "mgprobe") throws(ForwarderError) {
        self.source4 = source4
        self.source6 = source6
        do {
            tun = TunDeviceBox(try TunDevice(name: deviceName))
            try tun.device.setUp()
        } catch {
            throw ForwarderError("cannot open the GRE probe device \(deviceName): \(error)")
        }
        self.deviceName = tun.device.name
        tunFD = tun.device.fileDescriptor
        do {
            routing = try ProbeRouting()
            guard let index = ProbeRouting.interfaceIndex(self.deviceName) else {
                throw SystemError(call: "if_nametoindex(\(self.deviceName))", errno: ENODEV)
            }
            for v6 in [false, true] where (v6 ? source6 : source4) != nil {
                try routing.addRule(ipv6: v6, mark: Self.mark, table: Self.table, priority: Self.rulePriority)
            }
            interfaceIndex = index
            raw4 = try RawIPSocket(ipv6: false)
            raw6 = (try? RawIPSocket(ipv6: true)) ?? RawIPSocket.unavailable(ipv6: true)
        } catch {
            throw ForwarderError("cannot set up routing for GRE health probes: \(error)")
        }
        do {
            thread = try OSThread { [self] in self.loop() }
        } catch {
            throw ForwarderError("cannot start the GRE probe thread: \(error)")
        }
    }

    func source(ipv6: Bool) -> IPAddress? { ipv6 ? source6 : source4 }

    /// VIP addresses routed into the tunnel so far.
    let routed = Mutex<Set<IPAddress>>([])
    let interfaceIndex: Int32

    /// Routes the VIP addresses of `checks` into the tunnel (new VIPs after a reload).
    func ensureRoutes(for checks: [HealthCheckConfig]) {
        let wanted = Set(checks.flatMap { [$0.vipIPv4, $0.vipIPv6].compactMap { $0 } })
        let missing = routed.withLock { wanted.subtracting($0) }
        for vip in missing {
            do {
                try routing.replaceRoute(
                    destination: vip.networkBytes, prefixLength: vip.isIPv6 ? 128 : 32, interfaceIndex: interfaceIndex,
                    table: Self.table)
                _ = routed.withLock { $0.insert(vip) }
            } catch {
                // Probes to this VIP fail and say so (no route): retried next round.
            }
        }
    }

    /// A local port for one probe to `backend`, until `release`.
    func lease(backend: IPAddress, ipv6: Bool) throws(ProbeFailure) -> Lease {
        let port: UInt16? = leases.withLock { state in
            for _ in 0..<Self.ports.count {
                let p = state.next
                state.next = p + 1 >= Self.ports.upperBound ? Self.ports.lowerBound : p + 1
                if !state.inUse.contains(p) {
                    state.backends[p] = backend
                    state.inUse.insert(p)
                    return p
                }
            }
            return nil
        }
        guard let port else { throw ProbeFailure("no free local port for a GRE probe") }
        return Lease(port: port)
    }

    func release(_ lease: Lease) {
        _ = leases.withLock { $0.inUse.remove(lease.port) }
    }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        thread?.join()
        thread = nil
        for v6 in [false, true] where (v6 ? source6 : source4) != nil {
            routing.deleteRule(ipv6: v6, mark: Self.mark, table: Self.table, priority: Self.rulePriority)
        }
    }

    /// Reads probe packets from the TUN device and sends each GRE-wrapped to its backend.
    func loop() {
        var buffer = [UInt8](repeating: 0, count: 65536 + 64)
        let headroom = 64
        while !stopping.load(ordering: .relaxed) {
            var p = pollfd(fd: tunFD, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 200) <= 0 { continue }
            let n = buffer.withUnsafeMutableBytes { read(tunFD, $0.baseAddress! + headroom, $0.count - headroom) }
            guard n > 0 else { continue }
            buffer.withUnsafeMutableBytes { raw in
                let inner = UnsafeMutableRawBufferPointer(rebasing: raw[headroom..<(headroom + n)])
                guard let port = Self.sourcePort(inner),
                    let backend = leases.withLock({ $0.backends[port] })
                else {
                    unmatched.add(1, ordering: .relaxed)
                    return
                }
                guard let frame = encapsulate(raw, innerStart: headroom, innerLength: n, backend: backend) else { return }
                let ok =
                    backend.isIPv6
                    ? (try? raw6.send(UnsafeRawBufferPointer(frame))) != nil
                    : (try? raw4.send(UnsafeRawBufferPointer(frame))) != nil
                if ok { sent.add(1, ordering: .relaxed) }
            }
        }
    }

    /// The TCP source port of an IPv4 or IPv6 packet, or nil.
    static func sourcePort(_ p: UnsafeMutableRawBufferPointer) -> UInt16? {
        guard p.count >= 20 else { return nil }
        let version = p[0] >> 4
        var offset: Int
        if version == 4 {
            guard p[9] == 6 else { return nil }
            offset = Int(p[0] & 0x0F) * 4
        } else if version == 6 {
            guard p.count >= 44, p[6] == 6 else { return nil }
            offset = 40
        } else {
            return nil
        }
        guard p.count >= offset + 2 else { return nil }
        return UInt16(p[offset]) << 8 | UInt16(p[offset + 1])
    }

    /// Writes the outer IP and GRE headers in front of the inner packet (in the headroom), as
    /// the data plane does, and returns the whole outer packet.
    func encapsulate(_ raw: UnsafeMutableRawBufferPointer, innerStart: Int, innerLength: Int, backend: IPAddress)
        -> UnsafeMutableRawBufferPointer?
    {
        guard let source = backend.isIPv6 ? source6 : source4 else { return nil }
        let start = GREEncapsulator.encapsulate(
            raw.baseAddress!, innerStart: innerStart, innerLength: innerLength, innerIPv6: raw[innerStart] >> 4 == 6,
            source: source, destination: backend)
        return UnsafeMutableRawBufferPointer(rebasing: raw[start..<(innerStart + innerLength)])
    }
}

/// The GRE probe tunnel of the current config: opened when the first gre- check appears (at
/// start or with a reload), opened again when the encapsulation sources change, closed at the
/// end. A failure to open is kept (and retried every 10 s) so probes can say why they fail.
final class GREProbeTunnelHolder: Sendable {
    struct State {
        var tunnel: GREProbeTunnel?
        var problem: String?
        var failedAtMs: UInt64 = 0
    }
    let state = Mutex<State>(State())
    let logger: Logger

    init(logger: Logger) { self.logger = logger }

    /// The tunnel for these sources, or why there is none.
    var current: (GREProbeTunnel?, String?) { state.withLock { ($0.tunnel, $0.problem) } }

    /// Makes the tunnel match `source4` / `source6` when gre- checks are `needed`.
    func update(needed: Bool, source4: IPAddress?, source6: IPAddress?, nowMs: UInt64) {
        let (tunnel, failedAt) = state.withLock { ($0.tunnel, $0.failedAtMs) }
        if let tunnel, needed, tunnel.source4 == source4, tunnel.source6 == source6 { return }
        if let tunnel {
            tunnel.stop()
            state.withLock { $0.tunnel = nil }
        }
        guard needed else { return }
        if failedAt != 0 && nowMs < failedAt + 10_000 { return }
        do {
            let t = try GREProbeTunnel(source4: source4, source6: source6)
            state.withLock { $0 = State(tunnel: t, problem: nil, failedAtMs: 0) }
            logger.info("GRE probe tunnel open", metadata: ["device": .string(t.deviceName)])
        } catch {
            state.withLock { $0 = State(tunnel: nil, problem: error.message, failedAtMs: max(nowMs, 1)) }
            logger.error("GRE health probes cannot run: their backends will be reported down", metadata: ["error": .string(error.message)])
        }
    }

    func stop() {
        state.withLock { $0.tunnel }?.stop()
        state.withLock { $0.tunnel = nil }
    }
}
