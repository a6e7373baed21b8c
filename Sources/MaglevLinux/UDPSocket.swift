#if canImport(Glibc)
    import Glibc
#endif
internal import CMaglevShim

/// A plain UDP socket for the packet tracer: the forwarder sends reports from one, `maglev
/// probe` listens for them on one. Control side only (never per packet). Addresses are raw
/// bytes, 4 (IPv4) or 16 (IPv6), in network order.
///
/// The corresponding C functions are `socket`, `bind`, `sendto`, `poll`, `recvfrom`, `connect`
/// and `getsockname`.
public struct UDPSocket: ~Copyable {
    public let fd: Int32
    public let isIPv6: Bool

    /// An unbound UDP socket of the family.
    public init(ipv6: Bool) throws(SystemError) {
        fd = try SystemCall.run(ipv6 ? "socket(AF_INET6, SOCK_DGRAM)" : "socket(AF_INET, SOCK_DGRAM)") {
            socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        isIPv6 = ipv6
    }

    deinit { closeDescriptor(fd) }

    /// Binds to `address` (4 or 16 bytes, of the socket's family) and `port` (0: any).
    public func bind(address: [UInt8], port: UInt16) throws(SystemError) {
        var storage = sockaddr_in6()
        let length = UDPSocket.fill(&storage, address: address, port: port)
        let fd = self.fd
        _ = try SystemCall.run("bind(UDP)") {
            withUnsafePointer(to: &storage) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, length) }
            }
        }
    }

    /// Sends one datagram to `address`:`port` now.
    public func send(_ bytes: [UInt8], to address: [UInt8], port: UInt16) throws(SystemError) {
        var storage = sockaddr_in6()
        let length = UDPSocket.fill(&storage, address: address, port: port)
        let fd = self.fd
        _ = try SystemCall.run("sendto(UDP)") {
            bytes.withUnsafeBytes { b in
                withUnsafePointer(to: &storage) { p in
                    p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        Glibc.sendto(fd, b.baseAddress, b.count, 0, $0, length)
                    }
                }
            }
        }
    }

    /// Waits up to `timeoutMilliseconds` for one datagram; returns its bytes, or nil on timeout.
    public func receive(maxLength: Int = 65536, timeoutMilliseconds: Int32) throws(SystemError) -> [UInt8]? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = try SystemCall.run("poll(UDP)") { poll(&p, 1, max(0, timeoutMilliseconds)) }
        if ready == 0 { return nil }
        var buffer = [UInt8](repeating: 0, count: maxLength)
        let fd = self.fd
        let rc = buffer.withUnsafeMutableBytes { b in recv(fd, b.baseAddress, b.count, cmaglev_msg_dontwait()) }
        let n: Int?
        if rc >= 0 {
            n = rc
        } else if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR {
            n = nil
        } else {
            throw SystemError(call: "recv(UDP)", errno: errno)
        }
        guard let n else { return nil }
        return Array(buffer.prefix(n))
    }

    /// The local address the kernel would send from toward `address` (a UDP `connect`, which
    /// sends nothing, then `getsockname`): 4 or 16 bytes.
    public static func sourceAddress(toward address: [UInt8]) throws(SystemError) -> [UInt8] {
        let socket = try UDPSocket(ipv6: address.count == 16)
        var storage = sockaddr_in6()
        let length = fill(&storage, address: address, port: 9)
        let fd = socket.fd
        _ = try SystemCall.run("connect(UDP)") {
            withUnsafePointer(to: &storage) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, length) }
            }
        }
        var local = sockaddr_in6()
        var localLength = socklen_t(MemoryLayout<sockaddr_in6>.size)
        _ = try SystemCall.run("getsockname(UDP)") {
            withUnsafeMutablePointer(to: &local) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &localLength) }
            }
        }
        if address.count == 16 {
            return withUnsafeBytes(of: local.sin6_addr) { Array($0) }
        }
        return withUnsafeBytes(of: &local) { raw in
            let v4 = raw.load(as: sockaddr_in.self)
            return withUnsafeBytes(of: v4.sin_addr) { Array($0) }
        }
    }

    static func fill(_ storage: inout sockaddr_in6, address: [UInt8], port: UInt16) -> socklen_t {
        if address.count == 16 {
            storage.sin6_family = sa_family_t(AF_INET6)
            storage.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &storage.sin6_addr) { $0.copyBytes(from: address) }
            return socklen_t(MemoryLayout<sockaddr_in6>.size)
        }
        precondition(address.count == 4, "an address is 4 or 16 bytes")
        return withUnsafeMutableBytes(of: &storage) { raw in
            let v4 = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self)
            v4.pointee.sin_family = sa_family_t(AF_INET)
            v4.pointee.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &v4.pointee.sin_addr) { $0.copyBytes(from: address) }
            return socklen_t(MemoryLayout<sockaddr_in>.size)
        }
    }
}
