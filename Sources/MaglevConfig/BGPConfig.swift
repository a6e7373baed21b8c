public import MaglevCore

/// One BGP neighbour (a router) of the forwarder's announce-only speaker.
public struct BGPPeerConfig: Sendable, Equatable {
    public var address: IPAddress
    public var remoteAS: UInt32
    /// TCP port of the peer. Default 179.
    public var port: UInt16
    /// Hold time proposed in OPEN, seconds: 0 (no keepalives) or 3-65535. Default 90.
    public var holdTime: UInt16
    /// Wait for the peer to connect instead of connecting to it. Default false.
    public var passive: Bool

    public init(address: IPAddress, remoteAS: UInt32, port: UInt16 = 179, holdTime: UInt16 = 90, passive: Bool = false) {
        self.address = address
        self.remoteAS = remoteAS
        self.port = port
        self.holdTime = holdTime
        self.passive = passive
    }
}

/// The `bgp` section: this forwarder's AS and router id, and its peers. VIPs are announced as
/// host routes (/32, /128) with this forwarder as next hop; received routes are ignored.
public struct BGPConfig: Sendable, Equatable {
    public var localAS: UInt32
    /// The BGP identifier: an IPv4 address, unique among the routers' peers.
    public var routerID: IPAddress
    public var peers: [BGPPeerConfig]

    public init(localAS: UInt32, routerID: IPAddress, peers: [BGPPeerConfig]) {
        self.localAS = localAS
        self.routerID = routerID
        self.peers = peers
    }
}
