import MaglevCore
import Yams

// The forwarder group (`forwarders`: name and address of every forwarder, the same list in
// every forwarder's config) and the fragment hold (`fragment_hold`: packets, timeout), both for
// `fragments: redirect`.
extension ConfigSchema {
    static let memberKeys = ["name", "address"]
    static let holdKeys = ["packets", "timeout"]

    /// Decodes `forwarders` into `config.forwarders`: names unique, addresses unique and of one
    /// family. `fragments: redirect` without it is a problem at `fragments`.
    func decodeForwarders(_ f: Fields, into config: inout DataplaneConfig) {
        if let n = f["forwarders"], let items = d.sequence(n, "forwarders") {
            if items.isEmpty { d.fail(n, "forwarders", "list every forwarder of the group (name, address), or leave it out") }
            var names: [String: Int] = [:]
            var addresses: [IPAddress: Int] = [:]
            for (i, item) in items.enumerated() {
                let path = "forwarders[\(i)]"
                guard let m = d.fields(item, path, keys: Self.memberKeys) else { continue }
                var name: String?
                if let node = d.required(m, "name", "the forwarder's name (its --name)"), let s = d.string(node, m.path("name")) {
                    if s.isEmpty {
                        d.fail(node, m.path("name"), "a forwarder name must not be empty")
                    } else if let first = names[s] {
                        d.fail(node, m.path("name"), "forwarder \(s) is listed twice (first at forwarders[\(first)])")
                    } else {
                        names[s] = i
                        name = s
                    }
                }
                var address: IPAddress?
                if let node = d.required(m, "address", "the address redirected fragments are sent to"),
                    let a = d.address(node, m.path("address"))
                {
                    if let first = addresses[a] {
                        d.fail(node, m.path("address"), "address \(a) is listed twice (first at forwarders[\(first)])")
                    } else if let other = config.forwarders.first, other.address.isIPv6 != a.isIPv6 {
                        d.fail(
                            node, m.path("address"),
                            "every forwarder's address must be of one family (forwarders[0] is IPv\(other.address.isIPv6 ? 6 : 4))")
                    } else {
                        addresses[a] = i
                        address = a
                    }
                }
                if let name, let address { config.forwarders.append(ForwarderMember(name: name, address: address)) }
            }
        }
        if let n = f["fragment_hold"], let h = d.fields(n, "fragment_hold", keys: Self.holdKeys) {
            if let v = h["packets"], let p = d.int(v, h.path("packets"), 1...65536) { config.fragmentHold.packets = p }
            if let v = h["timeout"], let ms = d.duration(v, h.path("timeout")) {
                if ms == 0 || ms > 60_000 {
                    d.fail(v, h.path("timeout"), "a hold timeout of 1 ms to 60 s, got \(ms) ms")
                } else {
                    config.fragmentHold.timeoutMs = ms
                }
            }
        }
        if config.fragmentPolicy == .redirect && f["forwarders"] == nil, let n = f["fragments"] {
            d.fail(
                n, "fragments",
                "fragments: redirect needs the forwarder group: add `forwarders:` listing every forwarder "
                    + "({name: fwd1, address: 198.18.1.11}, ...), the same list in every forwarder's config")
        }
    }
}
