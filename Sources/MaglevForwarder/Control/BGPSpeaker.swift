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

    func run() async throws {
        let (source4, source6) = await control.encapSources()
        let drivers = config.peers.enumerated().map { i, peer in
            BGPPeerDriver(
                peer: peer,
                session: BGPSessionConfig(
                    localAS: config.localAS, remoteAS: peer.remoteAS, routerID: config.routerID.ipv4Value,
                    holdTime: peer.holdTime, passive: peer.passive, nextHopIPv4: source4, nextHopIPv6: source6,
                    offerIPv6: source6 != nil, jitterSeed: UInt64(config.routerID.ipv4Value) &+ UInt64(i)),
                control: control, group: group, logger: logger)
        }
        for d in drivers where d.peer.passive {
            logger.warning(
                "passive BGP peers are not supported yet: connecting actively", metadata: ["peer": .string("\(d.peer.address)")])
        }
        await withTaskGroup(of: Void.self) { tasks in
            for d in drivers { tasks.addTask { await d.run() } }
            // Until the group stops: then withdraw, drain, and close.
            try? await gracefulShutdown()
            await control.beginStop()
            logger.notice(
                "withdrawing every VIP route; forwarding goes on while the routers move traffic away",
                metadata: ["drain_seconds": .stringConvertible(drainSeconds)])
            let deadline = MonotonicClock.now() + 2_000_000_000
            while drivers.contains(where: { $0.advertisedCount > 0 }) && MonotonicClock.now() < deadline {
                try? await Task.sleep(for: .milliseconds(20))
            }
            if drainSeconds > 0 { try? await Task.sleep(for: .milliseconds(Int64(drainSeconds * 1000))) }
            for d in drivers { d.stop() }
            await tasks.waitForAll()
        }
        logger.info("BGP sessions closed")
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
                    .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                    .connect(host: peer.address.description, port: Int(peer.port)) { ch in
                        ch.eventLoop.makeCompletedFuture {
                            try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: ch)
                        }
                    }
            } catch {
                sink.yield(.failed("connect to \(peer.address) port \(peer.port): \(error)", generation: generation))
                return
            }
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
