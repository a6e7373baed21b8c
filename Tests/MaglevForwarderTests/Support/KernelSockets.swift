import Foundation

/// Traffic from the kernel's own TCP and UDP stacks (not raw sockets): on a veth with TX
/// checksum offload on (the default), such segments leave with `CHECKSUM_PARTIAL`, their
/// checksum field holding only the pseudo-header sum, exactly as a local sender's would.
enum KernelSockets {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Sends one UDP datagram of `payload` to `address`:`port` from an ephemeral port.
    static func sendUDP(to address: String, port: UInt16, payload: [UInt8]) throws {
        let ipv6 = address.contains(":")
        let fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket(SOCK_DGRAM): errno \(errno)") }
        defer { close(fd) }
        let sent = try withAddress(address, port: port) { sa, length in
            payload.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, sa, length) }
        }
        if sent != payload.count { throw Failure(description: "sendto(\(address)): errno \(errno)") }
    }

    /// Starts a TCP connection to `address`:`port` (a non-blocking connect: the SYN leaves, the
    /// call returns at once) and returns the socket; the caller closes it.
    static func startTCP(to address: String, port: UInt16) throws -> Int32 {
        let ipv6 = address.contains(":")
        let fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket(SOCK_STREAM): errno \(errno)") }
        let rc = try withAddress(address, port: port) { sa, length in connect(fd, sa, length) }
        if rc != 0 && errno != EINPROGRESS {
            let e = errno
            close(fd)
            throw Failure(description: "connect(\(address)): errno \(e)")
        }
        return fd
    }

    static func withAddress<T>(
        _ address: String, port: UInt16, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T
    ) throws -> T {
        if address.contains(":") {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = port.bigEndian
            guard inet_pton(AF_INET6, address, &a.sin6_addr) == 1 else { throw Failure(description: "bad \(address)") }
            return withUnsafePointer(to: &a) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        guard inet_pton(AF_INET, address, &a.sin_addr) == 1 else { throw Failure(description: "bad \(address)") }
        return withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }
}
