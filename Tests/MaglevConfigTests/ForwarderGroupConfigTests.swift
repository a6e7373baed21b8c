import MaglevConfig
import MaglevCore
import Testing

/// `fragments: redirect`, `forwarders` (the group) and `fragment_hold`: a valid group loads;
/// every problem comes with line:column and the field's path.
@Suite struct ForwarderGroupConfigTests {
    static func yaml(_ extra: String) -> String {
        """
        encap: { source_ipv4: 198.18.1.11 }
        \(extra)
        vips:
          - { name: dns, address: 198.19.0.11, protocol: udp, port: 53, backends: [{ name: a, address: 198.18.1.101 }] }

        """
    }

    func problems(_ extra: String) -> [ConfigProblem] {
        do {
            _ = try MaglevConfigFile.parse(yaml: Self.yaml(extra), path: "g.yaml")
            return []
        } catch {
            return error.problems
        }
    }

    @Test func aValidGroupLoads() throws {
        let file = try MaglevConfigFile.parse(
            yaml: Self.yaml(
                """
                fragments: redirect
                forwarders:
                  - { name: fwd1, address: 198.18.1.11 }
                  - { name: fwd2, address: 198.18.1.12 }
                fragment_hold: { packets: 16, timeout: 250ms }
                """), path: "g.yaml")
        #expect(file.dataplane.fragmentPolicy == .redirect)
        #expect(file.dataplane.forwarders.map(\.name) == ["fwd1", "fwd2"])
        #expect(file.dataplane.forwarders[1].address == IPAddress("198.18.1.12"))
        #expect(file.dataplane.fragmentHold == FragmentHoldSettings(packets: 16, timeoutMs: 250))
        // The defaults: 64 fragments, 1 s.
        let plain = try MaglevConfigFile.parse(yaml: Self.yaml("fragments: three-tuple"), path: "g.yaml")
        #expect(plain.dataplane.forwarders.isEmpty && plain.dataplane.fragmentHold == FragmentHoldSettings())
    }

    @Test func everyProblemIsPlaced() {
        let cases: [(String, String, String, Int)] = [
            ("fragments: redirect", "fragments", "needs the forwarder group", 2),
            ("forwarders: []", "forwarders", "list every forwarder", 2),
            ("forwarders:\n  - { name: fwd1, address: 198.18.1.11 }\n  - { name: fwd1, address: 198.18.1.12 }",
             "forwarders[1].name", "listed twice", 4),
            ("forwarders:\n  - { name: fwd1, address: 198.18.1.11 }\n  - { name: fwd2, address: 198.18.1.11 }",
             "forwarders[1].address", "listed twice", 4),
            ("forwarders:\n  - { name: fwd1, address: 198.18.1.11 }\n  - { name: fwd2, address: \"2001:db8::2\" }",
             "forwarders[1].address", "one family", 4),
            ("forwarders:\n  - { address: 198.18.1.11 }", "forwarders[0].name", "missing", 3),
            ("forwarders:\n  - { name: fwd1, address: nowhere }", "forwarders[0].address", "not an IPv4 or IPv6 address", 3),
            ("forwarders:\n  - { name: fwd1, address: 198.18.1.11, port: 9 }", "forwarders[0].port", "unknown key", 3),
            ("fragment_hold: { packets: 0 }", "fragment_hold.packets", "at least 1", 2),
            ("fragment_hold: { timeout: 2m }", "fragment_hold.timeout", "60 s", 2),
            ("fragments: sometimes", "fragments", "redirect", 2),
        ]
        for (extra, field, words, line) in cases {
            let found = problems(extra)
            #expect(
                found.contains { $0.field == field && $0.message.contains(words) && $0.line == line },
                "\(extra): expected \(field) at line \(line) saying '\(words)', got \(found.map { "\($0)" })")
        }
    }
}
