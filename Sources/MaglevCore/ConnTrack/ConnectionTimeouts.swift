/// What the connection table knows about a flow. The state picks the idle timeout and the
/// flow's rank when a full bucket must give up a way (see `ConnectionTable.insert`).
///
/// Raw value 0 is never stored: a way whose fingerprint is 0 is empty.
public enum ConnectionState: UInt8, Sendable, CaseIterable {
    /// A SYN was seen, no more yet. Cheap to lose: a SYN flood consists of these.
    case tcpHalfOpen = 1
    /// A TCP connection past the handshake, or a mid-stream flow first seen here (after an ECMP
    /// change moved it to this forwarder).
    case tcpEstablished
    /// A FIN or RST was seen; the flow lingers briefly for retransmissions.
    case tcpClosing
    /// UDP and other protocols without connection state.
    case datagram
    /// A fragment-table entry: the decision taken for a first fragment, keyed by a hash of
    /// (source, destination, IP identification, protocol), kept for the later fragments.
    case fragment
}

/// Idle timeouts per `ConnectionState`, in milliseconds. An entry idle for longer than its
/// state's timeout is absent for lookups and free for inserts.
///
/// The table compares ages as signed 32-bit differences, so a timeout is capped at
/// `Int32.max` ms (about 24.8 days); larger values behave as that cap.
public struct ConnectionTimeouts: Sendable, Equatable {
    public var tcpEstablishedMs: UInt32
    public var tcpHalfOpenMs: UInt32
    public var tcpClosingMs: UInt32
    public var datagramMs: UInt32
    public var fragmentMs: UInt32

    public init(
        tcpEstablishedMs: UInt32 = 300_000, tcpHalfOpenMs: UInt32 = 10_000,
        tcpClosingMs: UInt32 = 10_000, datagramMs: UInt32 = 30_000, fragmentMs: UInt32 = 2_000
    ) {
        self.tcpEstablishedMs = tcpEstablishedMs
        self.tcpHalfOpenMs = tcpHalfOpenMs
        self.tcpClosingMs = tcpClosingMs
        self.datagramMs = datagramMs
        self.fragmentMs = fragmentMs
    }

    /// The idle timeout of `state`.
    public func timeout(for state: ConnectionState) -> UInt32 {
        switch state {
        case .tcpHalfOpen: tcpHalfOpenMs
        case .tcpEstablished: tcpEstablishedMs
        case .tcpClosing: tcpClosingMs
        case .datagram: datagramMs
        case .fragment: fragmentMs
        }
    }
}
