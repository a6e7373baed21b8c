#if canImport(Glibc)
    import Glibc
#endif
internal import CMaglevShim

/// An `AF_PACKET` / `SOCK_RAW` socket that sends complete Ethernet frames, as they are, out of
/// one interface (the frame's own MAC addresses are used; nothing is routed). It is bound with
/// protocol 0, so it never receives anything. `maglev trace send` injects captures into a lab
/// with one; the forwarder's `--send packet` path sends prebuilt Ethernet + outer IP + GRE
/// frames through one per worker (through io_uring, with `qdiscBypass`: straight to the driver,
/// skipping the queueing discipline and the taps such as tcpdump on that interface).
///
/// The corresponding C functions are `socket`, `bind` and `send`.
public struct PacketSender: ~Copyable {
    public let fd: Int32
    public let interfaceName: String
    /// The interface's MTU: the largest IP packet it carries (frames may be 14 bytes longer).
    public let mtu: Int

    public init(interface: String, sendBufferBytes: Int = 4 << 20, qdiscBypass: Bool = false) throws(SystemError) {
        let index = if_nametoindex(interface)
        if index == 0 { throw SystemError(call: "if_nametoindex(\(interface))", errno: Glibc.errno) }
        let fd = try SystemCall.run("socket(AF_PACKET, SOCK_RAW)") {
            socket(AF_PACKET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        do {
            try PacketSocket.setOption(fd, SOL_SOCKET, SO_SNDBUFFORCE, Int32(clamping: sendBufferBytes),
                name: "SO_SNDBUFFORCE", fallback: SO_SNDBUF)
            if qdiscBypass {
                try PacketSocket.setOption(fd, SOL_PACKET, cmaglev_packet_qdisc_bypass(), 1, name: "PACKET_QDISC_BYPASS")
            }
            _ = try SystemCall.run("bind(AF_PACKET, \(interface))") { cmaglev_packet_bind(fd, Int32(index), 0) }
        } catch {
            closeDescriptor(fd)
            throw error
        }
        self.fd = fd
        self.interfaceName = interface
        self.mtu = PacketSender.interfaceMTU(interface) ?? 1500
    }

    /// A socket bound to no interface: every send names its interface (`sockaddr_ll`). The
    /// forwarder's `--send packet` workers use one for all their next hops.
    public init(unboundWithSendBufferBytes sendBufferBytes: Int, qdiscBypass: Bool) throws(SystemError) {
        let fd = try SystemCall.run("socket(AF_PACKET, SOCK_RAW)") {
            socket(AF_PACKET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        do {
            try PacketSocket.setOption(fd, SOL_SOCKET, SO_SNDBUFFORCE, Int32(clamping: sendBufferBytes),
                name: "SO_SNDBUFFORCE", fallback: SO_SNDBUF)
            if qdiscBypass {
                try PacketSocket.setOption(fd, SOL_PACKET, cmaglev_packet_qdisc_bypass(), 1, name: "PACKET_QDISC_BYPASS")
            }
        } catch {
            closeDescriptor(fd)
            throw error
        }
        self.fd = fd
        self.interfaceName = ""
        self.mtu = 0
    }

    deinit { closeDescriptor(fd) }

    /// Sends one frame (Ethernet header included). Retries a full send queue (`ENOBUFS`,
    /// `EAGAIN`) up to 100 times, 1 ms apart, then throws.
    public func send(_ frame: UnsafeRawBufferPointer) throws(SystemError) {
        var attempts = 0
        while true {
            let sent = Glibc.send(fd, frame.baseAddress, frame.count, 0)
            if sent >= 0 { return }
            let e = Glibc.errno
            if e == EINTR { continue }
            if (e == ENOBUFS || e == EAGAIN) && attempts < 100 {
                attempts += 1
                usleep(1000)
                continue
            }
            throw SystemError(call: "send(AF_PACKET, \(interfaceName))", errno: e)
        }
    }

    /// The MTU from /sys/class/net/IF/mtu, or nil when it cannot be read.
    static func interfaceMTU(_ interface: String) -> Int? {
        guard let file = fopen("/sys/class/net/\(interface)/mtu", "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 32)
        guard fgets(&buffer, 32, file) != nil else { return nil }
        let digits = buffer.prefix { $0 >= 48 && $0 <= 57 }.map { UInt8(bitPattern: $0) }
        return Int(String(decoding: digits, as: UTF8.self))
    }
}
