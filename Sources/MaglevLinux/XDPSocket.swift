internal import CMaglevXDP
import Glibc

/// The XDP program of `maglev forward --io xdp`, attached to one interface: untagged IPv4 / IPv6
/// whose destination lies in a VIP prefix (or GRE to this forwarder's group address) is
/// redirected to the XSK socket of the queue it arrived on; everything else passes to the
/// kernel untouched (so the host's own traffic, BGP and the admin API among it, never reaches
/// the workers). The program is hand-assembled eBPF (CMaglevXDP/xdp.c, about 60 instructions),
/// loaded through libbpf; its prefixes live in two LPM-trie maps the control side updates on
/// reload, and the workers' sockets in an XSKMAP keyed by queue.
///
/// The attachment is a bpf_link: it goes away when this object is released or the process
/// dies, so a crashed forwarder never leaves the interface steering packets to nobody.
public final class XDPProgram: @unchecked Sendable {
    // @unchecked: the descriptors are set once; map updates are system calls the kernel
    // serialises (the control side updates prefixes, workers register their sockets).

    /// What a prefix's packets are.
    public enum Kind: UInt32, Sendable {
        /// Every packet to the prefix (a VIP).
        case vip = 1
        /// GRE to the address only (this forwarder's group address: redirected fragments).
        case gre = 2
        /// Both (a group address inside a VIP prefix).
        case vipAndGRE = 3
    }

    /// One map entry: an IPv4 (4 bytes) or IPv6 (16 bytes) prefix in network order.
    public struct Prefix: Hashable, Sendable {
        public var address: [UInt8]
        public var length: Int
        public var kind: Kind
        public init(address: [UInt8], length: Int, kind: Kind) {
            self.address = address
            self.length = length
            self.kind = kind
        }
        var isIPv6: Bool { address.count == 16 }
    }

    var program: cmaglev_xdp_program
    public let interfaceIndex: Int32
    public let interfaceName: String
    /// Native (driver) mode; false: generic (skb) mode.
    public var isNative: Bool { program.native != 0 }
    public static let maximumPrefixes = 16384

    /// Where the program runs.
    public enum AttachMode: String, Sendable, CaseIterable {
        /// Native where the driver has it, else generic.
        case auto
        /// In the driver, before an skb exists (fails where the driver has no XDP).
        case native
        /// On the skb, after the driver (every interface; slower).
        case generic
    }

    /// Loads the program and attaches it to `interface` in `mode`.
    public init(interface: String, maximumQueues: Int = 64, mode: AttachMode = .auto) throws(SystemError) {
        let index = if_nametoindex(interface)
        if index == 0 { throw SystemError(call: "if_nametoindex(\(interface))", errno: Glibc.errno) }
        interfaceIndex = Int32(index)
        interfaceName = interface
        program = cmaglev_xdp_program()
        var log = [CChar](repeating: 0, count: 1 << 16)
        // Room for twice the prefixes a config may have: a reload inserts the new ones before it
        // deletes the stale ones.
        let r = cmaglev_xdp_load(&program, UInt32(2 * XDPProgram.maximumPrefixes), UInt32(maximumQueues), &log, log.count)
        if r < 0 {
            let text = string(fromCBuffer: log)
            throw SystemError(call: "loading the XDP program (\(text.suffix(600)))", errno: -r)
        }
        let a = cmaglev_xdp_attach(&program, Int32(index), mode == .auto ? 0 : mode == .native ? 1 : 2)
        if a < 0 {
            cmaglev_xdp_close(&program)
            throw SystemError(call: "bpf_link_create(XDP, \(interface), \(mode.rawValue) mode)", errno: -a)
        }
    }

    deinit { cmaglev_xdp_close(&program) }

    /// Makes the maps hold exactly `prefixes`: new and changed ones first, then the stale ones
    /// go (so a VIP kept across a reload is never missing for a moment).
    public func setPrefixes(_ prefixes: [Prefix]) throws(SystemError) {
        precondition(prefixes.count <= XDPProgram.maximumPrefixes)
        for p in prefixes {
            let r = p.address.withUnsafeBufferPointer {
                cmaglev_xdp_set_prefix(&program, p.isIPv6 ? 1 : 0, $0.baseAddress, UInt32(p.length), p.kind.rawValue)
            }
            if r < 0 { throw SystemError(call: "bpf_map_update_elem(XDP prefix \(p.address)/\(p.length))", errno: -r) }
        }
        let wanted = Set(prefixes.map { [UInt8($0.length)] + $0.address })
        for ipv6 in [false, true] {
            for (address, length) in try installed(ipv6: ipv6) where !wanted.contains([UInt8(length)] + address) {
                let r = address.withUnsafeBufferPointer {
                    cmaglev_xdp_delete_prefix(&program, ipv6 ? 1 : 0, $0.baseAddress, UInt32(length))
                }
                if r < 0 && r != -ENOENT { throw SystemError(call: "bpf_map_delete_elem(XDP prefix)", errno: -r) }
            }
        }
    }

    /// The prefixes in one family's map.
    public func installed(ipv6: Bool) throws(SystemError) -> [(address: [UInt8], length: Int)] {
        let keySize = ipv6 ? 20 : 8
        var keys = [UInt8](repeating: 0, count: keySize * XDPProgram.maximumPrefixes)
        let n = cmaglev_xdp_list_prefixes(&program, ipv6 ? 1 : 0, &keys, UInt32(XDPProgram.maximumPrefixes))
        if n < 0 { throw SystemError(call: "bpf_map_get_next_key(XDP prefixes)", errno: -n) }
        return (0..<Int(n)).map { i in
            let key = keys[(i * keySize)..<((i + 1) * keySize)]
            let length = key.prefix(4).reversed().reduce(0) { $0 << 8 | Int($1) }  // host order (little endian)
            return (Array(key.dropFirst(4)), length)
        }
    }

    /// The receive queues `interface` uses (ethtool channels; 1 when the driver does not say).
    /// Packets arrive on every one of them, and an XSK socket takes one queue's only.
    public static func receiveQueues(interface: String) throws(SystemError) -> Int {
        let r = cmaglev_xdp_rx_queues(interface)
        if r < 0 { throw SystemError(call: "ioctl(SIOCETHTOOL, ETHTOOL_GCHANNELS, \(interface))", errno: -r) }
        return Int(r)
    }

    /// Whether the interface merges received frames (GRO; nil when it cannot say). Generic mode
    /// runs on the merged frame, which may be larger than a UMEM frame.
    public static func mergesReceivedFrames(interface: String) -> Bool? {
        let r = cmaglev_xdp_gro_enabled(interface)
        return r < 0 ? nil : r == 1
    }

    /// Steers queue `queue`'s packets to the socket `fd`.
    public func register(socket fd: Int32, queue: Int) throws(SystemError) {
        let r = cmaglev_xdp_register_socket(&program, UInt32(queue), fd)
        if r < 0 { throw SystemError(call: "bpf_map_update_elem(XSKMAP, queue \(queue))", errno: -r) }
    }
}

/// A frame in a UMEM: its offset from the UMEM's start, and its length (`struct xdp_desc`).
public struct XDPFrame {
    public var address: UInt64
    public var length: UInt32
    public var options: UInt32
    public init(address: UInt64 = 0, length: UInt32 = 0) {
        self.address = address
        self.length = length
        options = 0
    }
}

/// One worker's AF_XDP socket: a UMEM of fixed-size frames (every one in the fill ring at
/// first), bound to one receive queue of the interface, with RX, TX, fill and completion rings
/// (libxdp's xsk API). Received frames have `XDP_PACKET_HEADROOM` (256 bytes) free in front of
/// them, so the data plane writes the outer headers in place; frames sent through the TX ring
/// leave from the same UMEM (no copy in zero-copy mode; one copy in copy mode, on veth).
/// Nothing here allocates or locks; each call is one batch.
public final class XDPSocket {
    let handle: OpaquePointer
    public let fd: Int32
    public let umem: UnsafeMutableRawPointer
    public let frameSize: Int
    public let frameCount: Int
    public let queue: Int
    /// The kernel moves frames to and from the UMEM without a copy (driver support).
    public let isZeroCopy: Bool

    public init(interface: String, queue: Int, frameSize: Int = 2048, frameCount: Int = 4096, copyOnly: Bool = false)
        throws(SystemError)
    {
        precondition(frameSize == 2048 || frameSize == 4096)
        precondition(frameCount > 0 && frameCount & (frameCount - 1) == 0)
        var step = [CChar](repeating: 0, count: 256)
        var h: OpaquePointer?
        let r = cmaglev_xsk_open(&h, interface, UInt32(queue), UInt32(frameSize), UInt32(frameCount), copyOnly ? 1 : 0, &step, step.count)
        guard r == 0, let h else {
            let text = string(fromCBuffer: step)
            throw SystemError(call: "AF_XDP socket on \(interface) queue \(queue) (\(text))", errno: -r)
        }
        handle = h
        fd = cmaglev_xsk_fd(h)
        umem = cmaglev_xsk_umem(h)
        isZeroCopy = cmaglev_xsk_zerocopy(h) != 0
        self.frameSize = frameSize
        self.frameCount = frameCount
        self.queue = queue
        owner = nil
    }

    /// A transmit-only socket on `interface`'s queue `queue` that shares `owner`'s UMEM: frames
    /// received by the owner leave through it without a copy into another buffer, and come back
    /// on its own completion ring (`completed`). It has no receive ring.
    public init(transmittingFor owner: XDPSocket, interface: String, queue: Int) throws(SystemError) {
        var step = [CChar](repeating: 0, count: 256)
        var h: OpaquePointer?
        let r = cmaglev_xsk_open_transmit(&h, owner.handle, interface, UInt32(queue), &step, step.count)
        guard r == 0, let h else {
            let text = string(fromCBuffer: step)
            throw SystemError(call: "AF_XDP transmit socket on \(interface) queue \(queue) (\(text))", errno: -r)
        }
        handle = h
        fd = cmaglev_xsk_fd(h)
        umem = owner.umem
        isZeroCopy = cmaglev_xsk_zerocopy(h) != 0
        frameSize = owner.frameSize
        frameCount = owner.frameCount
        self.queue = queue
        self.owner = owner
    }

    /// The same for the interface with index `interfaceIndex`.
    public convenience init(transmittingFor owner: XDPSocket, interfaceIndex: Int32, queue: Int) throws(SystemError) {
        var name = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
        guard if_indextoname(UInt32(bitPattern: interfaceIndex), &name) != nil else {
            throw SystemError(call: "if_indextoname(\(interfaceIndex))", errno: Glibc.errno)
        }
        let text = string(fromCBuffer: name)
        try self.init(transmittingFor: owner, interface: text, queue: queue)
    }

    /// The socket whose UMEM this one shares (kept alive as long as this one).
    let owner: XDPSocket?

    deinit { cmaglev_xsk_close(handle) }

    /// Takes up to `max` received frames into `frames`.
    @inline(__always)
    public func receive(into frames: UnsafeMutablePointer<XDPFrame>, max: Int) -> Int {
        frames.withMemoryRebound(to: cmaglev_xsk_frame.self, capacity: max) {
            Int(cmaglev_xsk_receive(handle, $0, UInt32(max)))
        }
    }

    @inline(__always)
    public var hasReceived: Bool { cmaglev_xsk_rx_ready(handle) != 0 }

    /// Gives frames back to the kernel for receiving (any address inside each frame); returns
    /// how many fit (all, unless frames were given back twice).
    @inline(__always)
    public func refill(_ addresses: UnsafePointer<UInt64>, count: Int) -> Int {
        Int(cmaglev_xsk_refill(handle, addresses, UInt32(count)))
    }

    /// Queues frames for sending; returns how many fit in the TX ring.
    @inline(__always)
    public func queue(_ frames: UnsafePointer<XDPFrame>, count: Int) -> Int {
        frames.withMemoryRebound(to: cmaglev_xsk_frame.self, capacity: count) {
            Int(cmaglev_xsk_queue(handle, $0, UInt32(count)))
        }
    }

    /// Whether the TX ring holds frames the kernel has not taken yet.
    @inline(__always)
    public var hasPendingTransmit: Bool { cmaglev_xsk_tx_pending(handle) != 0 }

    /// Wakes a zero-copy driver that stopped for want of fill frames (when it asks).
    @inline(__always)
    public func wakeReceive() { cmaglev_xsk_wake_receive(handle) }

    /// Has the kernel send what is queued: returns the `sendto` calls made (copy mode sends 32
    /// frames per call), or throws the first hard error.
    @inline(__always)
    public func kick() throws(SystemError) -> Int {
        let r = cmaglev_xsk_kick(handle)
        if r < 0 { throw SystemError(call: "sendto(AF_XDP)", errno: -r) }
        return Int(r)
    }

    /// Takes up to `max` sent frames' addresses off the completion ring.
    @inline(__always)
    public func completed(into addresses: UnsafeMutablePointer<UInt64>, max: Int) -> Int {
        Int(cmaglev_xsk_completed(handle, addresses, UInt32(max)))
    }

    /// Waits up to `timeoutMilliseconds` for received frames.
    public func wait(timeoutMilliseconds: Int32) { cmaglev_xsk_wait(handle, timeoutMilliseconds) }

    /// Frames the kernel could not hand over since the socket opened: dropped for want of a
    /// frame in the fill ring or for size (`rx_dropped`), or for want of room in the RX ring.
    public func drops() throws(SystemError) -> UInt64 {
        var c = cmaglev_xsk_counters()
        let r = cmaglev_xsk_counters(handle, &c)
        if r < 0 { throw SystemError(call: "getsockopt(XDP_STATISTICS)", errno: -r) }
        return c.rx_dropped &+ c.rx_ring_full
    }
}
