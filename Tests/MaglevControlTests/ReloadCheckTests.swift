import MaglevConfig
import MaglevControl
import MaglevCore
import Testing

/// What a reload changes beyond backends and VIPs: disruptive fields (hash_seed, table_size,
/// algorithm, ring_views under ring) and notices (capacity not applied live, an address moved).
@Suite struct ReloadCheckTests {
    /// A valid file; `settings` are root lines placed first, `web1` is backend web-1's address.
    func file(_ settings: String = "", web1: String = "198.18.1.1", vip: String = "") throws -> MaglevConfigFile {
        try config(
            settings + """

                encap: { source_ipv4: 198.18.0.2 }
                pools:
                  web:
                    - { name: web-1, address: \(web1) }
                    - { name: web-2, address: 198.18.1.2 }
                  other:
                    backends: [{ name: web-1, address: \(web1) }]
                vips:
                  - { name: v, address: 198.19.0.10, pools: [web, other]\(vip) }
                  - { name: w, address: 198.19.0.11, pool: web }
                """)
    }

    @Test func theSameFileChangesNothing() throws {
        let check = ReloadCheck(old: try file(), new: try file())
        #expect(check == ReloadCheck(old: try file(), new: try file()))
        #expect(check.disruptive.isEmpty && check.notices.isEmpty && !check.isDisruptive)
    }

    @Test func backendsAndSettingsThatMoveNoConnectionArePlain() throws {
        let new = try file("path_mtu: 9000\nicmp: { burst: 5 }\nconnection_tracking: { timeouts: { udp: 5s } }\n")
        let check = ReloadCheck(old: try file(), new: new)
        #expect(!check.isDisruptive && check.notices.isEmpty)
    }

    @Test(arguments: [
        ("hash_seed: 7\n", "hash_seed changes from 0 to 7"),
        ("table_size: 251\n", "table_size changes from 65537 to 251"),
        ("algorithm: rendezvous\n", "algorithm changes from maglev to rendezvous"),
    ])
    func disruptiveFields(setting: String, message: String) throws {
        let check = ReloadCheck(old: try file(), new: try file(setting))
        #expect(check.isDisruptive)
        #expect(check.disruptive == [message])
        #expect(check.notices.isEmpty)
        // And back.
        #expect(ReloadCheck(old: try file(setting), new: try file()).isDisruptive)
    }

    @Test func ringViewsMatterOnlyUnderRing() throws {
        let ring = ReloadCheck(old: try file("algorithm: ring\n"), new: try file("algorithm: ring\nring_views: 50\n"))
        #expect(ring.disruptive == ["ring_views changes from 1000 to 50"])
        let maglev = ReloadCheck(old: try file(), new: try file("ring_views: 50\n"))
        #expect(!maglev.isDisruptive)
        // Switching algorithm says so once, not also for the views.
        let both = ReloadCheck(old: try file(), new: try file("algorithm: ring\nring_views: 50\n"))
        #expect(both.disruptive == ["algorithm changes from maglev to ring"])
    }

    @Test func everyDisruptiveChangeIsListed() throws {
        let check = ReloadCheck(old: try file(), new: try file("hash_seed: 1\ntable_size: 251\nalgorithm: modulo\n"))
        #expect(check.disruptive.count == 3)
        #expect(check.disruptive.map { $0.prefix(while: { $0 != " " }) } == ["hash_seed", "table_size", "algorithm"])
    }

    @Test func connectionCapacityIsANoticeNotAppliedLive() throws {
        let check = ReloadCheck(old: try file(), new: try file("connection_tracking: { capacity: 1024 }\n"))
        #expect(!check.isDisruptive)
        #expect(check.notices.count == 1)
        #expect(check.notices[0].hasPrefix("connection_tracking.capacity changes from 1048576 to 1024: not applied live"))
        #expect(check.notices[0].contains("restart the forwarder"))
    }

    @Test func aMovedBackendIsOneNoticeEvenInTwoPools() throws {
        let check = ReloadCheck(old: try file(), new: try file(web1: "198.18.1.100"))
        #expect(!check.isDisruptive)
        #expect(
            check.notices == ["backend web-1 moves from 198.18.1.1 to 198.18.1.100: its tracked connections follow it"])
    }

    @Test func backendsThatComeOrGoAreNoNotice() throws {
        let old = try file()
        let fewer = try config(
            """
            encap: { source_ipv4: 198.18.0.2 }
            vips:
              - { name: v, address: 198.19.0.10, backends: [{ name: web-3, address: 198.18.1.3 }] }
            """)
        #expect(ReloadCheck(old: old, new: fewer) == ReloadCheck(old: fewer, new: fewer))
        #expect(ReloadCheck(old: fewer, new: old).notices.isEmpty)
    }

    @Test func aVIPsOwnTableSizeIsDisruptiveForThatVIP() throws {
        let own = ReloadCheck(old: try file(vip: ", table_size: 251"), new: try file(vip: ", table_size: 257"))
        #expect(own.disruptive == ["VIP v: table_size changes from 251 to 257"])
        let set = ReloadCheck(old: try file(), new: try file(vip: ", table_size: 251"))
        #expect(set.disruptive == ["VIP v: table_size changes from 65537 to 251"])
        let unset = ReloadCheck(old: try file(vip: ", table_size: 251"), new: try file())
        #expect(unset.disruptive == ["VIP v: table_size changes from 251 to 65537"])
        // Writing the size it already had changes nothing.
        #expect(!ReloadCheck(old: try file(), new: try file(vip: ", table_size: 65537")).isDisruptive)
        // A root change is reported once, as the root's.
        let root = ReloadCheck(old: try file(), new: try file("table_size: 251\n", vip: ", table_size: 257"))
        #expect(root.disruptive == ["table_size changes from 65537 to 251"])
    }

    @Test func aNewVIPIsNoTableChange() throws {
        let old = try config(
            """
            encap: { source_ipv4: 198.18.0.2 }
            vips:
              - { name: w, address: 198.19.0.11, backends: [{ name: web-1, address: 198.18.1.1 }] }
            """)
        #expect(!ReloadCheck(old: old, new: try file(vip: ", table_size: 251")).isDisruptive)
    }
}
