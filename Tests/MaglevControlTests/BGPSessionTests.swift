import MaglevCore
import Testing

@testable import MaglevControl

/// The session state machine with a fake clock (plain milliseconds) and a peer played by the
/// test: every action is checked, the bytes it would have sent decoded back.
@Suite struct BGPSessionTests {
    static let peerAS: UInt32 = 65000

    static func config(holdTime: UInt16 = 9, passive: Bool = false, localAS: UInt32 = 65001, remoteAS: UInt32 = peerAS) -> BGPSessionConfig {
        BGPSessionConfig(
            localAS: localAS, remoteAS: remoteAS, routerID: 0xC612_010B, holdTime: holdTime, passive: passive,
            nextHopIPv4: ip("198.18.1.11"), nextHopIPv6: ip("2001:db8:18:1::11"), retryJitterPercent: 0)
    }

    static func peerOpen(
        as asn: UInt32 = peerAS, holdTime: UInt16 = 90, routerID: UInt32 = 0xC612_0101, ipv6: Bool = true, fourOctet: Bool = true
    ) -> BGPMessage {
        var caps: [BGPCapability] = [.multiprotocol(afi: 1, safi: 1)]
        if ipv6 { caps.append(.multiprotocol(afi: 2, safi: 1)) }
        caps.append(.routeRefresh)
        if fourOctet { caps.append(.fourOctetAS(asn)) }
        return .open(BGPOpen(myAS: asn, holdTime: holdTime, routerID: routerID, capabilities: caps))
    }

    /// The session and a log of everything it did.
    struct Harness {
        var session: BGPSession
        var now: UInt64 = 0

        init(_ config: BGPSessionConfig = BGPSessionTests.config()) { session = BGPSession(config: config) }

        mutating func on(_ event: BGPEvent, at t: UInt64? = nil) -> [BGPAction] {
            if let t { now = t }
            return session.handle(event, nowMs: now)
        }

        /// Sends the peer's message as bytes, the way the driver would.
        mutating func peer(_ m: BGPMessage, at t: UInt64? = nil) -> [BGPAction] { on(.bytesReceived(m.encode()), at: t) }

        /// Start, connect, exchange OPENs and KEEPALIVEs; returns the actions of the last step.
        @discardableResult
        mutating func establish(_ open: BGPMessage = BGPSessionTests.peerOpen()) -> [BGPAction] {
            _ = on(.start)
            _ = on(.tcpConnected)
            _ = peer(open)
            return peer(.keepalive)
        }
    }

    static func sent(_ actions: [BGPAction]) -> [BGPMessage] {
        actions.compactMap { if case .send(let m) = $0 { m } else { nil } }
    }

    static func updates(_ actions: [BGPAction]) -> [BGPUpdate] {
        var out: [BGPUpdate] = []
        for case .update(let u) in sent(actions) { out.append(u) }
        return out
    }

    static func announced(_ actions: [BGPAction]) -> [BGPPrefix] { updates(actions).flatMap(\.announcedPrefixes) }
    static func withdrawn(_ actions: [BGPAction]) -> [BGPPrefix] { updates(actions).flatMap(\.withdrawnPrefixes) }

    static func nonLog(_ actions: [BGPAction]) -> [BGPAction] {
        actions.filter { if case .log = $0 { false } else { true } }
    }

    static func notification(_ actions: [BGPAction]) -> (UInt8, UInt8)? {
        for case .notification(let n) in sent(actions) { return (n.code, n.subcode) }
        return nil
    }

    @Test func fullEstablishment() {
        var h = Harness()
        #expect(h.session.state == .idle && h.session.nextDeadlineMs == nil)
        #expect(h.on(.start) == [.connect])
        #expect(h.session.state == .connect && h.session.nextDeadlineMs == 10_000)
        #expect(h.session.setRoutes([prefix("198.19.0.10/32"), prefix("2001:db8:19::10/128")]) == [])

        let opened = h.on(.tcpConnected, at: 5)
        let ours = BGPOpen(
            myAS: 65001, holdTime: 9, routerID: 0xC612_010B,
            capabilities: [.multiprotocol(afi: 1, safi: 1), .multiprotocol(afi: 2, safi: 1), .routeRefresh, .fourOctetAS(65001)])
        #expect(Self.nonLog(opened) == [.send(.open(ours))])
        #expect(h.session.state == .openSent && h.session.nextDeadlineMs == 5 + 240_000)

        let confirmed = h.peer(Self.peerOpen(), at: 10)
        #expect(Self.nonLog(confirmed) == [.send(.keepalive)])
        #expect(h.session.state == .openConfirm && h.session.negotiatedHoldTime == 9 && h.session.fourOctetAS)
        #expect(h.session.ipv4Unicast && h.session.ipv6Unicast)
        #expect(h.session.nextDeadlineMs == 10 + 3_000)

        let up = h.peer(.keepalive, at: 20)
        let expected = BGPUpdate.announce(
            prefixes: [prefix("198.19.0.10/32"), prefix("2001:db8:19::10/128")], localAS: 65001,
            nextHopIPv4: ip("198.18.1.11"), nextHopIPv6: ip("2001:db8:18:1::11"), fourOctetAS: true, ibgp: false)
        #expect(Self.nonLog(up) == [.established] + expected.map { .send(.update($0)) })
        #expect(h.session.state == .established && h.session.isEstablished)
        #expect(h.session.advertisedRoutes == [prefix("198.19.0.10/32"), prefix("2001:db8:19::10/128")])
        #expect(h.session.counters.establishedCount == 1 && h.session.counters.updatesSent == 2)
        #expect(h.session.counters.messagesSent == 4 && h.session.counters.messagesReceived == 2)
    }

    @Test func keepaliveScheduleAndHoldTimerRestart() {
        var h = Harness()
        h.establish()  // at 0; hold 9 s, keepalive every 3 s
        var keepalivesAt: [UInt64] = []
        // The peer sends a KEEPALIVE every 5 s; the session must stay up for a minute.
        var t: UInt64 = 0
        while t < 60_000 {
            let next = min(h.session.nextDeadlineMs!, (t / 5_000 + 1) * 5_000)
            t = next
            if t % 5_000 == 0 { _ = h.peer(.keepalive, at: t) }
            if h.session.nextDeadlineMs! <= t {
                let a = h.on(.timer, at: t)
                if Self.sent(a) == [.keepalive] { keepalivesAt.append(t) }
            }
            #expect(h.session.state == .established, "at \(t)")
        }
        #expect(keepalivesAt == Array(stride(from: 3_000, through: 60_000, by: 3_000)))
        // A timer call with nothing due does nothing.
        #expect(h.on(.timer, at: 60_001) == [])
    }

    @Test func holdTimerExpiry() {
        var h = Harness()
        h.establish()
        _ = h.peer(.keepalive, at: 1_000)
        #expect(Self.sent(h.on(.timer, at: 3_000)) == [.keepalive])
        #expect(Self.sent(h.on(.timer, at: 6_000)) == [.keepalive])
        #expect(h.session.nextDeadlineMs == 9_000)  // hold: 1 s + 9 s would be 10 s; keepalive at 9 s comes first
        _ = h.on(.timer, at: 9_000)
        #expect(h.session.nextDeadlineMs == 10_000)
        let expired = h.on(.timer, at: 10_000)
        #expect(Self.notification(expired)! == (4, 0))
        #expect(Self.nonLog(expired).dropFirst() == [.closeConnection, .down("hold timer expired in Established; sent NOTIFICATION Hold Timer Expired (4/0)")])
        #expect(h.session.state == .idle && h.session.advertisedRoutes.isEmpty)
        #expect(h.session.nextDeadlineMs == 11_000)  // first retry after 1 s
        #expect(h.on(.timer, at: 11_000) == [.connect])
    }

    @Test func holdTimeZeroMeansNoKeepalives() {
        var h = Harness(Self.config(holdTime: 0))
        h.establish(Self.peerOpen(holdTime: 90))
        #expect(h.session.negotiatedHoldTime == 0 && h.session.nextDeadlineMs == nil)
        var h2 = Harness(Self.config(holdTime: 90))
        h2.establish(Self.peerOpen(holdTime: 0))
        #expect(h2.session.negotiatedHoldTime == 0 && h2.session.nextDeadlineMs == nil)
        var h3 = Harness(Self.config(holdTime: 90))
        h3.establish(Self.peerOpen(holdTime: 30))
        #expect(h3.session.negotiatedHoldTime == 30 && h3.session.nextDeadlineMs == 10_000)
    }

    @Test func peerNotificationTakesTheSessionDown() {
        var h = Harness()
        h.establish()
        let a = h.peer(.notification(.cease(subcode: 2, message: "router maintenance")), at: 500)
        let reason = "peer sent NOTIFICATION Cease / Administrative Shutdown (6/2): \"router maintenance\""
        #expect(Self.nonLog(a) == [.closeConnection, .down(reason)])
        #expect(Self.sent(a).isEmpty)  // no NOTIFICATION answers a NOTIFICATION
        #expect(h.session.lastError == reason && h.session.counters.notificationsReceived == 1)
        #expect(h.session.nextDeadlineMs == 1_500)
    }

    @Test func badPeerASAndOtherOpenRefusals() {
        let cases: [(BGPMessage, BGPSessionConfig, UInt8)] = [
            (Self.peerOpen(as: 65099), Self.config(), 2),
            // The 4-octet capability wins over the 2-octet field.
            (.open(BGPOpen(myAS: 65000, holdTime: 90, routerID: 1, capabilities: [.fourOctetAS(4_200_000_000)])), Self.config(), 2),
            (Self.peerOpen(as: 65001, routerID: 0xC612_010B), Self.config(remoteAS: 65001), 3),  // iBGP, our identifier
            (.open(BGPOpen(myAS: 65000, holdTime: 2, routerID: 1, capabilities: [])), Self.config(), 6),
        ]
        for (open, config, subcode) in cases {
            var h = Harness(config)
            let a = h.establish(open)  // the KEEPALIVE after the refusal is ignored: no connection
            _ = a
            #expect(h.session.state == .idle && h.session.counters.establishedCount == 0, "\(open)")
            #expect(h.session.counters.notificationsSent == 1)
            #expect(h.session.lastError?.contains("(2/\(subcode))") == true, "\(h.session.lastError ?? "")")
        }
        // Directly: the refusal sends the NOTIFICATION and closes, and is no "down".
        var h = Harness()
        _ = h.on(.start)
        _ = h.on(.tcpConnected)
        let a = h.peer(Self.peerOpen(as: 65099))
        #expect(Self.notification(a)! == (2, 2))
        #expect(Self.nonLog(a).dropFirst() == [.closeConnection])
        // A 4-octet peer AS matches through the capability even with AS_TRANS in the field.
        var big = Harness(Self.config(remoteAS: 4_200_000_000))
        big.establish(Self.peerOpen(as: 4_200_000_000))
        #expect(big.session.isEstablished)
    }

    @Test func backoffDoublesToThirtySeconds() {
        var h = Harness()
        #expect(h.on(.start) == [.connect])
        var delays: [UInt64] = []
        for _ in 0..<8 {
            let failed = h.on(.tcpFailed("connection refused"))
            #expect(Self.nonLog(failed).isEmpty && h.session.state == .idle)
            let due = h.session.nextDeadlineMs!
            delays.append(due - h.now)
            #expect(h.on(.timer, at: due - 1) == [])
            #expect(h.on(.timer, at: due) == [.connect])
        }
        #expect(delays == [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000])
        // Connect timeout counts as a failure too; an established session resets the backoff.
        let timedOut = h.on(.timer, at: h.session.nextDeadlineMs!)
        #expect(Self.nonLog(timedOut) == [.closeConnection])
        #expect(h.session.nextDeadlineMs! - h.now == 30_000)
        _ = h.on(.timer, at: h.session.nextDeadlineMs!)
        _ = h.on(.tcpConnected)
        _ = h.peer(Self.peerOpen())
        _ = h.peer(.keepalive)
        _ = h.on(.tcpClosed("reset by peer"))
        #expect(h.session.nextDeadlineMs! - h.now == 1_000)
    }

    @Test func jitterIsBoundedAndDeterministic() {
        func delays(seed: UInt64) -> [UInt64] {
            var c = Self.config()
            c.retryJitterPercent = 25
            c.jitterSeed = seed
            var h = Harness(c)
            _ = h.on(.start)
            var out: [UInt64] = []
            for _ in 0..<7 {
                _ = h.on(.tcpFailed("refused"))
                out.append(h.session.nextDeadlineMs! - h.now)
                _ = h.on(.timer, at: h.session.nextDeadlineMs!)
            }
            return out
        }
        let a = delays(seed: 1)
        #expect(a == delays(seed: 1))
        #expect(a != delays(seed: 2))
        for (d, full) in zip(a, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000] as [UInt64]) {
            #expect(d <= full && d >= full * 3 / 4, "\(a)")
        }
    }

    @Test func passiveWaitsForThePeer() {
        var h = Harness(Self.config(passive: true))
        #expect(Self.nonLog(h.on(.start)).isEmpty)
        #expect(h.session.state == .active && h.session.acceptsIncomingConnection && h.session.nextDeadlineMs == nil)
        #expect(Self.sent(h.on(.tcpConnected)).count == 1)  // our OPEN
        #expect(!h.session.acceptsIncomingConnection)
        _ = h.peer(Self.peerOpen())
        _ = h.peer(.keepalive)
        #expect(h.session.isEstablished)
        // Down: straight back to waiting, no connect, no retry timer.
        let down = h.on(.tcpClosed("EOF"), at: 100)
        #expect(Self.nonLog(down) == [.down("connection closed: EOF")])
        #expect(h.session.state == .active && h.session.nextDeadlineMs == nil)
        #expect(!down.contains(.connect))
    }

    @Test func stopSendsCeaseAndStaysIdle() {
        var h = Harness()
        h.establish()
        let a = h.on(.stop(message: "maglev forward stopping"), at: 50)
        #expect(
            Self.nonLog(a) == [
                .send(.notification(.cease(subcode: 2, message: "maglev forward stopping"))), .closeConnection,
                .down("administrative stop"),
            ])
        #expect(h.session.state == .idle && !h.session.enabled && h.session.nextDeadlineMs == nil)
        #expect(h.on(.timer, at: 100_000) == [])
        #expect(h.on(.stop(message: nil)) == [])
        // Stop while connecting abandons the attempt; stop while waiting just stops.
        var c = Harness()
        _ = c.on(.start)
        #expect(Self.nonLog(c.on(.stop(message: nil))) == [.closeConnection])
        #expect(c.session.nextDeadlineMs == nil)
        // Start again: connects at once, backoff reset.
        #expect(c.on(.start) == [.connect])
        var p = Harness(Self.config(passive: true))
        _ = p.on(.start)
        _ = p.on(.stop(message: nil))
        #expect(p.session.state == .idle && !p.session.acceptsIncomingConnection)
        // Stop in OpenSent: Cease without a message, no "down" (never established).
        var o = Harness()
        _ = o.on(.start)
        _ = o.on(.tcpConnected)
        #expect(Self.nonLog(o.on(.stop(message: nil))) == [.send(.notification(.cease(subcode: 2))), .closeConnection])
    }

    @Test func routeChangesSendOnlyTheDifference() {
        var h = Harness()
        let a = prefix("198.19.0.1/32")
        let b = prefix("198.19.0.2/32")
        let c = prefix("198.19.0.3/32")
        let v6 = prefix("2001:db8:19::1/128")
        _ = h.session.setRoutes([a, b, v6])
        let up = h.establish()
        #expect(Self.announced(up) == [a, b, v6])

        let change = h.session.setRoutes([b, c])
        let updates = Self.updates(change)
        #expect(updates.count == 3)  // IPv4 withdraw, IPv6 withdraw, IPv4 announce
        #expect(updates.flatMap(\.withdrawnPrefixes) == [a, v6])
        #expect(updates.flatMap(\.announcedPrefixes) == [c])
        #expect(h.session.advertisedRoutes == [b, c])
        #expect(h.session.setRoutes([c, b]) == [])  // same set: nothing

        // Withdraw everything (graceful stop), then bring one back.
        #expect(Self.withdrawn(h.session.setRoutes([])) == [b, c])
        #expect(Self.sent(h.session.setRoutes([a])).count == 1)

        // A new session announces everything desired again.
        _ = h.on(.tcpClosed("reset"))
        #expect(h.session.advertisedRoutes.isEmpty)
        _ = h.session.setRoutes([a, c])
        _ = h.on(.timer, at: h.session.nextDeadlineMs!)
        _ = h.on(.tcpConnected)
        _ = h.peer(Self.peerOpen())
        let again = h.peer(.keepalive)
        #expect(Self.announced(again) == [a, c])
    }

    @Test func familiesFollowThePeersOffer() {
        var h = Harness()
        _ = h.session.setRoutes([prefix("198.19.0.1/32"), prefix("2001:db8:19::1/128")])
        let up = h.establish(Self.peerOpen(ipv6: false))
        #expect(!h.session.ipv6Unicast && h.session.ipv4Unicast)
        #expect(h.session.advertisedRoutes == [prefix("198.19.0.1/32")])
        #expect(up.contains(.log("1 routes not announced (family not negotiated or no next hop for it): 2001:db8:19::1/128")))
        // The note is not repeated for an unrelated change.
        let more = h.session.setRoutes([prefix("198.19.0.1/32"), prefix("198.19.0.2/32"), prefix("2001:db8:19::1/128")])
        #expect(!more.contains { if case .log(let s) = $0 { s.contains("not announced") } else { false } })
    }

    @Test func twoOctetPeerGetsASTransAndAS4Path() {
        var h = Harness(Self.config(localAS: 4_200_000_001))
        _ = h.session.setRoutes([prefix("198.19.0.1/32")])
        let up = h.establish(Self.peerOpen(fourOctet: false))
        #expect(!h.session.fourOctetAS)
        guard case .update(let u) = Self.sent(up).first else {
            Issue.record("no UPDATE")
            return
        }
        #expect(u.attributes.contains(.asPath(BGPASPath(segments: [.sequence([23456])], fourOctet: false))))
        #expect(u.attributes.contains(.as4Path([.sequence([4_200_000_001])])))
        // Our OPEN carried AS_TRANS in the 2-octet field and the real AS in the capability.
        var o = Harness(Self.config(localAS: 4_200_000_001))
        _ = o.on(.start)
        guard case .open(let open) = Self.sent(o.on(.tcpConnected)).first else {
            Issue.record("no OPEN")
            return
        }
        #expect(open.twoOctetAS == 23456 && open.fourOctetASCapability == 4_200_000_001)
    }

    @Test func unexpectedMessagesGetFSMErrors() {
        var s = Harness()
        _ = s.on(.start)
        _ = s.on(.tcpConnected)
        #expect(Self.notification(s.peer(.keepalive))! == (5, 1))
        var c = Harness()
        _ = c.on(.start)
        _ = c.on(.tcpConnected)
        _ = c.peer(Self.peerOpen())
        #expect(Self.notification(c.peer(.update(BGPUpdate())))! == (5, 2))
        var e = Harness()
        e.establish()
        let a = e.peer(Self.peerOpen())
        #expect(Self.notification(a)! == (5, 3))
        #expect(a.contains(.down("unexpected OPEN in Established; sent NOTIFICATION Finite State Machine Error / Unexpected Message in Established State (5/3)")))
    }

    @Test func decodeErrorsSendTheirNotification() {
        var h = Harness()
        h.establish()
        var bad = BGPMessage.keepalive.encode()
        bad[0] = 0
        let a = h.on(.bytesReceived(bad))
        #expect(Self.notification(a)! == (1, 1))
        #expect(h.session.state == .idle)
        // Bytes after the error are not read; nothing arrives once the connection is gone.
        #expect(h.on(.bytesReceived(BGPMessage.keepalive.encode())) == [])
        // An UPDATE error in Established.
        var u = Harness()
        u.establish()
        let b = u.on(.bytesReceived(message(type: 2, hexBytes("0000 0004 40010103"))))
        #expect(Self.notification(b)! == (3, 6))
        // The driver may decode itself.
        var d = Harness()
        d.establish()
        #expect(Self.notification(d.on(.decodeError(BGPDecodeError(BGPNotification(code: 1, subcode: 3, data: [9]), "type 9"))))! == (1, 3))
    }

    @Test func receivedUpdatesAreCountedAndIgnored() {
        var h = Harness()
        h.establish()
        let update = BGPUpdate.announce(
            prefixes: [prefix("10.0.0.0/8")], localAS: 65000, nextHopIPv4: ip("198.18.1.1"), nextHopIPv6: nil, fourOctetAS: true,
            ibgp: false)[0]
        // Several messages in one read, split oddly across two reads.
        let bytes = BGPMessage.update(update).encode() + BGPMessage.keepalive.encode() + BGPMessage.update(update).encode()
        #expect(h.on(.bytesReceived(Array(bytes[..<30])), at: 2_000) == [])
        #expect(h.on(.bytesReceived(Array(bytes[30...])), at: 2_000) == [])
        #expect(h.session.counters.updatesReceived == 2 && h.session.isEstablished)
        #expect(h.session.nextDeadlineMs == 3_000)  // keepalive; hold restarted to 11 s
        #expect(Self.sent(h.on(.timer, at: 3_000)) == [.keepalive])
        #expect(Self.sent(h.on(.timer, at: 6_000)) == [.keepalive])
        #expect(Self.sent(h.on(.timer, at: 9_000)) == [.keepalive])
        #expect(h.session.nextDeadlineMs == 11_000)
    }

    @Test func routeRefreshSendsTheFamilyAgain() {
        var h = Harness()
        _ = h.session.setRoutes([prefix("198.19.0.1/32"), prefix("2001:db8:19::1/128")])
        h.establish()
        let a = h.peer(.routeRefresh(afi: 2, safi: 1))
        #expect(Self.announced(a) == [prefix("2001:db8:19::1/128")])
        #expect(Self.sent(h.peer(.routeRefresh(afi: 25, safi: 65))).isEmpty)
        #expect(h.session.isEstablished)
    }

    @Test func connectionEventsInTheWrongStateAreHarmless() {
        var h = Harness()
        #expect(h.on(.tcpFailed("x")) == [] && h.on(.tcpClosed("x")) == [] && h.on(.bytesReceived([1, 2, 3])) == [])
        #expect(Self.nonLog(h.on(.tcpConnected)) == [.closeConnection])  // Idle: not ours
        h.establish()
        #expect(Self.nonLog(h.on(.tcpConnected)).isEmpty && h.session.isEstablished)
        #expect(h.on(.start) == [])
        #expect(h.on(.tcpFailed("late")) == [] && h.session.isEstablished)
    }
}
