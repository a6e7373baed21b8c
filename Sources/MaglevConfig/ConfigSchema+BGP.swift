import MaglevCore
import Yams

// The `bgp` section: local_as, router_id, peers (address, remote_as, port, hold_time, passive).
extension ConfigSchema {
    static let bgpKeys = ["local_as", "router_id", "peers"]
    static let peerKeys = ["address", "remote_as", "port", "hold_time", "passive"]

    func decodeBGP(_ node: Node, path: String) -> BGPConfig? {
        guard let f = d.fields(node, path, keys: Self.bgpKeys) else { return nil }
        var valid = true
        var localAS: UInt32?
        if let n = d.required(f, "local_as", "this forwarder's AS number") {
            localAS = decodeAS(n, f.path("local_as"))
            if localAS == nil { valid = false }
        } else {
            valid = false
        }
        var routerID: IPAddress?
        if let n = d.required(f, "router_id", "a BGP identifier, an IPv4 address such as 198.18.1.11") {
            if let a = d.address(n, f.path("router_id"), family: false) {
                if a.ipv4Value == 0 {
                    d.fail(n, f.path("router_id"), "the BGP identifier must not be 0.0.0.0")
                    valid = false
                } else {
                    routerID = a
                }
            } else {
                valid = false
            }
        } else {
            valid = false
        }
        var peers: [BGPPeerConfig] = []
        if let n = d.required(f, "peers", "a list of peers (routers)"), let items = d.sequence(n, f.path("peers")) {
            if items.isEmpty { d.fail(n, f.path("peers"), "list at least one peer") }
            var seen: [IPAddress: Int] = [:]
            for (i, item) in items.enumerated() {
                let p = "\(f.path("peers"))[\(i)]"
                guard let peer = decodePeer(item, path: p) else {
                    valid = false
                    continue
                }
                if let first = seen[peer.address] {
                    d.fail(item, "\(p).address", "peer \(peer.address) is listed twice (first at peers[\(first)])")
                    valid = false
                } else {
                    seen[peer.address] = i
                    peers.append(peer)
                }
            }
        } else {
            valid = false
        }
        guard valid, let localAS, let routerID else { return nil }
        return BGPConfig(localAS: localAS, routerID: routerID, peers: peers)
    }

    func decodePeer(_ node: Node, path: String) -> BGPPeerConfig? {
        guard let f = d.fields(node, path, keys: Self.peerKeys) else { return nil }
        var valid = true
        var address: IPAddress?
        if let n = d.required(f, "address", "the peer's IP address") {
            address = d.address(n, f.path("address"))
            if address == nil { valid = false }
        } else {
            valid = false
        }
        var remoteAS: UInt32?
        if let n = d.required(f, "remote_as", "the peer's AS number") {
            remoteAS = decodeAS(n, f.path("remote_as"))
            if remoteAS == nil { valid = false }
        } else {
            valid = false
        }
        var peer = BGPPeerConfig(address: address ?? IPAddress(ipv4: 0), remoteAS: remoteAS ?? 0)
        if let n = f["port"] {
            if let v = d.int(n, f.path("port"), 1...65535, "a port number 1-65535") { peer.port = UInt16(v) } else { valid = false }
        }
        if let n = f["hold_time"] {
            if let v = d.int(n, f.path("hold_time"), 0...65535, "a hold time in seconds: 0 or 3-65535") {
                if v == 1 || v == 2 {
                    d.fail(n, f.path("hold_time"), "a hold time must be 0 (no keepalives) or at least 3 seconds (RFC 4271), got \(v)")
                    valid = false
                } else {
                    peer.holdTime = UInt16(v)
                }
            } else {
                valid = false
            }
        }
        if let n = f["passive"] {
            if let b = d.bool(n, f.path("passive")) { peer.passive = b } else { valid = false }
        }
        return valid ? peer : nil
    }

    /// An AS number 1-4294967295, not AS_TRANS (23456, reserved by RFC 6793).
    func decodeAS(_ node: Node, _ path: String) -> UInt32? {
        guard let v = d.integer(node, path, 1...UInt64(UInt32.max), "an AS number 1-4294967295") else { return nil }
        if v == 23456 {
            d.fail(node, path, "AS 23456 is AS_TRANS, reserved (RFC 6793): use your real AS number")
            return nil
        }
        return UInt32(v)
    }
}
