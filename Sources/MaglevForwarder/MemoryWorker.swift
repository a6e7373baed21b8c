import MaglevCore
import MaglevLinux

/// The in-memory packet I/O engine: a worker with no sockets, no ring and no root. Frames are
/// queued with `inject`, and each `turn()` does what a live loop turn does: completes the
/// previous turn's sends (their buffers come back), receives a batch into free buffers (with
/// `headroom` bytes in front, as the live engines reserve), runs the same between-batches step
/// (`betweenBatches`: snapshot and next-hop install, statistics) and the same per-batch step
/// (`BatchSender.forward`) as the io_uring and mmsg loops, and records what was sent and how.
///
/// It also keeps the buffer books: every slot of a batch must get exactly one of `sendFrame`,
/// `sendRaw` or `release`; a buffer sent or released twice, or still held after its batch
/// (leaked), is recorded in `violations`. Tests only; never on a live path.
final class MemoryWorker: PacketEngineWorker {
    enum Route: Equatable { case frame, raw4, raw6 }

    struct Output: Equatable {
        var route: Route
        /// The bytes sent: a whole frame (`frame`) or an IP packet.
        var bytes: [UInt8]
        /// The `sockaddr_ll` a frame went to (empty for raw sends).
        var address: [UInt8]
        var buffer: Int
        var turn: UInt64
    }

    enum BufferState: Equatable { case free, received, inFlight }

    let link: WorkerLink
    let mailbox: SnapshotMailbox
    let cpu: Int? = nil
    let dataplane: Dataplane
    let frames: WorkerFrames
    var installedGeneration: UInt64
    var filterMode: VIPFilter.Mode
    var io = IOCounters()
    var ioModeName: String { "memory" }
    var hasIPv6: Bool

    let headroom: Int
    let bufferSize: Int
    let batchLimit: Int
    private let memory: UnsafeMutableRawPointer
    private(set) var states: [BufferState]
    private var freeBuffers: [Int]
    private let slots: UnsafeMutableBufferPointer<PacketSlot>
    private var slotBuffers: [Int]
    private var slotCalls: [Int]
    private var queue: [[UInt8]] = []
    private var queueHead = 0
    private var inFlight: [Int] = []
    private var batchCount = 0
    private var clock: UInt64 = 1_000_000_000

    /// Everything sent, in order (when `recordsOutputs`).
    private(set) var outputs: [Output] = []
    /// Whether sends are copied into `outputs`. Off, a send only moves its buffer's state and
    /// counts its route (`sentByRoute`), allocating nothing: the allocation test measures whole
    /// turns that way.
    var recordsOutputs = true
    /// Sends per route: frame, raw4, raw6.
    private(set) var sentByRoute = (frame: 0, raw4: 0, raw6: 0)
    /// Broken buffer rules, in words; empty when the books balance.
    private(set) var violations: [String] = []
    /// Filters attached between batches, in order.
    private(set) var attachedFilters: [[BPFInstruction]] = []
    /// Makes the next filter attachments fail (as a kernel refusal would).
    var failFilterAttach = false
    /// What `takeKernelDrops` reports next (then reset).
    var pendingKernelDrops: UInt64 = 0

    init(
        link: WorkerLink, mailbox: SnapshotMailbox, nextHops: NextHopMailbox, framesOn: Bool = true,
        hasIPv6: Bool = true, bufferCount: Int = 64, bufferSize: Int = 2048, headroom: Int = 120,
        batchLimit: Int = 32, connectionCapacity: Int = 1 << 12
    ) {
        precondition(headroom + 14 >= Dataplane.requiredHeadroom && bufferSize > headroom)
        self.link = link
        self.mailbox = mailbox
        let generation = mailbox.generation.load(ordering: .acquiring)
        let published = mailbox.current
        installedGeneration = generation
        filterMode = published.filterMode
        dataplane = Dataplane(snapshot: published.snapshot, connectionCapacity: connectionCapacity)
        frames = WorkerFrames(inMemory: nextHops, on: framesOn)
        self.hasIPv6 = hasIPv6
        self.headroom = headroom
        self.bufferSize = bufferSize
        self.batchLimit = batchLimit
        memory = .allocate(byteCount: bufferCount * bufferSize, alignment: 64)
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: bufferCount * bufferSize)
        states = Array(repeating: .free, count: bufferCount)
        freeBuffers = Array((0..<bufferCount).reversed())
        slots = .allocate(capacity: batchLimit)
        slots.initialize(repeating: PacketSlot(base: memory, offset: 0, length: 0))
        slotBuffers = Array(repeating: -1, count: batchLimit)
        slotCalls = Array(repeating: 0, count: batchLimit)
        inFlight.reserveCapacity(bufferCount)
        freeBuffers.reserveCapacity(bufferCount)
    }

    deinit {
        memory.deallocate()
        slots.deallocate()
    }

    func attachFilter(_ filter: [BPFInstruction]) throws(SystemError) {
        if failFilterAttach { throw SystemError(call: "setsockopt(SO_ATTACH_FILTER) (in memory)", errno: 22) }
        attachedFilters.append(filter)
    }

    func takeKernelDrops() -> UInt64? {
        defer { pendingKernelDrops = 0 }
        return pendingKernelDrops
    }

    /// Queues frames (Ethernet) to be received by the next turns.
    func inject(_ frames: [[UInt8]]) { queue.append(contentsOf: frames) }

    /// Frames injected and not received yet.
    var waiting: Int { queue.count - queueHead }
    /// Buffers held by sends not completed yet.
    var inFlightCount: Int { inFlight.count }
    var freeCount: Int { freeBuffers.count }

    /// One loop turn (`PacketEngineWorker.turn`, as the live loops) at time `now`; returns the
    /// batch size.
    @discardableResult
    func turn(now: UInt64) -> Int {
        clock = now
        return turn()
    }

    var batchSlots: UnsafeMutableBufferPointer<PacketSlot> { slots }

    func batchTime() -> UInt64 { clock }

    /// Completes the previous turn's sends, then takes up to `batchLimit` queued frames into
    /// free buffers (counting `bufferRingEmpty` when they run out first).
    func receiveBatch() -> Int {
        completeSends()
        var count = 0
        while count < batchLimit && queueHead < queue.count {
            guard let id = freeBuffers.popLast() else {
                io.bufferRingEmpty &+= 1
                break
            }
            let frame = queue[queueHead]
            queueHead += 1
            let room = bufferSize - headroom
            let length = min(frame.count, room)
            if frame.count > room { io.truncated &+= 1 }
            let base = memory + id * bufferSize
            frame.withUnsafeBytes { (base + headroom).copyMemory(from: $0.baseAddress!, byteCount: length) }
            states[id] = .received
            slots[count] = PacketSlot(base: base, offset: headroom, length: length)
            slotBuffers[count] = id
            slotCalls[count] = 0
            count += 1
        }
        batchCount = count
        return count
    }

    /// Checks the books: every slot got exactly one call, no buffer is still held.
    func finishBatch() {
        for i in 0..<batchCount {
            if slotCalls[i] != 1 { violations.append("turn \(io.turns): slot \(i) got \(slotCalls[i]) calls") }
            if states[slotBuffers[i]] == .received {
                violations.append("turn \(io.turns): buffer \(slotBuffers[i]) leaked (neither sent nor released)")
            }
        }
        batchCount = 0
    }

    /// Turns until every injected frame was received and every send completed.
    func drain(now: UInt64 = 1_000_000_000) {
        var guardTurns = 0
        while waiting > 0 || !inFlight.isEmpty {
            turn(now: now)
            guardTurns += 1
            precondition(guardTurns < 1_000_000)
        }
    }

    private func completeSends() {
        for k in 0..<inFlight.count {
            let id = inFlight[k]
            if states[id] != .inFlight { violations.append("buffer \(id) completed while \(states[id])") }
            states[id] = .free
            freeBuffers.append(id)
        }
        io.sent &+= UInt64(inFlight.count)
        inFlight.removeAll(keepingCapacity: true)
    }

    private func take(slot: Int, sending: Bool) -> Int {
        slotCalls[slot] += 1
        let id = slotBuffers[slot]
        if states[id] != .received {
            violations.append("turn \(io.turns): buffer \(id) \(sending ? "sent" : "released") while \(states[id])")
        }
        return id
    }

    func sendFrame(slot: Int, offset: Int, length: Int, address: UnsafeRawPointer) {
        let id = take(slot: slot, sending: true)
        states[id] = .inFlight
        inFlight.append(id)
        sentByRoute.frame += 1
        guard recordsOutputs else { return }
        let bytes = [UInt8](UnsafeRawBufferPointer(start: slots[slot].base + offset, count: length))
        let a = [UInt8](UnsafeRawBufferPointer(start: address, count: LinkHeaders.addressLength))
        outputs.append(Output(route: .frame, bytes: bytes, address: a, buffer: id, turn: io.turns))
    }

    func sendRaw(slot: Int, offset: Int, length: Int, ipv6: Bool) {
        let id = take(slot: slot, sending: true)
        states[id] = .inFlight
        inFlight.append(id)
        if ipv6 { sentByRoute.raw6 += 1 } else { sentByRoute.raw4 += 1 }
        guard recordsOutputs else { return }
        let bytes = [UInt8](UnsafeRawBufferPointer(start: slots[slot].base + offset, count: length))
        outputs.append(Output(route: ipv6 ? .raw6 : .raw4, bytes: bytes, address: [], buffer: id, turn: io.turns))
    }

    func release(slot: Int) {
        let id = take(slot: slot, sending: false)
        if states[id] == .received {
            states[id] = .free
            freeBuffers.append(id)
        }
    }

    /// A released held fragment (from the data plane's memory, no buffer of ours): recorded
    /// with buffer -1.
    func sendNow(_ packet: UnsafeRawBufferPointer, ipv6: Bool) {
        if ipv6 { sentByRoute.raw6 += 1 } else { sentByRoute.raw4 += 1 }
        io.sent &+= 1
        guard recordsOutputs else { return }
        outputs.append(Output(route: ipv6 ? .raw6 : .raw4, bytes: [UInt8](packet), address: [], buffer: -1, turn: io.turns))
    }
}
