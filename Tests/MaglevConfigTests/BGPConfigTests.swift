import MaglevConfig
import MaglevCore
import Testing

/// The `bgp` section: a valid one loads with its defaults; every field's problems come with
/// line:column and the field's path.
@Suite struct BGPConfigTests {
    static func yaml(_ bgp: String) -> String {
        """
        encap: { source_ipv4: 198.18.1.11 }
        bgp:
        \(bgp)
        vips:
          - { name: web, address: 198.19.0.10, backends: [{ name: a, address: 198.18.1.101 }] }

        """
    }

    func problems(_ bgp: String) -> [ConfigProblem] {
        do {
            _ = try MaglevConfigFile.parse(yaml: Self.yaml(bgp), path: "b.yaml")
            return []
        } catch {
            return error.problems
        }
    }

    @Test func aValidSectionLoadsWithDefaults() throws {
        let file = try MaglevConfigFile.parse(
            yaml: Self.yaml(
                """
                  local_as: 4200000001
                  router_id: 198.18.1.11
                  peers:
                    - { address: 198.18.1.1, remote_as: 65000 }
                    - { address: "2001:db8:1::1", remote_as: 4200000001, port: 1179, hold_time: 0, passive: true }
                """), path: "b.yaml")
        let bgp = try #require(file.bgp)
        #expect(bgp.localAS == 4_200_000_001)
        #expect(bgp.routerID == IPAddress("198.18.1.11"))
        #expect(bgp.peers[0] == BGPPeerConfig(address: IPAddress("198.18.1.1")!, remoteAS: 65000))
        #expect(bgp.peers[0].port == 179 && bgp.peers[0].holdTime == 90 && !bgp.peers[0].passive)
        #expect(bgp.peers[1].port == 1179 && bgp.peers[1].holdTime == 0 && bgp.peers[1].passive)
        #expect(try MaglevConfigFile.parse(yaml: Self.yaml("  local_as: 1\n  router_id: 1.2.3.4\n  peers: [{address: 1.2.3.5, remote_as: 2}]"), path: "b").bgp != nil)
    }

    @Test func everyFieldIsChecked() {
        let cases: [(String, String, String)] = [
            ("  local_as: 23456\n  router_id: 198.18.1.11\n  peers: [{address: 198.18.1.1, remote_as: 1}]", "bgp.local_as", "AS_TRANS"),
            ("  local_as: 0\n  router_id: 198.18.1.11\n  peers: [{address: 198.18.1.1, remote_as: 1}]", "bgp.local_as", "at least 1"),
            ("  local_as: 4294967296\n  router_id: 198.18.1.11\n  peers: [{address: 198.18.1.1, remote_as: 1}]", "bgp.local_as", "at most"),
            ("  local_as: 1\n  router_id: 0.0.0.0\n  peers: [{address: 198.18.1.1, remote_as: 1}]", "bgp.router_id", "0.0.0.0"),
            ("  local_as: 1\n  router_id: \"2001:db8::1\"\n  peers: [{address: 198.18.1.1, remote_as: 1}]", "bgp.router_id", "IPv4"),
            ("  local_as: 1\n  router_id: 198.18.1.11\n  peers: []", "bgp.peers", "at least one"),
            ("  local_as: 1\n  router_id: 198.18.1.11\n  peers: [{address: 198.18.1.1, remote_as: 1, hold_time: 2}]", "bgp.peers[0].hold_time", "at least 3"),
            ("  local_as: 1\n  router_id: 198.18.1.11\n  peers: [{address: 198.18.1.1, remote_as: 1, port: 0}]", "bgp.peers[0].port", "port"),
            ("  local_as: 1\n  router_id: 198.18.1.11\n  peers: [{address: nowhere, remote_as: 1}]", "bgp.peers[0].address", ""),
            ("  local_as: 1\n  router_id: 198.18.1.11\n  peers: [{address: 198.18.1.1}]", "bgp.peers[0]", "remote_as"),
            ("  local_as: 1\n  router_id: 198.18.1.11\n  peers: [{address: 198.18.1.1, remote_as: 1, passive: maybe}]", "bgp.peers[0].passive", "true or false"),
            ("  local_as: 1\n  router_id: 198.18.1.11\n  peers: [{address: 198.18.1.1, remote_as: 1}, {address: 198.18.1.1, remote_as: 2}]", "bgp.peers[1].address", "twice"),
            ("  local_as: 1\n  router_id: 198.18.1.11\n  peers: [{address: 198.18.1.1, remote_as: 1, md5: x}]", "bgp.peers[0]", "md5"),
            ("  router_id: 198.18.1.11\n  peers: [{address: 198.18.1.1, remote_as: 1}]", "bgp", "local_as"),
        ]
        for (bgp, field, words) in cases {
            let found = problems(bgp)
            #expect(found.count == 1, "\(bgp): \(found)")
            guard let p = found.first else { continue }
            #expect(p.field.hasPrefix(field), "\(bgp): \(p)")
            #expect(p.line >= 3 && p.column >= 1, "\(bgp): \(p)")
            #expect(words.isEmpty || p.description.contains(words), "\(bgp): \(p)")
        }
    }
}
