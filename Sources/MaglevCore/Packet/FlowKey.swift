/// IP protocol numbers the data plane treats specially.
public enum IPProtocol {
    public static let icmp: UInt8 = 1
    public static let tcp: UInt8 = 6
    public static let udp: UInt8 = 17
    public static let gre: UInt8 = 47
    public static let icmpv6: UInt8 = 58
    public static let sctp: UInt8 = 132
}

/// What identifies a flow: the 5-tuple, or the 3-tuple (ports zero) for fragments and for
/// protocols without ports. For ICMP errors the parser fills in the *quoted* flow reversed, so
/// the error follows the connection it is about.
public struct FlowKey: Hashable, Sendable, CustomStringConvertible {
    public var source: IPAddress
    public var destination: IPAddress
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var proto: UInt8

    @inline(__always)
    public init(
        source: IPAddress, destination: IPAddress, sourcePort: UInt16, destinationPort: UInt16,
        proto: UInt8
    ) {
        self.source = source
        self.destination = destination
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.proto = proto
    }

    public var isIPv6: Bool { destination.isIPv6 }

    /// The same flow seen from the other side.
    public var reversed: FlowKey {
        FlowKey(
            source: destination, destination: source, sourcePort: destinationPort,
            destinationPort: sourcePort, proto: proto)
    }

    public var description: String {
        let s = source.isIPv6 ? "[\(source)]" : "\(source)"
        let d = destination.isIPv6 ? "[\(destination)]" : "\(destination)"
        return "\(s):\(sourcePort) -> \(d):\(destinationPort) proto \(proto)"
    }
}
