#if canImport(Glibc)
    import Glibc
#endif
internal import CMaglevShim

/// A fixed set of receive buffers that one `recvmmsg` fills: the plain-syscall alternative to
/// `IORing`'s provided buffers (`maglev forward --io mmsg`).
///
/// Each buffer keeps `headroom` bytes free before the frame, so the data plane can write outer
/// headers in place. Each message also has `controlSpace` bytes of its own for control
/// messages (the packet socket's `PACKET_AUXDATA`: `checksumNotReady(_:)`). Frames `0..<n` of
/// the last `receive` stay valid until the next one. Nothing is allocated after `init`. Owned
/// by one thread.
///
/// The corresponding C function is `recvmmsg` (through `cmaglev_recvmmsg`: `struct mmsghdr`
/// is a GNU extension Swift does not see).
public struct ReceiveBatch: ~Copyable {
    public let capacity: Int
    public let bufferSize: Int
    public let headroom: Int
    /// Control bytes per message (0: none asked for).
    public let controlSpace: Int
    let buffers: UnsafeMutableRawPointer
    let controls: UnsafeMutableRawPointer
    let messages: UnsafeMutablePointer<cmaglev_mmsghdr>
    let vectors: UnsafeMutablePointer<iovec>

    /// `controlSpace`: control bytes per message, `PacketAuxiliaryData.controlSpace` to learn
    /// which frames need their checksum completed; a multiple of 8.
    public init(capacity: Int, bufferSize: Int, headroom: Int, controlSpace: Int = 0) {
        precondition(capacity > 0 && capacity <= 1024 && headroom >= 0 && bufferSize > headroom + 64)
        precondition(controlSpace >= 0 && controlSpace % 8 == 0 && controlSpace <= 256)
        self.capacity = capacity
        self.bufferSize = bufferSize
        self.headroom = headroom
        self.controlSpace = controlSpace
        buffers = .allocate(byteCount: capacity * bufferSize, alignment: 64)
        controls = .allocate(byteCount: max(capacity * controlSpace, 8), alignment: 8)
        messages = .allocate(capacity: capacity)
        vectors = .allocate(capacity: capacity)
        for i in 0..<capacity {
            vectors[i] = iovec(iov_base: buffers + i * bufferSize + headroom, iov_len: bufferSize - headroom)
            var header = msghdr()
            header.msg_iov = vectors + i
            header.msg_iovlen = 1
            if controlSpace > 0 {
                header.msg_control = controls + i * controlSpace
                header.msg_controllen = controlSpace
            }
            messages[i] = cmaglev_mmsghdr(msg_hdr: header, msg_len: 0)
        }
    }

    deinit {
        buffers.deallocate()
        controls.deallocate()
        messages.deallocate()
        vectors.deallocate()
    }

    /// The first byte of buffer `i`; its frame starts `headroom` bytes further.
    @inline(__always)
    public func buffer(_ i: Int) -> UnsafeMutableRawPointer { buffers + i &* bufferSize }

    /// Bytes of frame `i` in its buffer.
    @inline(__always)
    public func length(_ i: Int) -> Int { min(Int(messages[i].msg_len), bufferSize &- headroom) }

    /// Whether frame `i` was longer than its buffer and cut (`MSG_TRUNC`).
    @inline(__always)
    public func isTruncated(_ i: Int) -> Bool { messages[i].msg_hdr.msg_flags & Int32(MSG_TRUNC) != 0 }

    /// Whether frame `i`'s TCP/UDP checksum is unfinished (`TP_STATUS_CSUMNOTREADY` in its
    /// `PACKET_AUXDATA` control message); false without control space.
    @inline(__always)
    public func checksumNotReady(_ i: Int) -> Bool {
        controlSpace > 0
            && PacketAuxiliaryData.checksumNotReady(
                control: controls + i &* controlSpace, length: min(messages[i].msg_hdr.msg_controllen, controlSpace))
    }

    /// Takes up to `capacity` frames from `fd`. With `waitForOne`, blocks until the first frame
    /// (or the socket's receive timeout, `SO_RCVTIMEO`) and then takes what is queued without
    /// waiting (`MSG_WAITFORONE`); otherwise never blocks. Returns 0 on timeout, signal or
    /// nothing queued.
    @inline(__always)
    public func receive(from fd: Int32, waitForOne: Bool) throws(SystemError) -> Int {
        for i in 0..<capacity {
            messages[i].msg_hdr.msg_flags = 0
            messages[i].msg_len = 0
            // The kernel wrote back how much control data the last frame carried.
            if controlSpace > 0 { messages[i].msg_hdr.msg_controllen = controlSpace }
        }
        let flags = waitForOne ? Int32(MSG_WAITFORONE) : Int32(MSG_DONTWAIT)
        let n = cmaglev_recvmmsg(fd, messages, UInt32(capacity), flags)
        if n >= 0 { return Int(n) }
        let e = Glibc.errno
        if e == EAGAIN || e == EWOULDBLOCK || e == EINTR { return 0 }
        throw SystemError(call: "recvmmsg", errno: e)
    }
}

/// What one `SendBatch.send` did.
public struct SendBatchOutcome: Sendable, Equatable {
    /// Packets the kernel accepted.
    public var sent: Int = 0
    /// Packets it refused (`lastErrno` says why); each is skipped and the rest still go.
    public var failed: Int = 0
    public var lastErrno: Int32 = 0
    public init() {}
}

/// Up to `capacity` complete IP packets queued for one raw IP socket and sent with as few
/// `sendmmsg` calls as the kernel allows (one when nothing fails). Each packet goes to its own
/// IP destination (the outer destination of a GRE packet). The packets are not copied: their
/// bytes must stay put until `send`. Nothing is allocated after `init`.
///
/// The corresponding C function is `sendmmsg` (through `cmaglev_sendmmsg`).
public struct SendBatch: ~Copyable {
    public let capacity: Int
    public let isIPv6: Bool
    public private(set) var count = 0
    let messages: UnsafeMutablePointer<cmaglev_mmsghdr>
    let vectors: UnsafeMutablePointer<iovec>
    let addresses: UnsafeMutablePointer<sockaddr_in6>

    public init(capacity: Int, ipv6: Bool) {
        precondition(capacity > 0 && capacity <= 1024)
        self.capacity = capacity
        self.isIPv6 = ipv6
        messages = .allocate(capacity: capacity)
        vectors = .allocate(capacity: capacity)
        addresses = .allocate(capacity: capacity)
        addresses.initialize(repeating: sockaddr_in6(), count: capacity)
        for i in 0..<capacity {
            vectors[i] = iovec()
            var header = msghdr()
            header.msg_name = UnsafeMutableRawPointer(addresses + i)
            header.msg_iov = vectors + i
            header.msg_iovlen = 1
            messages[i] = cmaglev_mmsghdr(msg_hdr: header, msg_len: 0)
        }
    }

    deinit {
        messages.deallocate()
        vectors.deallocate()
        addresses.deallocate()
    }

    public var isFull: Bool { count == capacity }

    /// Queues the IP packet at `packet` (`length` bytes); its destination is read from its own
    /// header. The batch must not be full.
    @inline(__always)
    public mutating func append(_ packet: UnsafeMutableRawPointer, length: Int) {
        precondition(count < capacity)
        vectors[count].iov_base = packet
        vectors[count].iov_len = length
        messages[count].msg_hdr.msg_namelen = SocketAddress.fill(addresses + count, fromPacket: packet, ipv6: isIPv6)
        count &+= 1
    }

    /// Sends every queued packet on `fd` (a raw IP socket of the batch's family) and empties
    /// the batch. A packet the kernel refuses is counted and skipped.
    @inline(__always)
    public mutating func send(on fd: Int32) -> SendBatchOutcome {
        let outcome = sendMessages(messages, count: count, on: fd)
        count = 0
        return outcome
    }
}

/// Up to `capacity` whole Ethernet frames queued for an unbound `AF_PACKET` socket, each with
/// the link-layer address (`sockaddr_ll`: which interface) it leaves by, sent with as few
/// `sendmmsg` calls as the kernel allows. Frames are not copied (their bytes must stay put until
/// `send`); each address is (20 bytes). Nothing is allocated after `init`.
///
/// The corresponding C function is `sendmmsg` (through `cmaglev_sendmmsg`).
public struct FrameBatch: ~Copyable {
    public let capacity: Int
    public private(set) var count = 0
    let messages: UnsafeMutablePointer<cmaglev_mmsghdr>
    let vectors: UnsafeMutablePointer<iovec>
    let addresses: UnsafeMutableRawPointer
    static let addressStride = 32

    public init(capacity: Int) {
        precondition(capacity > 0 && capacity <= 1024)
        self.capacity = capacity
        messages = .allocate(capacity: capacity)
        vectors = .allocate(capacity: capacity)
        addresses = .allocate(byteCount: capacity * FrameBatch.addressStride, alignment: 16)
        addresses.initializeMemory(as: UInt8.self, repeating: 0, count: capacity * FrameBatch.addressStride)
        for i in 0..<capacity {
            vectors[i] = iovec()
            var header = msghdr()
            header.msg_name = addresses + i * FrameBatch.addressStride
            header.msg_iov = vectors + i
            header.msg_iovlen = 1
            messages[i] = cmaglev_mmsghdr(msg_hdr: header, msg_len: 0)
        }
    }

    deinit {
        messages.deallocate()
        vectors.deallocate()
        addresses.deallocate()
    }

    /// Queues the frame at `frame` (`length` bytes) for the interface named by the
    /// `addressLength`-byte `sockaddr_ll` at `address` (copied). The batch must not be full.
    @inline(__always)
    public mutating func append(_ frame: UnsafeMutableRawPointer, length: Int, address: UnsafeRawPointer, addressLength: Int) {
        precondition(count < capacity && addressLength <= FrameBatch.addressStride)
        vectors[count].iov_base = frame
        vectors[count].iov_len = length
        (addresses + count &* FrameBatch.addressStride).copyMemory(from: address, byteCount: addressLength)
        messages[count].msg_hdr.msg_namelen = socklen_t(addressLength)
        count &+= 1
    }

    /// Sends every queued frame on `fd` and empties the batch; a refused frame is counted and
    /// skipped.
    @inline(__always)
    public mutating func send(on fd: Int32) -> SendBatchOutcome {
        let outcome = sendMessages(messages, count: count, on: fd)
        count = 0
        return outcome
    }
}

/// `sendmmsg` until every message went or was refused (one refused message is skipped at a
/// time: the kernel reports an error only for the first message it tried).
@inline(__always)
func sendMessages(_ messages: UnsafeMutablePointer<cmaglev_mmsghdr>, count: Int, on fd: Int32) -> SendBatchOutcome {
    var outcome = SendBatchOutcome()
    var first = 0
    while first < count {
        let n = cmaglev_sendmmsg(fd, messages + first, UInt32(count &- first), 0)
        if n > 0 {
            outcome.sent &+= Int(n)
            first &+= Int(n)
            continue
        }
        let e = Glibc.errno
        if n < 0 && e == EINTR { continue }
        outcome.failed &+= 1
        outcome.lastErrno = n < 0 ? e : 0
        first &+= 1
    }
    return outcome
}

extension PacketSocket {
    /// How long a blocking receive waits before giving up with `EAGAIN` (`SO_RCVTIMEO`).
    public func setReceiveTimeout(nanoseconds: Int64) throws(SystemError) {
        var tv = timeval(tv_sec: Int(nanoseconds / 1_000_000_000), tv_usec: Int(nanoseconds % 1_000_000_000) / 1000)
        let fd = self.fd
        _ = try SystemCall.run("setsockopt(SO_RCVTIMEO)") {
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }
    }
}
