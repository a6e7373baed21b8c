import MaglevCore
import MaglevLinux

/// The plain-syscall forwarding loop (`maglev forward --io mmsg`): the same sockets and the
/// same `Dataplane` as `Worker`, but `recvmmsg` / `sendmmsg` in batches of `batchSize` instead
/// of io_uring. Kept as a baseline to compare the io_uring loop with, and as a fallback where
/// io_uring is disabled.
///
/// Loop turn: one `recvmmsg` (blocking for the first frame, at most `idleWaitNanoseconds`
/// through `SO_RCVTIMEO`, then taking whatever is queued) -> install a newly published
/// snapshot, if any -> `Dataplane.process` on the batch -> one `sendmmsg` per address family
/// for the forwards and ICMP replies, straight from the receive buffers (outer headers written
/// in the headroom; no copy, no allocation). Each frame's `PACKET_AUXDATA` control message
/// (its own small area next to the batch) says whether its checksum must be completed.
final class MmsgWorker: PacketEngineWorker {
    static let headroom = 64

    let link: WorkerLink
    let mailbox: SnapshotMailbox
    let options: ForwarderOptions
    let cpu: Int?
    let sockets: WorkerSockets
    let receive: ReceiveBatch
    var send4: SendBatch
    var send6: SendBatch
    /// `--send packet`: the AF_PACKET socket and next-hop headers, and a batch of frames.
    let frames: WorkerFrames
    var sendFrames: FrameBatch
    let dataplane: Dataplane
    let slots: UnsafeMutableBufferPointer<PacketSlot>
    var installedGeneration: UInt64
    var filterMode: VIPFilter.Mode
    var io = IOCounters()

    /// The batch size: frames per `recvmmsg`, packets per `sendmmsg`.
    static let batchSize = 64

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
        do {
            try sockets.packet.setReceiveTimeout(nanoseconds: max(options.idleWaitNanoseconds, 1000))
        } catch {
            throw ForwarderError.opening(error, interface: options.interface)
        }
        frames = try WorkerFrames(options: options, mailbox: nextHops)
        let n = MmsgWorker.batchSize
        sendFrames = FrameBatch(capacity: n)
        precondition(MmsgWorker.headroom + 14 >= Dataplane.requiredHeadroom)
        receive = ReceiveBatch(
            capacity: n, bufferSize: options.bufferSize, headroom: MmsgWorker.headroom,
            controlSpace: PacketAuxiliaryData.controlSpace)
        send4 = SendBatch(capacity: n, ipv6: false)
        send6 = SendBatch(capacity: n, ipv6: true)
        dataplane = makeWorkerDataplane(snapshot: published.snapshot, options: options)
        slots = .allocate(capacity: n)
        slots.initialize(repeating: PacketSlot(base: receive.buffer(0), offset: 0, length: 0))
    }

    deinit { slots.deallocate() }

    /// The blocking loop; returns after a stop request (within one idle wait).
    func run() { runUntilStopped() }

    var batchSlots: UnsafeMutableBufferPointer<PacketSlot> { slots }

    /// One `recvmmsg` (blocking for the first frame, at most the idle wait).
    @inline(__always)
    func receiveBatch() -> Int {
        let n: Int
        do {
            n = try receive.receive(from: sockets.packet.fd, waitForOne: true)
        } catch {
            io.receiveErrors &+= 1
            return 0
        }
        let headroom = MmsgWorker.headroom
        for i in 0..<n {
            if receive.isTruncated(i) { io.truncated &+= 1 }
            slots[i] = PacketSlot(
                base: receive.buffer(i), offset: headroom, length: receive.length(i),
                checksumPending: receive.checksumNotReady(i))
        }
        return n
    }

    /// One `sendmmsg` per socket with something queued.
    @inline(__always)
    func finishBatch() {
        if sendFrames.count > 0 { account(sendFrames.send(on: frames.descriptor)) }
        if send4.count > 0 { account(send4.send(on: sockets.raw4.fd)) }
        if send6.count > 0 { account(send6.send(on: sockets.raw6.fd)) }
    }

    @inline(__always)
    func account(_ outcome: SendBatchOutcome) {
        io.sent &+= UInt64(outcome.sent)
        if outcome.failed > 0 {
            io.sendErrors &+= UInt64(outcome.failed)
            io.lastSendErrno = outcome.lastErrno
        }
    }

    var ioModeName: String { "mmsg" }
    var hasIPv6: Bool { sockets.hasIPv6 }
    func attachFilter(_ filter: [BPFInstruction]) throws(SystemError) { try sockets.packet.attach(filter: filter) }
    func takeKernelDrops() -> UInt64? { (try? sockets.packet.takeStatistics())?.drops }

    // BatchSender: queued into this batch's sendmmsg vectors, straight from the receive buffers
    // (reused by the next recvmmsg, so nothing to give back).
    @inline(__always)
    func sendFrame(slot: Int, offset: Int, length: Int, address: UnsafeRawPointer) {
        sendFrames.append(slots[slot].base + offset, length: length, address: address, addressLength: LinkHeaders.addressLength)
    }

    @inline(__always)
    func sendRaw(slot: Int, offset: Int, length: Int, ipv6: Bool) {
        if ipv6 { send6.append(slots[slot].base + offset, length: length) } else { send4.append(slots[slot].base + offset, length: length) }
    }

    @inline(__always)
    func release(slot: Int) {}

    func sendNow(_ packet: UnsafeRawBufferPointer, ipv6: Bool) { sockets.sendNow(packet, ipv6: ipv6, io: &io) }
}
