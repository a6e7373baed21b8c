#if canImport(Glibc)
    import Glibc
#endif
internal import CMaglevShim

/// The Ethernet header that carries a packet to one IP destination: out of which interface,
/// from which MAC, to which MAC (the destination's own when it is on the link, else its
/// gateway's).
public struct NextHop: Sendable, Equatable {
    public var interfaceIndex: Int32
    public var interfaceName: String
    public var sourceMAC: [UInt8]
    public var destinationMAC: [UInt8]
    /// The gateway's address (4 or 16 bytes), or nil when the destination is on the link.
    public var gateway: [UInt8]?

    public init(interfaceIndex: Int32, interfaceName: String, sourceMAC: [UInt8], destinationMAC: [UInt8], gateway: [UInt8]?) {
        self.interfaceIndex = interfaceIndex
        self.interfaceName = interfaceName
        self.sourceMAC = sourceMAC
        self.destinationMAC = destinationMAC
        self.gateway = gateway
    }

    /// The `struct sockaddr_ll` that sends an IPv4 or IPv6 frame out of this interface (20
    /// bytes), for an unbound `AF_PACKET` socket.
    public func linkAddress(ipv6: Bool) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Int(cmaglev_sockaddr_ll_size()))
        bytes.withUnsafeMutableBytes { cmaglev_packet_address($0.baseAddress, interfaceIndex, ipv6 ? 1 : 0) }
        return bytes
    }

    /// The 14-byte Ethernet header for an IPv4 (0x0800) or IPv6 (0x86DD) payload.
    public func ethernetHeader(ipv6: Bool) -> [UInt8] {
        destinationMAC + sourceMAC + (ipv6 ? [0x86, 0xDD] : [0x08, 0x00])
    }
}

/// Finds next hops the way the kernel would send: a route lookup (`RTM_GETROUTE`) for the
/// destination, then the neighbour table (`RTM_GETNEIGH`) for the next hop's MAC. A next hop
/// that is missing, incomplete or stale is marked in use (`NTF_USE`), so the kernel resolves or
/// re-confirms it with ARP / neighbour discovery; the caller asks again a little later.
///
/// Control side only: a few netlink round trips per call, never on the per-packet path. The
/// netlink socket belongs to the network namespace of the thread that created the resolver.
public final class NextHopResolver: Sendable {
    public enum Outcome: Sendable, Equatable {
        case resolved(NextHop)
        /// Why not (yet): no route, next hop not resolved, not an Ethernet interface...
        case unresolved(String)
    }

    /// NUD_INCOMPLETE | NUD_FAILED and NUD_STALE (linux/neighbour.h).
    static let incompleteOrFailed: UInt16 = 0x01 | 0x20
    static let stale: UInt16 = 0x04

    let fd: Int32

    public init() throws(SystemError) {
        let fd = cmaglev_netlink_open()
        if fd < 0 { throw SystemError(call: "socket(AF_NETLINK, NETLINK_ROUTE)", errno: -fd) }
        self.fd = fd
    }

    deinit { closeDescriptor(fd) }

    /// Resolves every destination (4-byte IPv4 or 16-byte IPv6 addresses), in order.
    public func resolve(_ destinations: [[UInt8]]) -> [Outcome] {
        var neighbours: [Int32: [cmaglev_neighbour]] = [:]
        var interfaces: [Int32: Result<(String, [UInt8]), SystemError>] = [:]
        return destinations.map { destination in
            let family = destination.count == 16 ? AF_INET6 : AF_INET
            var oif: Int32 = 0
            var gateway = [UInt8](repeating: 0, count: 16)
            var hasGateway: Int32 = 0
            let routed = cmaglev_route_get(fd, family, destination, &oif, &gateway, &hasGateway)
            if routed < 0 {
                return .unresolved("no route (\(SystemError(call: "RTM_GETROUTE", errno: -routed).reason))")
            }
            let hop = hasGateway != 0 ? Array(gateway[0..<destination.count]) : destination
            let interface: Result<(String, [UInt8]), SystemError>
            if let known = interfaces[oif] {
                interface = known
            } else {
                interface = interfaceMAC(oif)
                interfaces[oif] = interface
            }
            guard case .success(let (name, sourceMAC)) = interface else {
                if case .failure(let e) = interface { return .unresolved("interface \(oif): \(e.reason)") }
                return .unresolved("interface \(oif)")
            }
            if neighbours[family] == nil { neighbours[family] = dump(family: family) }
            let entry = neighbours[family]!.first { n in
                n.ifindex == oif && withUnsafeBytes(of: n.address) { Array($0[0..<hop.count]) } == hop
            }
            let state = UInt16(entry?.state ?? 0)
            let usable = entry.map { $0.has_mac != 0 } == true
                && state & NextHopResolver.incompleteOrFailed == 0 && state != 0
            if !usable || state & NextHopResolver.stale != 0 {
                _ = cmaglev_neighbour_use(fd, family, oif, hop)
            }
            guard usable, let entry else {
                return .unresolved("next hop \(NextHopResolver.format(hop)) on \(name) not resolved yet")
            }
            let mac = withUnsafeBytes(of: entry.mac) { Array($0) }
            return .resolved(
                NextHop(
                    interfaceIndex: oif, interfaceName: name, sourceMAC: sourceMAC, destinationMAC: mac,
                    gateway: hasGateway != 0 ? hop : nil))
        }
    }

    func dump(family: Int32) -> [cmaglev_neighbour] {
        var entries = [cmaglev_neighbour](repeating: cmaglev_neighbour(), count: 4096)
        let n = cmaglev_neighbour_dump(fd, family, &entries, Int32(entries.count))
        return n > 0 ? Array(entries[0..<Int(n)]) : []
    }

    func interfaceMAC(_ index: Int32) -> Result<(String, [UInt8]), SystemError> {
        var mac = [UInt8](repeating: 0, count: 6)
        var name = [CChar](repeating: 0, count: 32)
        let rc = cmaglev_interface_mac(fd, index, &mac, &name)
        if rc < 0 {
            return .failure(SystemError(call: rc == -EAFNOSUPPORT ? "not an Ethernet interface" : "SIOCGIFHWADDR", errno: -rc))
        }
        let length = name.firstIndex(of: 0) ?? name.count
        let text = String(decoding: name[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return .success((text, mac))
    }

    /// Dotted quad or RFC 5952-ish hex groups (for messages).
    static func format(_ address: [UInt8]) -> String {
        if address.count == 4 { return address.map(String.init).joined(separator: ".") }
        var groups: [String] = []
        for i in stride(from: 0, to: address.count, by: 2) {
            groups.append(String(UInt16(address[i]) << 8 | UInt16(address[i + 1]), radix: 16))
        }
        return groups.joined(separator: ":")
    }
}
