import MaglevCore
public import MaglevLinux
import Synchronization

/// What the control side publishes to every worker: a snapshot and the kernel filter for its
/// VIPs. Workers pick it up between batches.
final class SnapshotMailbox: Sendable {
    struct Published: Sendable {
        var snapshot: ForwardingSnapshot
        var filter: [BPFInstruction]
        var filterMode: VIPFilter.Mode
    }

    /// Bumped after each publish; a worker compares it with what it installed (one relaxed
    /// load per loop turn, never per packet).
    let generation = Atomic<UInt64>(1)
    private let slot: Mutex<Published>

    init(_ first: Published) { slot = Mutex(first) }

    /// Control side.
    func publish(_ p: Published) {
        slot.withLock { $0 = p }
        generation.add(1, ordering: .releasing)
    }

    /// The current publication (control side and workers, between batches).
    var current: Published { slot.withLock { $0 } }
}

/// The control side's handle on one worker: start-up outcome, stop request, statistics.
final class WorkerLink: Sendable {
    enum State: Int { case starting = 0, running, failed, finished }

    let id: Int
    let state = Atomic<Int>(State.starting.rawValue)
    let failure = Mutex<ForwarderError?>(nil)
    let stopRequested = Atomic<Bool>(false)
    let statisticsRequested = Atomic<UInt64>(0)
    let statisticsServed = Atomic<UInt64>(0)
    /// The next statistics should count live connections per backend (one table scan).
    let connectionCountsRequested = Atomic<Bool>(false)
    let statistics: Mutex<WorkerStatistics>
    /// Tracer records on their way to the trace reporter.
    let traces = TraceQueue()

    init(id: Int, zero: DataplaneStatistics) {
        self.id = id
        statistics = Mutex(WorkerStatistics(worker: id, cpu: nil, ringMode: "", filterMode: "", dataplane: zero))
    }

    var currentState: State { State(rawValue: state.load(ordering: .acquiring)) ?? .failed }
}

/// How a worker moves packets between the kernel and the data plane.
public enum ForwarderIO: String, Sendable, CaseIterable {
    /// io_uring: multishot `RECVMSG` into provided buffers, one `SENDMSG` SQE per packet
    /// (`Worker`). The default.
    case ioUring = "io_uring"
    /// `recvmmsg` / `sendmmsg` in batches of 64 (`MmsgWorker`).
    case mmsg
    /// A `TPACKET_V3` receive ring mapped into the worker, sends batched through io_uring
    /// (`RingWorker`).
    case ring
    /// The same with a `TPACKET_V2` receive ring: a slot per frame, each the worker's as soon as
    /// it is in (no block to fill or retire first).
    case ringFrames = "ring-frames"
    /// AF_XDP: an XDP program steers VIP traffic to one XSK socket per receive queue (worker i
    /// owns queue i), frames in a UMEM with headroom, sends from the same UMEM (`XDPWorker`).
    case xdp
}

/// Settings of the live forwarder that are not part of the forwarding config.
public struct ForwarderOptions: Sendable {
    /// The interface packets for the VIPs arrive on.
    public var interface: String
    public var workers: Int = 1
    /// The worker loop: io_uring (default) or plain recvmmsg/sendmmsg.
    public var io: ForwarderIO = .ioUring
    /// How GRE leaves: whole frames through AF_PACKET (default) or raw IP sockets.
    public var send: ForwarderSend = .packet
    /// CPUs to pin workers to, in order (worker i -> cpus[i % count]); nil: the CPUs this
    /// process may run on. Empty: no pinning.
    public var cpus: [Int]? = nil
    /// Connection-table entries per worker.
    public var connectionCapacity: Int = 1 << 16
    /// Receive buffers per worker (power of two, at most 32768) and their size.
    public var bufferCount: Int = 4096
    public var bufferSize: Int = 2048
    public var ringEntries: Int = 1024
    /// Completions handled per loop turn (and so the largest batch).
    public var batchLimit: Int = 256
    /// The `PACKET_FANOUT` group; nil: derived from the process id.
    public var fanoutGroup: UInt16? = nil
    public var filterMode: VIPFilter.Mode = .vips
    /// Back connection tables with transparent huge pages.
    public var hugePages: Bool = true
    /// Workers enter this network namespace (a path such as `/run/netns/NAME`) before opening
    /// sockets. nil: the process's namespace.
    public var networkNamespace: String? = nil
    /// How long a worker waits in the kernel when idle before checking for control requests.
    public var idleWaitNanoseconds: Int64 = 50_000_000
    /// The io_uring loop never sleeps: each turn submits and collects completions without
    /// waiting. Each worker then keeps its core 100% busy, and no packet waits for a sleeping
    /// worker to wake up (lower, steadier latency). Off by default.
    public var busyPoll: Bool = false
    /// This forwarder's name in the forwarder group (`forwarders:`, `fragments: redirect`):
    /// `maglev forward --name`.
    public var memberName: String? = nil
    /// `--io xdp`: where the XDP program runs (`--xdp-mode`).
    public var xdpMode: XDPProgram.AttachMode = .auto

    public init(interface: String, workers: Int = 1) {
        self.interface = interface
        self.workers = workers
    }
}

/// One forwarding thread: its own packet socket in the fanout group, its own raw sockets,
/// io_uring and buffer ring, and its own `Dataplane` (connection table, counters).
///
/// Loop turn: submit queued sends and wait (one `io_uring_enter`) -> copy out every ready
/// completion -> install a newly published snapshot, if any -> build one batch of
/// `PacketSlot`s pointing into the received buffers -> `Dataplane.process` -> queue one
/// `sendmsg` per forward / ICMP reply from the same buffer -> hand back the buffers of
/// packets not sent; sent buffers come back when their send completes.
///
/// Headroom: the receive reserves a name area (`msg_namelen`) and a control area
/// (`msg_controllen`, for the `PACKET_AUXDATA` message) in front of every frame, so
/// `IORing.headroom` (16 + 64 + 40 = 120) bytes plus the Ethernet header lie before each IP
/// header, and the data plane writes the outer headers in place once the control message has
/// been read (its "checksum not ready" bit becomes `PacketSlot.checksumPending`). No copy, no
/// per-packet allocation, lock or system call.
final class Worker: PacketEngineWorker {
    static let receiveTag: UInt64 = 1 << 56
    static let sendTag: UInt64 = 2 << 56
    static let cancelTag: UInt64 = 3 << 56
    static let nameReserve = 64

    static let packetFile: Int32 = 0
    static let ipv4File: Int32 = 1
    static let ipv6File: Int32 = 2
    static let frameFile: Int32 = 3

    let link: WorkerLink
    let mailbox: SnapshotMailbox
    let options: ForwarderOptions
    let cpu: Int?
    let sockets: WorkerSockets
    /// The AF_PACKET send socket (`--send packet`) and the next-hop headers it needs.
    let frames: WorkerFrames
    var ring: IORing
    let dataplane: Dataplane
    var installedGeneration: UInt64
    var filterMode: VIPFilter.Mode

    let completions: UnsafeMutableBufferPointer<IORingCompletion>
    let slots: UnsafeMutableBufferPointer<PacketSlot>
    let slotBuffers: UnsafeMutablePointer<Int>
    var io = IOCounters()
    var receiveArmed = false
    var inflightSends = 0

    /// Opens everything on the calling thread (the worker's own).
    init(
        link: WorkerLink, mailbox: SnapshotMailbox, nextHops: NextHopMailbox, options: ForwarderOptions, cpu: Int?
    ) throws(ForwarderError) {
        self.link = link
        self.mailbox = mailbox
        self.options = options
        let generation = mailbox.generation.load(ordering: .acquiring)
        let published = mailbox.current
        self.installedGeneration = generation
        self.filterMode = published.filterMode

        self.cpu = pinCallingThread(to: cpu)

        sockets = try WorkerSockets(options: options, filter: published.filter)
        frames = try WorkerFrames(options: options, mailbox: nextHops)
        do {
            ring = try IORing(
                entries: options.ringEntries, bufferCount: options.bufferCount, bufferSize: options.bufferSize,
                nameReserve: Worker.nameReserve, controlReserve: PacketAuxiliaryData.controlSpace)
            try ring.registerFiles([sockets.packet.fd, sockets.raw4.fd, sockets.raw6.fd, frames.descriptor])
        } catch {
            throw ForwarderError.opening(error, interface: options.interface)
        }
        precondition(ring.headroom + 14 >= Dataplane.requiredHeadroom)

        dataplane = makeWorkerDataplane(snapshot: published.snapshot, options: options)

        let limit = min(options.batchLimit, IORing.maximumDrain)
        completions = .allocate(capacity: limit)
        completions.initialize(repeating: IORingCompletion())
        slots = .allocate(capacity: limit)
        slots.initialize(repeating: PacketSlot(base: ring.buffer(0), offset: 0, length: 0))
        slotBuffers = .allocate(capacity: limit)
        slotBuffers.initialize(repeating: 0, count: limit)
    }

    deinit {
        completions.deallocate()
        slots.deallocate()
        slotBuffers.deallocate()
    }

    /// The blocking loop; returns after a stop request once every in-flight send completed.
    func run() {
        publishStatistics()
        var stopping = false
        while true {
            if !stopping && link.stopRequested.load(ordering: .relaxed) {
                stopping = true
                if receiveArmed { ring.cancel(userData: Worker.receiveTag, tag: Worker.cancelTag) }
            }
            if stopping && !receiveArmed && inflightSends == 0 { break }
            if !stopping && !receiveArmed {
                ring.armMultishotReceive(fileIndex: Worker.packetFile, userData: Worker.receiveTag)
                receiveArmed = true
                io.receiveRearms += 1
            }
            turn()
        }
        publishStatistics()
    }

    var batchSlots: UnsafeMutableBufferPointer<PacketSlot> { slots }

    /// Submits queued sends and waits (one `io_uring_enter`), then copies out every ready
    /// completion: receives become slots, completed sends give their buffers back.
    @inline(__always)
    func receiveBatch() -> Int {
        do {
            if options.busyPoll {
                try ring.submitAndPoll()
            } else {
                _ = try ring.submitAndWait(timeoutNanoseconds: options.idleWaitNanoseconds)
            }
        } catch {
            // EBADR / overflow and the like: count and go on draining.
            io.receiveErrors &+= 1
        }
        let n = ring.drain(into: completions)
        var count = 0
        for i in 0..<n {
            let c = completions[i]
            switch c.userData & (0xFF << 56) {
            case Worker.receiveTag:
                if !c.hasMore { receiveArmed = false }
                if c.result < 0 {
                    if c.isBufferRingEmpty { io.bufferRingEmpty &+= 1 } else if !c.isCancelled { io.receiveErrors &+= 1 }
                    continue
                }
                guard let id = c.bufferID else { continue }
                guard let frame = ring.frame(bufferID: id, result: c.result) else {
                    ring.recycle(bufferID: id)
                    continue
                }
                if frame.truncated { io.truncated &+= 1 }
                slots[count] = PacketSlot(
                    base: frame.base, offset: frame.frameOffset, length: frame.frameLength,
                    checksumPending: frame.checksumNotReady)
                slotBuffers[count] = id
                count &+= 1
            case Worker.sendTag:
                inflightSends &-= 1
                ring.recycle(bufferID: Int(truncatingIfNeeded: c.userData & 0xFFFF_FFFF))
                io.countSend(result: c.result)
            default:
                break
            }
        }
        return count
    }

    /// Sends were queued as SQEs (submitted by the next turn's `io_uring_enter`); recycled
    /// buffers go back to the kernel.
    @inline(__always)
    func finishBatch() { ring.commitBuffers() }

    var ioModeName: String { ring.mode.rawValue }
    var hasIPv6: Bool { sockets.hasIPv6 }
    func attachFilter(_ filter: [BPFInstruction]) throws(SystemError) { try sockets.packet.attach(filter: filter) }
    func takeKernelDrops() -> UInt64? { (try? sockets.packet.takeStatistics())?.drops }

    // BatchSender: one SQE per packet from its receive buffer; the buffer comes back when the
    // send completes (`sendTag` completions).
    @inline(__always)
    func sendFrame(slot: Int, offset: Int, length: Int, address: UnsafeRawPointer) {
        let id = slotBuffers[slot]
        ring.sendFrame(
            bufferID: id, offset: offset, length: length, address: address,
            addressLength: LinkHeaders.addressLength, fileIndex: Worker.frameFile,
            userData: Worker.sendTag | UInt64(id))
        inflightSends &+= 1
    }

    @inline(__always)
    func sendRaw(slot: Int, offset: Int, length: Int, ipv6: Bool) {
        let id = slotBuffers[slot]
        ring.send(
            bufferID: id, offset: offset, length: length, ipv6: ipv6,
            fileIndex: ipv6 ? Worker.ipv6File : Worker.ipv4File, userData: Worker.sendTag | UInt64(id))
        inflightSends &+= 1
    }

    @inline(__always)
    func release(slot: Int) { ring.recycle(bufferID: slotBuffers[slot]) }

    func sendNow(_ packet: UnsafeRawBufferPointer, ipv6: Bool) { sockets.sendNow(packet, ipv6: ipv6, io: &io) }
}
