// PLACEHOLDER: the capture engineer replaces this file with the real generator (same API).

/// What `maglev trace generate` writes.
public struct TraceOptions: Sendable {
    public var flows = 1000
    public var packets = 10_000
    public var seed: UInt64 = 1
    /// Flow sizes: Zipf with this exponent, or uniform when nil.
    public var zipfExponent: Double? = 1.1
    /// Share of flows that are TCP connections (the rest UDP).
    public var tcpShare = 0.8
    public var ipv6Share = 0.2
    /// Share of UDP datagrams sent as fragments.
    public var fragmentShare = 0.0
    /// ICMP errors quoting a flow, per packet.
    public var icmpErrorShare = 0.0
    /// Share of flows whose frames carry an 802.1Q tag.
    public var vlanShare = 0.0
    public var durationSeconds = 10.0
    public init() {}
}

public struct TraceSummary: Sendable, Equatable {
    public var packets = 0
    public var flows = 0
    public var bytes = 0
    public init() {}
}

public enum TraceGenerator {
    public static func generate(_ options: TraceOptions, to path: String) throws(CaptureError) -> TraceSummary {
        throw CaptureError(file: path, packetNumber: nil, message: "not implemented")
    }
}
