/// How a backend takes part in its pools.
public enum BackendState: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Takes new connections and keeps its own.
    case active
    /// Takes no new connections; connections it already has stay with it.
    case draining
    /// Failed its health checks: owns no slots, and its connections are reselected.
    case down

    public var description: String {
        switch self {
        case .active: "active"
        case .draining: "draining"
        case .down: "down"
        }
    }
}

/// One backend of a pool.
public struct BackendConfig: Sendable, Equatable {
    /// The stable key the Maglev permutation is derived from; unique per forwarder.
    public var name: String
    public var address: IPAddress
    public var weight: UInt32
    public var state: BackendState

    public init(name: String, address: IPAddress, weight: UInt32 = 1, state: BackendState = .active) {
        self.name = name
        self.address = address
        self.weight = weight
        self.state = state
    }
}

/// A virtual IP (or a prefix of them) and the pool that serves it.
public struct VIPConfig: Sendable, Equatable {
    public var name: String
    /// The VIP, or the network of a prefix (`0.0.0.0/0` and `::/0` catch everything).
    public var address: IPAddress
    public var prefixLength: Int
    /// Only this IP protocol (nil: any).
    public var proto: UInt8?
    /// Only this destination port (nil: any). Fragments without ports match on address and
    /// protocol alone.
    public var port: UInt16?
    public var backends: [BackendConfig]
    /// This VIP's table size M (prime); nil: the config's `tableSize`.
    public var tableSize: Int?

    public init(
        name: String, address: IPAddress, prefixLength: Int? = nil, proto: UInt8? = nil,
        port: UInt16? = nil, backends: [BackendConfig], tableSize: Int? = nil
    ) {
        self.name = name
        self.address = address
        self.prefixLength = prefixLength ?? (address.isIPv6 ? 128 : 32)
        self.proto = proto
        self.port = port
        self.backends = backends
        self.tableSize = tableSize
    }
}

/// Where fragments go. See docs/maglev.md, "Fragments".
public enum FragmentPolicy: String, Sendable, CaseIterable {
    /// Every fragment (and the first one too) is hashed on (src, dst, protocol): all fragments
    /// of a datagram reach one backend whatever their order, with no state. A flow whose
    /// packets are sometimes fragmented may see those fragments on another backend than its
    /// unfragmented packets.
    case threeTuple = "three-tuple"
    /// The first fragment follows the connection (5-tuple) and its decision is recorded by
    /// (src, dst, IP id, protocol); later fragments follow it. Fragments that arrive before the
    /// first one (or on another forwarder) fall back to the 3-tuple hash.
    case fragmentTable = "fragment-table"
    /// The paper's fragment redirect, for a group of forwarders behind ECMP
    /// (`DataplaneConfig.forwarders`): every fragment is sent (GRE, recursion control 1, once)
    /// to the group member that owns its 3-tuple, so all fragments of a datagram meet on one
    /// forwarder whatever the routers do. There the first fragment follows the connection
    /// (5-tuple) as in `fragment-table`, and later fragments that arrive before it are held
    /// (bounded in count and time, `FragmentHoldSettings`) until it does.
    case redirect
}

/// A member of the forwarder group (`forwarders:` in the config): every forwarder of the group
/// has the same list. A fragment's owner is chosen among them by rendezvous hashing of its
/// 3-tuple over the names, so the order of the list does not matter.
public struct ForwarderMember: Sendable, Equatable {
    public var name: String
    /// Where redirected fragments for this member are sent (outer GRE destination), and the
    /// outer source of the fragments it redirects. One address family for the whole group.
    public var address: IPAddress

    public init(name: String, address: IPAddress) {
        self.name = name
        self.address = address
    }
}

/// How many fragments a data plane holds while waiting for their datagram's first fragment,
/// and for how long (`fragments: redirect`).
public struct FragmentHoldSettings: Sendable, Equatable {
    /// Fragments held at once per data plane (per worker); more are dropped (`fragment_hold_full`).
    public var packets: Int
    /// A held fragment whose first fragment has not arrived after this long is dropped
    /// (`fragment_hold_expired`).
    public var timeoutMs: UInt32

    public init(packets: Int = 64, timeoutMs: UInt32 = 1000) {
        self.packets = packets
        self.timeoutMs = timeoutMs
    }
}

/// Everything the data plane needs to decide, as plain values. The control side builds it
/// (from YAML, flags, or a test) and turns it into a `ForwardingSnapshot`.
public struct DataplaneConfig: Sendable {
    public var vips: [VIPConfig]
    /// Maglev table size M, prime: every VIP's unless it sets its own (`VIPConfig.tableSize`).
    public var tableSize: Int
    public var algorithm: TableAlgorithm
    public var tableOptions: TableOptions
    /// Seed of the flow hash. Forwarders that must agree share it.
    public var hashSeed: UInt64
    /// Largest packet, outer headers included, that the path to the backends carries.
    public var pathMTU: Int
    /// Outer source address for IPv4 / IPv6 backends (this forwarder's address).
    public var encapSourceIPv4: IPAddress?
    public var encapSourceIPv6: IPAddress?
    public var fragmentPolicy: FragmentPolicy
    /// The forwarder group of `fragments: redirect` (empty otherwise).
    public var forwarders: [ForwarderMember]
    public var fragmentHold: FragmentHoldSettings
    /// Off: every packet is routed by the table alone (what consistent hashing gives by itself).
    public var connectionTracking: Bool
    public var timeouts: ConnectionTimeouts
    /// ICMP "fragmentation needed" / "packet too big" replies: sustained rate and burst.
    public var icmpRatePerSecond: Int
    public var icmpBurst: Int
    /// Forward packets whose capture was cut short (replay of snaplen-limited captures).
    public var acceptTruncated: Bool

    public init(
        vips: [VIPConfig], tableSize: Int = 65537, algorithm: TableAlgorithm = .maglev,
        tableOptions: TableOptions = .init(), hashSeed: UInt64 = 0, pathMTU: Int = 1500,
        encapSourceIPv4: IPAddress? = nil, encapSourceIPv6: IPAddress? = nil,
        fragmentPolicy: FragmentPolicy = .threeTuple, connectionTracking: Bool = true,
        timeouts: ConnectionTimeouts = .init(), icmpRatePerSecond: Int = 100, icmpBurst: Int = 100,
        acceptTruncated: Bool = false, forwarders: [ForwarderMember] = [], fragmentHold: FragmentHoldSettings = .init()
    ) {
        self.vips = vips
        self.tableSize = tableSize
        self.algorithm = algorithm
        self.tableOptions = tableOptions
        self.hashSeed = hashSeed
        self.pathMTU = pathMTU
        self.encapSourceIPv4 = encapSourceIPv4
        self.encapSourceIPv6 = encapSourceIPv6
        self.fragmentPolicy = fragmentPolicy
        self.forwarders = forwarders
        self.fragmentHold = fragmentHold
        self.connectionTracking = connectionTracking
        self.timeouts = timeouts
        self.icmpRatePerSecond = icmpRatePerSecond
        self.icmpBurst = icmpBurst
        self.acceptTruncated = acceptTruncated
    }
}
