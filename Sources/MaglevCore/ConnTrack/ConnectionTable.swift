/// One way of a bucket: 16 bytes, so a bucket of 8 ways is 128 bytes (two cache lines).
///
///     bytes 0-7    fingerprint      the flow's 64-bit hash; 0 = empty (a hash of 0 is stored as 1)
///     bytes 8-11   lastSeen         milliseconds, wrapping
///     bytes 12-15  backendAndState  low 24 bits backend id, high 8 bits ConnectionState raw value
struct ConnectionEntry {
    var fingerprint: UInt64
    var lastSeen: UInt32
    var backendAndState: UInt32

    static let empty = ConnectionEntry(fingerprint: 0, lastSeen: 0, backendAndState: 0)

    @inline(__always)
    var backend: UInt32 { backendAndState & ConnectionTable.maxBackend }

    @inline(__always)
    var stateRaw: UInt8 { UInt8(truncatingIfNeeded: backendAndState >> 24) }
}

/// Counters of a `ConnectionTable`. Every insert ends in exactly one of: a new entry (`inserts`),
/// an update of a live entry with the same hash (not counted), or a refusal (`insertsRefused`).
public struct ConnectionTableStatistics: Sendable, Equatable {
    /// New entries recorded (in an empty, expired or evicted way).
    public var inserts: UInt64
    /// Inserts not recorded because the bucket held only protected (established) entries.
    public var insertsRefused: UInt64
    /// Expired entries reclaimed (by an insert reusing the way, or by `removeExpired`).
    public var expired: UInt64
    /// Live entries pushed out of a full bucket, by the victim's state.
    public var evictedHalfOpen: UInt64
    public var evictedDatagram: UInt64
    public var evictedClosing: UInt64
    public var evictedFragment: UInt64
    public var evictedEstablished: UInt64

    public init(
        inserts: UInt64 = 0, insertsRefused: UInt64 = 0, expired: UInt64 = 0,
        evictedHalfOpen: UInt64 = 0, evictedDatagram: UInt64 = 0, evictedClosing: UInt64 = 0,
        evictedFragment: UInt64 = 0, evictedEstablished: UInt64 = 0
    ) {
        self.inserts = inserts
        self.insertsRefused = insertsRefused
        self.expired = expired
        self.evictedHalfOpen = evictedHalfOpen
        self.evictedDatagram = evictedDatagram
        self.evictedClosing = evictedClosing
        self.evictedFragment = evictedFragment
        self.evictedEstablished = evictedEstablished
    }
}

/// A per-worker connection table: which backend each recent flow went to, so that flows stay
/// put when the backend set changes (Maglev paper §3.3). The same type, with entries in state
/// `.fragment`, serves as the fragment table.
///
/// Layout: a fixed number of buckets (a power of two) of 8 ways each, one allocation made in
/// `init` and never grown. A flow lives in bucket `hash & bucketMask` (the hash's LOW bits;
/// Maglev slots use the high 32 bits, so the two are independent) and is matched by its full
/// 64-bit hash (0 is stored as 1; it still lands in bucket 0, so it can only meet hash 1 in a
/// one-bucket table). Two live flows with equal 64-bit hashes would share an entry: among a
/// million live flows the chance is about 2^-25, and the only effect is that one flow follows
/// the other's backend.
///
/// Sizing: a full bucket turns new flows away (or evicts) while other buckets have room. Measured
/// with random hashes, 734k established flows into 1M entries (70% load) had 3.9% of inserts
/// refused; give the table some 1.5-2x headroom over the live flows you expect.
///
/// Time is the caller's: milliseconds in a `UInt32` that may wrap. An entry's age is
/// `now &- lastSeen` read as a signed 32-bit number, so the table survives wraparound and a
/// clock that steps back a little (replayed captures) makes entries younger, never expired.
/// The price: an entry left idle for more than 2^31 ms (24.8 days) could look alive again.
/// Call `removeExpired(now:)` between batches more often than that (say hourly) to rule it out.
///
/// Per-packet methods (`find`, the accessors, `refresh`, `reassign`, `insert`, `remove`)
/// allocate nothing, take no locks, never throw and read no clock. One table per worker: the
/// class is deliberately not `Sendable`.
///
/// Unsafe code: `entries` points at `capacity` initialised entries, 128-byte aligned, owned by
/// the table; every index handed out or accepted is checked to lie in `0..<capacity`.
public final class ConnectionTable {
    /// The largest backend id an entry can hold (24 bits).
    public static let maxBackend: UInt32 = 0xFF_FFFF
    /// Ways per bucket.
    static let ways = 8

    let entries: UnsafeMutablePointer<ConnectionEntry>
    let bucketMask: UInt64
    /// Timeout in ms per state raw value (index 0, 6 and 7 unused), as signed ages.
    let timeoutByState: UnsafeMutablePointer<Int32>
    /// `insert`'s eviction rank per state raw value (indexed as `timeoutByState`), shifted into
    /// place for its scoring key (`rank << 35`).
    let evictionKeyByState: UnsafeMutablePointer<UInt64>
    /// Counters live outside the object so that bumping them needs no exclusivity check.
    let counters: UnsafeMutablePointer<ConnectionTableStatistics>

    /// Number of entries (ways), a power of two and a multiple of 8.
    public let capacity: Int
    let memory: TableMemory

    /// Idle timeouts per state; may be changed at any time (hot reload). A shorter timeout
    /// takes effect at once for lookups; entries are not rewritten.
    public var timeouts: ConnectionTimeouts {
        didSet { Self.fill(timeoutByState, from: timeouts) }
    }

    /// Bytes of table storage per entry.
    public static var bytesPerEntry: Int { MemoryLayout<ConnectionEntry>.stride }

    /// Bytes of entry storage this table holds (capacity times `bytesPerEntry`).
    public var byteCount: Int { capacity &* Self.bytesPerEntry }

    /// A table for at least `capacity` entries (at least 8), rounded up to a power-of-two number
    /// of 8-way buckets. All memory is allocated here (entries from `memory`), zeroed.
    public init(capacity: Int, timeouts: ConnectionTimeouts = .init(), memory: TableMemory = .heap) {
        precondition(
            capacity >= Self.ways && capacity <= 1 << 32,
            "ConnectionTable capacity must be in 8...2^32, got \(capacity)")
        var buckets = 1
        while buckets &* Self.ways < capacity { buckets &<<= 1 }
        self.capacity = buckets &* Self.ways
        self.bucketMask = UInt64(buckets &- 1)
        self.timeouts = timeouts

        self.memory = memory
        let raw = memory.allocate(self.capacity &* MemoryLayout<ConnectionEntry>.stride)
        // `.empty` is all zero bits, which zero-filled memory holds already.
        self.entries =
            memory.zeroFilled
            ? raw.bindMemory(to: ConnectionEntry.self, capacity: self.capacity)
            : raw.initializeMemory(as: ConnectionEntry.self, repeating: .empty, count: self.capacity)
        self.timeoutByState = .allocate(capacity: 8)
        timeoutByState.initialize(repeating: 0, count: 8)
        Self.fill(timeoutByState, from: timeouts)
        self.evictionKeyByState = .allocate(capacity: 8)
        for index in 0..<8 { evictionKeyByState[index] = Self.evictionRank(stateIndex: index) &<< 35 }
        self.counters = .allocate(capacity: 1)
        counters.initialize(to: ConnectionTableStatistics())
    }

    deinit {
        entries.deinitialize(count: capacity)
        memory.deallocate(UnsafeMutableRawPointer(entries), capacity &* MemoryLayout<ConnectionEntry>.stride)
        timeoutByState.deallocate()
        evictionKeyByState.deallocate()
        counters.deallocate()
    }

    private static func fill(_ table: UnsafeMutablePointer<Int32>, from t: ConnectionTimeouts) {
        for state in ConnectionState.allCases {
            table[Int(state.rawValue)] = Int32(clamping: t.timeout(for: state))
        }
    }

    /// The counters so far.
    public var statistics: ConnectionTableStatistics { counters.pointee }

    // MARK: - Per-packet operations

    @inline(__always)
    static func fingerprint(_ hash: UInt64) -> UInt64 { hash == 0 ? 1 : hash }

    /// Index of the first way of `hash`'s bucket.
    @inline(__always)
    func firstWay(_ hash: UInt64) -> Int {
        Int(truncatingIfNeeded: hash & bucketMask) &<< 3
    }

    /// Idle time of `entry` at `now`; negative when `lastSeen` lies ahead of `now`.
    @inline(__always)
    static func age(_ entry: ConnectionEntry, now: UInt32) -> Int32 {
        Int32(bitPattern: now &- entry.lastSeen)
    }

    /// Whether a non-empty `entry` is still alive at `now`.
    @inline(__always)
    func isLive(_ entry: ConnectionEntry, now: UInt32) -> Bool {
        Self.age(entry, now: now) <= timeoutByState[Int(entry.stateRaw & 7)]
    }

    @inline(__always)
    func checkIndex(_ index: Int) {
        precondition(UInt(bitPattern: index) < UInt(bitPattern: capacity), "ConnectionTable index out of range")
    }

    /// Finds a live entry; returns its index or -1. Does not refresh it.
    @inline(__always)
    public func find(hash: UInt64, now: UInt32) -> Int {
        let fingerprint = Self.fingerprint(hash)
        let first = firstWay(hash)
        let bucket = entries + first
        var way = 0
        while way < Self.ways {
            if bucket[way].fingerprint == fingerprint {
                return isLive(bucket[way], now: now) ? first &+ way : -1
            }
            way &+= 1
        }
        return -1
    }

    /// Starts loading both cache lines of `hash`'s bucket (a miss scans all 8 ways, and a hit
    /// on ways 4-7 reads the second line); returns at once.
    @inline(__always)
    func prefetchBucket(hash: UInt64) {
        let bucket = UnsafeRawPointer(entries + firstWay(hash))
        prefetch(bucket)
        prefetch(bucket + 64)
    }

    /// The start of `hash`'s bucket, for a caller to prefetch.
    @inline(__always)
    func bucketAddress(hash: UInt64) -> UnsafeRawPointer { UnsafeRawPointer(entries + firstWay(hash)) }

    /// The backend id of the entry at `index`.
    @inline(__always)
    public func backend(at index: Int) -> UInt32 {
        checkIndex(index)
        return entries[index].backend
    }

    /// The state of the entry at `index`, which must not be empty.
    @inline(__always)
    public func state(at index: Int) -> ConnectionState {
        checkIndex(index)
        guard let state = ConnectionState(rawValue: entries[index].stateRaw) else {
            preconditionFailure("ConnectionTable.state(at:) on an empty way")
        }
        return state
    }

    /// `find(hash:now:)`, answered with the live entry itself (nil: none), for a
    /// connection-table hit that reads it once: `backendAndStateRaw(of:)`, then
    /// `refresh(_:backend:stateRaw:now:)`, `reassign(_:backend:state:now:)` or `remove(_:)`. The
    /// pointer lies inside the table by construction (its bucket's ways), so none of the index
    /// checks of the `at:` accessors is needed; it is valid until the table goes.
    @inline(__always)
    func findEntry(hash: UInt64, now: UInt32) -> UnsafeMutablePointer<ConnectionEntry>? {
        let fingerprint = Self.fingerprint(hash)
        let bucket = entries + firstWay(hash)
        var way = 0
        while way < Self.ways {
            if bucket[way].fingerprint == fingerprint {
                return isLive(bucket[way], now: now) ? bucket + way : nil
            }
            way &+= 1
        }
        return nil
    }

    /// Backend and state raw value of a non-empty entry (from `findEntry`), from one load. The
    /// raw value, not a `ConnectionState`: only this table writes it, always from a state, so the
    /// hit path compares raw values instead of checking the conversion on every packet.
    @inline(__always)
    static func backendAndStateRaw(of entry: UnsafeMutablePointer<ConnectionEntry>) -> (UInt32, UInt8) {
        let raw = entry.pointee.backendAndState
        return (raw & maxBackend, UInt8(truncatingIfNeeded: raw >> 24))
    }

    /// `refresh(at:state:now:)` for an entry from `findEntry(hash:now:)` whose backend is
    /// `backend`; `stateRaw` is a `ConnectionState`'s raw value (one `backendAndStateRaw` read).
    @inline(__always)
    static func refresh(_ entry: UnsafeMutablePointer<ConnectionEntry>, backend: UInt32, stateRaw: UInt8, now: UInt32) {
        entry.pointee.lastSeen = now
        entry.pointee.backendAndState = backend | UInt32(stateRaw) &<< 24
    }

    /// Refreshes lastSeen and moves the entry to `state` (pass its current state to keep it).
    @inline(__always)
    public func refresh(at index: Int, state: ConnectionState, now: UInt32) {
        checkIndex(index)
        let entry = entries + index
        entry.pointee.lastSeen = now
        entry.pointee.backendAndState = entry.pointee.backend | UInt32(state.rawValue) &<< 24
    }

    /// `reassign(at:backend:state:now:)` for an entry from `findEntry(hash:now:)`.
    @inline(__always)
    static func reassign(_ entry: UnsafeMutablePointer<ConnectionEntry>, backend: UInt32, state: ConnectionState, now: UInt32) {
        precondition(backend <= Self.maxBackend, "backend id \(backend) exceeds 24 bits")
        entry.pointee.lastSeen = now
        entry.pointee.backendAndState = backend | UInt32(state.rawValue) &<< 24
    }

    /// Points an existing entry at another backend (reselection) and refreshes it.
    @inline(__always)
    public func reassign(at index: Int, backend: UInt32, state: ConnectionState, now: UInt32) {
        checkIndex(index)
        precondition(backend <= Self.maxBackend, "backend id \(backend) exceeds 24 bits")
        let entry = entries + index
        entry.pointee.lastSeen = now
        entry.pointee.backendAndState = backend | UInt32(state.rawValue) &<< 24
    }

    /// `remove(at:)` for an entry from `findEntry(hash:now:)`.
    @inline(__always)
    static func remove(_ entry: UnsafeMutablePointer<ConnectionEntry>) { entry.pointee = .empty }

    /// Empties the way at `index`.
    @inline(__always)
    public func remove(at index: Int) {
        checkIndex(index)
        entries[index] = .empty
    }

    // MARK: - Control-side operations, O(capacity)

    /// Removes every entry pointing at `backend` (a backend that failed or left), live or
    /// expired; returns how many were removed. O(capacity).
    public func removeAll(backend: UInt32) -> Int {
        var removed = 0
        for index in 0..<capacity where entries[index].fingerprint != 0 && entries[index].backend == backend {
            entries[index] = .empty
            removed &+= 1
        }
        return removed
    }

    /// Empties every expired entry (counted in `expired`) and returns how many. O(capacity).
    /// Not needed for correctness within 24.8 days of idleness; see the type's documentation.
    public func removeExpired(now: UInt32) -> Int {
        var removed = 0
        for index in 0..<capacity where entries[index].fingerprint != 0 && !isLive(entries[index], now: now) {
            entries[index] = .empty
            removed &+= 1
        }
        counters.pointee.expired &+= UInt64(removed)
        return removed
    }

    /// Number of live entries at `now`. O(capacity), for reports and tests.
    public func liveCount(now: UInt32) -> Int {
        var live = 0
        for index in 0..<capacity where entries[index].fingerprint != 0 && isLive(entries[index], now: now) {
            live &+= 1
        }
        return live
    }

    /// Live entries per backend id at `now`, added into `counts` (grown to fit); returns the
    /// live total. O(capacity): control side only (statistics requests between batches).
    public func addLiveCounts(now: UInt32, into counts: inout [UInt64]) -> Int {
        var live = 0
        for index in 0..<capacity where entries[index].fingerprint != 0 && isLive(entries[index], now: now) {
            let b = Int(entries[index].backend)
            if b >= counts.count { counts.append(contentsOf: repeatElement(0, count: b + 1 - counts.count)) }
            counts[b] &+= 1
            live &+= 1
        }
        return live
    }

    /// Debug check: no bucket holds the same fingerprint twice, and every stored state is valid.
    func invariantsHold() -> Bool {
        var bucketStart = 0
        while bucketStart < capacity {
            for a in bucketStart..<bucketStart + Self.ways where entries[a].fingerprint != 0 {
                if ConnectionState(rawValue: entries[a].stateRaw) == nil { return false }
                for b in (a + 1)..<(bucketStart + Self.ways) where entries[b].fingerprint == entries[a].fingerprint {
                    return false
                }
            }
            bucketStart += Self.ways
        }
        return true
    }
}
