#if canImport(MaglevCore)
    public import MaglevCore  // Tools/fuzz bgp compiles the core into the same module
#endif

/// What one session needs to know about us and the peer.
public struct BGPSessionConfig: Sendable, Equatable {
    public var localAS: UInt32
    public var remoteAS: UInt32
    /// Our BGP Identifier, host order.
    public var routerID: UInt32
    /// The hold time we propose, seconds: 0 (no keepalives) or at least 3.
    public var holdTime: UInt16
    /// Wait for the peer to connect instead of connecting.
    public var passive: Bool
    /// Next hop self for IPv4 routes (NEXT_HOP) and IPv6 routes (MP_REACH_NLRI); routes of a
    /// family without one are not announced (and logged).
    public var nextHopIPv4: IPAddress?
    public var nextHopIPv6: IPAddress?
    /// Offer IPv6 unicast (RFC 4760) in our OPEN; IPv4 unicast is always offered.
    public var offerIPv6: Bool
    /// Reconnect delays: `connectRetryMinMs` after the first failure, doubling up to
    /// `connectRetryMaxMs`; back to the minimum once a session is established.
    public var connectRetryMinMs: UInt64
    public var connectRetryMaxMs: UInt64
    /// Each delay is shortened by up to this share, drawn from a generator seeded with
    /// `jitterSeed` (deterministic; 0 percent for exact delays), so that forwarders restarted
    /// together do not reconnect in lockstep.
    public var retryJitterPercent: UInt64
    public var jitterSeed: UInt64
    /// How long a TCP connect may take before it is abandoned (and retried after the backoff).
    public var connectTimeoutMs: UInt64
    /// The hold timer while waiting for the peer's OPEN (RFC 4271 §8 suggests 4 minutes).
    public var openHoldMs: UInt64

    public init(
        localAS: UInt32, remoteAS: UInt32, routerID: UInt32, holdTime: UInt16 = 90, passive: Bool = false,
        nextHopIPv4: IPAddress? = nil, nextHopIPv6: IPAddress? = nil, offerIPv6: Bool = true,
        connectRetryMinMs: UInt64 = 1_000, connectRetryMaxMs: UInt64 = 30_000, retryJitterPercent: UInt64 = 25,
        jitterSeed: UInt64 = 0, connectTimeoutMs: UInt64 = 10_000, openHoldMs: UInt64 = 240_000
    ) {
        self.localAS = localAS
        self.remoteAS = remoteAS
        self.routerID = routerID
        self.holdTime = holdTime
        self.passive = passive
        self.nextHopIPv4 = nextHopIPv4
        self.nextHopIPv6 = nextHopIPv6
        self.offerIPv6 = offerIPv6
        self.connectRetryMinMs = connectRetryMinMs
        self.connectRetryMaxMs = connectRetryMaxMs
        self.retryJitterPercent = min(retryJitterPercent, 100)
        self.jitterSeed = jitterSeed
        self.connectTimeoutMs = connectTimeoutMs
        self.openHoldMs = openHoldMs
    }

    /// Whether the peer is in our AS.
    public var isIBGP: Bool { localAS == remoteAS }

    /// The OPEN we send: version 4, AS (AS_TRANS in the 2-octet field above 65535), hold time,
    /// identifier, and the capabilities multiprotocol IPv4 unicast, IPv6 unicast (when
    /// `offerIPv6`), route refresh and 4-octet AS.
    public var open: BGPOpen {
        var caps: [BGPCapability] = [.multiprotocol(afi: BGP.afiIPv4, safi: BGP.safiUnicast)]
        if offerIPv6 { caps.append(.multiprotocol(afi: BGP.afiIPv6, safi: BGP.safiUnicast)) }
        caps += [.routeRefresh, .fourOctetAS(localAS)]
        return BGPOpen(myAS: localAS, holdTime: holdTime, routerID: routerID, capabilities: caps)
    }
}

/// The states of RFC 4271 §8.2.2.
public enum BGPState: String, Sendable {
    case idle = "Idle"
    case connect = "Connect"
    case active = "Active"
    case openSent = "OpenSent"
    case openConfirm = "OpenConfirm"
    case established = "Established"
}

/// What the driver tells the session.
public enum BGPEvent: Sendable, Equatable {
    /// Administrative start: connect now (or, passive, wait for the peer).
    case start
    /// Administrative stop: Cease / Administrative Shutdown (with the message, RFC 9003) if a
    /// connection is up, close it, and stay idle until `start`.
    case stop(message: String?)
    /// The connection the session asked for (`.connect`), or one the driver accepted while
    /// `acceptsIncomingConnection`, is up.
    case tcpConnected
    /// The connect attempt failed (refused, unreachable, ...).
    case tcpFailed(String)
    /// The connection closed or broke (EOF, reset, write error).
    case tcpClosed(String)
    /// Bytes read from the connection: the session frames and decodes them itself.
    case bytesReceived([UInt8])
    /// A message decoded by the driver (instead of `bytesReceived`).
    case messageReceived(BGPMessage)
    /// A decode error found by the driver (instead of `bytesReceived`).
    case decodeError(BGPDecodeError)
    /// Time passed: `nowMs` reached `nextDeadlineMs`. Extra calls are harmless.
    case timer
}

/// What the session asks of the driver, in order.
public enum BGPAction: Sendable, Equatable {
    /// Open a TCP connection to the peer; answer with `tcpConnected` or `tcpFailed`.
    case connect
    /// Write the message (`encode()`). Several in a row may be written at once.
    case send(BGPMessage)
    /// Close the connection after writing what was sent before (or abandon the connect).
    case closeConnection
    /// A line for the log, saying why.
    case log(String)
    /// The session reached Established.
    case established
    /// The session left Established, with the reason.
    case down(String)
}

/// An announce-only BGP session (RFC 4271 §8, reduced): pure, with time passed in.
///
/// Rules:
/// 1. `start` connects (`.connect`), or in passive mode waits in Active for the driver to hand
///    over an accepted connection. On `tcpConnected` the session sends its OPEN (OpenSent).
/// 2. The peer's OPEN must carry the configured remote AS (the 4-octet capability wins over
///    the 2-octet field) else 2/2, a nonzero identifier different from ours on iBGP else 2/3,
///    a hold time of 0 or at least 3 else 2/6. Accepted: KEEPALIVE back (OpenConfirm); the
///    hold time is the smaller of both (0: no keepalives, no hold timer); 4-octet AS numbers
///    when the peer has the capability; IPv4 unicast when the peer offers it (or offers no
///    family at all), IPv6 unicast when both offer it.
/// 3. The peer's KEEPALIVE in OpenConfirm establishes the session (`.established`); every
///    desired route of a negotiated family is announced.
/// 4. KEEPALIVE every hold/3 from OpenConfirm on; the hold timer restarts on every message
///    the peer sends; it expiring sends 4/0 and closes.
/// 5. A message not expected in a state gets 5/1 (OpenSent), 5/2 (OpenConfirm), 5/3
///    (Established); a decode error gets its NOTIFICATION; a NOTIFICATION from the peer closes.
///    UPDATEs from the peer are only counted; ROUTE-REFRESH re-sends that family's routes.
/// 6. Whatever ends a connection leaves the session Idle (`.down` if it was Established) and,
///    unless stopped, retries after 1, 2, 4, ... up to 30 s (config); a passive session goes
///    back to Active at once.
/// 7. `setRoutes` replaces the desired set; in Established only the difference goes out
///    (withdrawals first, then announcements, sorted). A new session starts from nothing
///    advertised, so everything is announced again.
public struct BGPSession: Sendable {
    public struct Counters: Sendable, Equatable {
        public var messagesSent: UInt64 = 0
        public var messagesReceived: UInt64 = 0
        public var updatesSent: UInt64 = 0
        public var updatesReceived: UInt64 = 0
        public var notificationsSent: UInt64 = 0
        public var notificationsReceived: UInt64 = 0
        /// How many times the session reached Established.
        public var establishedCount: UInt64 = 0
    }

    public let config: BGPSessionConfig
    public private(set) var state: BGPState = .idle
    /// Between `start` and `stop`.
    public private(set) var enabled = false
    public private(set) var counters = Counters()
    /// The peer's OPEN on the current (or last) connection.
    public private(set) var peerOpen: BGPOpen?
    /// The hold time in force, seconds (from OpenConfirm on).
    public private(set) var negotiatedHoldTime: UInt16 = 0
    /// Whether AS numbers are 4 octets on this connection (both sides have the capability).
    public private(set) var fourOctetAS = false
    /// The families negotiated on this connection.
    public private(set) var ipv4Unicast = false
    public private(set) var ipv6Unicast = false
    /// What the driver wants announced.
    public private(set) var desiredRoutes: Set<BGPPrefix> = []
    /// What the peer has from us on this session (empty unless Established).
    public private(set) var advertisedRoutes: Set<BGPPrefix> = []
    /// Why the last connection ended.
    public private(set) var lastError: String?

    private var framer = BGPFramer()
    private var failures = 0
    private var retryAtMs: UInt64?
    private var connectDeadlineMs: UInt64?
    private var holdDeadlineMs: UInt64?
    private var keepaliveDueMs: UInt64?
    private var jitterState: UInt64
    private var lastSkippedNote = ""

    public init(config: BGPSessionConfig) {
        self.config = config
        self.jitterState = config.jitterSeed
    }

    /// When the driver must deliver `.timer` next (nil: nothing scheduled).
    public var nextDeadlineMs: UInt64? {
        [retryAtMs, connectDeadlineMs, holdDeadlineMs, keepaliveDueMs].compactMap { $0 }.min()
    }

    /// Whether an incoming connection from the peer should be handed to this session.
    public var acceptsIncomingConnection: Bool { state == .active }

    public var isEstablished: Bool { state == .established }

    private var connected: Bool { state == .openSent || state == .openConfirm || state == .established }

    // MARK: Events

    public mutating func handle(_ event: BGPEvent, nowMs: UInt64) -> [BGPAction] {
        switch event {
        case .start:
            guard !enabled else { return [] }
            enabled = true
            failures = 0
            return begin(nowMs)
        case .stop(let message):
            guard enabled else { return [] }
            enabled = false
            retryAtMs = nil
            switch state {
            case .openSent, .openConfirm, .established:
                let cease = BGPNotification.cease(subcode: 2, message: message)
                return [send(.notification(cease)), .closeConnection] + connectionEnded("administrative stop", nowMs)
            case .connect:
                return [.closeConnection] + connectionEnded("administrative stop", nowMs)
            case .active, .idle:
                state = .idle
                return [.log("stopped")]
            }
        case .tcpConnected:
            switch state {
            case .connect, .active:
                let how = state == .connect ? "connected" : "peer connected"
                state = .openSent
                connectDeadlineMs = nil
                holdDeadlineMs = nowMs + config.openHoldMs
                framer = BGPFramer()
                return [.log("\(how); sending OPEN (\(config.open))"), send(.open(config.open))]
            case .idle:
                return [.log("connection reported while Idle: closing it"), .closeConnection]
            case .openSent, .openConfirm, .established:
                return [.log("a second connection reported in \(state.rawValue): ignored")]
            }
        case .tcpFailed(let reason):
            guard state == .connect else { return [] }
            return connectionEnded("connect failed: \(reason)", nowMs)
        case .tcpClosed(let reason):
            guard connected else { return [] }
            return connectionEnded("connection closed: \(reason)", nowMs)
        case .bytesReceived(let bytes):
            guard connected else { return [] }
            framer.append(bytes)
            var actions: [BGPAction] = []
            while connected, let result = framer.next(fourOctetAS: fourOctetAS) {
                switch result {
                case .success(let m): actions += receive(m, nowMs)
                case .failure(let e): actions += decodeFailed(e, nowMs)
                }
            }
            return actions
        case .messageReceived(let m):
            guard connected else { return [] }
            return receive(m, nowMs)
        case .decodeError(let e):
            guard connected else { return [] }
            return decodeFailed(e, nowMs)
        case .timer:
            return timers(nowMs)
        }
    }

    /// Replaces the set of routes to announce. In Established, returns the UPDATEs that move
    /// the peer from what it has to this set; otherwise nothing (they go out once established).
    public mutating func setRoutes(_ routes: some Sequence<BGPPrefix>) -> [BGPAction] {
        desiredRoutes = Set(routes)
        guard state == .established else { return [] }
        return synchronizeRoutes()
    }

    // MARK: Internals

    private mutating func send(_ m: BGPMessage) -> BGPAction {
        counters.messagesSent += 1
        if case .update = m { counters.updatesSent += 1 }
        if case .notification = m { counters.notificationsSent += 1 }
        return .send(m)
    }

    private mutating func begin(_ nowMs: UInt64) -> [BGPAction] {
        retryAtMs = nil
        if config.passive {
            state = .active
            return [.log("waiting for the peer to connect (passive)")]
        }
        state = .connect
        connectDeadlineMs = nowMs + config.connectTimeoutMs
        return [.connect]
    }

    /// The connection is gone (or never came): back to Idle, and a retry unless stopped.
    private mutating func connectionEnded(_ reason: String, _ nowMs: UInt64) -> [BGPAction] {
        let wasEstablished = state == .established
        state = .idle
        connectDeadlineMs = nil
        holdDeadlineMs = nil
        keepaliveDueMs = nil
        advertisedRoutes = []
        fourOctetAS = false
        ipv4Unicast = false
        ipv6Unicast = false
        framer = BGPFramer()
        lastError = reason
        lastSkippedNote = ""
        var actions: [BGPAction] = [.log(wasEstablished ? "session down: \(reason)" : reason)]
        if wasEstablished { actions.append(.down(reason)) }
        guard enabled else { return actions }
        if config.passive {
            return actions + begin(nowMs)
        }
        let delay = retryDelayMs()
        failures += 1
        retryAtMs = nowMs + delay
        actions.append(.log("retrying in \(delay) ms"))
        return actions
    }

    /// The delay before the next connect: min << failures, capped, less the jitter.
    private mutating func retryDelayMs() -> UInt64 {
        let shift = UInt64(min(failures, 32))
        let full = config.connectRetryMinMs.multipliedReportingOverflow(by: 1 << shift)
        let base = full.overflow ? config.connectRetryMaxMs : min(full.partialValue, config.connectRetryMaxMs)
        guard config.retryJitterPercent > 0, base > 0 else { return base }
        // SplitMix64 step: deterministic per seed.
        jitterState &+= 0x9E37_79B9_7F4A_7C15
        var z = jitterState
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        let span = base / 100 * config.retryJitterPercent + base % 100 * config.retryJitterPercent / 100
        return base - z % (span + 1)
    }

    private mutating func closeWith(_ n: BGPNotification, _ reason: String, _ nowMs: UInt64) -> [BGPAction] {
        [send(.notification(n)), .closeConnection] + connectionEnded("\(reason); sent NOTIFICATION \(n)", nowMs)
    }

    private mutating func decodeFailed(_ e: BGPDecodeError, _ nowMs: UInt64) -> [BGPAction] {
        closeWith(e.notification, "bad message from the peer: \(e.reason)", nowMs)
    }

    private mutating func receive(_ m: BGPMessage, _ nowMs: UInt64) -> [BGPAction] {
        counters.messagesReceived += 1
        if case .notification(let n) = m {
            counters.notificationsReceived += 1
            return [.closeConnection] + connectionEnded("peer sent NOTIFICATION \(n)", nowMs)
        }
        switch (state, m) {
        case (.openSent, .open(let o)):
            return peerOpened(o, nowMs)
        case (.openConfirm, .keepalive):
            state = .established
            failures = 0
            counters.establishedCount += 1
            restartHoldTimer(nowMs)
            let families = [ipv4Unicast ? "IPv4" : nil, ipv6Unicast ? "IPv6" : nil].compactMap { $0 }.joined(separator: " ")
            return [
                .log(
                    "session established: hold time \(negotiatedHoldTime) s, \(fourOctetAS ? "4" : "2")-octet AS, unicast \(families.isEmpty ? "none" : families)"
                ),
                .established,
            ] + synchronizeRoutes()
        case (.established, .keepalive):
            restartHoldTimer(nowMs)
            return []
        case (.established, .update):
            counters.updatesReceived += 1
            restartHoldTimer(nowMs)
            return []
        case (.established, .routeRefresh(let afi, let safi)):
            restartHoldTimer(nowMs)
            let family = advertisedRoutes.filter { $0.afi == afi }.sorted()
            guard safi == BGP.safiUnicast, afi == BGP.afiIPv4 ? ipv4Unicast : afi == BGP.afiIPv6 && ipv6Unicast else {
                return [.log("ROUTE-REFRESH for \(BGP.familyName(afi: afi, safi: safi)), not negotiated: ignored")]
            }
            return [.log("ROUTE-REFRESH for \(BGP.familyName(afi: afi, safi: safi)): sending \(family.count) routes again")]
                + announce(family)
        default:
            let subcode: UInt8 = state == .openSent ? 1 : state == .openConfirm ? 2 : 3
            return closeWith(
                BGPNotification(code: BGPNotification.fsmError, subcode: subcode), "unexpected \(m.name) in \(state.rawValue)",
                nowMs)
        }
    }

    private mutating func peerOpened(_ o: BGPOpen, _ nowMs: UInt64) -> [BGPAction] {
        peerOpen = o
        let error: (UInt8, [UInt8], String)? =
            if o.version != 4 {
                (1, [0, 4], "peer speaks BGP version \(o.version)")
            } else if o.myAS != config.remoteAS {
                (2, [], "peer is AS \(o.myAS), configured remote AS is \(config.remoteAS)")
            } else if o.routerID == 0 || (config.isIBGP && o.routerID == config.routerID) {
                (3, [], "peer's BGP Identifier \(BGP.dottedQuad(o.routerID)) is \(o.routerID == 0 ? "zero" : "ours")")
            } else if o.holdTime == 1 || o.holdTime == 2 {
                (6, [], "peer proposes hold time \(o.holdTime) s")
            } else {
                nil
            }
        if let (subcode, data, reason) = error {
            return closeWith(BGPNotification(code: BGPNotification.openMessageError, subcode: subcode, data: data), reason, nowMs)
        }
        negotiatedHoldTime = min(config.holdTime, o.holdTime)
        fourOctetAS = o.fourOctetASCapability != nil
        ipv4Unicast = o.supports(afi: BGP.afiIPv4, safi: BGP.safiUnicast)
        ipv6Unicast = config.offerIPv6 && o.supports(afi: BGP.afiIPv6, safi: BGP.safiUnicast)
        state = .openConfirm
        restartHoldTimer(nowMs)
        keepaliveDueMs = negotiatedHoldTime == 0 ? nil : nowMs + keepaliveIntervalMs
        return [.log("OPEN from the peer: \(o)"), send(.keepalive)]
    }

    private var keepaliveIntervalMs: UInt64 { max(UInt64(negotiatedHoldTime) * 1000 / 3, 1) }

    private mutating func restartHoldTimer(_ nowMs: UInt64) {
        holdDeadlineMs = negotiatedHoldTime == 0 ? nil : nowMs + UInt64(negotiatedHoldTime) * 1000
    }

    private mutating func timers(_ nowMs: UInt64) -> [BGPAction] {
        if let t = retryAtMs, nowMs >= t {
            retryAtMs = nil
            if enabled && state == .idle { return begin(nowMs) }
        }
        if let t = connectDeadlineMs, nowMs >= t, state == .connect {
            return [.closeConnection] + connectionEnded("connect timed out after \(config.connectTimeoutMs) ms", nowMs)
        }
        if let t = holdDeadlineMs, nowMs >= t, connected {
            return closeWith(.holdTimerExpiry, "hold timer expired in \(state.rawValue)", nowMs)
        }
        if let t = keepaliveDueMs, nowMs >= t, state == .openConfirm || state == .established {
            keepaliveDueMs = nowMs + keepaliveIntervalMs
            return [send(.keepalive)]
        }
        return []
    }

    private func canAnnounce(_ p: BGPPrefix) -> Bool {
        p.isIPv6 ? ipv6Unicast && config.nextHopIPv6 != nil : ipv4Unicast && config.nextHopIPv4 != nil
    }

    private mutating func announce(_ prefixes: [BGPPrefix]) -> [BGPAction] {
        BGPUpdate.announce(
            prefixes: prefixes, localAS: config.localAS, nextHopIPv4: config.nextHopIPv4, nextHopIPv6: config.nextHopIPv6,
            fourOctetAS: fourOctetAS, ibgp: config.isIBGP
        ).map { send(.update($0)) }
    }

    /// Sends what moves the peer from `advertisedRoutes` to the announceable part of
    /// `desiredRoutes`.
    private mutating func synchronizeRoutes() -> [BGPAction] {
        let eligible = desiredRoutes.filter(canAnnounce)
        let added = eligible.subtracting(advertisedRoutes).sorted()
        let removed = advertisedRoutes.subtracting(eligible).sorted()
        var actions: [BGPAction] = []
        let skipped = desiredRoutes.subtracting(eligible).sorted()
        let note =
            skipped.isEmpty
            ? "" : "\(skipped.count) routes not announced (family not negotiated or no next hop for it): \(BGP.list(skipped))"
        if note != lastSkippedNote {
            lastSkippedNote = note
            if !note.isEmpty { actions.append(.log(note)) }
        }
        guard !added.isEmpty || !removed.isEmpty else { return actions }
        actions.append(.log("announcing \(added.count) routes, withdrawing \(removed.count)"))
        actions += BGPUpdate.withdraw(prefixes: removed).map { send(.update($0)) }
        actions += announce(added)
        advertisedRoutes = eligible
        return actions
    }
}
