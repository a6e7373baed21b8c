/// Everything a replay found, as plain values: what the renderers (JSON, text/markdown, HTML,
/// CSV) print, in the order they print it. Built by `ReplayAnalysis`; rows are sorted, figures
/// are fractions (0...1) unless a name says otherwise.
public struct ReplayReport: Sendable, Equatable {
    public struct PacketCounts: Sendable, Equatable {
        public var total = 0
        public var forwarded = 0
        /// ICMP "fragmentation needed" / "packet too big" replies generated.
        public var icmpReplies = 0
        /// Not our traffic, by reason (`not_ip`, `unknown_vip`), sorted by name.
        public var passed: [(reason: String, count: Int)] = []
        /// Dropped, by reason (`DropReason` names), sorted by name.
        public var dropped: [(reason: String, count: Int)] = []
        /// Captured but never given to the data plane (unsupported link types, by name).
        public var skipped: [(reason: String, count: Int)] = []
        public var droppedTotal: Int { dropped.reduce(0) { $0 + $1.count } }
        public var skippedTotal: Int { skipped.reduce(0) { $0 + $1.count } }
        public init() {}

        public static func == (a: PacketCounts, b: PacketCounts) -> Bool {
            a.total == b.total && a.forwarded == b.forwarded && a.icmpReplies == b.icmpReplies
                && a.passed.elementsEqual(b.passed, by: { $0 == $1 })
                && a.dropped.elementsEqual(b.dropped, by: { $0 == $1 })
                && a.skipped.elementsEqual(b.skipped, by: { $0 == $1 })
        }
    }

    public struct BackendLoad: Sendable, Equatable {
        public var name: String
        public var address: String
        /// State at the end of the replay: active, draining, down, removed.
        public var state: String
        /// Distinct 5-tuples (3-tuples for fragments) it received.
        public var flows = 0
        /// Connections it received (TCP SYN..FIN/RST or idle; UDP flows split by idle time).
        public var connections = 0
        public var packets = 0
        /// IP bytes (inner packets, before encapsulation).
        public var bytes = 0
        public var peakConnections = 0
        public init(name: String, address: String, state: String) {
            self.name = name
            self.address = address
            self.state = state
        }
    }

    public struct Balance: Sendable, Equatable {
        /// Over the backends that own slots at the end: max / mean of each load measure.
        /// Every figure is nil when it is undefined: no such backend, or none of that load (a
        /// mean of 0); renderers print `n/a` (JSON `null`), never a number that reads as perfect.
        public var flowsMaxOverMean: Double?
        public var packetsMaxOverMean: Double?
        public var bytesMaxOverMean: Double?
        /// Coefficient of variation (standard deviation / mean) of flows per backend.
        public var flowsCoV: Double?
        /// Jain's fairness index of flows per backend: (sum x)^2 / (n * sum x^2); 1 is perfect.
        public var jain: Double?
        public init() {}
    }

    public struct EventResult: Sendable, Equatable {
        /// As the user wrote it: `50%`, `10s`, `#1000`.
        public var at: String
        /// Packet index (1-based) the event took effect before, and its time in seconds from
        /// the first packet.
        public var packet = 0
        public var seconds = 0.0
        /// `remove`, `add`, `drain`, `fail`, `recover`, `weight=W`, `forwarders=K`.
        public var action: String
        /// Backend name, or "" for forwarder-tier events.
        public var target: String
        /// False when the capture ended before the event's time (or packet): the event never
        /// took effect, and its figures are all 0.
        public var reached = true
        /// Connections open when the event happened.
        public var connectionsAlive = 0
        /// Of those, connections whose later packets reached another backend than before.
        public var broken = 0
        /// Broken because their own backend was removed or failed.
        public var brokenUnavoidable = 0
        /// Broken although their backend stayed: the cost of the algorithm and of state loss.
        public var brokenCollateral = 0
        /// When the connections charged to this event showed their break; nil when none did.
        public var brokenVisible: BreakVisibility?
        /// Table slots that changed owner ("all") and those whose old owner survived ("extra"),
        /// as fractions of the table, over all VIPs.
        public var slotsChangedAll = 0.0
        public var slotsChangedExtra = 0.0
        /// Connections alive at the event whose next packet would reach another backend (or
        /// none) right after it: each one's forwarder (by ECMP) asked where it would send it,
        /// its connection table and the new tables consulted, as the data plane will. `broken`
        /// counts those that did send again during the trace; this counts them all (what a
        /// change at the end of a capture would break, `maglev diff --trace`).
        public var atRisk = 0
        /// What the event did per VIP (every VIP present after it, in config order).
        public var byVIP: [VIPImpact] = []
        /// What it did per backend: the backends with broken or at-risk connections (the
        /// backend the connections were on before), sorted by name.
        public var byBackend: [BackendImpact] = []
        /// A `config=FILE` event: the changes a live reload refuses without
        /// `--allow-disruptive-reload` (`ReloadCheck`; applied in the replay, and flagged), and
        /// its notices.
        public var disruptive: [String] = []
        public var notices: [String] = []
        public init(at: String, action: String, target: String) {
            self.at = at
            self.action = action
            self.target = target
        }
    }

    /// When an event's breaks became visible: a break shows at the capture time of the packet
    /// that revealed it, the first packet of the connection to reach another backend after the
    /// event (a silent connection shows it late, possibly after later events). Times are
    /// seconds from the first packet, like `EventResult.seconds`.
    public struct BreakVisibility: Sendable, Equatable {
        public var firstSeconds: Double
        /// The lower median: the time of the ((n + 1) / 2)-th break of n, in time order.
        public var medianSeconds: Double
        public var lastSeconds: Double
        /// Breaks charged to this event that became visible only after a later event took
        /// effect (their connection was silent until then).
        public var afterLaterEvent: Int
        public init(firstSeconds: Double, medianSeconds: Double, lastSeconds: Double, afterLaterEvent: Int) {
            self.firstSeconds = firstSeconds
            self.medianSeconds = medianSeconds
            self.lastSeconds = lastSeconds
            self.afterLaterEvent = afterLaterEvent
        }
    }

    /// One VIP's part of an event.
    public struct VIPImpact: Sendable, Equatable {
        public var name: String
        /// Fractions of the VIP's flow-hash space whose owner changed ("all") and of those whose
        /// old owner survived ("extra"); nil when the VIP is new (no table before).
        public var slotsChangedAll: Double?
        public var slotsChangedExtra: Double?
        /// Connections alive on the VIP at the event, those broken, those at risk, and the
        /// backends the ones at risk were on (sorted by name).
        public var alive = 0
        public var broken = 0
        public var atRisk = 0
        public var atRiskByBackend: [BackendImpact] = []
        public init(name: String, slotsChangedAll: Double?, slotsChangedExtra: Double?) {
            self.name = name
            self.slotsChangedAll = slotsChangedAll
            self.slotsChangedExtra = slotsChangedExtra
        }
    }

    /// One backend's part of an event: connections on it that broke, or would.
    public struct BackendImpact: Sendable, Equatable {
        public var name: String
        public var broken = 0
        public var atRisk = 0
        public init(name: String, broken: Int = 0, atRisk: Int = 0) {
            self.name = name
            self.broken = broken
            self.atRisk = atRisk
        }
    }

    /// Load over time: packets per backend in each time bucket.
    public struct TimeBucket: Sendable, Equatable {
        public var startSeconds: Double
        /// Indexed like `backends`.
        public var packets: [Int]
        public init(startSeconds: Double, packets: [Int]) {
            self.startSeconds = startSeconds
            self.packets = packets
        }
    }

    /// One algorithm's results on the same trace and events (`--compare-algorithms`).
    public struct AlgorithmResult: Sendable, Equatable {
        public var algorithm: String
        public var balance: Balance
        public var events: [EventResult]
        public init(algorithm: String, balance: Balance, events: [EventResult]) {
            self.algorithm = algorithm
            self.balance = balance
            self.events = events
        }
    }

    public var inputs: [String] = []
    public var algorithm = "maglev"
    public var tableSize = 0
    public var forwarders = 1
    public var connectionTracking = true
    public var durationSeconds = 0.0
    /// Packets older than a packet before them in the (merged) capture, and the largest step
    /// back in seconds. The replay clock never goes backwards: they were replayed at the
    /// latest time seen.
    public struct TimeWentBackwards: Sendable, Equatable {
        public var packets = 0
        public var maxSeconds = 0.0
        public init(packets: Int = 0, maxSeconds: Double = 0) {
            self.packets = packets
            self.maxSeconds = maxSeconds
        }
    }
    public var timeWentBackwards = TimeWentBackwards()
    public var packets = PacketCounts()
    /// Distinct flows and connections over all backends.
    public var flows = 0
    public var connections = 0
    /// Sorted by backend name.
    public var backends: [BackendLoad] = []
    public var balance = Balance()
    /// In timeline order.
    public var events: [EventResult] = []
    public var timeline: [TimeBucket] = []
    /// Empty unless `--compare-algorithms`; in the order maglev, ring, rendezvous, modulo.
    public var comparison: [AlgorithmResult] = []
    /// Problems met on the way (a truncated capture, say), each one line.
    public var warnings: [String] = []

    public init() {}
}
