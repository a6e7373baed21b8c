import MaglevCore
import MaglevLinux

/// The AF_XDP loop (`maglev forward --io xdp`, issue 10 §4): the forwarder's XDP program
/// (`XDPProgram`) redirects VIP traffic on the interface to one XSK socket per receive queue,
/// worker i owning queue i. Frames land in the worker's UMEM with 256 bytes of headroom, so the
/// data plane writes the outer headers in place; no skb clone, no per-frame receive call.
///
/// Loop turn: take back the frames of completed XSK sends (to the fill ring) -> wait for
/// received frames (`poll`, at most the idle wait) when none are ready -> take up to a batch off
/// the RX ring -> between batches (snapshot, next hops, statistics) -> `Dataplane.process` ->
/// forwards go on the XSK TX ring of their next hop's interface, straight from the UMEM (the
/// worker's own socket for the receive interface, a transmit-only socket sharing the UMEM for
/// others; one `sendto` kick per 32 frames in copy mode, none in zero-copy mode unless the
/// driver asks); `--send raw`, ICMP replies, redirects and interfaces that refused a socket go
/// through io_uring from the UMEM, one submit per batch, waited for -> every frame not on a TX
/// ring goes back to the fill ring.
/// No per-packet allocation, lock or system call.
final class XDPWorker: PacketEngineWorker {
    static let sendTag: UInt64 = 2 << 56

    let link: WorkerLink
    let mailbox: SnapshotMailbox
    let options: ForwarderOptions
    let cpu: Int?
    let program: XDPProgram
    let socket: XDPSocket
    let raw4: RawIPSocket
    let raw6: RawIPSocket
    let frames: WorkerFrames
    var ring: IORing
    let dataplane: Dataplane
    var installedGeneration: UInt64
    var filterMode: VIPFilter.Mode
    var io = IOCounters()

    let capacity: Int
    let slots: UnsafeMutableBufferPointer<PacketSlot>
    /// Per slot: the received frame (its UMEM address).
    let received: UnsafeMutablePointer<XDPFrame>
    /// Per slot: the destination of a raw send.
    let addresses: UnsafeMutableRawPointer
    /// Where GRE frames leave through an XSK TX ring: egress 0 is the receive interface (this
    /// worker's own socket); others get a transmit-only socket sharing the UMEM, opened between
    /// batches the first time a frame needs one (on queue `link.id` of that interface). Frames
    /// for an interface that refused one go through io_uring.
    static let maximumEgress = 8
    var egressSockets: [XDPSocket]
    /// Per egress: the interface index, and this batch's frames (`capacity` each).
    let egressIndexes: UnsafeMutablePointer<Int32>
    let egressFrames: UnsafeMutablePointer<XDPFrame>
    let egressQueued: UnsafeMutablePointer<Int>
    var egressCount = 1
    /// Interfaces that refused a transmit socket (never asked again), and the one a frame of
    /// this batch asked for.
    var refusedEgress: [Int32] = []
    var wantedEgress: Int32 = 0
    /// Frames to give back to the fill ring after the batch (released, or sent through io_uring),
    /// and the addresses of completed XSK sends.
    let giveBack: UnsafeMutablePointer<UInt64>
    var giveBackCount = 0
    let completedFrames: UnsafeMutablePointer<UInt64>
    let completions: UnsafeMutableBufferPointer<IORingCompletion>
    var inflightSends = 0
    /// Frames on the TX ring whose completion has not come back yet.
    var transmitting = 0
    /// The socket's drop counter at the last statistics.
    var reportedDrops: UInt64 = 0

    init(
        link: WorkerLink, mailbox: SnapshotMailbox, nextHops: NextHopMailbox, options: ForwarderOptions, cpu: Int?,
        program: XDPProgram
    ) throws(ForwarderError) {
        self.link = link
        self.mailbox = mailbox
        self.options = options
        self.program = program
        let generation = mailbox.generation.load(ordering: .acquiring)
        let published = mailbox.current
        self.installedGeneration = generation
        self.filterMode = .vips
        self.cpu = pinCallingThread(to: cpu)
        do {
            // Zero-copy TX needs the driver's XDP rings, which exist only with a native program.
            socket = try XDPSocket(
                interface: options.interface, queue: link.id, frameSize: options.bufferSize > 2048 ? 4096 : 2048,
                frameCount: options.bufferCount, copyOnly: !program.isNative)
            try program.register(socket: socket.fd, queue: link.id)
            raw4 = try RawIPSocket(ipv6: false)
        } catch {
            throw XDPWorker.openingError(error, options: options, queue: link.id)
        }
        do {
            raw6 = try RawIPSocket(ipv6: true)
        } catch {
            raw6 = RawIPSocket.unavailable(ipv6: true)
        }
        frames = try WorkerFrames(options: options, mailbox: nextHops)
        do {
            ring = try IORing(entries: 2048, bufferCount: 2, bufferSize: 256, nameReserve: 64)
            try ring.registerFiles([-1, raw4.fd, raw6.fd, frames.descriptor])
        } catch {
            throw ForwarderError.opening(error, interface: options.interface)
        }
        dataplane = makeWorkerDataplane(snapshot: published.snapshot, options: options)
        capacity = min(options.batchLimit, IORing.maximumDrain)
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: PacketSlot(base: socket.umem, offset: 0, length: 0))
        received = .allocate(capacity: capacity)
        received.initialize(repeating: XDPFrame(), count: capacity)
        addresses = .allocate(byteCount: capacity * IORing.addressBytes, alignment: 8)
        egressSockets = [socket]
        egressIndexes = .allocate(capacity: XDPWorker.maximumEgress)
        egressIndexes.initialize(repeating: 0, count: XDPWorker.maximumEgress)
        egressIndexes[0] = program.interfaceIndex
        egressFrames = .allocate(capacity: XDPWorker.maximumEgress * capacity)
        egressFrames.initialize(repeating: XDPFrame(), count: XDPWorker.maximumEgress * capacity)
        egressQueued = .allocate(capacity: XDPWorker.maximumEgress)
        egressQueued.initialize(repeating: 0, count: XDPWorker.maximumEgress)
        giveBack = .allocate(capacity: socket.frameCount)
        giveBack.initialize(repeating: 0, count: socket.frameCount)
        completedFrames = .allocate(capacity: socket.frameCount)
        completedFrames.initialize(repeating: 0, count: socket.frameCount)
        completions = .allocate(capacity: IORing.maximumDrain)
        completions.initialize(repeating: IORingCompletion())
    }

    deinit {
        slots.deallocate()
        received.deallocate()
        addresses.deallocate()
        egressSockets.removeAll()
        egressIndexes.deallocate()
        egressFrames.deallocate()
        egressQueued.deallocate()
        giveBack.deallocate()
        completedFrames.deallocate()
        completions.deallocate()
    }

    static func openingError(_ e: SystemError, options: ForwarderOptions, queue: Int) -> ForwarderError {
        if e.call.hasPrefix("AF_XDP"), e.errno == 22 {  // EINVAL: no such queue
            return ForwarderError(
                "\(e): '\(options.interface)' has no receive queue \(queue); --io xdp runs one worker per "
                    + "receive queue, so use --workers up to the queue count (`ethtool -l \(options.interface)`)")
        }
        if e.errno == 12 || e.errno == 1 {  // ENOMEM / EPERM: the UMEM could not be locked
            return ForwarderError(
                "\(e): the UMEM (\(options.bufferCount) frames) needs locked memory: run as root (CAP_IPC_LOCK), "
                    + "raise `ulimit -l`, or use fewer buffers")
        }
        return ForwarderError.opening(e, interface: options.interface)
    }

    /// A failed program load or attach, worded for the operator.
    static func attachError(_ e: SystemError, interface: String) -> ForwarderError {
        if e.call.hasPrefix("if_nametoindex") { return ForwarderError.opening(e, interface: interface) }
        if e.isPermissionDenied {
            return ForwarderError(
                "\(e): loading an XDP program needs CAP_BPF and CAP_NET_ADMIN (run as root); `--io io_uring` does not")
        }
        if e.errno == 16 || e.errno == 17 {  // EBUSY, EEXIST
            return ForwarderError(
                "\(e): '\(interface)' already has an XDP program attached (`ip link show \(interface)`); detach it "
                    + "(`ip link set \(interface) xdp off`) or use another --io")
        }
        return ForwarderError("cannot attach the XDP program to '\(interface)': \(e)")
    }

    func run() { runUntilStopped() }

    /// Sends that completed after the last turn are counted.
    func settle() { reclaimTransmitted() }

    var batchSlots: UnsafeMutableBufferPointer<PacketSlot> { slots }

    /// Completed XSK sends go back to the fill ring; then up to a batch of received frames.
    @inline(__always)
    func receiveBatch() -> Int {
        if transmitting > 0 { reclaimTransmitted() }
        if !socket.hasReceived {
            if options.busyPoll {
                socket.wakeReceive()
                return 0
            }
            socket.wait(timeoutMilliseconds: Int32(max(1, options.idleWaitNanoseconds / 1_000_000)))
        }
        let n = socket.receive(into: received, max: capacity)
        let umem = socket.umem
        for i in 0..<n {
            let offset = Int(truncatingIfNeeded: received[i].address)
            let length = Int(received[i].length)
            // AF_XDP carries no CHECKSUM_PARTIAL flag (AF_PACKET's auxiliary data does): judged
            // from the bytes, so frames sent with checksum offload (veth) are completed too.
            slots[i] = PacketSlot(
                base: umem, offset: offset, length: length,
                checksumPending: ChecksumCompletion.isLeftToTheNIC(umem + offset, length: length))
        }
        return n
    }

    /// Frames whose XSK send completed (on any egress) go back to the fill ring.
    @inline(__always)
    func reclaimTransmitted() {
        for e in 0..<egressCount {
            let n = egressSockets[e].completed(into: completedFrames, max: socket.frameCount)
            if n > 0 {
                transmitting &-= n
                var c = io
                c.sent &+= UInt64(n)
                c.sentThroughTxRing &+= UInt64(n)
                io = c
                _ = socket.refill(completedFrames, count: n)
            }
        }
    }

    /// Queues the batch's XSK sends and kicks them, waits for its io_uring sends, and gives
    /// every other frame of the batch back to the fill ring.
    @inline(__always)
    func finishBatch() {
        for e in 0..<egressCount where egressQueued[e] > 0 || (transmitting > 0 && egressSockets[e].hasPendingTransmit) {
            // Also kicked: frames a busy device left on the ring in an earlier turn.
            let frames = egressFrames + e &* capacity
            let count = egressQueued[e]
            let out = egressSockets[e]
            let queued = out.queue(frames, count: count)
            transmitting &+= queued
            if queued < count {
                // The TX ring is full: those frames are lost, counted as send errors.
                io.sendErrors &+= UInt64(count &- queued)
                for i in queued..<count {
                    giveBack[giveBackCount] = frames[i].address
                    giveBackCount &+= 1
                }
            }
            do {
                _ = try out.kick()
            } catch {
                io.sendErrors &+= 1
                io.lastSendErrno = error.errno
            }
            egressQueued[e] = 0
        }
        if inflightSends > 0 {
            let outcome = ring.submitAndAwait(inflightSends, into: completions) { c in
                guard c.userData & (0xFF << 56) == XDPWorker.sendTag else { return false }
                io.countSend(result: c.result)
                return true
            }
            if outcome.submitFailed { io.sendErrors &+= 1 }
            inflightSends = outcome.remaining
        }
        // Frames of io_uring sends go back only once every send completed (a wait cut short by
        // an error leaves them for the next turn: a frame refilled while the kernel still reads
        // it could be overwritten by a new packet mid-send).
        if giveBackCount > 0 && inflightSends == 0 {
            _ = socket.refill(giveBack, count: giveBackCount)
            giveBackCount = 0
        }
        if wantedEgress != 0 { openEgress(wantedEgress) }
    }

    /// Opens a transmit-only socket on another interface for the frames routed there (between
    /// batches, once per interface); an interface that refuses one keeps the io_uring path.
    func openEgress(_ index: Int32) {
        wantedEgress = 0
        guard egressCount < XDPWorker.maximumEgress else {
            refusedEgress.append(index)
            return
        }
        do {
            let out = try XDPSocket(transmittingFor: socket, interfaceIndex: index, queue: link.id)
            egressSockets.append(out)
            egressIndexes[egressCount] = index
            egressCount &+= 1
        } catch {
            refusedEgress.append(index)
        }
    }

    var ioModeName: String {
        "xdp (\(program.isNative ? "native" : "generic"), \(socket.isZeroCopy ? "zero-copy" : "copy"))"
    }
    var hasIPv6: Bool { raw6.isOpen }
    /// The XDP program filters by its prefix maps, which the control side updates; the socket
    /// filter of the other engines has no place here.
    func attachFilter(_ filter: [BPFInstruction]) throws(SystemError) {}
    func takeKernelDrops() -> UInt64? {
        guard let total = try? socket.drops() else { return nil }
        defer { reportedDrops = total }
        return total &- reportedDrops
    }

    // BatchSender.
    @inline(__always)
    func sendFrame(slot: Int, offset: Int, length: Int, address: UnsafeRawPointer) {
        // On an XSK TX ring when the next hop's interface (sockaddr_ll's ifindex at byte 4) has
        // one; else through io_uring and the AF_PACKET socket (and a transmit socket is asked
        // for, between batches).
        let index = address.loadUnaligned(fromByteOffset: 4, as: Int32.self)
        for e in 0..<egressCount where egressIndexes[e] == index {
            let q = egressQueued[e]
            egressFrames[e &* capacity &+ q] = XDPFrame(
                address: UInt64(truncatingIfNeeded: offset), length: UInt32(truncatingIfNeeded: length))
            egressQueued[e] = q &+ 1
            return
        }
        if wantedEgress == 0 && !refusedEgress.contains(index) { wantedEgress = index }
        ring.sendFrame(
            bytes: socket.umem + offset, length: length, address: address, addressLength: LinkHeaders.addressLength,
            fileIndex: Worker.frameFile, userData: XDPWorker.sendTag)
        inflightSends &+= 1
        release(slot: slot)
    }

    @inline(__always)
    func sendRaw(slot: Int, offset: Int, length: Int, ipv6: Bool) {
        ring.send(
            bytes: socket.umem + offset, length: length, ipv6: ipv6, address: addresses + slot &* IORing.addressBytes,
            fileIndex: ipv6 ? Worker.ipv6File : Worker.ipv4File, userData: XDPWorker.sendTag)
        inflightSends &+= 1
        release(slot: slot)
    }

    /// The slot's frame goes back to the fill ring after the batch (after its io_uring send, if
    /// it has one).
    @inline(__always)
    func release(slot: Int) {
        giveBack[giveBackCount] = received[slot].address
        giveBackCount &+= 1
    }

    func sendNow(_ packet: UnsafeRawBufferPointer, ipv6: Bool) {
        sendNowThroughRaw(packet, ipv6: ipv6, raw4: raw4, raw6: raw6, io: &io)
    }
}
