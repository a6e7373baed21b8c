internal import CMaglevShim

#if canImport(Glibc)
    import Glibc
#endif

/// A failed call on a raw GRE socket, with its errno and a hint for a person.
public struct GREReceiveError: Error, Sendable, CustomStringConvertible {
    public var call: String
    public var errno: Int32

    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var description: String {
        let reason = String(cString: strerror(errno))
        let hint: String
        switch errno {
        case EPERM, EACCES:
            hint = "raw sockets need CAP_NET_RAW: run as root, or setcap cap_net_admin,cap_net_raw+ep maglev"
        case EAFNOSUPPORT:
            hint = "this address family is not available (IPv6 disabled?)"
        default:
            hint = "see \(call)(2)"
        }
        return "\(call) failed: \(reason) (errno \(errno)); \(hint)"
    }
}

/// Raw `IPPROTO_GRE` receive sockets for IPv4 and IPv6, with a fixed batch of buffers.
///
/// A raw socket receives every GRE packet addressed to this host even with no GRE driver in the
/// kernel. The IPv4 socket delivers the outer IPv4 header, then GRE, then the inner packet; the
/// IPv6 socket delivers the payload after the IPv6 header (and its extension headers), starting
/// at the GRE header, with the outer source in the socket address.
///
/// Invariants: `buffers` holds `2 * batch` slots of `bufferSize` bytes, IPv4 slots first; after
/// `receive`, packets `0..<count` are valid until the next `receive`. Nothing is allocated after
/// `init`. The corresponding C functions are `socket`, `poll` and `recvmmsg`.
public struct GREReceiver: ~Copyable {
    public let ipv4Descriptor: Int32
    public let ipv6Descriptor: Int32
    public let batch: Int
    public let bufferSize: Int
    private let buffers: UnsafeMutableRawPointer
    private let messages: UnsafeMutablePointer<cmaglev_mmsghdr>
    private let vectors: UnsafeMutablePointer<iovec>
    private let names: UnsafeMutablePointer<sockaddr_in6>
    private var countIPv4 = 0
    private var countIPv6 = 0

    /// Opens the sockets. `ipv6Required == false` turns an IPv6 socket that cannot be created
    /// (`EAFNOSUPPORT`: IPv6 disabled) into `ipv6Descriptor == -1` instead of an error.
    public init(ipv4: Bool = true, ipv6: Bool = true, ipv6Required: Bool = false, batch: Int = 32, bufferSize: Int = 65536)
        throws(GREReceiveError)
    {
        precondition(batch > 0 && bufferSize >= 64)
        var fd4: Int32 = -1
        var fd6: Int32 = -1
        if ipv4 {
            fd4 = socket(AF_INET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Int32(IPPROTO_GRE))
            guard fd4 >= 0 else { throw GREReceiveError(call: "socket(AF_INET, SOCK_RAW, IPPROTO_GRE)", errno: errno) }
        }
        if ipv6 {
            fd6 = socket(AF_INET6, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Int32(IPPROTO_GRE))
            if fd6 < 0 {
                let e = errno
                if ipv6Required || e != EAFNOSUPPORT {
                    if fd4 >= 0 { close(fd4) }
                    throw GREReceiveError(call: "socket(AF_INET6, SOCK_RAW, IPPROTO_GRE)", errno: e)
                }
            }
        }
        for fd in [fd4, fd6] where fd >= 0 {
            // Room for bursts; the kernel caps it at net.core.rmem_max. Failure is harmless.
            var size: Int32 = 4 << 20
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        ipv4Descriptor = fd4
        ipv6Descriptor = fd6
        self.batch = batch
        self.bufferSize = bufferSize
        let slots = 2 * batch
        buffers = UnsafeMutableRawPointer.allocate(byteCount: slots * bufferSize, alignment: 64)
        messages = .allocate(capacity: slots)
        vectors = .allocate(capacity: slots)
        names = .allocate(capacity: slots)
        for i in 0..<slots {
            vectors[i] = iovec(iov_base: buffers + i * bufferSize, iov_len: bufferSize)
            var header = msghdr()
            header.msg_name = UnsafeMutableRawPointer(names + i)
            header.msg_namelen = socklen_t(MemoryLayout<sockaddr_in6>.size)
            header.msg_iov = vectors + i
            header.msg_iovlen = 1
            messages[i] = cmaglev_mmsghdr(msg_hdr: header, msg_len: 0)
        }
    }

    deinit {
        if ipv4Descriptor >= 0 { close(ipv4Descriptor) }
        if ipv6Descriptor >= 0 { close(ipv6Descriptor) }
        buffers.deallocate()
        messages.deallocate()
        vectors.deallocate()
        names.deallocate()
    }

    /// Packets received by the last `receive`.
    public var count: Int { countIPv4 + countIPv6 }

    /// Waits up to `timeoutMilliseconds` for a socket to become readable (a signal ends the wait
    /// early), then takes up to `batch` packets from each readable socket without blocking.
    /// Returns how many packets are ready (0 on timeout or signal).
    public mutating func receive(timeoutMilliseconds: Int32) throws(GREReceiveError) -> Int {
        countIPv4 = 0
        countIPv6 = 0
        var fds = (
            pollfd(fd: ipv4Descriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: ipv6Descriptor, events: Int16(POLLIN), revents: 0)
        )
        let ready = withUnsafeMutablePointer(to: &fds) {
            $0.withMemoryRebound(to: pollfd.self, capacity: 2) { poll($0, 2, timeoutMilliseconds) }
        }
        if ready < 0 {
            let e = errno
            if e == EINTR { return 0 }
            throw GREReceiveError(call: "poll", errno: e)
        }
        if ready == 0 { return 0 }
        if fds.0.revents != 0 { countIPv4 = try receiveBatch(ipv4Descriptor, first: 0) }
        if fds.1.revents != 0 { countIPv6 = try receiveBatch(ipv6Descriptor, first: batch) }
        return count
    }

    private func receiveBatch(_ fd: Int32, first: Int) throws(GREReceiveError) -> Int {
        for i in first..<(first + batch) {
            messages[i].msg_hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_in6>.size)
            messages[i].msg_hdr.msg_flags = 0
            messages[i].msg_len = 0
        }
        while true {
            let n = cmaglev_recvmmsg(fd, messages + first, UInt32(batch), Int32(MSG_DONTWAIT))
            if n >= 0 { return Int(n) }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return 0 }
            throw GREReceiveError(call: "recvmmsg", errno: e)
        }
    }

    @inline(__always)
    private func slot(_ i: Int) -> Int { i < countIPv4 ? i : batch + (i - countIPv4) }

    /// Packet `i` as the socket delivered it: from the outer IPv4 header (IPv4), or from the GRE
    /// header (IPv6).
    @inline(__always)
    public func packet(_ i: Int) -> UnsafeRawBufferPointer {
        let s = slot(i)
        let length = min(Int(messages[s].msg_len), bufferSize)
        return UnsafeRawBufferPointer(start: buffers + s * bufferSize, count: length)
    }

    /// Whether packet `i` arrived on the IPv6 socket.
    @inline(__always)
    public func isIPv6(_ i: Int) -> Bool { i >= countIPv4 }

    /// Whether packet `i` was longer than a buffer and cut (`MSG_TRUNC`).
    @inline(__always)
    public func isTruncated(_ i: Int) -> Bool { messages[slot(i)].msg_hdr.msg_flags & Int32(MSG_TRUNC) != 0 }

    /// The outer source address of packet `i` in network byte order: 4 bytes (IPv4) or 16 bytes
    /// (IPv6).
    @inline(__always)
    public func sourceAddress(_ i: Int) -> UnsafeRawPointer {
        let name = UnsafeRawPointer(names + slot(i))
        if isIPv6(i) { return name + MemoryLayout<sockaddr_in6>.offset(of: \sockaddr_in6.sin6_addr)! }
        return name + MemoryLayout<sockaddr_in>.offset(of: \sockaddr_in.sin_addr)!
    }
}

/// SIGINT and SIGTERM as a flag that a blocking loop polls between waits.
public enum GREReceiveStopSignals {
    /// Installs the handlers. Blocking waits return early (`EINTR`) when a signal arrives; a second
    /// signal ends the process the default way. The corresponding C function is `sigaction`.
    public static func install() {
        _ = cmaglev_decap_install_stop_handlers()
    }

    /// Whether SIGINT or SIGTERM has arrived.
    public static var stopRequested: Bool { cmaglev_decap_stop_requested() != 0 }
}
