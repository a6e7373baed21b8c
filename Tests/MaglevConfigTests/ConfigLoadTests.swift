import MaglevConfig
import MaglevCore
import Testing

/// The repository root, found from this file's path.
let repositoryRoot: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)  // Tests/MaglevConfigTests/ConfigLoadTests.swift
    return parts.joined(separator: "/")
}()

func address(_ text: String) -> IPAddress { IPAddress(text)! }

/// Loading valid files: every field lands where it should, defaults fill the rest.
@Suite struct ConfigLoadTests {
    @Test func exampleLoads() throws {
        let path = repositoryRoot + "/Traces/configs/example.yaml"
        let file = try MaglevConfigFile.load(path: path)
        let c = file.dataplane
        #expect(file.path == path)
        #expect(c.tableSize == 65537)
        #expect(c.algorithm == .maglev)
        #expect(c.tableOptions.ringViews == 1000)
        #expect(c.hashSeed == 0)
        #expect(c.pathMTU == 1500)
        #expect(c.encapSourceIPv4 == address("198.18.0.2"))
        #expect(c.encapSourceIPv6 == address("2001:db8::2"))
        #expect(c.fragmentPolicy == .threeTuple)
        #expect(c.connectionTracking)
        #expect(file.connectionCapacity == 1_048_576)
        #expect(c.timeouts == ConnectionTimeouts())
        #expect(c.icmpRatePerSecond == 100 && c.icmpBurst == 100)
        #expect(!c.acceptTruncated)

        #expect(c.vips.map(\.name) == ["web", "dns", "web6"])
        let web = c.vips[0]
        #expect(web.address == address("198.19.0.10") && web.prefixLength == 32)
        #expect(web.proto == IPProtocol.tcp && web.port == 80)
        #expect(
            web.backends == [
                BackendConfig(name: "web-1", address: address("198.18.1.1"), weight: 2),
                BackendConfig(name: "web-2", address: address("198.18.1.2"), weight: 2),
                BackendConfig(name: "web-3", address: address("198.18.1.3")),
                BackendConfig(name: "web-4", address: address("198.18.1.4"), state: .draining),
            ])
        let dns = c.vips[1]
        #expect(dns.address == address("198.19.0.11") && dns.proto == IPProtocol.udp && dns.port == 53)
        #expect(dns.backends.map(\.name) == ["dns-1", "dns-2"])
        #expect(dns.backends.allSatisfy { $0.weight == 1 && $0.state == .active })
        let web6 = c.vips[2]
        #expect(web6.address == address("2001:db8:100::10") && web6.prefixLength == 128)
        #expect(web6.proto == IPProtocol.tcp && web6.port == 443)
        #expect(web6.backends.map(\.address) == ["2001:db8:1::1", "2001:db8:1::2", "2001:db8:1::3"].map(address))
        #expect(web6.backends[2].weight == 0)
        // The forwarder can run it.
        let snapshot = try ForwardingSnapshot(config: c)
        #expect(snapshot.vipCount == 3)
    }

    @Test func catchAllFileIsTheCatchAllHelper() throws {
        let file = try MaglevConfigFile.load(path: repositoryRoot + "/Traces/configs/catch-all.yaml")
        let helper = MaglevConfigFile.catchAll(backends: 8).dataplane
        let c = file.dataplane
        #expect(c.vips == helper.vips)
        #expect(c.vips[0].prefixLength == 0 && c.vips[1].prefixLength == 0 && c.vips[1].address.isIPv6)
        #expect(c.vips[0].proto == nil && c.vips[0].port == nil)
        #expect(c.tableSize == helper.tableSize && c.hashSeed == helper.hashSeed)
        #expect(c.encapSourceIPv4 == helper.encapSourceIPv4 && c.encapSourceIPv6 == helper.encapSourceIPv6)
        #expect(file.connectionCapacity == MaglevConfigFile.catchAll(backends: 8).connectionCapacity)
    }

    @Test func catchAllSpillsIntoMoreSlash24s() throws {
        let file = MaglevConfigFile.catchAll(backends: 600)
        let backends = file.dataplane.vips[0].backends
        #expect(backends.count == 600)
        #expect(backends[0] == BackendConfig(name: "backend-0", address: address("198.18.1.1")))
        #expect(backends[253].address == address("198.18.1.254"))
        #expect(backends[254].address == address("198.18.2.1"))
        #expect(backends[599].name == "backend-599")
        #expect(Set(backends.map(\.address)).count == 600)
        #expect(file.dataplane.tableSize == 65537)
        _ = try ForwardingSnapshot(config: file.dataplane)
    }

    @Test func everyFieldAndDefault() throws {
        let yaml = """
            table_size: 251
            algorithm: ring
            ring_views: 50
            hash_seed: 0xDEADBEEF
            path_mtu: 9000
            encap: { source_ipv6: "2001:db8::2" }
            fragments: fragment-table
            connection_tracking:
              enabled: off
              capacity: 1_024
              timeouts:
                tcp_established: 5m
                tcp_half_open: 500ms
                tcp_closing: 3
                udp: 1h
                fragment: 1500ms
            icmp: { rate_per_second: 0, burst: 7 }
            vips:
              - name: v
                address: 2001:db8:100::/48
                protocol: 47
                backends:
                  - { name: a, address: "2001:db8:1::1", weight: 4294967295, state: down }
                  - { name: b, address: "2001:db8:1::2", state: active }
            """
        let file = try MaglevConfigFile.parse(yaml: yaml, path: "inline.yaml")
        let c = file.dataplane
        #expect(c.tableSize == 251 && c.algorithm == .ring && c.tableOptions.ringViews == 50)
        #expect(c.hashSeed == 0xDEAD_BEEF && c.tableOptions.seed == 0xDEAD_BEEF)
        #expect(c.pathMTU == 9000)
        #expect(c.encapSourceIPv4 == nil && c.encapSourceIPv6 == address("2001:db8::2"))
        #expect(c.fragmentPolicy == .fragmentTable)
        #expect(!c.connectionTracking && file.connectionCapacity == 1024)
        #expect(
            c.timeouts
                == ConnectionTimeouts(
                    tcpEstablishedMs: 300_000, tcpHalfOpenMs: 500, tcpClosingMs: 3000, datagramMs: 3_600_000,
                    fragmentMs: 1500))
        #expect(c.icmpRatePerSecond == 0 && c.icmpBurst == 7)
        #expect(c.vips[0].prefixLength == 48 && c.vips[0].proto == 47 && c.vips[0].port == nil)
        #expect(c.vips[0].backends[0] == BackendConfig(name: "a", address: address("2001:db8:1::1"), weight: .max, state: .down))
    }

    @Test func minimalFileTakesDefaults() throws {
        let yaml = """
            encap: { source_ipv4: 10.0.0.1 }
            vips: [{ name: v, address: 10.1.0.1, backends: [{ name: a, address: 10.2.0.1 }] }]
            """
        let file = try MaglevConfigFile.parse(yaml: yaml, path: "min.yaml")
        let c = file.dataplane
        let defaults = DataplaneConfig(vips: [])
        #expect(c.tableSize == defaults.tableSize && c.algorithm == defaults.algorithm)
        #expect(c.hashSeed == 0 && c.pathMTU == 1500 && c.fragmentPolicy == .threeTuple && c.connectionTracking)
        #expect(c.timeouts == ConnectionTimeouts() && c.icmpRatePerSecond == 100 && c.icmpBurst == 100)
        #expect(file.connectionCapacity == MaglevConfigFile.defaultConnectionCapacity)
        #expect(c.vips == [VIPConfig(name: "v", address: address("10.1.0.1"), backends: [
            BackendConfig(name: "a", address: address("10.2.0.1"))
        ])])
    }

    @Test func poolsAreSharedAndAnchorsWork() throws {
        let yaml = """
            encap: { source_ipv4: 10.0.0.1 }
            pools:
              p: &backends
                - { name: a, address: 10.2.0.1 }
                - { name: b, address: 10.2.0.2, weight: 3 }
            vips:
              - { name: one, address: 10.1.0.1, protocol: tcp, port: 80, pool: p }
              - { name: two, address: 10.1.0.1, protocol: tcp, port: 443, pool: p }
              - { name: three, address: 10.1.0.3, backends: *backends }
            """
        let c = try MaglevConfigFile.parse(yaml: yaml, path: "p.yaml").dataplane
        #expect(c.vips.count == 3)
        #expect(c.vips[0].backends == c.vips[1].backends && c.vips[1].backends == c.vips[2].backends)
        #expect(c.vips[0].backends[1].weight == 3)
    }

    @Test func blockStylePrefixesNeedNoQuotes() throws {
        let yaml = """
            encap:
              source_ipv6: 2001:db8::2
            vips:
              - name: all
                address: ::/0
                backends:
                  - name: a
                    address: 2001:db8:1::1
            """
        let vip = try MaglevConfigFile.parse(yaml: yaml, path: "b.yaml").dataplane.vips[0]
        #expect(vip.address == address("::") && vip.prefixLength == 0)
    }

    @Test(arguments: [
        ("10", 10_000 as UInt32), ("10s", 10_000), ("500ms", 500), ("5m", 300_000), ("2h", 7_200_000), ("\"7s\"", 7000),
    ])
    func durations(text: String, ms: UInt32) throws {
        let yaml = """
            connection_tracking: { timeouts: { udp: \(text) } }
            encap: { source_ipv4: 10.0.0.1 }
            vips: [{ name: v, address: 10.1.0.1, backends: [{ name: a, address: 10.2.0.1 }] }]
            """
        #expect(try MaglevConfigFile.parse(yaml: yaml, path: "d.yaml").dataplane.timeouts.datagramMs == ms)
    }
}
