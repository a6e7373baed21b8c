import Logging
import MaglevConfig
import MaglevControl
import MaglevCore
import MaglevLinux
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The announce-only BGP speaker (one more service): one session per configured peer, each a
/// pure `BGPSession` driven over swift-nio. Every ~100 ms each session's desired routes are set
/// to the control plane's `announcedVIPs()` (usable single-address VIPs while the workers make
/// progress), so only changes go out as UPDATEs. Next hop self: this forwarder's encapsulation
/// source of the route's family.
///
/// Graceful stop (it is the last service started, so the first stopped): every route is
/// withdrawn, forwarding goes on for `drainSeconds` while the routers move traffic to the other
/// forwarders, then each session ends with a Cease (administrative shutdown).
struct BGPSpeakerService: Service {
    let config: BGPConfig
    let control: ControlPlane
    let group: any EventLoopGroup
    let logger: Logger
    let drainSeconds: Double
    /// How long a TCP connect may take (tests whose process is busy raise it).
    var connectTimeoutMs: UInt64 = 10_000

    func run() async throws {
        var speaker = Speaker(service: self)
        await speaker.reconcile(to: config)
        // Until the group stops: a reload's bgp section is applied as it comes (every 200 ms).
        while !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: .milliseconds(200))
            let wanted = await control.bgpConfig()
            if wanted != speaker.current { await speaker.reconcile(to: wanted) }
        }
        // Then withdraw, drain, and close.
        await control.beginStop()
        logger.notice(
            "withdrawing every VIP route; forwarding goes on while the routers move traffic away",
            metadata: ["drain_seconds": .stringConvertible(drainSeconds)])
        let deadline = MonotonicClock.now() + 2_000_000_000
        while speaker.drivers.contains(where: { $0.driver.advertisedCount > 0 }) && MonotonicClock.now() < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if drainSeconds > 0 { try? await Task.sleep(for: .milliseconds(Int64(drainSeconds * 1000))) }
        await speaker.stopAll()
        logger.info("BGP sessions closed")
    }

    /// The running sessions and listeners, brought to a config: sessions of peers that left or
    /// changed end (Cease) and new ones start; a new `local_as` or `router_id` restarts them all;
    /// no section ends them all.
    struct Speaker {
        let service: BGPSpeakerService
        var current: BGPConfig?
        var drivers: [(driver: BGPPeerDriver, task: Task<Void, Never>)] = []
        var listeners: [any Channel] = []

        init(service: BGPSpeakerService) { self.service = service }

        mutating func reconcile(to wanted: BGPConfig?) async {
            let logger = service.logger
            let restartAll =
                wanted == nil || current == nil || wanted!.localAS != current!.localAS
                || wanted!.routerID != current!.routerID
            let keep = restartAll ? [] : drivers.filter { d in wanted!.peers.contains(d.driver.peer) }
            let leaving = drivers.filter { d in !keep.contains { $0.driver === d.driver } }
            if current != nil && wanted != current {
                logger.notice(
                    "BGP configuration changed: applying it",
                    metadata: [
                        "sessions_ending": .string(leaving.map { $0.driver.peer.address.description }.joined(separator: ",")),
                        "peers": .string(wanted?.peers.map { $0.address.description }.joined(separator: ",") ?? "none"),
                    ])
            }
            for d in leaving { d.driver.stop() }
            for d in leaving {
                await d.task.value
                await service.control.forget(peer: d.driver.peer.address.description)
            }
            drivers = keep
            current = wanted
            guard let wanted else {
                closeListeners()
                return
            }
            let (source4, source6) = await service.control.encapSources()
            for (i, peer) in wanted.peers.enumerated() where !drivers.contains(where: { $0.driver.peer == peer }) {
                let driver = BGPPeerDriver(
                    peer: peer,
                    session: BGPSessionConfig(
                        localAS: wanted.localAS, remoteAS: peer.remoteAS, routerID: wanted.routerID.ipv4Value,
                        holdTime: peer.holdTime, passive: peer.passive, nextHopIPv4: source4, nextHopIPv6: source6,
                        offerIPv6: source6 != nil, jitterSeed: UInt64(wanted.routerID.ipv4Value) &+ UInt64(i),
                        connectTimeoutMs: service.connectTimeoutMs),
                    control: service.control, group: service.group, logger: logger)
                drivers.append((driver, Task { await driver.run() }))
            }
            // Passive peers connect to us: one listener per port, handing each connection to
            // the driver of its remote address (others are closed at once). Bound anew for the
            // drivers now running.
            closeListeners()
            let passive = drivers.map(\.driver).filter(\.peer.passive)
            for port in Set(passive.map(\.peer.port)).sorted() {
                do {
                    listeners.append(
                        try await BGPSpeakerService.listen(
                            port: port, drivers: passive.filter { $0.peer.port == port }, group: service.group,
                            logger: logger))
                } catch {
                    logger.error(
                        "cannot listen for passive BGP peers",
                        metadata: ["port": .stringConvertible(port), "error": .string("\(error)")])
                }
            }
        }

        mutating func closeListeners() {
            for l in listeners { l.close(promise: nil) }
            listeners = []
        }

        /// Ends every session (Cease) and waits for them.
        mutating func stopAll() async {
            closeListeners()
            for d in drivers { d.driver.stop() }
            for d in drivers { await d.task.value }
            drivers = []
        }
    }
}

extension BGPSpeakerService {
    /// Listens on `port` (all addresses, IPv6 and IPv4) for the passive peers' connections.
    static func listen(port: UInt16, drivers: [BGPPeerDriver], group: any EventLoopGroup, logger: Logger) async throws
        -> any Channel
    {
        try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { child in
                let remote = child.remoteAddress?.ipAddress.flatMap { IPAddress($0) }
                guard let driver = drivers.first(where: { remote != nil && $0.peer.address.unmapped == remote!.unmapped }) else {
                    logger.warning(
                        "BGP connection from an address that is no passive peer: closed",
                        metadata: ["remote": .string(child.remoteAddress?.description ?? "?")])
                    return child.close()
                }
                return child.eventLoop.makeCompletedFuture {
                    let channel = try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: child)
                    driver.accept(channel)
                }
            }
            .bind(host: "::", port: Int(port)).get()
    }
}

extension IPAddress {
    /// An IPv4-mapped IPv6 address (::ffff:a.b.c.d, as a dual-stack listener sees IPv4 peers)
    /// as the IPv4 address.
    var unmapped: IPAddress {
        guard isIPv6, high == 0, low >> 32 == 0xFFFF else { return self }
        return IPAddress(ipv4: UInt32(truncatingIfNeeded: low))
    }
}

/// One peer's session and its connection. Events (connection results, bytes, ticks, stop)
/// arrive on one stream and are handled one at a time by `run`.
final class BGPPeerDriver: Sendable {
    enum Event: Sendable {
        case connected(any Channel, NIOAsyncChannelOutboundWriter<ByteBuffer>, generation: Int)
        case failed(String, generation: Int)
        case bytes([UInt8], generation: Int)
        case closed(String, generation: Int)
        case tick
        case stop
    }

    let peer: BGPPeerConfig
    let sessionConfig: BGPSessionConfig
    let control: ControlPlane
    let group: any EventLoopGroup
    let logger: Logger
    let events: AsyncStream<Event>
    let sink: AsyncStream<Event>.Continuation
    let advertised = Atomic<Int>(0)
    /// Accepted (passive) connections get negative generations: -1, -2, ...
    let acceptedGeneration = Atomic<Int>(0)

    var advertisedCount: Int { advertised.load(ordering: .relaxed) }

    init(peer: BGPPeerConfig, session: BGPSessionConfig, control: ControlPlane, group: any EventLoopGroup, logger: Logger) {
        self.peer = peer
        self.sessionConfig = session
        self.control = control
        self.group = group
        var l = logger
        l[metadataKey: "peer"] = .string(peer.address.description)
        self.logger = l
        (events, sink) = AsyncStream.makeStream(of: Event.self)
    }

    func stop() { sink.yield(.stop) }

    static func nowMs() -> UInt64 { MonotonicClock.now() / 1_000_000 }

    func run() async {
        var session = BGPSession(config: sessionConfig)
        var channel: (any Channel)?
        var writer: NIOAsyncChannelOutboundWriter<ByteBuffer>?
        var generation = 0
        var stopping = false
        let ticker = Task { [sink] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
                sink.yield(.tick)
            }
        }
        defer { ticker.cancel() }
        var lastReported: BGPPeerStatus?
        var lastError: String?
        var sinceMs: UInt64 = 0

        func perform(_ actions: [BGPAction]) async {
            for action in actions {
                switch action {
                case .connect:
                    generation += 1
                    connect(generation: generation)
                case .send(let message):
                    guard let w = writer else { continue }
                    do {
                        try await w.write(ByteBuffer(bytes: message.encode()))
                    } catch {
                        logger.debug("BGP write failed", metadata: ["error": .string("\(error)")])
                    }
                case .closeConnection:
                    writer?.finish()
                    channel?.close(promise: nil)
                    writer = nil
                    channel = nil
                    generation += 1  // events of the old connection are stale now
                case .log(let line):
                    logger.info("BGP: \(line)")
                case .established:
                    lastError = nil
                    sinceMs = Self.nowMs()
                    logger.notice(
                        "BGP session established",
                        metadata: ["remote_as": .stringConvertible(peer.remoteAS), "hold_time": .stringConvertible(session.negotiatedHoldTime)])
                case .down(let reason):
                    lastError = reason
                    sinceMs = Self.nowMs()
                    logger.warning("BGP session down", metadata: ["reason": .string(reason)])
                }
            }
        }

        await perform(session.handle(.start, nowMs: Self.nowMs()))
        for await event in events {
            let now = Self.nowMs()
            switch event {
            case .connected(let ch, let w, let g):
                if g < 0 && session.acceptsIncomingConnection && channel == nil {
                    generation = g  // a passive peer's connection, taken while the session waits
                }
                guard g == generation else {
                    w.finish()
                    ch.close(promise: nil)
                    continue
                }
                channel = ch
                writer = w
                await perform(session.handle(.tcpConnected, nowMs: now))
            case .failed(let reason, let g):
                guard g == generation else { continue }
                await perform(session.handle(.tcpFailed(reason), nowMs: now))
            case .bytes(let bytes, let g):
                guard g == generation else { continue }
                await perform(session.handle(.bytesReceived(bytes), nowMs: now))
            case .closed(let reason, let g):
                guard g == generation else { continue }
                writer = nil
                channel = nil
                await perform(session.handle(.tcpClosed(reason), nowMs: now))
            case .tick:
                if let deadline = session.nextDeadlineMs, now >= deadline {
                    await perform(session.handle(.timer, nowMs: now))
                }
                let routes = await control.announcedVIPs().map { BGPPrefix(host: $0) }
                await perform(session.setRoutes(routes))
            case .stop:
                stopping = true
                await perform(session.handle(.stop(message: "maglev forwarder stopping"), nowMs: now))
            }
            advertised.store(session.advertisedRoutes.count, ordering: .relaxed)
            let status = BGPPeerStatus(
                peer: peer.address.description, remoteAS: peer.remoteAS, state: session.state.rawValue,
                established: session.isEstablished, announced: session.advertisedRoutes.sorted().map(\.description),
                updatesSent: session.counters.updatesSent, lastError: lastError ?? session.lastError, sinceMs: sinceMs)
            if status != lastReported {
                await control.report(status)
                lastReported = status
            }
            if stopping && channel == nil { break }
        }
    }

    /// A connection the passive peer opened: used if the session waits for one (the next
    /// generation), else closed when its `connected` event finds the session busy.
    func accept(_ channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>) {
        let generation = acceptedGeneration.add(1, ordering: .relaxed).newValue
        serve(channel, generation: -generation)
    }

    /// Connects in the background; the result arrives as an event tagged with `generation`.
    func connect(generation: Int) {
        let sink = self.sink
        let peer = self.peer
        let group = self.group
        let timeout = TimeAmount.milliseconds(Int64(sessionConfig.connectTimeoutMs))
        Task {
            let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
            do {
                channel = try await ClientBootstrap(group: group)
                    .connectTimeout(timeout)
                    .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
                    .connect(host: peer.address.description, port: Int(peer.port)) { ch in
                        ch.eventLoop.makeCompletedFuture {
                            try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: ch)
                        }
                    }
            } catch {
                sink.yield(.failed("connect to \(peer.address) port \(peer.port): \(error)", generation: generation))
                return
            }
            self.serve(channel, generation: generation)
        }
    }

    /// Reads the connection until it ends, as events tagged with `generation`.
    func serve(_ channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>, generation: Int) {
        let sink = self.sink
        Task {
            do {
                try await channel.executeThenClose { inbound, outbound in
                    sink.yield(.connected(channel.channel, outbound, generation: generation))
                    for try await buffer in inbound {
                        sink.yield(.bytes(Array(buffer: buffer), generation: generation))
                    }
                    sink.yield(.closed("the peer closed the connection", generation: generation))
                }
            } catch {
                sink.yield(.closed("connection error: \(error)", generation: generation))
            }
        }
    }
}
