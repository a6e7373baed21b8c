/// One metric family: named once here, rendered by `MetricsExposition`. docs/operations.md
/// explains each one.
public struct MetricFamily: Sendable, Hashable {
    public enum Kind: String, Sendable { case counter, gauge }

    public let name: String
    public let kind: Kind
    public let help: String
    public let labels: [String]

    public init(_ name: String, _ kind: Kind, _ help: String, labels: [String] = []) {
        self.name = name
        self.kind = kind
        self.help = help
        self.labels = labels
    }
}

/// Every metric `maglev forward` exports, in exposition order.
public enum MaglevMetrics {
    public static let vipPackets = MetricFamily(
        "maglev_vip_packets_total", .counter, "Packets that matched this VIP (forwarded, answered with ICMP or dropped).",
        labels: ["vip"])
    public static let vipBytes = MetricFamily(
        "maglev_vip_bytes_total", .counter, "Bytes (IP packets) that matched this VIP.", labels: ["vip"])
    public static let vipUsable = MetricFamily(
        "maglev_vip_usable", .gauge, "1 while the VIP has a pool serving new connections (or fails open), else 0.",
        labels: ["vip"])
    public static let vipFailOpen = MetricFamily(
        "maglev_vip_fail_open", .gauge, "1 while no pool of the VIP has min_healthy backends and it fails open.",
        labels: ["vip"])
    public static let backendPackets = MetricFamily(
        "maglev_backend_packets_total", .counter, "Packets forwarded to this backend for this VIP.",
        labels: ["vip", "backend"])
    public static let backendBytes = MetricFamily(
        "maglev_backend_bytes_total", .counter, "Bytes (inner packets) forwarded to this backend for this VIP.",
        labels: ["vip", "backend"])
    public static let pairCountersEnabled = MetricFamily(
        "maglev_vip_backend_counters_enabled", .gauge,
        "1 while per (VIP, backend) counters are kept (VIP ids x backend ids up to 1Mi), else 0 and the pair families are empty.")
    public static let backendUp = MetricFamily(
        "maglev_backend_up", .gauge, "1 when the backend passes its pool's health check (or the pool has none), else 0.",
        labels: ["vip", "pool", "backend"])
    public static let backendTakesNew = MetricFamily(
        "maglev_backend_serving", .gauge,
        "1 when the backend takes new connections for this VIP (healthy, not drained, weight above 0, its pool chosen).",
        labels: ["vip", "backend"])
    public static let backendConnections = MetricFamily(
        "maglev_backend_connections", .gauge, "Connections tracked to this backend now, all workers.",
        labels: ["backend"])
    public static let drops = MetricFamily(
        "maglev_drops_total", .counter, "Packets dropped or passed to the kernel, by reason.", labels: ["reason"])
    public static let connectionEntries = MetricFamily(
        "maglev_connection_table_entries", .gauge, "Live entries in the worker's connection table.",
        labels: ["worker"])
    public static let connectionCapacity = MetricFamily(
        "maglev_connection_table_capacity", .gauge, "Entries the worker's connection table holds at most.",
        labels: ["worker"])
    public static let connectionEvictions = MetricFamily(
        "maglev_connection_table_evictions_total", .counter,
        "Live entries pushed out of a full bucket, by the evicted entry's state.", labels: ["worker", "state"])
    public static let connectionInsertsRefused = MetricFamily(
        "maglev_connection_table_inserts_refused_total", .counter,
        "New flows not recorded because their bucket held only established entries.", labels: ["worker"])
    public static let healthChecks = MetricFamily(
        "maglev_health_checks_total", .counter, "Health probes sent, by backend, check and result.",
        labels: ["backend", "check", "result"])
    public static let healthTransitions = MetricFamily(
        "maglev_health_transitions_total", .counter, "Health verdict changes, by backend, check and new state.",
        labels: ["backend", "check", "to"])
    public static let configReloads = MetricFamily(
        "maglev_config_reloads_total", .counter, "Config reloads, by result (applied, rejected, refused).",
        labels: ["result"])
    public static let configGeneration = MetricFamily(
        "maglev_config_generation", .gauge, "Generation of the desired state the workers run (bumped by every change).")
    public static let kernelDrops = MetricFamily(
        "maglev_kernel_drops_total", .counter, "Frames the kernel could not hand to the worker: its receive queue or ring was full (--io xdp: also no free UMEM frame, or a frame larger than one).",
        labels: ["worker"])
    public static let workerPackets = MetricFamily(
        "maglev_worker_received_packets_total", .counter, "Frames the worker received from its packet socket.",
        labels: ["worker"])
    public static let sendErrors = MetricFamily(
        "maglev_send_errors_total", .counter, "Sends the kernel refused.", labels: ["worker"])
    public static let bgpSessionUp = MetricFamily(
        "maglev_bgp_session_up", .gauge, "1 while the BGP session with the peer is established.", labels: ["peer"])
    public static let bgpAnnouncedRoutes = MetricFamily(
        "maglev_bgp_announced_routes", .gauge, "VIP routes announced to the peer now.", labels: ["peer"])
    public static let bgpUpdatesSent = MetricFamily(
        "maglev_bgp_updates_sent_total", .counter, "BGP UPDATE messages sent to the peer.", labels: ["peer"])
    public static let bgpAnnouncing = MetricFamily(
        "maglev_bgp_announcing", .gauge,
        "1 while this forwarder announces its usable VIPs; 0 while withdrawn (stopping, operator, stalled workers).")
    public static let tracedPackets = MetricFamily(
        "maglev_traced_packets_total", .counter, "Packet-tracer probes the workers recognised (docs/maglev.md, the tracer).")
    public static let traceReports = MetricFamily(
        "maglev_trace_reports_total", .counter,
        "Tracer reports by outcome: sent, rate_limited, send_error, queue_dropped (a worker's queue was full).",
        labels: ["result"])
    public static let fragments = MetricFamily(
        "maglev_fragments_total", .counter,
        "fragments: redirect. Fragments by event: redirected (sent on to the group member that owns them), "
            + "redirect_received (from a group member), held (waiting for their first fragment), held_released "
            + "(forwarded once it came; the rest expired: maglev_drops_total{reason=\"fragment_hold_expired\"}).",
        labels: ["event"])
    public static let workerUp = MetricFamily(
        "maglev_worker_running", .gauge, "1 while the worker loop runs.", labels: ["worker"])
}
