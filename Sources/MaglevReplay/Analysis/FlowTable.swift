import MaglevCore
internal import CLibPcap

/// The analysis's flows: an open-addressing index (linear probing, power-of-two size, at most
/// half full) over the flows in insertion order, keyed by our own flow hash. Flows are only
/// ever added, never removed, so there are no tombstones. Replaces `[Key: Flow]`: one hash per
/// packet (ours, computed once), no Swift `Hasher`; each slot keeps the full hash beside the
/// flow's index, so a lookup reads one slot and one flow (two cache lines) and compares keys
/// only when the hashes agree.
///
/// Memory: the slots are one allocation, and the flows live in chunks of `chunkSize` that never
/// move, all owned by the table (noncopyable: freed in `deinit`), so that a batch can take
/// their addresses to prefetch them without retaining anything. Chunks, not one array: an
/// array's doublings copied every flow again and faulted in twice the memory (the copies and
/// faults were ~6% of a replay of 100,000 flows); a new chunk copies nothing and touches only
/// the memory flows are written to.
struct FlowTable: ~Copyable {
    struct Slot {
        var hash: UInt64
        /// Index of the flow + 1 (0: empty).
        var index: Int32
    }

    static let chunkShift = 12
    static let chunkSize = 1 << chunkShift

    /// The flows' chunks: flow `i` is `chunks[i >> chunkShift][i & (chunkSize - 1)]`; the
    /// first `count` flows are initialised.
    private var chunks: [UnsafeMutablePointer<ReplayAnalysis.Flow>] = []
    /// Flows in the table.
    private(set) var count = 0
    private var slots: UnsafeMutableBufferPointer<Slot>
    private var mask: Int

    init(capacity: Int = 1 << 12) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = FlowTable.emptySlots(size)
        mask = size - 1
    }

    deinit {
        for (c, chunk) in chunks.enumerated() {
            chunk.deinitialize(count: min(FlowTable.chunkSize, count - c << FlowTable.chunkShift))
            chunk.deallocate()
        }
        slots.deallocate()
    }

    private static func emptySlots(_ count: Int) -> UnsafeMutableBufferPointer<Slot> {
        let slots = UnsafeMutableBufferPointer<Slot>.allocate(capacity: count)
        slots.initialize(repeating: Slot(hash: 0, index: 0))
        return slots
    }

    /// Where flow `i` (`0..<count`) lives.
    @inline(__always)
    private func address(_ i: Int) -> UnsafeMutablePointer<ReplayAnalysis.Flow> {
        chunks[i &>> FlowTable.chunkShift] + (i & (FlowTable.chunkSize &- 1))
    }

    /// Flow `i`, in insertion order (`0..<count`), read and changed in place.
    subscript(i: Int) -> ReplayAnalysis.Flow {
        unsafeAddress {
            precondition(i >= 0 && i < count, "FlowTable index out of range")
            return UnsafePointer(address(i))
        }
        nonmutating unsafeMutableAddress {
            precondition(i >= 0 && i < count, "FlowTable index out of range")
            return address(i)
        }
    }

    /// `FlowHash.hash(key, seed: 0x5EED)`, inlined, with its IPv4 lane computed once.
    @inline(__always)
    static func hash(_ key: FlowKey) -> UInt64 { FlowHash.hash(key, seed: 0x5EED, zeroHighLane: zeroHighLane) }
    static let zeroHighLane = FlowHash.zeroHighLane(seed: 0x5EED)

    /// The index of `key`'s flow (`key` hashed to `hash`), or nil.
    @inline(__always)
    func find(_ key: FlowKey, hash: UInt64) -> Int? {
        var s = Int(truncatingIfNeeded: hash) & mask
        while true {
            let slot = slots[s]
            if slot.index == 0 { return nil }
            if slot.hash == hash && FlowTable.same(address(Int(slot.index) - 1).pointee.key, key) {
                return Int(slot.index) - 1
            }
            s = (s + 1) & mask
        }
    }

    /// `a == b` (every stored field, as the synthesized `==`), inlined: the synthesized one is
    /// a call into MaglevCore on every packet.
    @inline(__always)
    static func same(_ a: FlowKey, _ b: FlowKey) -> Bool {
        a.source.low == b.source.low && a.destination.low == b.destination.low && a.source.high == b.source.high
            && a.destination.high == b.destination.high && a.sourcePort == b.sourcePort
            && a.destinationPort == b.destinationPort && a.proto == b.proto && a.source.isIPv6 == b.source.isIPv6
            && a.destination.isIPv6 == b.destination.isIPv6
    }

    /// Starts fetching `hash`'s first slot (`maglev_prefetch`: a hint, no wait), so that the
    /// replay can start a packet's lookup as it batches the packet.
    @inline(__always)
    func prefetchSlot(hash: UInt64) {
        maglev_prefetch(slots.baseAddress! + (Int(truncatingIfNeeded: hash) & mask))
    }

    /// Starts fetching the flow in `hash`'s first slot, if any (reads the slot: after
    /// `prefetchSlot`).
    @inline(__always)
    func prefetchFlow(hash: UInt64) {
        let index = Int(slots[Int(truncatingIfNeeded: hash) & mask].index)
        if index != 0 { maglev_prefetch(address(index &- 1)) }
    }

    /// Adds a flow whose key is not present yet (`hash`: its key's `FlowTable.hash`).
    mutating func insert(_ flow: ReplayAnalysis.Flow, hash: UInt64) {
        if (count + 1) * 2 > slots.count { grow() }
        if count == chunks.count << FlowTable.chunkShift {
            chunks.append(.allocate(capacity: FlowTable.chunkSize))
        }
        address(count).initialize(to: flow)
        count += 1
        place(Slot(hash: hash, index: Int32(truncatingIfNeeded: count)))
    }

    private mutating func place(_ slot: Slot) {
        var s = Int(truncatingIfNeeded: slot.hash) & mask
        while slots[s].index != 0 { s = (s + 1) & mask }
        slots[s] = slot
    }

    private mutating func grow() {
        let old = slots
        slots = FlowTable.emptySlots(old.count * 2)
        mask = slots.count - 1
        for slot in old where slot.index != 0 { place(slot) }
        old.deallocate()
    }
}
