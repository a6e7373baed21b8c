#if canImport(Glibc)
    import Glibc
#endif
internal import CMaglevShim

/// Policy routing for the GRE health-probe tunnel: sockets marked with a firewall mark take a
/// routing table of their own, whose routes lead into a TUN device. Control side only.
/// The corresponding netlink messages are `RTM_NEWRULE`, `RTM_DELRULE` and `RTM_NEWROUTE`.
public final class ProbeRouting {
    let fd: Int32

    public init() throws(SystemError) {
        let rc = cmaglev_netlink_open()
        guard rc >= 0 else { throw SystemError(call: "socket(AF_NETLINK)", errno: -rc) }
        fd = rc
    }

    deinit { close(fd) }

    /// `ip rule add fwmark MARK lookup TABLE priority PRIORITY` (an existing identical rule is fine).
    public func addRule(ipv6: Bool, mark: UInt32, table: Int32, priority: Int32) throws(SystemError) {
        let rc = cmaglev_rule_fwmark(fd, 1, ipv6 ? AF_INET6 : AF_INET, mark, table, priority)
        guard rc == 0 || rc == -EEXIST else { throw SystemError(call: "netlink RTM_NEWRULE (fwmark \(mark))", errno: -rc) }
    }

    /// `ip rule del fwmark MARK lookup TABLE priority PRIORITY`; a missing rule is fine.
    public func deleteRule(ipv6: Bool, mark: UInt32, table: Int32, priority: Int32) {
        _ = cmaglev_rule_fwmark(fd, 0, ipv6 ? AF_INET6 : AF_INET, mark, table, priority)
    }

    /// `ip route replace DESTINATION/LENGTH dev IFINDEX table TABLE`; `destination` is 4 or 16 bytes.
    public func replaceRoute(destination: [UInt8], prefixLength: Int, interfaceIndex: Int32, table: Int32) throws(SystemError) {
        let family = destination.count == 16 ? AF_INET6 : AF_INET
        let rc = destination.withUnsafeBufferPointer {
            cmaglev_route_replace_dev(fd, family, $0.baseAddress, Int32(prefixLength), interfaceIndex, table)
        }
        guard rc == 0 else { throw SystemError(call: "netlink RTM_NEWROUTE (table \(table))", errno: -rc) }
    }

    /// The interface index of `name`, or nil. The corresponding C function is `if_nametoindex`.
    public static func interfaceIndex(_ name: String) -> Int32? {
        let i = if_nametoindex(name)
        return i == 0 ? nil : Int32(i)
    }
}
