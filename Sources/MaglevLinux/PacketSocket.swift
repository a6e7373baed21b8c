#if canImport(Glibc)
    import Glibc
#endif
internal import CMaglevShim

/// One classic BPF instruction (`struct sock_filter`).
public struct BPFInstruction: Sendable, Equatable {
    public var code: UInt16
    public var jt: UInt8
    public var jf: UInt8
    public var k: UInt32

    public init(code: UInt16, jt: UInt8 = 0, jf: UInt8 = 0, k: UInt32 = 0) {
        self.code = code
        self.jt = jt
        self.jf = jf
        self.k = k
    }

    /// The kernel's longest classic BPF program (`BPF_MAXINSNS`).
    public static let maximumCount = 4096
    /// `SKF_AD_OFF + SKF_AD_PKTTYPE`: load the packet type (`PACKET_HOST`, `PACKET_OUTGOING`...).
    public static var packetTypeOffset: UInt32 { UInt32(bitPattern: cmaglev_skf_ad_pkttype()) }
    /// `PACKET_OUTGOING`.
    public static var packetOutgoing: UInt32 { UInt32(cmaglev_packet_outgoing()) }
}

/// An `AF_PACKET` / `SOCK_RAW` socket bound to one interface, receiving every frame (with its
/// Ethernet header) that a classic BPF filter accepts, as a member of a `PACKET_FANOUT_HASH`
/// group so that several workers share the interface's traffic by flow.
///
/// Outgoing frames are ignored (`PACKET_IGNORE_OUTGOING`), so what the forwarder itself sends
/// out of the same interface never comes back to it. The socket receives a clone: the kernel
/// still handles the original (never configure a VIP locally on a forwarder).
///
/// Every frame comes with a `PACKET_AUXDATA` control message (`PacketAuxiliaryData`) for
/// receives that reserve control space: it says whether the frame's TCP/UDP checksum is still
/// to be completed. Receives without control space (`receive(into:)`) simply do not get it.
///
/// The corresponding C functions are `socket`, `setsockopt` and `bind`.
public struct PacketSocket: ~Copyable {
    public let fd: Int32
    public let interfaceIndex: Int32
    public let interfaceName: String

    /// Opens, filters, binds and joins the fanout group. The filter is attached before the
    /// socket is bound, so it never queues a frame the filter would have refused.
    public init(
        interface: String, fanoutGroup: UInt16?, filter: [BPFInstruction]?, receiveBufferBytes: Int = 8 << 20
    ) throws(SystemError) {
        let index = if_nametoindex(interface)
        if index == 0 { throw SystemError(call: "if_nametoindex(\(interface))", errno: Glibc.errno) }
        // Protocol 0: receives nothing until bound with a protocol.
        let fd = try SystemCall.run("socket(AF_PACKET, SOCK_RAW)") {
            socket(AF_PACKET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        do {
            try PacketSocket.setOption(fd, SOL_SOCKET, SO_RCVBUFFORCE, Int32(clamping: receiveBufferBytes),
                name: "SO_RCVBUFFORCE", fallback: SO_RCVBUF)
            try PacketSocket.setOption(fd, SOL_PACKET, cmaglev_packet_ignore_outgoing(), 1, name: "PACKET_IGNORE_OUTGOING")
            try PacketSocket.setOption(fd, SOL_PACKET, cmaglev_packet_auxdata(), 1, name: "PACKET_AUXDATA")
            if let filter { try PacketSocket.attach(fd: fd, filter: filter) }
            try PacketSocket.bind(fd, interfaceIndex: Int32(index), interface: interface, fanoutGroup: fanoutGroup)
        } catch {
            closeDescriptor(fd)
            throw error
        }
        self.fd = fd
        self.interfaceIndex = Int32(index)
        self.interfaceName = interface
    }

    deinit { closeDescriptor(fd) }

    /// Replaces the socket's filter (`SO_ATTACH_FILTER`); the kernel swaps it atomically.
    public func attach(filter: [BPFInstruction]) throws(SystemError) {
        try PacketSocket.attach(fd: fd, filter: filter)
    }

    /// Frames the kernel queued and dropped (receive queue full) since the last call; the
    /// kernel resets both on read. The corresponding option is `PACKET_STATISTICS`.
    public func takeStatistics() throws(SystemError) -> (packets: UInt64, drops: UInt64) {
        try PacketSocket.takeStatistics(fd: fd)
    }

    /// Waits up to `timeoutMilliseconds` for a frame and copies it into `buffer`; returns its
    /// length, or nil on timeout (control side and tests; the data path receives through
    /// `IORing`). The corresponding C functions are `poll` and `recv`.
    public func receive(into buffer: UnsafeMutableRawBufferPointer, timeoutMilliseconds: Int32) throws(SystemError) -> Int? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = try SystemCall.run("poll(packet socket)") { poll(&p, 1, timeoutMilliseconds) }
        if ready == 0 { return nil }
        let fd = self.fd
        return try SystemCall.retrying("recv(packet socket)") {
            recv(fd, buffer.baseAddress, buffer.count, cmaglev_msg_dontwait() | cmaglev_msg_trunc())
        }
    }

    /// Binds `fd` to the interface for every protocol, then joins the `PACKET_FANOUT_HASH`
    /// group (when one is given): the last steps of opening a receive socket, ring or not.
    static func bind(_ fd: Int32, interfaceIndex: Int32, interface: String, fanoutGroup: UInt16?) throws(SystemError) {
        _ = try SystemCall.run("bind(AF_PACKET, \(interface))") {
            cmaglev_packet_bind(fd, interfaceIndex, cmaglev_eth_p_all())
        }
        if let fanoutGroup {
            let value = Int32(fanoutGroup) | (Int32(cmaglev_packet_fanout_hash()) << 16)
            try PacketSocket.setOption(fd, SOL_PACKET, cmaglev_packet_fanout(), value, name: "PACKET_FANOUT")
        }
    }

    /// `PACKET_STATISTICS` of `fd`: frames queued and dropped since the last read (reset then).
    static func takeStatistics(fd: Int32) throws(SystemError) -> (packets: UInt64, drops: UInt64) {
        var packets: UInt32 = 0
        var drops: UInt32 = 0
        _ = try SystemCall.run("getsockopt(PACKET_STATISTICS)") { cmaglev_packet_statistics(fd, &packets, &drops) }
        return (UInt64(packets), UInt64(drops))
    }

    static func attach(fd: Int32, filter: [BPFInstruction]) throws(SystemError) {
        precondition(!filter.isEmpty && filter.count <= BPFInstruction.maximumCount)
        _ = try SystemCall.run("setsockopt(SO_ATTACH_FILTER)") {
            filter.withUnsafeBufferPointer { p in
                p.withMemoryRebound(to: cmaglev_bpf_insn.self) { insns in
                    cmaglev_attach_filter(fd, insns.baseAddress, UInt16(insns.count))
                }
            }
        }
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ option: Int32, _ value: Int32, name: String, fallback: Int32? = nil)
        throws(SystemError)
    {
        var v = value
        let size = socklen_t(MemoryLayout<Int32>.size)
        if setsockopt(fd, level, option, &v, size) == 0 { return }
        let e = Glibc.errno
        if let fallback, setsockopt(fd, level, fallback, &v, size) == 0 { return }
        throw SystemError(call: "setsockopt(\(name))", errno: e)
    }
}

/// A raw IP socket that sends complete IP packets as they are (`IPPROTO_RAW`, which implies
/// `IP_HDRINCL` / `IPV6_HDRINCL`; set explicitly too). The kernel routes each packet by the
/// destination passed with it (the outer destination), fills in the IPv4 header checksum and,
/// where it is 0, the identification. It never receives anything.
///
/// The corresponding C functions are `socket` and `setsockopt`.
public struct RawIPSocket: ~Copyable {
    public let fd: Int32
    public let isIPv6: Bool

    public init(ipv6: Bool, sendBufferBytes: Int = 8 << 20) throws(SystemError) {
        let family = ipv6 ? AF_INET6 : AF_INET
        let fd = try SystemCall.run(ipv6 ? "socket(AF_INET6, SOCK_RAW, IPPROTO_RAW)" : "socket(AF_INET, SOCK_RAW, IPPROTO_RAW)") {
            socket(family, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Int32(IPPROTO_RAW))
        }
        var one: Int32 = 1
        let size = socklen_t(MemoryLayout<Int32>.size)
        let failed: String? =
            ipv6
            ? (setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_HDRINCL, &one, size) != 0 ? "setsockopt(IPV6_HDRINCL)" : nil)
            : (setsockopt(fd, Int32(IPPROTO_IP), IP_HDRINCL, &one, size) != 0 ? "setsockopt(IP_HDRINCL)" : nil)
        if let failed {
            let e = Glibc.errno
            closeDescriptor(fd)
            throw SystemError(call: failed, errno: e)
        }
        self.fd = fd
        self.isIPv6 = ipv6
        var bytes = Int32(clamping: sendBufferBytes)
        if setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, size) != 0 {
            _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, size)
        }
    }

    private init(closed ipv6: Bool) {
        fd = -1
        isIPv6 = ipv6
    }

    /// A socket that is not open (`isOpen` false): where the host has no IPv6, say.
    public static func unavailable(ipv6: Bool) -> RawIPSocket { RawIPSocket(closed: ipv6) }

    public var isOpen: Bool { fd >= 0 }

    deinit { closeDescriptor(fd) }

    /// Sends one packet now (control side and tests; the data path sends through `IORing`).
    /// The destination is read from the packet's own IP header.
    public func send(_ packet: [UInt8]) throws(SystemError) {
        let result: Result<Void, SystemError> = packet.withUnsafeBytes { b in
            do throws(SystemError) {
                try send(b)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
    }

    /// Sends one packet now (see `send(_: [UInt8])`).
    public func send(_ packet: UnsafeRawBufferPointer) throws(SystemError) {
        var address = sockaddr_in6()
        let length = SocketAddress.fill(&address, fromPacket: packet.baseAddress!, ipv6: isIPv6)
        let fd = self.fd
        _ = try SystemCall.run("sendto(raw IP)") {
            withUnsafePointer(to: &address) { a in
                a.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                    Glibc.sendto(fd, packet.baseAddress, packet.count, 0, sa, length)
                }
            }
        }
    }
}

/// Socket addresses for raw IP sends, taken from the packet's own destination.
enum SocketAddress {
    /// Writes the IP packet's destination (IPv4 bytes 16-19, IPv6 bytes 24-39) into `address`
    /// (a `sockaddr_in6`, large enough for both) and returns the address length.
    @inline(__always)
    static func fill(_ address: UnsafeMutablePointer<sockaddr_in6>, fromPacket p: UnsafeRawPointer, ipv6: Bool)
        -> socklen_t
    {
        if ipv6 {
            address.pointee.sin6_family = sa_family_t(AF_INET6)
            address.pointee.sin6_port = 0
            address.pointee.sin6_flowinfo = 0
            address.pointee.sin6_scope_id = 0
            withUnsafeMutableBytes(of: &address.pointee.sin6_addr) { $0.copyMemory(from: UnsafeRawBufferPointer(start: p + 24, count: 16)) }
            return socklen_t(MemoryLayout<sockaddr_in6>.size)
        }
        let v4 = UnsafeMutableRawPointer(address).assumingMemoryBound(to: sockaddr_in.self)
        v4.pointee.sin_family = sa_family_t(AF_INET)
        v4.pointee.sin_port = 0
        withUnsafeMutableBytes(of: &v4.pointee.sin_addr) { $0.copyMemory(from: UnsafeRawBufferPointer(start: p + 16, count: 4)) }
        return socklen_t(MemoryLayout<sockaddr_in>.size)
    }

    static func fill(_ address: inout sockaddr_in6, fromPacket p: UnsafeRawPointer, ipv6: Bool) -> socklen_t {
        withUnsafeMutablePointer(to: &address) { fill($0, fromPacket: p, ipv6: ipv6) }
    }
}
