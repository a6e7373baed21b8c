#if canImport(Glibc)
    import Glibc
#endif
internal import CLibURing
internal import CMaglevShim

/// One completion, copied out of the completion queue.
public struct IORingCompletion: Sendable {
    public var userData: UInt64
    /// Bytes transferred, or `-errno`.
    public var result: Int32
    public var flags: UInt32

    public init(userData: UInt64 = 0, result: Int32 = 0, flags: UInt32 = 0) {
        self.userData = userData
        self.result = result
        self.flags = flags
    }

    /// `IORING_CQE_F_MORE`: a multishot request stays armed.
    @inline(__always) public var hasMore: Bool { flags & IORING_CQE_F_MORE != 0 }
    /// `-ENOBUFS`: the provided-buffer ring ran dry.
    @inline(__always) public var isBufferRingEmpty: Bool { result == -ENOBUFS }
    /// `-ECANCELED`: the request was cancelled.
    @inline(__always) public var isCancelled: Bool { result == -ECANCELED }

    /// The provided buffer's id when `IORING_CQE_F_BUFFER` is set.
    @inline(__always) public var bufferID: Int? {
        flags & IORING_CQE_F_BUFFER != 0 ? Int(flags >> IORING_CQE_BUFFER_SHIFT) : nil
    }
}

/// How the ring was set up: the fastest mode this kernel accepted.
public enum IORingMode: String, Sendable {
    /// `IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN`: completions are posted only
    /// when this thread enters the kernel to wait.
    case deferTaskrun = "single_issuer+defer_taskrun"
    /// `IORING_SETUP_COOP_TASKRUN`.
    case coopTaskrun = "coop_taskrun"
    case plain = "plain"
}

/// A received frame inside a provided buffer.
public struct ReceivedFrame {
    /// The buffer's first byte; everything between it and `frameOffset` is headroom.
    public var base: UnsafeMutableRawPointer
    public var frameOffset: Int
    public var frameLength: Int
    /// The frame was longer than the buffer had room for (`MSG_TRUNC`).
    public var truncated: Bool
    /// Its TCP/UDP checksum is unfinished (`TP_STATUS_CSUMNOTREADY` in the `PACKET_AUXDATA`
    /// control message; false when the ring reserves no control space).
    public var checksumNotReady: Bool
}

/// An io_uring instance and what a forwarding worker hangs on it: a provided-buffer ring that
/// multishot `RECVMSG` fills, registered files, and one send address per buffer (a send
/// always sends from a received buffer, so there is never more than one send per buffer).
///
/// Owned by one thread: it must be created, used and destroyed on the worker's thread (with
/// `SINGLE_ISSUER` the kernel enforces it).
///
/// Receive layout (`struct io_uring_recvmsg_out`, then the name area, then the control area,
/// then the frame):
///
///     | recvmsg_out (16) | sockaddr_ll (`nameReserve`) | cmsgs (`controlReserve`) | frame ... |
///     ^ buffer base                                                               ^ base + headroom
///
/// `msg_namelen` and `msg_controllen` reserve both areas whatever the kernel writes into them
/// (the kernel places the frame after the reserved sizes, as liburing's
/// `io_uring_recvmsg_payload` computes), so the bytes before the frame are headroom that the
/// data plane may overwrite with outer headers once the control messages have been read.
///
/// The corresponding C functions are `io_uring_queue_init_params`, `io_uring_register_files`,
/// `io_uring_register_buf_ring`, `io_uring_prep_recvmsg_multishot`, `io_uring_prep_send` with `io_uring_prep_send_set_addr` (sendto)
/// and `io_uring_submit_and_wait_timeout`.
public struct IORing: ~Copyable {
    let ring: UnsafeMutablePointer<io_uring>
    public let mode: IORingMode

    // Provided buffers.
    let bufferRing: UnsafeMutablePointer<io_uring_buf_ring>
    let bufferRingBytes: Int
    let buffers: UnsafeMutableRawPointer
    let buffersBytes: Int
    public let bufferCount: Int
    public let bufferSize: Int
    let bufferMask: Int32
    let bufferGroup: UInt16
    var pendingRecycles: Int32 = 0

    // The multishot receive's template (the kernel reads it at each arm).
    let receiveHeader: UnsafeMutablePointer<msghdr>
    /// Bytes before each frame: `io_uring_recvmsg_out` plus the reserved name and control areas.
    public let headroom: Int

    static let messageTruncated = UInt32(cmaglev_msg_trunc())

    /// The most completions one `drain` returns.
    public static let maximumDrain = 1024
    let cqeScratch: UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>

    // One destination address per buffer id (sendto).
    let sendAddresses: UnsafeMutablePointer<sockaddr_in6>

    /// Creates the ring (trying `SINGLE_ISSUER|DEFER_TASKRUN`, then `COOP_TASKRUN`, then
    /// neither), maps `bufferCount` buffers of `bufferSize` bytes and registers them as buffer
    /// group `bufferGroup`. `bufferCount` must be a power of two, at most 32768.
    /// `controlReserve` bytes of control messages are reserved per frame
    /// (`PacketAuxiliaryData.controlSpace` for the packet socket's auxdata; 0 for none).
    public init(
        entries: Int, bufferCount: Int, bufferSize: Int, nameReserve: Int, controlReserve: Int = 0,
        bufferGroup: UInt16 = 0
    ) throws(SystemError) {
        precondition(bufferCount > 0 && bufferCount & (bufferCount - 1) == 0 && bufferCount <= 32768)
        precondition(nameReserve >= Int(cmaglev_sockaddr_ll_size()) && nameReserve <= 128)
        // Multiples of 8 keep the control messages (and so the frame) aligned as cmsghdr wants.
        precondition(nameReserve % 8 == 0 && controlReserve >= 0 && controlReserve % 8 == 0 && controlReserve <= 256)
        let ring = UnsafeMutablePointer<io_uring>.allocate(capacity: 1)
        ring.initialize(to: io_uring())
        let cqEntries = UInt32(max(entries, bufferCount) * 2)
        var chosen: IORingMode = .plain
        var lastError: Int32 = 0
        var created = false
        for candidate in [IORingMode.deferTaskrun, .coopTaskrun, .plain] {
            var params = io_uring_params()
            params.flags = IORING_SETUP_CQSIZE
            params.cq_entries = cqEntries
            switch candidate {
            case .deferTaskrun: params.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN
            case .coopTaskrun: params.flags |= IORING_SETUP_COOP_TASKRUN
            case .plain: break
            }
            let rc = io_uring_queue_init_params(UInt32(entries), ring, &params)
            if rc == 0 {
                chosen = candidate
                created = true
                break
            }
            lastError = -rc
            if rc != -EINVAL { break }
        }
        guard created else {
            ring.deallocate()
            throw SystemError(call: "io_uring_queue_init_params", errno: lastError)
        }
        _ = io_uring_register_ring_fd(ring)  // optional: saves a file lookup per enter

        // Provided-buffer ring: mmap + io_uring_register_buf_ring (liburing 2.3 has no
        // io_uring_setup_buf_ring).
        let ringBytes = (bufferCount * MemoryLayout<io_uring_buf>.stride + 4095) & ~4095
        guard let ringMemory = mmap(nil, ringBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            ringMemory != MAP_FAILED
        else {
            let e = Glibc.errno
            io_uring_queue_exit(ring)
            ring.deallocate()
            throw SystemError(call: "mmap(buffer ring)", errno: e)
        }
        let bytes = bufferCount * bufferSize
        guard let bufferMemory = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            bufferMemory != MAP_FAILED
        else {
            let e = Glibc.errno
            munmap(ringMemory, ringBytes)
            io_uring_queue_exit(ring)
            ring.deallocate()
            throw SystemError(call: "mmap(\(bytes) bytes of receive buffers)", errno: e)
        }
        _ = madvise(bufferMemory, bytes, MADV_HUGEPAGE)
        var registration = io_uring_buf_reg()
        registration.ring_addr = UInt64(UInt(bitPattern: ringMemory))
        registration.ring_entries = UInt32(bufferCount)
        registration.bgid = bufferGroup
        io_uring_buf_ring_init(ringMemory.assumingMemoryBound(to: io_uring_buf_ring.self))
        let registered = io_uring_register_buf_ring(ring, &registration, 0)
        if registered < 0 {
            munmap(bufferMemory, bytes)
            munmap(ringMemory, ringBytes)
            io_uring_queue_exit(ring)
            ring.deallocate()
            throw SystemError(call: "io_uring_register_buf_ring", errno: -registered)
        }
        self.ring = ring
        self.mode = chosen
        self.bufferRing = ringMemory.bindMemory(to: io_uring_buf_ring.self, capacity: 1)
        self.bufferRingBytes = ringBytes
        self.buffers = bufferMemory
        self.buffersBytes = bytes
        self.bufferCount = bufferCount
        self.bufferSize = bufferSize
        self.bufferMask = io_uring_buf_ring_mask(UInt32(bufferCount))
        self.bufferGroup = bufferGroup

        receiveHeader = .allocate(capacity: 1)
        receiveHeader.initialize(to: msghdr())
        receiveHeader.pointee.msg_namelen = socklen_t(nameReserve)
        receiveHeader.pointee.msg_controllen = controlReserve
        headroom = MemoryLayout<io_uring_recvmsg_out>.size + nameReserve + controlReserve

        cqeScratch = .allocate(capacity: IORing.maximumDrain)
        cqeScratch.initialize(repeating: nil, count: IORing.maximumDrain)
        sendAddresses = .allocate(capacity: bufferCount)
        sendAddresses.initialize(repeating: sockaddr_in6(), count: bufferCount)

        for id in 0..<bufferCount {
            io_uring_buf_ring_add(
                bufferRing, buffers + id * bufferSize, UInt32(bufferSize), UInt16(id), Int32(bufferMask), Int32(id))
        }
        io_uring_buf_ring_advance(bufferRing, Int32(bufferCount))
    }

    deinit {
        io_uring_queue_exit(ring)  // cancels whatever is in flight before the memory goes
        ring.deallocate()
        munmap(buffers, buffersBytes)
        munmap(UnsafeMutableRawPointer(bufferRing), bufferRingBytes)
        receiveHeader.deallocate()
        cqeScratch.deallocate()
        sendAddresses.deallocate()
    }

    /// Registers descriptors; SQEs then name them by index with `IOSQE_FIXED_FILE`.
    public func registerFiles(_ fds: [Int32]) throws(SystemError) {
        let ring = self.ring
        _ = try SystemCall.liburing("io_uring_register_files") {
            fds.withUnsafeBufferPointer { io_uring_register_files(ring, $0.baseAddress, UInt32($0.count)) }
        }
    }

    /// The next free SQE, submitting what is queued if the SQ is full.
    @inline(__always)
    func nextSQE() -> UnsafeMutablePointer<io_uring_sqe> {
        if let sqe = io_uring_get_sqe(ring) { return sqe }
        _ = io_uring_submit(ring)
        while true {
            if let sqe = io_uring_get_sqe(ring) { return sqe }
            _ = io_uring_submit_and_wait(ring, 1)
        }
    }

    /// Arms a multishot `RECVMSG` on registered file `fileIndex`, taking buffers from the
    /// provided ring; each frame completes with `userData`.
    public func armMultishotReceive(fileIndex: Int32, userData: UInt64) {
        let sqe = nextSQE()
        io_uring_prep_recvmsg_multishot(sqe, fileIndex, receiveHeader, 0)
        sqe.pointee.flags |= UInt8(cmaglev_iosqe_fixed_file() | cmaglev_iosqe_buffer_select())
        cmaglev_sqe_set_buf_group(sqe, bufferGroup)
        io_uring_sqe_set_data64(sqe, userData)
    }

    /// Cancels the request whose user data is `userData`.
    public func cancel(userData: UInt64, tag: UInt64) {
        let sqe = nextSQE()
        io_uring_prep_cancel64(sqe, userData, 0)
        io_uring_sqe_set_data64(sqe, tag)
    }

    /// The frame a receive completion delivered into buffer `bufferID`: `result` is what the
    /// completion reported (header, name and control areas as reserved, and the frame's bytes
    /// as copied).
    ///
    /// The frame starts after the *reserved* control area (`msg_controllen`), not after the
    /// control bytes actually written (`out.controllen`, which may be fewer): the kernel lays the
    /// buffer out by the reservation.
    @inline(__always)
    public func frame(bufferID: Int, result: Int32) -> ReceivedFrame? {
        let base = buffers + bufferID &* bufferSize
        let header = MemoryLayout<io_uring_recvmsg_out>.size
        guard Int(result) >= headroom else { return nil }
        let out = base.assumingMemoryBound(to: io_uring_recvmsg_out.self)
        let copied = Int(result) &- headroom
        let payload = Int(out.pointee.payloadlen)
        let control = header &+ Int(receiveHeader.pointee.msg_namelen)
        let reserved = Int(receiveHeader.pointee.msg_controllen)
        let written = min(Int(out.pointee.controllen), reserved)
        return ReceivedFrame(
            base: base, frameOffset: control &+ reserved, frameLength: min(payload, copied),
            truncated: payload > copied || out.pointee.flags & IORing.messageTruncated != 0,
            checksumNotReady: PacketAuxiliaryData.checksumNotReady(control: base + control, length: written))
    }

    /// The base address of buffer `bufferID`.
    @inline(__always)
    public func buffer(_ bufferID: Int) -> UnsafeMutableRawPointer { buffers + bufferID &* bufferSize }

    /// Queues a `send` (sendto) of `length` bytes at `offset` in buffer `bufferID` to the packet's
    /// own IP destination, on registered file `fileIndex` (a raw IP socket).
    @inline(__always)
    public func send(bufferID: Int, offset: Int, length: Int, ipv6: Bool, fileIndex: Int32, userData: UInt64) {
        send(
            bytes: buffers + (bufferID &* bufferSize &+ offset), length: length, ipv6: ipv6,
            address: UnsafeMutableRawPointer(sendAddresses + bufferID), fileIndex: fileIndex, userData: userData)
    }

    /// Queues a `send` with a destination address (`sendto`, no `msghdr` to copy) of the
    /// `length` bytes at `offset` in buffer `bufferID` on registered
    /// file `fileIndex` (an `AF_PACKET` socket: the bytes are a whole Ethernet frame) to the
    /// link-layer address `address` (a `sockaddr_ll` of `addressLength` bytes that must stay
    /// valid until the next submit, where the kernel copies it).
    @inline(__always)
    public func sendFrame(
        bufferID: Int, offset: Int, length: Int, address: UnsafeRawPointer, addressLength: Int, fileIndex: Int32,
        userData: UInt64
    ) {
        sendFrame(
            bytes: buffers + (bufferID &* bufferSize &+ offset), length: length, address: address,
            addressLength: addressLength, fileIndex: fileIndex, userData: userData)
    }

    /// `sendFrame` of `length` bytes at `bytes`, memory the caller keeps valid until the send
    /// completes (a `PacketRing` block).
    @inline(__always)
    public func sendFrame(
        bytes: UnsafeRawPointer, length: Int, address: UnsafeRawPointer, addressLength: Int, fileIndex: Int32,
        userData: UInt64
    ) {
        let sqe = nextSQE()
        io_uring_prep_send(sqe, fileIndex, bytes, length, 0)
        io_uring_prep_send_set_addr(sqe, UnsafeRawPointer(address).assumingMemoryBound(to: sockaddr.self), UInt16(addressLength))
        sqe.pointee.flags |= UInt8(cmaglev_iosqe_fixed_file())
        io_uring_sqe_set_data64(sqe, userData)
    }

    /// `send` of the IP packet of `length` bytes at `bytes` (kept valid until the send
    /// completes) to its own destination, written into `address` (`IORing.addressBytes`
    /// bytes, aligned to 8, kept valid until submitted).
    @inline(__always)
    public func send(
        bytes: UnsafeRawPointer, length: Int, ipv6: Bool, address: UnsafeMutableRawPointer, fileIndex: Int32,
        userData: UInt64
    ) {
        let address = address.assumingMemoryBound(to: sockaddr_in6.self)
        let addressLength = SocketAddress.fill(address, fromPacket: bytes, ipv6: ipv6)
        let sqe = nextSQE()
        io_uring_prep_send(sqe, fileIndex, bytes, length, 0)
        io_uring_prep_send_set_addr(sqe, UnsafeRawPointer(address).assumingMemoryBound(to: sockaddr.self), UInt16(addressLength))
        sqe.pointee.flags |= UInt8(cmaglev_iosqe_fixed_file())
        io_uring_sqe_set_data64(sqe, userData)
    }

    /// Queues a `send` of no data on registered file `fileIndex`, `MSG_DONTWAIT`: on a packet
    /// socket with a transmit ring (`PacketTxRing`), the kernel transmits every queued slot.
    @inline(__always)
    public func flush(fileIndex: Int32, userData: UInt64) {
        let sqe = nextSQE()
        io_uring_prep_send(sqe, fileIndex, nil, 0, cmaglev_msg_dontwait())
        sqe.pointee.flags |= UInt8(cmaglev_iosqe_fixed_file())
        io_uring_sqe_set_data64(sqe, userData)
    }

    /// Bytes of a socket address for `send(bytes:length:ipv6:address:fileIndex:userData:)`.
    public static var addressBytes: Int { MemoryLayout<sockaddr_in6>.size }

    /// Submits queued SQEs and waits until at least `count` completions are ready (one
    /// `io_uring_enter`, retried on EINTR).
    @inline(__always)
    public func submitAndWait(count: Int) throws(SystemError) {
        while true {
            let rc = io_uring_submit_and_wait(ring, UInt32(count))
            if rc >= 0 { return }
            if rc == -EINTR || rc == -EAGAIN || rc == -EBUSY { continue }
            throw SystemError(call: "io_uring_submit_and_wait", errno: -rc)
        }
    }

    /// Hands buffer `bufferID` back to the kernel (visible at the next `commitBuffers`).
    @inline(__always)
    public mutating func recycle(bufferID: Int) {
        io_uring_buf_ring_add(
            bufferRing, buffers + bufferID &* bufferSize, UInt32(bufferSize), UInt16(truncatingIfNeeded: bufferID),
            Int32(bufferMask), pendingRecycles)
        pendingRecycles &+= 1
    }

    /// Publishes recycled buffers to the kernel.
    @inline(__always)
    public mutating func commitBuffers() {
        if pendingRecycles > 0 {
            io_uring_buf_ring_advance(bufferRing, pendingRecycles)
            pendingRecycles = 0
        }
    }

    /// Submits queued SQEs and waits for at least one completion or `timeoutNanoseconds`.
    /// Returns false on timeout. One `io_uring_enter` at most.
    @inline(__always)
    public func submitAndWait(timeoutNanoseconds: Int64) throws(SystemError) -> Bool {
        var ts = __kernel_timespec(tv_sec: timeoutNanoseconds / 1_000_000_000, tv_nsec: timeoutNanoseconds % 1_000_000_000)
        var cqe: UnsafeMutablePointer<io_uring_cqe>? = nil
        let rc = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, nil)
        if rc >= 0 { return true }
        if rc == -ETIME || rc == -EINTR || rc == -EAGAIN || rc == -EBUSY { return false }
        throw SystemError(call: "io_uring_submit_and_wait_timeout", errno: -rc)
    }

    /// Submits queued SQEs and collects ready completions without waiting (busy polling: one
    /// `io_uring_enter` with GETEVENTS, which also runs deferred task work).
    @inline(__always)
    public func submitAndPoll() throws(SystemError) {
        let rc = io_uring_submit_and_get_events(ring)
        if rc >= 0 || rc == -EINTR || rc == -EAGAIN || rc == -EBUSY { return }
        throw SystemError(call: "io_uring_submit_and_get_events", errno: -rc)
    }

    /// Submits queued SQEs without waiting.
    public func submit() throws(SystemError) {
        let ring = self.ring
        _ = try SystemCall.liburing("io_uring_submit") { io_uring_submit(ring) }
    }

    /// Copies up to `into.count` ready completions out and marks them seen.
    @inline(__always)
    public func drain(into out: UnsafeMutableBufferPointer<IORingCompletion>) -> Int {
        let n = Int(cmaglev_peek_cqes(ring, cqeScratch, UInt32(min(out.count, IORing.maximumDrain))))
        for i in 0..<n {
            let c = cqeScratch[i]!.pointee
            out[i] = IORingCompletion(userData: c.user_data, result: c.res, flags: c.flags)
        }
        io_uring_cq_advance(ring, UInt32(n))
        return n
    }

    /// Submits queued SQEs and waits until `count` awaited completions came back, handing every
    /// completion drained to `isAwaited` (true: one of the `count`). A wait cut short waits
    /// again; a failed wait after the first ends it. Returns how many are still outstanding and
    /// whether the first submit failed (the caller counts it).
    @inline(__always)
    public func submitAndAwait(
        _ count: Int, into completions: UnsafeMutableBufferPointer<IORingCompletion>,
        _ isAwaited: (IORingCompletion) -> Bool
    ) -> (remaining: Int, submitFailed: Bool) {
        var remaining = count
        var submitFailed = false
        do {
            try submitAndWait(count: remaining)
        } catch {
            submitFailed = true
        }
        while remaining > 0 {
            let n = drain(into: completions)
            if n == 0 {
                do { try submitAndWait(count: 1) } catch { break }
                continue
            }
            for i in 0..<n where isAwaited(completions[i]) { remaining &-= 1 }
        }
        return (remaining, submitFailed)
    }
}
