public import MaglevCore
public import MaglevLinux

/// The backend-side GRE decapsulator: reads GRE packets from raw sockets, validates them, and
/// writes the inner packets to a TUN device, so the local stack receives them as if they had
/// arrived unencapsulated (the VIP is on `lo`; the reply goes straight to the client, DSR).
///
/// One blocking thread: `poll` on the IPv4 and IPv6 sockets, `recvmmsg` batches, one `write` per
/// inner packet. Nothing is allocated per packet.
public struct DecapLoop: ~Copyable {
    public let tun: TunDevice
    public var receiver: GREReceiver
    /// Outer sources accepted; empty accepts any.
    public let allowedSources: [IPAddress]
    public private(set) var counters = DecapCounters()

    public init(tun: consuming TunDevice, receiver: consuming GREReceiver, allowedSources: [IPAddress] = []) {
        self.tun = tun
        self.receiver = receiver
        self.allowedSources = allowedSources
    }

    /// Runs until `shouldStop()` returns true (checked after every wait, at least every
    /// `pollMilliseconds`) or `duration` has passed. Every `statsInterval` (if given) it calls
    /// `report` with the counters so far. Returns the final counters.
    public mutating func run(
        duration: Duration? = nil,
        statsInterval: Duration? = nil,
        pollMilliseconds: Int32 = 200,
        shouldStop: () -> Bool,
        report: (DecapCounters) -> Void = { _ in }
    ) throws(GREReceiveError) -> DecapCounters {
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = duration.map { start + $0 }
        var nextReport = statsInterval.map { start + $0 }
        while !shouldStop() {
            let n = try receiver.receive(timeoutMilliseconds: pollMilliseconds)
            for i in 0..<n { handle(i) }
            if deadline != nil || nextReport != nil {
                let now = clock.now
                if let d = deadline, now >= d { break }
                if let r = nextReport, let interval = statsInterval, now >= r {
                    report(counters)
                    nextReport = r + interval
                    if let late = nextReport, late < now { nextReport = now + interval }
                }
            }
        }
        return counters
    }

    @inline(__always)
    private mutating func handle(_ i: Int) {
        counters.received &+= 1
        let packet = receiver.packet(i)
        let outerIsIPv6 = receiver.isIPv6(i)
        if receiver.isTruncated(i) {
            counters[.truncated] &+= 1
            return
        }
        let outcome = GREDecapsulation.classify(packet, outerIsIPv6: outerIsIPv6)
        guard case .deliver(let offset, let length, let innerIsIPv6) = outcome else {
            if case .drop(let reason) = outcome { counters[reason] &+= 1 }
            return
        }
        if !allowedSources.isEmpty {
            let source =
                outerIsIPv6
                ? GREDecapsulation.outerSource(ipv6Address: receiver.sourceAddress(i))
                : GREDecapsulation.outerSource(ipv4Packet: packet.baseAddress!)
            var allowed = false
            for a in allowedSources where a == source {
                allowed = true
                break
            }
            if !allowed {
                counters[.sourceNotAllowed] &+= 1
                return
            }
        }
        if tun.write(packet.baseAddress! + offset, count: length) != 0 {
            counters[.tunWriteFailed] &+= 1
            return
        }
        if innerIsIPv6 { counters.deliveredIPv6 &+= 1 } else { counters.deliveredIPv4 &+= 1 }
        counters.deliveredBytes &+= UInt64(length)
    }
}
