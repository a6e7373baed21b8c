/// How a frame begins.
public enum LinkType: UInt8, Sendable {
    /// Ethernet II, with any number (bounded) of 802.1Q / 802.1ad tags and MPLS labels.
    case ethernet
    /// An IP packet with no link-layer header; the version nibble says IPv4 or IPv6.
    case rawIP
}

/// Where a packet sits in a fragmented datagram.
public enum FragmentKind: UInt8, Sendable {
    /// Not a fragment (an IPv6 "atomic" fragment, offset 0 and no more fragments, counts here).
    case none
    /// Offset 0, more fragments follow: carries the L4 header.
    case first
    /// Offset > 0: carries no ports.
    case nonFirst
}

/// What the parser learned about one packet. Plain value, no references: building one
/// allocates nothing.
public struct ParsedPacket: Sendable {
    /// Offset of the IP header from the start of the frame.
    public var l3Offset: Int
    /// Bytes of the IP packet present in the frame: the header's length claim, bounded by the
    /// bytes captured (link-layer padding after the packet is excluded).
    public var l3Length: Int
    /// The length the IP header claims (IPv4 total length, or 40 + IPv6 payload length; the
    /// captured length when the claim is 0, as in TSO captures and jumbograms).
    public var l3ClaimedLength: Int
    /// Offset of the L4 header from the start of the frame (for protocols the parser does not
    /// read, such as GRE or ESP, where their header begins), or -1 when there is none:
    /// non-first fragment, no-next-header (59), or a packet that ends where it would begin.
    /// When set, it lies inside the IP packet: `l3Offset < l4Offset < l3Offset + l3Length`.
    public var l4Offset: Int
    /// The flow: 5-tuple, 3-tuple (ports 0) for fragments and port-less protocols; for ICMP
    /// errors the quoted packet's flow, reversed.
    public var key: FlowKey
    /// TCP flags of an unfragmented or first-fragment TCP segment, else 0.
    public var tcpFlags: UInt8
    public var fragment: FragmentKind
    /// IPv4 identification of a fragment (0 if not a fragment), or the identification of the
    /// IPv6 fragment header when there is one (atomic fragments included; 0 without one).
    public var fragmentID: UInt32
    /// IPv4 DF bit; always true for IPv6 (routers never fragment IPv6).
    public var dontFragment: Bool
    /// An ICMP or ICMPv6 error (destination unreachable, time exceeded, packet too big,
    /// parameter problem) whose quoted flow is in `key`.
    public var isICMPError: Bool
    /// IPv4 TOS or IPv6 traffic class.
    public var trafficClass: UInt8
    /// The packet tracer's marker in the IP header: the IPv4 reserved flag (0x8000 of the
    /// flags/fragment-offset field) or the IPv6 flow label `TraceMarker.ipv6FlowLabel`. Only a
    /// hint: the data plane then looks for a probe trailer (`TraceMarker.read`); nothing else
    /// changes for a marked packet.
    public var traceMarked: Bool
    /// Set by the data plane, never by the parser: this is the inner packet of a fragment
    /// redirect from a group member (`fragments: redirect`), which is never redirected again.
    public var redirected: Bool = false

    public init(
        l3Offset: Int, l3Length: Int, l3ClaimedLength: Int, l4Offset: Int, key: FlowKey,
        tcpFlags: UInt8, fragment: FragmentKind, fragmentID: UInt32, dontFragment: Bool,
        isICMPError: Bool, trafficClass: UInt8, traceMarked: Bool = false
    ) {
        self.l3Offset = l3Offset
        self.l3Length = l3Length
        self.l3ClaimedLength = l3ClaimedLength
        self.l4Offset = l4Offset
        self.key = key
        self.tcpFlags = tcpFlags
        self.fragment = fragment
        self.fragmentID = fragmentID
        self.dontFragment = dontFragment
        self.isICMPError = isICMPError
        self.trafficClass = trafficClass
        self.traceMarked = traceMarked
    }

    /// All fields zero: a slot for the parser to fill in. (Computed, not a global: the
    /// single-packet path takes one per packet without a lazy-initialisation check.)
    @inline(__always)
    public static var zero: ParsedPacket {
        ParsedPacket(
            l3Offset: 0, l3Length: 0, l3ClaimedLength: 0, l4Offset: -1,
            key: FlowKey(
                source: IPAddress(ipv4: 0), destination: IPAddress(ipv4: 0), sourcePort: 0, destinationPort: 0,
                proto: 0),
            tcpFlags: 0, fragment: .none, fragmentID: 0, dontFragment: false, isICMPError: false, trafficClass: 0)
    }

    public var isIPv6: Bool { key.isIPv6 }
    /// Whether the capture cut the packet short of its claimed length (snaplen).
    public var isTruncated: Bool { l3Length < l3ClaimedLength }
}

/// TCP flag bits.
public enum TCPFlags {
    public static let fin: UInt8 = 0x01
    public static let syn: UInt8 = 0x02
    public static let rst: UInt8 = 0x04
    public static let ack: UInt8 = 0x10
}

/// The parser's answer: a parsed packet, or why there is none.
public enum ParseResult: Sendable {
    case parsed(ParsedPacket)
    /// Not an IP packet (ARP, LLDP, ...): not ours, left to the host.
    case notIP
    /// Malformed or truncated: dropped with a named reason.
    case malformed(DropReason)
}
