internal import CMaglevShim
import Glibc

/// A packet socket with a `TPACKET_V3` receive ring (`PACKET_RX_RING`, mapped into this
/// process): the kernel copies each frame into the ring in softirq (no skb clone queued on the
/// socket, no per-frame `recvmsg`), a block at a time; the worker walks the blocks user space
/// owns and hands each back when it is done with its frames (`release`). Filtered, in the
/// fanout group, outgoing frames ignored, as `PacketSocket`.
///
/// Each frame has `reserve` bytes free in front of it (`PACKET_RESERVE`) besides the frame
/// header, so the data plane writes the outer headers in place, in the ring.
///
/// The corresponding C calls are `socket`, `setsockopt` (PACKET_VERSION, PACKET_RESERVE,
/// PACKET_RX_RING, PACKET_FANOUT), `mmap` and `bind`.
public struct PacketRing: ~Copyable {
    /// How the ring is laid out.
    public enum Layout: Sendable {
        /// TPACKET_V3: variable-length frames packed into blocks; user space gets a block when
        /// it is full or its retire timer (1 ms) fires.
        case blocks
        /// TPACKET_V2: one fixed slot per frame, user space's as soon as the frame is in.
        /// Here a "block" is one slot (`blockSize` = the frame size).
        case frames
    }

    public let fd: Int32
    public let interfaceIndex: Int32
    public let ring: UnsafeMutableRawPointer
    public let layout: Layout
    public let blockSize: Int
    public let blockCount: Int

    /// One frame of a ready block: where it starts in the ring, its captured length, and
    /// whether the kernel left its transport checksum unfinished (`CHECKSUM_PARTIAL`).
    public struct Frame {
        public var base: UnsafeMutableRawPointer
        public var offset: Int
        public var length: Int
        public var truncated: Bool
        public var checksumNotReady: Bool
    }

    /// `.blocks`: `blockCount` blocks of `blockSize` bytes; `.frames`: `frameCount` slots of
    /// `frameSize` bytes (`blockSize` and `blockCount` unused).
    public init(
        interface: String, fanoutGroup: UInt16?, filter: [BPFInstruction]?, layout: Layout = .blocks,
        blockSize: Int = 1 << 18, blockCount: Int = 32, frameSize: Int = 2048, frameCount: Int = 4096,
        retireMilliseconds: Int = 1, reserve: Int = 64
    ) throws(SystemError) {
        precondition(blockSize % Int(getpagesize()) == 0 && blockSize % frameSize == 0 && blockCount > 0)
        let pageFrames = max(1, Int(getpagesize()) / frameSize)
        let mappedBytes = layout == .blocks ? blockSize * blockCount : frameSize * (frameCount / pageFrames * pageFrames)
        let index = if_nametoindex(interface)
        if index == 0 { throw SystemError(call: "if_nametoindex(\(interface))", errno: Glibc.errno) }
        let fd = try SystemCall.run("socket(AF_PACKET, SOCK_RAW)") {
            socket(AF_PACKET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        var mapped: UnsafeMutableRawPointer?
        do throws(SystemError) {
            try PacketSocket.setOption(fd, SOL_PACKET, cmaglev_packet_ignore_outgoing(), 1, name: "PACKET_IGNORE_OUTGOING")
            if let filter { try PacketSocket.attach(fd: fd, filter: filter) }
            let mapping =
                layout == .blocks
                ? cmaglev_tpacket_v3_rx_ring(
                    fd, UInt32(blockSize), UInt32(blockCount), UInt32(frameSize), UInt32(retireMilliseconds),
                    UInt32(reserve))
                : cmaglev_tpacket_v2_rx_ring(
                    fd, UInt32(frameSize), UInt32(frameCount / pageFrames * pageFrames), UInt32(pageFrames), UInt32(reserve))
            guard let r = mapping else {
                throw SystemError(call: "setsockopt(PACKET_RX_RING, TPACKET_V3) / mmap", errno: Glibc.errno)
            }
            mapped = r
            try PacketSocket.bind(fd, interfaceIndex: Int32(index), interface: interface, fanoutGroup: fanoutGroup)
        } catch {
            if let mapped { cmaglev_tpacket_unmap(mapped, mappedBytes) }
            closeDescriptor(fd)
            throw error
        }
        self.fd = fd
        self.interfaceIndex = Int32(index)
        self.ring = mapped!
        self.layout = layout
        self.blockSize = layout == .blocks ? blockSize : frameSize
        self.blockCount = layout == .blocks ? blockCount : frameCount / pageFrames * pageFrames
    }

    deinit {
        cmaglev_tpacket_unmap(ring, blockSize * blockCount)
        closeDescriptor(fd)
    }

    @inline(__always)
    public func block(_ i: Int) -> UnsafeMutableRawPointer { ring + i &* blockSize }

    /// Whether user space owns block `i` (the kernel filled or retired it).
    @inline(__always)
    public func isReady(_ i: Int) -> Bool {
        if layout == .frames { return cmaglev_tpacket2_rx_ready(block(i)) != 0 }
        return cmaglev_tpacket_block_ready(block(i)) != 0
    }

    /// Walks block `i` (ready), calling `body` with each frame in order; returns how many.
    @inline(__always)
    public func frames(ofBlock i: Int, _ body: (Frame) -> Void) -> Int {
        let b = block(i)
        if layout == .frames {
            var h = cmaglev_tpacket_frame()
            guard cmaglev_tpacket2_rx_frame(b, &h) != 0 else { return 0 }
            body(
                Frame(
                    base: b, offset: Int(h.mac), length: Int(h.snaplen), truncated: h.snaplen < h.len,
                    checksumNotReady: h.checksum_not_ready != 0))
            return 1
        }
        let n = Int(cmaglev_tpacket_block_packets(b))
        var p = b + Int(cmaglev_tpacket_block_first(b))
        for _ in 0..<n {
            let h = cmaglev_tpacket_frame(p)
            body(
                Frame(
                    base: p, offset: Int(h.mac), length: Int(h.snaplen), truncated: h.snaplen < h.len,
                    checksumNotReady: h.checksum_not_ready != 0))
            p += Int(h.next_offset)
        }
        return n
    }

    /// Hands block `i` back to the kernel.
    @inline(__always)
    public func release(_ i: Int) {
        if layout == .frames { cmaglev_tpacket2_rx_release(block(i)) } else { cmaglev_tpacket_block_release(block(i)) }
    }

    /// Waits up to `timeoutMilliseconds` for the socket to be readable (a block ready).
    public func wait(timeoutMilliseconds: Int32) {
        var p = pollfd(fd: fd, events: Int16(POLLIN | POLLERR), revents: 0)
        _ = poll(&p, 1, timeoutMilliseconds)
    }

    public func attach(filter: [BPFInstruction]) throws(SystemError) { try PacketSocket.attach(fd: fd, filter: filter) }

    /// Frames dropped since the last call (ring full; `PACKET_STATISTICS`, reset on read).
    public func takeStatistics() throws(SystemError) -> (packets: UInt64, drops: UInt64) {
        try PacketSocket.takeStatistics(fd: fd)
    }
}

/// A packet socket with a `TPACKET_V2` transmit ring (`PACKET_TX_RING`, mapped), bound to one
/// interface, with `PACKET_QDISC_BYPASS`: the worker writes whole frames into free slots and
/// one `send` (any length, no data) makes the kernel transmit every queued slot; a slot is free
/// again once its skb is freed. The kernel builds each skb on the ring's pages (no copy of the
/// data into the skb).
///
/// The corresponding C calls are `socket`, `setsockopt` (PACKET_VERSION, PACKET_QDISC_BYPASS,
/// PACKET_TX_RING), `mmap` and `bind`.
public struct PacketTxRing: ~Copyable {
    public let fd: Int32
    public let interfaceIndex: Int32
    let ring: UnsafeMutableRawPointer
    public let frameSize: Int
    public let frameCount: Int
    let dataOffset: Int
    var next = 0
    /// Frames queued since the last `takeQueued`.
    public private(set) var queued = 0
    /// Frames the kernel refused (TP_STATUS_WRONG_FORMAT), seen when their slot came round.
    public private(set) var refused: UInt64 = 0

    /// The most bytes a frame may have.
    public var capacity: Int { frameSize - dataOffset }

    public init(interfaceIndex: Int32, frameSize: Int = 2048, frameCount: Int = 1024) throws(SystemError) {
        let fd = try SystemCall.run("socket(AF_PACKET, SOCK_RAW)") {
            socket(AF_PACKET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        let blockFrames = max(1, Int(getpagesize()) * 4 / frameSize)
        guard let r = cmaglev_tpacket_v2_tx_ring(fd, UInt32(frameSize), UInt32(frameCount), UInt32(blockFrames)) else {
            let e = Glibc.errno
            closeDescriptor(fd)
            throw SystemError(call: "setsockopt(PACKET_TX_RING, TPACKET_V2) / mmap", errno: e)
        }
        if cmaglev_packet_bind(fd, interfaceIndex, 0) != 0 {
            let e = Glibc.errno
            cmaglev_tpacket_unmap(r, frameSize * frameCount)
            closeDescriptor(fd)
            throw SystemError(call: "bind(AF_PACKET, TX ring)", errno: e)
        }
        self.fd = fd
        self.interfaceIndex = interfaceIndex
        self.ring = r
        self.frameSize = frameSize
        self.frameCount = frameCount / blockFrames * blockFrames
        self.dataOffset = Int(cmaglev_tpacket2_tx_data_offset())
    }

    deinit {
        cmaglev_tpacket_unmap(ring, frameSize * frameCount)
        closeDescriptor(fd)
    }

    /// Copies the frame of `length` bytes at `bytes` into the next slot and queues it; false
    /// when that slot is still in use (the ring is full) or the frame does not fit.
    @inline(__always)
    public mutating func queue(_ bytes: UnsafeRawPointer, length: Int) -> Bool {
        guard length <= capacity else { return false }
        let slot = ring + next &* frameSize
        switch cmaglev_tpacket2_tx_state(slot) {
        case 0: break
        case 2: refused &+= 1
        default: return false
        }
        (slot + dataOffset).copyMemory(from: bytes, byteCount: length)
        cmaglev_tpacket2_tx_queue(slot, UInt32(length))
        next = next &+ 1 == frameCount ? 0 : next &+ 1
        queued &+= 1
        return true
    }

    /// The frames queued since the last call (and resets the count).
    @inline(__always)
    public mutating func takeQueued() -> Int {
        defer { queued = 0 }
        return queued
    }
}
