internal import CMaglevShim

/// Network namespaces, for tests and tools that run a decapsulator inside one from a process
/// outside it.
public enum TunNetworkNamespace {
    /// Moves the calling thread (only it) into the named namespace (`ip netns add NAME`, a file
    /// under /var/run/netns). Sockets and TUN devices opened afterwards on this thread belong to
    /// that namespace for their whole life. The corresponding C function is `setns`.
    public static func enter(named name: String) throws(TunError) {
        let rc = cmaglev_decap_enter_netns("/var/run/netns/\(name)")
        guard rc == 0 else { throw TunError(call: "setns /var/run/netns/\(name)", errno: -rc, device: "-") }
    }
}
