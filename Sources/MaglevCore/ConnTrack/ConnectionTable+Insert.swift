extension ConnectionTable {
    /// Records a new flow; returns the index used, or -1 when not recorded.
    ///
    /// If the bucket already holds `hash` (live or expired) that entry is updated in place: a
    /// hash never occupies two ways. Otherwise the flow takes an empty way, else an expired one
    /// (counted in `expired`), else a live victim chosen by this policy:
    ///
    /// 1. the oldest `tcpHalfOpen`, else the oldest `fragment`, else the oldest `datagram`, else
    ///    the oldest `tcpClosing` (each eviction counted by the victim's state);
    /// 2. if all 8 ways are live `tcpEstablished`: nothing is evicted, the insert is refused
    ///    (-1, counted in `insertsRefused`). The caller still forwards the packet by Maglev
    ///    hashing, which sends it to the same backend while membership is unchanged, so refusing
    ///    is safe; and a SYN flood (all `tcpHalfOpen`) can never push out an established flow.
    /// 3. One exception: an insert whose own state is `tcpEstablished` (a mid-stream flow, e.g.
    ///    moved here by an ECMP change) may evict the oldest established entry if that entry has
    ///    been idle for more than half the established timeout (counted in
    ///    `evictedEstablished`). Such an entry is most likely dead (its FIN went through another
    ///    forwarder), while the new flow is certainly alive. Entries active within the last half
    ///    timeout are never evicted, whatever arrives.
    ///
    /// "Oldest" means the longest idle (largest `now - lastSeen`).
    public func insert(hash: UInt64, backend: UInt32, state: ConnectionState, now: UInt32) -> Int {
        precondition(backend <= Self.maxBackend, "backend id \(backend) exceeds 24 bits")
        let fingerprint = Self.fingerprint(hash)
        let first = firstWay(hash)
        let bucket = entries + first
        let new = ConnectionEntry(
            fingerprint: fingerprint, lastSeen: now,
            backendAndState: backend | UInt32(state.rawValue) &<< 24)

        // Pass 1, fingerprints only (cheap): the same hash wins, wherever it lies (a hash never
        // occupies two ways); otherwise the first empty way.
        var emptyWay = -1
        var way = Self.ways &- 1
        while way >= 0 {
            let fp = bucket[way].fingerprint
            if fp == fingerprint {
                if !isLive(bucket[way], now: now) {
                    counters.pointee.expired &+= 1
                    counters.pointee.inserts &+= 1
                }
                bucket[way] = new
                return first &+ way
            }
            if fp == 0 { emptyWay = way }
            way &-= 1
        }
        if emptyWay >= 0 {
            bucket[emptyWay] = new
            counters.pointee.inserts &+= 1
            return first &+ emptyWay
        }

        // Pass 2, every way taken: the first expired way, else the eviction candidate (the
        // largest score, rank then idle time, the first of equals). One unsigned max finds
        // both: key = class << 35 | idle << 3 | (7 - way), where class is the live entry's
        // eviction rank (0-4) or `expiredClass` (above every rank, idle 0, so the first
        // expired way wins).
        let timeouts = timeoutByState
        let rankKeys = evictionKeyByState
        var bestKey: UInt64 = 0
        way = 0
        while way < Self.ways {
            let entry = bucket[way]
            let age = Self.age(entry, now: now)
            let stateIndex = Int(entry.stateRaw & 7)
            let liveKey = rankKeys[stateIndex] | UInt64(UInt32(bitPattern: max(age, 0))) &<< 3
            let key = (age > timeouts[stateIndex] ? Self.expiredClass &<< 35 : liveKey) | UInt64(7 &- way)
            bestKey = max(bestKey, key)
            way &+= 1
        }
        let best = 7 &- Int(bestKey & 7)
        if bestKey >> 35 == Self.expiredClass {
            bucket[best] = new
            counters.pointee.expired &+= 1
            counters.pointee.inserts &+= 1
            return first &+ best
        }

        // Every way is live: evict the best candidate, unless only established entries are left
        // (rule 2), where rule 3 may still allow the oldest.
        let victim = evictionVictim(best: best, score: bestKey >> 3, insertingEstablished: state == .tcpEstablished)
        guard victim >= 0 else {
            counters.pointee.insertsRefused &+= 1
            return -1
        }
        switch bucket[victim].stateRaw {
        case ConnectionState.tcpHalfOpen.rawValue: counters.pointee.evictedHalfOpen &+= 1
        case ConnectionState.fragment.rawValue: counters.pointee.evictedFragment &+= 1
        case ConnectionState.datagram.rawValue: counters.pointee.evictedDatagram &+= 1
        case ConnectionState.tcpClosing.rawValue: counters.pointee.evictedClosing &+= 1
        default: counters.pointee.evictedEstablished &+= 1
        }
        bucket[victim] = new
        counters.pointee.inserts &+= 1
        return first &+ victim
    }

    /// How readily a live entry of a state gives up its way: higher goes first, 0 never (except
    /// under rule 3 of `insert`).
    /// (A nibble per raw value: tcpHalfOpen 4, fragment 3, datagram 2, tcpClosing 1, the rest 0.)
    /// Indexed by the state raw value masked to 3 bits, as `timeoutByState` is (stored states
    /// are 1-5).
    @inline(__always)
    static func evictionRank(stateIndex: Int) -> UInt64 {
        (rankNibbles >> (UInt64(truncatingIfNeeded: stateIndex) &* 4)) & 0xF
    }

    /// `insert`'s class for an expired way: above every eviction rank.
    static let expiredClass: UInt64 = 5

    static let rankNibbles: UInt64 =
        4 << (4 * UInt64(ConnectionState.tcpHalfOpen.rawValue)) | 3 << (4 * UInt64(ConnectionState.fragment.rawValue))
        | 2 << (4 * UInt64(ConnectionState.datagram.rawValue)) | 1 << (4 * UInt64(ConnectionState.tcpClosing.rawValue))

    /// The way to overwrite in a bucket of 8 live entries, given the largest eviction score
    /// among them and its way, or -1 to refuse.
    @inline(__always)
    func evictionVictim(best: Int, score bestScore: UInt64, insertingEstablished: Bool) -> Int {
        if bestScore >> 32 != 0 { return best }
        // Only established entries left: rule 3.
        let halfTimeout = UInt64(timeoutByState[Int(ConnectionState.tcpEstablished.rawValue)] / 2)
        return insertingEstablished && bestScore > halfTimeout ? best : -1
    }
}
