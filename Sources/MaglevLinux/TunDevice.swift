internal import CMaglevShim

#if canImport(Glibc)
    import Glibc
#endif

/// Why a TUN device could not be created or brought up: the failing call, its errno, and what a
/// person should do about it.
public struct TunError: Error, Sendable, CustomStringConvertible {
    public var call: String
    public var errno: Int32
    public var device: String

    public init(call: String, errno: Int32, device: String) {
        self.call = call
        self.errno = errno
        self.device = device
    }

    public var description: String {
        let reason = String(cString: strerror(errno))
        let hint: String
        switch errno {
        case EPERM, EACCES:
            hint = "creating a TUN device needs CAP_NET_ADMIN: run as root, or grant the binary "
                + "cap_net_admin,cap_net_raw (setcap cap_net_admin,cap_net_raw+ep maglev)"
        case ENOENT, ENXIO, ENODEV:
            hint = "/dev/net/tun is missing: load the driver (modprobe tun) or create the node "
                + "(mkdir -p /dev/net && mknod /dev/net/tun c 10 200)"
        case EBUSY:
            hint = "a TUN device named \(device) exists and is in use (another maglev decap?); "
                + "stop it or choose another --tun name"
        case EINVAL:
            hint = "an interface named \(device) exists and is not a TUN device; choose another --tun name"
        case ENAMETOOLONG:
            hint = "interface names have at most 15 bytes"
        default:
            hint = "see \(call)(2)"
        }
        return "\(call) for TUN device \(device) failed: \(reason) (errno \(errno)); \(hint)"
    }
}

/// A layer-3 TUN device (`IFF_TUN | IFF_NO_PI`): every `write` hands one IP packet to the local
/// stack as if it had arrived on the interface. The device lives as long as this owner: closing
/// the descriptor deletes it (it is not made persistent). The corresponding C calls are `open`
/// of `/dev/net/tun` and `ioctl(TUNSETIFF)`.
public struct TunDevice: ~Copyable {
    /// The interface name the kernel gave the device.
    public let name: String
    public let fileDescriptor: Int32

    /// Creates (or attaches to) the TUN device `name` in the caller's network namespace.
    public init(name: String) throws(TunError) {
        var actual = [CChar](repeating: 0, count: 16)
        let rc = cmaglev_decap_tun_open(name, &actual)
        guard rc >= 0 else { throw TunError(call: rc == -ENOENT ? "open /dev/net/tun" : "ioctl TUNSETIFF", errno: -rc, device: name) }
        fileDescriptor = rc
        self.name = string(fromCBuffer: actual)
    }

    /// Sets the interface up (`SIOCSIFFLAGS` with `IFF_UP`), so that packets written to it are
    /// received by the stack. Addresses and routes are not needed: a packet addressed to a local
    /// address (the VIP on `lo`) is delivered whatever the interface it arrives on.
    public func setUp() throws(TunError) {
        let rc = cmaglev_decap_link_up(name)
        guard rc == 0 else { throw TunError(call: "ioctl SIOCSIFFLAGS", errno: -rc, device: name) }
    }

    /// Writes one IP packet (IPv4 or IPv6; the kernel reads the version nibble). Returns 0, or the
    /// errno of a failed write (never throws: this is per packet). The corresponding C function is
    /// `write`.
    @inline(__always)
    public func write(_ packet: UnsafeRawPointer, count: Int) -> Int32 {
        while true {
            let n = Glibc.write(fileDescriptor, packet, count)
            if n >= 0 { return 0 }
            let e = Glibc.errno
            if e != EINTR { return e }
        }
    }

    deinit { close(fileDescriptor) }
}
