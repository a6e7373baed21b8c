import MaglevCore
import MaglevLinux

/// The ring-based loop (`maglev forward --io ring`, issue 10 §2, receive side): frames arrive in
/// a `TPACKET_V3` receive ring (`PacketRing`) that the kernel fills in softirq, a block at a
/// time, instead of as one queued skb clone per frame dequeued by a multishot `RECVMSG`. Sends
/// stay batched through io_uring, straight from the ring.
///
/// Loop turn: wait for a ready block (`poll`, at most the idle wait) when none is -> take the
/// ready blocks' frames as the batch (up to the slot capacity) -> between batches (snapshot,
/// next hops, statistics) -> `Dataplane.process`, the outer headers written in place in the
/// ring (each frame has `PacketRing` reserve in front of it) -> one `SEND` SQE per forward /
/// ICMP reply / redirect -> one `io_uring_enter` that submits them and waits for their
/// completions -> the blocks go back to the kernel. No copy, no per-packet allocation, lock or
/// system call.
final class RingWorker: PacketEngineWorker {
    static let sendTag: UInt64 = 2 << 56
    static let flushTag: UInt64 = 4 << 56
    static let txFile: Int32 = 4

    /// The transmit ring (`--send packet`) and the frames its pending flush sends.
    final class Transmit {
        var ring: PacketTxRing
        var flushing = 0
        /// `ring.refused` already counted in `sendErrors`.
        var refusedCounted: UInt64 = 0
        init(_ ring: consuming PacketTxRing) { self.ring = ring }
    }

    let link: WorkerLink
    let mailbox: SnapshotMailbox
    let options: ForwarderOptions
    let cpu: Int?
    let packets: PacketRing
    let raw4: RawIPSocket
    let raw6: RawIPSocket
    let frames: WorkerFrames
    /// Frames for next hops on the receive interface go through this ring (`--send packet`).
    let transmit: Transmit?
    var ring: IORing
    let dataplane: Dataplane
    var installedGeneration: UInt64
    var filterMode: VIPFilter.Mode
    var io = IOCounters()

    let slots: UnsafeMutableBufferPointer<PacketSlot>
    /// Per slot: the destination of a raw send.
    let addresses: UnsafeMutableRawPointer
    let completions: UnsafeMutableBufferPointer<IORingCompletion>
    /// The next block to look at, and how many blocks before it the current batch took (handed
    /// back after its sends complete; consecutive in ring order).
    var nextBlock = 0
    var batchBlocks = 0
    /// A batch takes another block (or slot) while it has at most this many frames.
    let batchLimit: Int
    var inflightSends = 0

    static let blockSize = 1 << 18
    static let blockCount = 32
    /// Slots per batch: twice what a block can hold (a frame takes more than 128 bytes of a
    /// block: its header, the reserve and the smallest Ethernet frame), so a batch takes
    /// another block while it is at most half full and every frame of a taken block has a slot.
    static let slotCapacity = blockSize / 64

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

        let group = options.fanoutGroup ?? UInt16(truncatingIfNeeded: currentProcessID)
        do {
            packets = try PacketRing(
                interface: options.interface, fanoutGroup: group, filter: published.filter,
                layout: options.io == .ringFrames ? .frames : .blocks, blockSize: RingWorker.blockSize,
                blockCount: RingWorker.blockCount, frameSize: options.bufferSize, frameCount: options.bufferCount)
            raw4 = try RawIPSocket(ipv6: false)
        } catch {
            throw ForwarderError.opening(error, interface: options.interface)
        }
        do {
            raw6 = try RawIPSocket(ipv6: true)
        } catch {
            raw6 = RawIPSocket.unavailable(ipv6: true)
        }
        frames = try WorkerFrames(options: options, mailbox: nextHops)
        if options.send == .packet {
            do {
                transmit = Transmit(try PacketTxRing(interfaceIndex: packets.interfaceIndex, frameSize: 2048, frameCount: 2048))
            } catch {
                throw ForwarderError.opening(error, interface: options.interface)
            }
        } else {
            transmit = nil
        }
        do {
            // No receives through the ring: two provided buffers keep IORing's set-up whole.
            ring = try IORing(entries: 2048, bufferCount: 2, bufferSize: 256, nameReserve: 64)
            try ring.registerFiles([packets.fd, raw4.fd, raw6.fd, frames.descriptor, transmit?.ring.fd ?? -1])
        } catch {
            throw ForwarderError.opening(error, interface: options.interface)
        }
        dataplane = makeWorkerDataplane(snapshot: published.snapshot, options: options)
        let n = RingWorker.slotCapacity
        slots = .allocate(capacity: n)
        slots.initialize(repeating: PacketSlot(base: packets.ring, offset: 0, length: 0))
        addresses = .allocate(byteCount: n * IORing.addressBytes, alignment: 8)
        completions = .allocate(capacity: IORing.maximumDrain)
        completions.initialize(repeating: IORingCompletion())
        batchLimit = packets.layout == .frames ? min(options.batchLimit, RingWorker.slotCapacity / 2) : RingWorker.slotCapacity / 2
    }

    deinit {
        slots.deallocate()
        addresses.deallocate()
        completions.deallocate()
    }

    /// The blocking loop; returns after a stop request (within one idle wait).
    func run() { runUntilStopped() }

    var batchSlots: UnsafeMutableBufferPointer<PacketSlot> { slots }

    /// The frames of every ready block, in ring order, while they fit the slots.
    @inline(__always)
    func receiveBatch() -> Int {
        if !packets.isReady(nextBlock) {
            if options.busyPoll { return 0 }
            packets.wait(timeoutMilliseconds: Int32(max(1, options.idleWaitNanoseconds / 1_000_000)))
        }
        var count = 0
        var truncated: UInt64 = 0
        while packets.isReady(nextBlock) && batchBlocks < packets.blockCount {
            let b = nextBlock
            _ = packets.frames(ofBlock: b) { f in
                if count < RingWorker.slotCapacity {
                    slots[count] = PacketSlot(
                        base: f.base, offset: f.offset, length: f.length, checksumPending: f.checksumNotReady)
                    count &+= 1
                    if f.truncated { truncated &+= 1 }
                }
            }
            batchBlocks &+= 1
            nextBlock = nextBlock &+ 1 == packets.blockCount ? 0 : nextBlock &+ 1
            if count >= batchLimit { break }
        }
        if truncated > 0 { io.truncated &+= truncated }
        return count
    }

    /// Submits the batch's sends and waits for them (one `io_uring_enter`), then hands the
    /// batch's blocks back to the kernel.
    @inline(__always)
    func finishBatch() {
        if let transmit {
            let queued = transmit.ring.takeQueued()
            if queued > 0 {
                ring.flush(fileIndex: RingWorker.txFile, userData: RingWorker.flushTag)
                transmit.flushing = queued
                inflightSends &+= 1
            }
        }
        if inflightSends > 0 {
            let outcome = ring.submitAndAwait(inflightSends, into: completions) { c in
                if c.userData & (0xFF << 56) == RingWorker.flushTag, let transmit {
                    // The kernel took every queued slot (or refused the flush: all lost).
                    if c.result < 0 {
                        io.sendErrors &+= UInt64(transmit.flushing)
                        io.lastSendErrno = -c.result
                    } else {
                        io.sent &+= UInt64(transmit.flushing)
                        io.sentThroughTxRing &+= UInt64(transmit.flushing)
                    }
                    transmit.flushing = 0
                    return true
                }
                guard c.userData & (0xFF << 56) == RingWorker.sendTag else { return false }
                io.countSend(result: c.result)
                return true
            }
            if outcome.submitFailed { io.sendErrors &+= 1 }
            inflightSends = outcome.remaining
        }
        if let transmit, transmit.ring.refused != transmit.refusedCounted {
            // Frames the kernel refused after their flush (counted as sent then).
            io.sendErrors &+= transmit.ring.refused &- transmit.refusedCounted
            transmit.refusedCounted = transmit.ring.refused
        }
        var b = nextBlock &- batchBlocks
        if b < 0 { b &+= packets.blockCount }
        for _ in 0..<batchBlocks {
            packets.release(b)
            b = b &+ 1 == packets.blockCount ? 0 : b &+ 1
        }
        batchBlocks = 0
    }

    var ioModeName: String { packets.layout == .frames ? "ring-frames" : "ring" }
    var hasIPv6: Bool { raw6.isOpen }
    func attachFilter(_ filter: [BPFInstruction]) throws(SystemError) { try packets.attach(filter: filter) }
    func takeKernelDrops() -> UInt64? { (try? packets.takeStatistics())?.drops }

    // BatchSender: one SQE per packet, from the ring (its block waits for the send).
    @inline(__always)
    func sendFrame(slot: Int, offset: Int, length: Int, address: UnsafeRawPointer) {
        // Through the transmit ring when the next hop is on its interface (sockaddr_ll's
        // ifindex at byte 4) and a slot is free; else its own SEND.
        if let transmit, address.loadUnaligned(fromByteOffset: 4, as: Int32.self) == transmit.ring.interfaceIndex,
            transmit.ring.queue(slots[slot].base + offset, length: length)
        {
            return
        }
        ring.sendFrame(
            bytes: slots[slot].base + offset, length: length, address: address,
            addressLength: LinkHeaders.addressLength, fileIndex: Worker.frameFile, userData: RingWorker.sendTag)
        inflightSends &+= 1
    }

    @inline(__always)
    func sendRaw(slot: Int, offset: Int, length: Int, ipv6: Bool) {
        ring.send(
            bytes: slots[slot].base + offset, length: length, ipv6: ipv6,
            address: addresses + slot &* IORing.addressBytes, fileIndex: ipv6 ? Worker.ipv6File : Worker.ipv4File,
            userData: RingWorker.sendTag)
        inflightSends &+= 1
    }

    @inline(__always)
    func release(slot: Int) {}

    func sendNow(_ packet: UnsafeRawBufferPointer, ipv6: Bool) {
        sendNowThroughRaw(packet, ipv6: ipv6, raw4: raw4, raw6: raw6, io: &io)
    }
}
