import MaglevConfig
import Testing

/// `shard:` on VIPs and `MaglevConfigFile.forShard`: a forwarder of shard X keeps X's VIPs and
/// the unsharded ones, in order; an unknown shard is refused with the list of shards.
@Suite struct ShardTests {
    static let yaml = """
        encap: { source_ipv4: 198.18.0.2 }
        pools:
          web: [{ name: a, address: 198.18.1.1 }]
        vips:
          - { name: blue-web, address: 198.19.0.10, pool: web, shard: blue }
          - { name: shared, address: 198.19.0.11, pool: web }
          - { name: green-web, address: 198.19.0.12, pool: web, shard: green }

        """

    @Test func aShardKeepsItsVIPsAndTheUnshardedOnes() throws {
        let file = try MaglevConfigFile.parse(yaml: Self.yaml, path: "s.yaml")
        #expect(file.vipPools.map(\.shard) == ["blue", nil, "green"])
        #expect(try file.forShard(nil).dataplane.vips.map(\.name) == ["blue-web", "shared", "green-web"])
        let blue = try file.forShard("blue")
        #expect(blue.dataplane.vips.map(\.name) == ["blue-web", "shared"])
        #expect(blue.vipPools.map(\.vip) == ["blue-web", "shared"])
        #expect(try file.forShard("green").dataplane.vips.map(\.name) == ["shared", "green-web"])
    }

    @Test func aShardWithNoVIPIsRefused() throws {
        let yaml = Self.yaml.replacingOccurrences(of: "  - { name: shared, address: 198.19.0.11, pool: web }\n", with: "")
        let file = try MaglevConfigFile.parse(yaml: yaml, path: "s.yaml")
        do {
            _ = try file.forShard("red")
            Issue.record("shard red has no VIP")
        } catch {
            #expect(error.description.contains("no VIP belongs to shard 'red'"))
            #expect(error.description.contains("blue, green"))
        }
    }

    @Test func aBadShardNameIsAProblemAtItsField() {
        let yaml = Self.yaml.replacingOccurrences(of: "shard: blue", with: "shard: \"a b\"")
        do {
            _ = try MaglevConfigFile.parse(yaml: yaml, path: "s.yaml")
            Issue.record("accepted")
        } catch {
            #expect(error.problems.count == 1)
            #expect(error.problems.first?.field == "vips[0].shard")
            #expect(error.problems.first?.line == 5)
        }
    }
}
