import MaglevCore
import MaglevLinux
import Synchronization

/// What every worker loop (io_uring, mmsg, the in-memory `MemoryWorker`) shares between
/// batches: installing a published snapshot and next-hop table, and publishing its statistics.
/// Never called per packet.
protocol WorkerControl: AnyObject {
    var link: WorkerLink { get }
    var mailbox: SnapshotMailbox { get }
    var cpu: Int? { get }
    var dataplane: Dataplane { get }
    /// The `--send packet` side: next-hop headers (and, live, the AF_PACKET socket).
    var frames: WorkerFrames { get }
    var installedGeneration: UInt64 { get set }
    var filterMode: VIPFilter.Mode { get set }
    var io: IOCounters { get set }
    /// How packets move: the io_uring mode, or "mmsg".
    var ioModeName: String { get }
    /// Attaches a published socket filter to the receive side (between batches).
    func attachFilter(_ filter: [BPFInstruction]) throws(SystemError)
    /// Frames the receive side dropped since the last call (`PACKET_STATISTICS`), nil when it
    /// cannot say.
    func takeKernelDrops() -> UInt64?
}

extension WorkerControl {
    /// Installs the mailbox's snapshot (and its socket filter) between batches.
    func install(_ generation: UInt64) {
        let published = mailbox.current
        installedGeneration = generation
        dataplane.install(published.snapshot)
        io.snapshotsInstalled &+= 1
        do {
            try attachFilter(published.filter)
            filterMode = published.filterMode
        } catch {
            io.filterUpdateErrors &+= 1
        }
    }

    /// Hands the batch's tracer records, if it held probes, to the trace reporter (one check of
    /// a count when it held none; a short lock and a copy when it did).
    @inline(__always)
    func handOffTraces() {
        dataplane.takeTraces { link.traces.push($0) }
    }

    /// Between batches, every loop turn: a newly published snapshot or next-hop table, a
    /// statistics request (relaxed loads when there is nothing new).
    @inline(__always)
    func betweenBatches() {
        let generation = mailbox.generation.load(ordering: .acquiring)
        if generation != installedGeneration { install(generation) }
        frames.installIfPublished()
        if link.statisticsRequested.load(ordering: .relaxed) != link.statisticsServed.load(ordering: .relaxed) {
            publishStatistics()
        }
    }

    /// Hands the control side a copy of this worker's counters when it asked for one.
    func publishStatistics() {
        let requested = link.statisticsRequested.load(ordering: .relaxed)
        if let drops = takeKernelDrops() { io.kernelDrops &+= drops }
        var s = WorkerStatistics(
            worker: link.id, cpu: cpu, ringMode: ioModeName, filterMode: filterMode.rawValue,
            dataplane: dataplane.statistics, io: io, connections: dataplane.connections.statistics)
        if link.connectionCountsRequested.load(ordering: .relaxed) {
            let nowMs = UInt32(truncatingIfNeeded: MonotonicClock.now() / 1_000_000)
            s.liveConnections = dataplane.connections.addLiveCounts(now: nowMs, into: &s.connectionsByBackend)
        }
        s.connectionCapacity = dataplane.connections.capacity
        link.statistics.withLock { $0 = s }
        link.statisticsServed.store(requested, ordering: .releasing)
    }
}

/// Where one batch's outputs go: the per-packet half of a packet I/O engine. Slots are indexes
/// into the batch just processed; offsets are relative to the slot's `base`. Every slot of a
/// batch gets exactly one call: `sendFrame`, `sendRaw` or `release` (its buffer is not sent).
/// Implementations must not allocate, lock or throw (they run per packet).
protocol BatchSender: WorkerControl {
    /// Whether IPv6 packets can be sent raw (the host has an IPv6 raw socket).
    var hasIPv6: Bool { get }
    /// A whole Ethernet frame (next-hop header already written) to the `sockaddr_ll` at `address`.
    func sendFrame(slot: Int, offset: Int, length: Int, address: UnsafeRawPointer)
    /// An IP packet through the raw IPv4 or IPv6 socket.
    func sendRaw(slot: Int, offset: Int, length: Int, ipv6: Bool)
    /// Nothing to send for this slot: its buffer goes back.
    func release(slot: Int)
    /// An IP packet from the data plane's own memory (a released held fragment), sent before
    /// the call returns. Rare: fragments whose first fragment came late.
    func sendNow(_ packet: UnsafeRawBufferPointer, ipv6: Bool)
}

extension BatchSender {
    /// The per-batch work every loop shares: counts the batch, runs the data plane on
    /// `slots[0..<count]`, hands off traces, and routes each verdict: forwards as frames when the
    /// backend has a next hop (`--send packet`), else raw (counted as a fallback); ICMP replies
    /// raw; IPv6 without an IPv6 socket, drops and the rest released. Allocation-, lock- and
    /// throw-free (the trace hand-off locks only when the batch held probes).
    @inline(__always)
    func forward(_ slots: UnsafeMutableBufferPointer<PacketSlot>, count: Int, now: UInt64) {
        dataplane.process(batch: UnsafeMutableBufferPointer(rebasing: slots[0..<count]), linkType: .ethernet, now: now)
        handOffTraces()
        // Counted in locals and stored once per batch: `io` is a protocol requirement, and
        // its `modify` accessor is not touched per packet (unspecialized, it can allocate).
        var asFrames: UInt64 = 0
        var fallbacks: UInt64 = 0
        var noIPv6: UInt64 = 0
        let framesOn = frames.isOn
        let ipv6Socket = hasIPv6
        for i in 0..<count {
            let v = slots[i].verdict
            guard v.action == .forward || v.action == .icmpReply || v.action == .redirect else {
                release(slot: i)
                continue
            }
            if v.action == .forward && framesOn {
                if let address = frames.prepareFrame(backend: v.backend, ipHeader: slots[i].base + v.outputOffset) {
                    sendFrame(slot: i, offset: v.outputOffset &- 14, length: v.outputLength &+ 14, address: address)
                    asFrames &+= 1
                    continue
                }
                fallbacks &+= 1
            }
            if v.outputIsIPv6 && !ipv6Socket {
                noIPv6 &+= 1
                release(slot: i)
                continue
            }
            sendRaw(slot: i, offset: v.outputOffset, length: v.outputLength, ipv6: v.outputIsIPv6)
        }
        var c = io
        c.received &+= UInt64(count)
        c.batches &+= 1
        c.sentAsFrames &+= asFrames
        c.nextHopFallbacks &+= fallbacks
        c.noIPv6Socket &+= noIPv6
        io = c
    }

    /// Between batches, while fragments are held: sends those whose first fragment came
    /// (raw IP, now), and lets the data plane drop the expired ones.
    func releaseHeld(now: UInt64) {
        dataplane.releaseHeld(now: now) { held in
            let v = held.verdict
            guard v.action == .forward else { return }
            sendNow(UnsafeRawBufferPointer(start: held.base + v.outputOffset, count: v.outputLength), ipv6: v.outputIsIPv6)
        }
    }
}

/// One worker loop turn over a packet I/O engine: receive a batch (and take back the buffers
/// of completed sends) -> between batches (snapshot, next hops, statistics) -> the data plane
/// and routing (`forward`) -> finish (flush queued sends, hand buffers back). The io_uring
/// loop, the mmsg loop and the in-memory engine all turn through this; their `run` loops only
/// add how they stop.
protocol PacketEngineWorker: BatchSender {
    /// The batch's slots; `receiveBatch` fills `batchSlots[0..<n]`.
    var batchSlots: UnsafeMutableBufferPointer<PacketSlot> { get }
    /// Waits for packets (at most the idle wait), handles completed sends, and fills the slots
    /// with received frames (the IP header after the Ethernet header, headroom in front).
    /// Returns how many; errors are counted, never thrown.
    func receiveBatch() -> Int
    /// The batch's time (monotonic nanoseconds).
    func batchTime() -> UInt64
    /// After the batch was routed: sends what was queued, gives buffers back.
    func finishBatch()
    /// After the last turn, before the final statistics: counts what completed since.
    func settle()
}

extension PacketEngineWorker {
    /// The live engines' batch time: the monotonic clock, read once per batch.
    @inline(__always)
    func batchTime() -> UInt64 { MonotonicClock.now() }

    func settle() {}

    /// Turns until a stop request (seen within one idle wait), statistics published before and
    /// after: the loop of the engines with nothing in flight across turns (mmsg, ring).
    func runUntilStopped() {
        publishStatistics()
        while !link.stopRequested.load(ordering: .relaxed) { turn() }
        settle()
        publishStatistics()
    }

    /// One turn; returns the batch size.
    @inline(__always)
    @discardableResult
    func turn() -> Int {
        var c = io
        c.turns &+= 1
        io = c
        let n = receiveBatch()
        betweenBatches()
        if n > 0 { forward(batchSlots, count: n, now: batchTime()) }
        if dataplane.hasHeld { releaseHeld(now: batchTime()) }
        finishBatch()
        return n
    }
}

/// Pins the calling (worker) thread to `cpu` when one is asked for; returns the CPU it is pinned
/// to, or nil. A failure is not fatal: the worker is reported as unpinned in the statistics.
func pinCallingThread(to cpu: Int?) -> Int? {
    guard let cpu else { return nil }
    do throws(SystemError) {
        try ThreadContext.pin(toCPU: cpu)
        return cpu
    } catch {
        return nil
    }
}

/// The sockets every worker loop opens on its own thread: its packet socket in the fanout group
/// (filtered for the published VIPs) and the raw IP sockets for ICMP replies and `--send raw`
/// (no IPv6 one where the host has no IPv6).
final class WorkerSockets {
    let packet: PacketSocket
    let raw4: RawIPSocket
    let raw6: RawIPSocket
    let hasIPv6: Bool

    init(options: ForwarderOptions, filter: [BPFInstruction]) throws(ForwarderError) {
        let group = options.fanoutGroup ?? UInt16(truncatingIfNeeded: currentProcessID)
        do {
            packet = try PacketSocket(interface: options.interface, fanoutGroup: group, filter: filter)
            raw4 = try RawIPSocket(ipv6: false)
        } catch {
            throw ForwarderError.opening(error, interface: options.interface)
        }
        do {
            raw6 = try RawIPSocket(ipv6: true)
        } catch {
            raw6 = RawIPSocket.unavailable(ipv6: true)
        }
        hasIPv6 = raw6.isOpen
    }

    /// Sends an IP packet through the raw socket of its family, now; counted in `io`.
    func sendNow(_ packet: UnsafeRawBufferPointer, ipv6: Bool, io: inout IOCounters) {
        sendNowThroughRaw(packet, ipv6: ipv6, raw4: raw4, raw6: raw6, io: &io)
    }
}

/// A worker's own data plane for `snapshot`: its connection table backed by transparent huge
/// pages when the options ask for them.
func makeWorkerDataplane(snapshot: ForwardingSnapshot, options: ForwarderOptions) -> Dataplane {
    let memory =
        options.hugePages
        ? TableMemory(allocate: HugePageMemory.allocate, deallocate: HugePageMemory.deallocate, zeroFilled: true) : .heap
    let dataplane = Dataplane(snapshot: snapshot, connectionCapacity: options.connectionCapacity, memory: memory)
    dataplane.memberName = options.memberName
    return dataplane
}

/// Sends an IP packet through `raw4` or `raw6` (by its family) now, counted in `io` (a rare
/// path: released held fragments).
func sendNowThroughRaw(
    _ packet: UnsafeRawBufferPointer, ipv6: Bool, raw4: borrowing RawIPSocket, raw6: borrowing RawIPSocket,
    io: inout IOCounters
) {
    do throws(SystemError) {
        if ipv6 {
            guard raw6.isOpen else {
                io.noIPv6Socket &+= 1
                return
            }
            try raw6.send(packet)
        } else {
            try raw4.send(packet)
        }
        io.sent &+= 1
    } catch {
        io.sendErrors &+= 1
        io.lastSendErrno = error.errno
    }
}
