/// Later fragments waiting for their datagram's first fragment (`fragments: redirect`), owned
/// by one `Dataplane`: a fixed number of slots allocated up front, each with room for one IP
/// packet and the outer headers in front of it. Holding a fragment copies it here, so the
/// driver's buffer is free at once and the core stays pure; releasing it encapsulates it in
/// place and hands the bytes to the driver, which sends them before the call returns.
///
/// Bounded twice: at most `capacity` fragments (more are dropped, `fragment_hold_full`), each
/// for at most the hold timeout (`fragment_hold_expired`). No allocation after `init`.
final class FragmentHold {
    /// Bytes in front of a held packet: outer IPv6 + GRE (44) with room to spare.
    static let headroom = 64

    let capacity: Int
    /// The largest IP packet a slot takes.
    let packetBytes: Int
    let slotBytes: Int
    let memory: UnsafeMutableRawPointer
    /// Per slot: the datagram's fragment hash (src, dst, IP id, protocol), when it was held, its
    /// length (0: free), the driver's tag, and whether its first fragment has arrived.
    let keys: UnsafeMutablePointer<UInt64>
    let heldAtMs: UnsafeMutablePointer<UInt32>
    let lengths: UnsafeMutablePointer<Int>
    let tags: UnsafeMutablePointer<UInt64>
    let ready: UnsafeMutablePointer<Bool>
    /// Slots in use, and those whose first fragment has arrived.
    private(set) var count = 0
    private(set) var readyCount = 0

    init(capacity: Int, packetBytes: Int) {
        self.capacity = max(0, capacity)
        self.packetBytes = packetBytes
        slotBytes = (FragmentHold.headroom + packetBytes + 63) & ~63
        let n = max(1, self.capacity)
        memory = .allocate(byteCount: n * slotBytes, alignment: 64)
        keys = .allocate(capacity: n)
        keys.initialize(repeating: 0, count: n)
        heldAtMs = .allocate(capacity: n)
        heldAtMs.initialize(repeating: 0, count: n)
        lengths = .allocate(capacity: n)
        lengths.initialize(repeating: 0, count: n)
        tags = .allocate(capacity: n)
        tags.initialize(repeating: 0, count: n)
        ready = .allocate(capacity: n)
        ready.initialize(repeating: false, count: n)
    }

    deinit {
        memory.deallocate()
        keys.deallocate()
        heldAtMs.deallocate()
        lengths.deallocate()
        tags.deallocate()
        ready.deallocate()
    }

    /// Whether a packet of `length` bytes can be held now.
    @inline(__always)
    func hasRoom(for length: Int) -> Bool { count < capacity && length <= packetBytes && length > 0 }

    /// The start of slot `i`'s buffer; its packet begins `headroom` bytes in.
    @inline(__always)
    func slot(_ i: Int) -> UnsafeMutableRawPointer { memory + i &* slotBytes }

    /// Copies the IP packet at `packet` (`length` bytes; `hasRoom(for:)` was true) into a free
    /// slot.
    func hold(_ packet: UnsafeRawPointer, length: Int, key: UInt64, nowMs: UInt32, tag: UInt64) {
        for i in 0..<capacity where lengths[i] == 0 {
            (slot(i) + FragmentHold.headroom).copyMemory(from: packet, byteCount: length)
            keys[i] = key
            heldAtMs[i] = nowMs
            lengths[i] = length
            tags[i] = tag
            ready[i] = false
            count &+= 1
            return
        }
    }

    /// The first fragment of datagram `key` has been decided: its held fragments may go.
    func markReady(_ key: UInt64) {
        for i in 0..<capacity where lengths[i] != 0 && !ready[i] && keys[i] == key {
            ready[i] = true
            readyCount &+= 1
        }
    }

    /// Frees slot `i`.
    func free(_ i: Int) {
        if ready[i] { readyCount &-= 1 }
        ready[i] = false
        lengths[i] = 0
        count &-= 1
    }

    /// Whether slot `i` has waited `timeoutMs` or more at `nowMs` (wrapping millisecond clock).
    @inline(__always)
    func expired(_ i: Int, nowMs: UInt32, timeoutMs: UInt32) -> Bool { nowMs &- heldAtMs[i] >= timeoutMs }
}
