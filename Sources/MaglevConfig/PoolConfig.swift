public import MaglevCore

/// How a pool's backends are checked. See docs/config.md, "Health checks".
public enum HealthCheckType: String, Sendable, CaseIterable, Hashable {
    /// A TCP connect to the backend's address and `port`.
    case tcp
    /// An HTTP/1.1 GET of `path` from the backend's address and `port`; the status must be in `expect`.
    case http
    /// A DNS query (`query_name`, type A) over UDP to the backend's address and `port`; any answer counts.
    case udpDNS = "udp-dns"
    /// A TCP connect to the VIP address through the same GRE encapsulation as forwarded
    /// traffic: it checks the backend's decapsulation and its VIP too.
    case greTCP = "gre-tcp"
    /// An HTTP GET to the VIP address through GRE (as `gre-tcp`).
    case greHTTP = "gre-http"

    /// Sent through GRE to the VIP address on the backend.
    public var throughGRE: Bool { self == .greTCP || self == .greHTTP }
    /// Speaks HTTP once connected.
    public var isHTTP: Bool { self == .http || self == .greHTTP }
}

/// One pool's health check, with every default filled in.
public struct HealthCheckConfig: Sendable, Hashable {
    public var type: HealthCheckType
    /// Destination port: defaults to the port of the first VIP that uses the pool (53 for `udp-dns`).
    public var port: UInt16
    /// HTTP path (http, gre-http). Default `/`.
    public var path: String
    /// Accepted HTTP status codes. Default 200-399.
    public var expect: ClosedRange<Int>
    /// Time between two probes of one target. Default 2 s.
    public var intervalMs: UInt32
    /// A probe that has no answer after this long failed. Default 1 s (at most the interval).
    public var timeoutMs: UInt32
    /// Consecutive successes that bring a down backend up. Default 2.
    public var rise: Int
    /// Consecutive failures that take an up backend down. Default 3.
    public var fall: Int
    /// DNS query name (udp-dns). Default `.` (the root).
    public var queryName: String
    /// For gre- checks: the VIP address the probe is sent to (the first VIP using the pool whose
    /// family matches the backend's, filled in by the config loader).
    public var vipIPv4: IPAddress?
    public var vipIPv6: IPAddress?

    public init(
        type: HealthCheckType, port: UInt16, path: String = "/", expect: ClosedRange<Int> = 200...399,
        intervalMs: UInt32 = 2000, timeoutMs: UInt32 = 1000, rise: Int = 2, fall: Int = 3,
        queryName: String = ".", vipIPv4: IPAddress? = nil, vipIPv6: IPAddress? = nil
    ) {
        self.type = type
        self.port = port
        self.path = path
        self.expect = expect
        self.intervalMs = intervalMs
        self.timeoutMs = timeoutMs
        self.rise = rise
        self.fall = fall
        self.queryName = queryName
        self.vipIPv4 = vipIPv4
        self.vipIPv6 = vipIPv6
    }

    /// Short form for logs and metrics labels: `gre-http:80/healthz`.
    public var summary: String {
        type.isHTTP ? "\(type.rawValue):\(port)\(path)" : "\(type.rawValue):\(port)"
    }
}

/// How many healthy backends a pool needs to serve its VIPs.
public enum MinHealthy: Sendable, Hashable, CustomStringConvertible {
    case count(Int)
    /// A percentage of the pool's backends, rounded up.
    case percent(Int)

    /// The number of backends that must take new connections out of `size`.
    public func required(of size: Int) -> Int {
        switch self {
        case .count(let n): n
        case .percent(let p): (size * p + 99) / 100
        }
    }

    public var description: String {
        switch self {
        case .count(let n): "\(n)"
        case .percent(let p): "\(p)%"
        }
    }
}

/// What a VIP does when none of its pools has `min_healthy` healthy backends.
public enum WhenAllDown: String, Sendable, CaseIterable, Hashable {
    /// Fail open (the default): the first pool serves with health ignored (operator drains and
    /// file states still apply), as Envoy's panic mode does. If the checks themselves broke, the
    /// VIP keeps working; if the backends really are down, nothing is lost that was not already.
    case failOpen = "fail-open"
    /// New connections are dropped and counted (`no_backend`); the VIP is not served.
    case drop
}

/// A named backend pool: its backends as the file gives them, and how they are checked.
public struct PoolConfig: Sendable, Equatable {
    public var name: String
    public var backends: [BackendConfig]
    public var healthCheck: HealthCheckConfig?
    public var minHealthy: MinHealthy

    public init(
        name: String, backends: [BackendConfig], healthCheck: HealthCheckConfig? = nil,
        minHealthy: MinHealthy = .count(1)
    ) {
        self.name = name
        self.backends = backends
        self.healthCheck = healthCheck
        self.minHealthy = minHealthy
    }
}

/// Which pools serve a VIP, in order, and what happens when none is healthy enough.
public struct VIPPoolChoice: Sendable, Equatable {
    /// The VIP's name (as in `DataplaneConfig.vips`).
    public var vip: String
    /// Pool names, first preferred.
    public var pools: [String]
    public var whenAllDown: WhenAllDown
    /// The shard the VIP belongs to: only forwarders started with `--shard NAME` load, forward
    /// and announce it. nil: every forwarder serves it.
    public var shard: String?

    public init(vip: String, pools: [String], whenAllDown: WhenAllDown = .failOpen, shard: String? = nil) {
        self.vip = vip
        self.pools = pools
        self.whenAllDown = whenAllDown
        self.shard = shard
    }
}
