import MaglevConfig
import MaglevControl
import MaglevCore
import Testing

/// Which pool serves a VIP: the first in order with `min_healthy` backends taking new
/// connections; else `when_all_down` (fail-open: the first pool with health ignored; drop: none).
/// The VIP's backends are the serving pool's members, then the other pools' as draining or down.
@Suite struct PoolSelectionTests {
    @Test(arguments: [
        (MinHealthy.count(1), 4, 1), (.count(3), 4, 3), (.count(5), 4, 5),
        (.percent(50), 4, 2), (.percent(50), 3, 2), (.percent(34), 3, 2), (.percent(33), 3, 1),
        (.percent(1), 4, 1), (.percent(1), 1000, 10), (.percent(100), 3, 3), (.percent(25), 4, 1),
        (.percent(26), 4, 2), (.percent(50), 0, 0),
    ])
    func minHealthyRoundsPercentagesUp(rule: MinHealthy, size: Int, required: Int) {
        #expect(rule.required(of: size) == required)
    }

    @Test func minHealthyDescription() {
        #expect(MinHealthy.count(2).description == "2")
        #expect(MinHealthy.percent(50).description == "50%")
    }

    @Test func allHealthyTheFirstPoolServesAndTheOthersDrain() throws {
        let s = DesiredState(file: try config(twoPoolYAML()))
        let vip = s.vips[0]
        #expect(vip.name == "web")
        #expect(vip.pools.map(\.name) == ["main", "backup"])
        #expect(vip.serving == "main" && !vip.failingOpen && vip.usable)
        #expect(vip.whenAllDown == .failOpen)
        #expect(vip.pools[0].required == 2 && vip.pools[0].available == 4 && vip.pools[0].qualifies)
        #expect(vip.pools[1].required == 1 && vip.pools[1].available == 2 && vip.pools[1].qualifies)
        #expect(s.summary == ["a:active", "b:active", "c:active", "d:active", "x:draining", "y:draining"])
        // The data plane runs exactly these, with the file's other settings.
        let dp = s.dataplaneConfig
        #expect(dp.vips[0].backends == vip.backends)
        #expect(dp.tableSize == 251 && dp.vips[0].port == 80)
        _ = try ForwardingSnapshot(config: dp)
    }

    @Test func aPoolAtMinHealthyStillServes() throws {
        var s = DesiredState(file: try config(twoPoolYAML()))
        s.health(["a", "b"], pool: "main", up: false)
        #expect(s.vips[0].serving == "main")
        #expect(s.vips[0].pools[0].available == 2)
        #expect(s.summary == ["a:down", "b:down", "c:active", "d:active", "x:draining", "y:draining"])
    }

    @Test func belowMinHealthyFailsOverKeepingLiveBackendsDraining() throws {
        var s = DesiredState(file: try config(twoPoolYAML()))
        s.health(["a", "b", "c"], pool: "main", up: false)
        let vip = s.vips[0]
        #expect(vip.serving == "backup" && !vip.failingOpen)
        #expect(!vip.pools[0].qualifies && vip.pools[0].available == 1)
        // The backup's backends first (they get the slots), then main's: d is alive and keeps
        // its connections (draining), a-c are down (their connections move).
        #expect(s.summary == ["x:active", "y:active", "a:down", "b:down", "c:down", "d:draining"])
        _ = try ForwardingSnapshot(config: s.dataplaneConfig)
        // Back at the minimum (b and d), main serves again.
        s.health(["b"], pool: "main", up: true)
        #expect(s.vips[0].serving == "main")
        #expect(s.summary == ["a:down", "b:active", "c:down", "d:active", "x:draining", "y:draining"])
    }

    @Test func drainsAndZeroWeightsAreNotAvailable() throws {
        var s = DesiredState(file: try config(twoPoolYAML()))
        try s.apply(.drain("a"))
        try s.apply(.weight("b", 0))
        #expect(s.vips[0].pools[0].available == 2)
        #expect(s.vips[0].serving == "main")
        try s.apply(.drain("c"))
        #expect(s.vips[0].pools[0].available == 1)
        #expect(s.vips[0].serving == "backup")
        // Drained backends keep their connections wherever they are.
        #expect(s.summary == ["x:active", "y:active", "a:draining", "b:draining", "c:draining", "d:draining"])
        #expect(s.vips[0].backends.first { $0.name == "b" }?.weight == 0)
    }

    @Test func fileStatesCountToo() throws {
        let main = """
                  - { name: a, address: 198.18.1.1, state: draining }
                  - { name: b, address: 198.18.1.2, state: down }
                  - { name: c, address: 198.18.1.3, weight: 0 }
                  - { name: d, address: 198.18.1.4 }
            """
        let s = DesiredState(file: try config(twoPoolYAML(main: main, minHealthy: "1")))
        #expect(s.vips[0].pools[0].available == 1 && s.vips[0].serving == "main")
        #expect(s.member("a", pool: "main")?.fileState == .draining)
        #expect(s.summary == ["a:draining", "b:down", "c:active", "d:active", "x:draining", "y:draining"])
    }

    @Test func minHealthyCount() throws {
        var s = DesiredState(file: try config(twoPoolYAML(minHealthy: "3")))
        #expect(s.vips[0].pools[0].required == 3)
        s.health(["a"], pool: "main", up: false)
        #expect(s.vips[0].serving == "main")
        s.health(["b"], pool: "main", up: false)
        #expect(s.vips[0].serving == "backup")
    }

    @Test func percentOfThreeRoundsUp() throws {
        let main = """
                  - { name: a, address: 198.18.1.1 }
                  - { name: b, address: 198.18.1.2 }
                  - { name: c, address: 198.18.1.3 }
            """
        var s = DesiredState(file: try config(twoPoolYAML(main: main, minHealthy: "50%")))
        #expect(s.vips[0].pools[0].required == 2)  // 1.5 rounds up
        s.health(["a"], pool: "main", up: false)
        #expect(s.vips[0].serving == "main")
        s.health(["b"], pool: "main", up: false)
        #expect(s.vips[0].serving == "backup")
    }

    @Test func removalsShrinkThePoolThatPercentagesCount() throws {
        var s = DesiredState(file: try config(twoPoolYAML(minHealthy: "100%")))
        s.health(["a"], pool: "main", up: false)
        #expect(s.vips[0].serving == "backup")
        try s.apply(.remove("a"))
        #expect(s.vips[0].pools[0].members.map(\.name) == ["b", "c", "d"])
        #expect(s.vips[0].pools[0].required == 3)
        #expect(s.vips[0].serving == "main")
        // A removed backend is not in the data plane at all.
        #expect(!s.vips[0].backends.contains { $0.name == "a" })
    }

    @Test func failOpenServesTheFirstPoolWithHealthIgnored() throws {
        var s = DesiredState(file: try config(twoPoolYAML()))
        s.health(["a", "b", "c", "d"], pool: "main", up: false)
        s.health(["x", "y"], pool: "backup", up: false)
        let vip = s.vips[0]
        #expect(vip.pools.allSatisfy { !$0.qualifies })
        #expect(vip.serving == "main" && vip.failingOpen && vip.usable)
        #expect(s.summary == ["a:active", "b:active", "c:active", "d:active", "x:down", "y:down"])
        _ = try ForwardingSnapshot(config: s.dataplaneConfig)
    }

    @Test func failOpenStillAppliesDrainsAndFileStatesButNotFailures() throws {
        let main = """
                  - { name: a, address: 198.18.1.1 }
                  - { name: b, address: 198.18.1.2 }
                  - { name: c, address: 198.18.1.3, state: draining }
                  - { name: d, address: 198.18.1.4 }
                  - { name: e, address: 198.18.1.5, state: down }
            """
        var s = DesiredState(file: try config(twoPoolYAML(main: main)))
        s.health(["a", "b", "c", "d"], pool: "main", up: false)
        s.health(["x", "y"], pool: "backup", up: false)
        try s.apply(.drain("a"))
        // `fail` is a health failure: failing open ignores it like the checks.
        try s.apply(.fail("b"))
        try s.apply(.fail("e"))
        #expect(s.vips[0].failingOpen)
        #expect(s.summary == ["a:draining", "b:active", "c:draining", "d:active", "e:down", "x:down", "y:down"])
    }

    @Test func failedBackendsCountAsUnhealthyForMinHealthy() throws {
        var s = DesiredState(file: try config(twoPoolYAML()))
        try s.apply(.fail("a"))
        try s.apply(.fail("b"))
        #expect(s.vips[0].serving == "main")
        try s.apply(.fail("c"))
        #expect(s.vips[0].serving == "backup")
        #expect(s.summary == ["x:active", "y:active", "a:down", "b:down", "c:down", "d:draining"])
    }

    @Test func failOpenIsTheDefaultAndDropIsExplicit() throws {
        let open = try config(twoPoolYAML())
        #expect(open.vipPools[0].whenAllDown == .failOpen)
        let explicit = try config(twoPoolYAML(extra: ", when_all_down: fail-open"))
        #expect(explicit.vipPools[0].whenAllDown == .failOpen)
        let drop = try config(twoPoolYAML(extra: ", when_all_down: drop"))
        #expect(drop.vipPools[0] == VIPPoolChoice(vip: "web", pools: ["main", "backup"], whenAllDown: .drop))
    }

    @Test func dropServesNoPoolAndGivesNoBackendNewConnections() throws {
        var s = DesiredState(file: try config(twoPoolYAML(extra: ", when_all_down: drop")))
        s.health(["a", "b", "c"], pool: "main", up: false)
        s.health(["x"], pool: "backup", up: false)
        try s.apply(.drain("y"))
        let vip = s.vips[0]
        #expect(vip.serving == nil && !vip.failingOpen && !vip.usable)
        #expect(vip.whenAllDown == .drop)
        // d is healthy but main is below min_healthy: it keeps its connections, takes no new ones.
        #expect(s.summary == ["a:down", "b:down", "c:down", "d:draining", "x:down", "y:draining"])
        #expect(!vip.backends.contains { $0.state == .active })
        // The data plane still accepts it (every new connection counts as no_backend).
        _ = try ForwardingSnapshot(config: s.dataplaneConfig)
    }

    @Test func dropWhileEverythingIsHealthyStillServes() throws {
        let s = DesiredState(file: try config(twoPoolYAML(extra: ", when_all_down: drop")))
        #expect(s.vips[0].serving == "main" && s.vips[0].usable)
    }

    @Test func aPoolWithoutACheckIsAlwaysHealthy() throws {
        let yaml = """
            encap: { source_ipv4: 198.18.0.2 }
            pools:
              p: [{ name: a, address: 198.18.1.1 }]
            vips:
              - { name: v, address: 198.19.0.10, pool: p }
              - { name: w, address: 198.19.0.11, backends: [{ name: b, address: 198.18.1.2 }] }
            """
        let s = DesiredState(file: try config(yaml))
        #expect(s.healthTargets.isEmpty)
        #expect(s.vips.map(\.serving) == ["p", "w"])
        #expect(s.vips[0].pools[0].members[0].healthy == nil)
        #expect(s.vips[0].pools[0].check == nil && s.vips[0].pools[0].minHealthy == .count(1))
        #expect(s.dataplaneConfig.vips.map { $0.backends.map(\.name) } == [["a"], ["b"]])
    }

    @Test func aBackendInTwoPoolsIsListedOnceAsTheServingPoolHasIt() throws {
        let yaml = """
            encap: { source_ipv4: 198.18.0.2 }
            pools:
              one:
                backends: [{ name: a, address: 198.18.1.1 }, { name: s, address: 198.18.1.9, weight: 5 }]
              two:
                backends: [{ name: s, address: 198.18.1.9, weight: 2 }, { name: b, address: 198.18.1.2 }]
            vips:
              - { name: v, address: 198.19.0.10, pools: [one, two] }
              - { name: w, address: 198.19.0.11, pools: [two, one] }
            """
        let s = DesiredState(file: try config(yaml))
        #expect(s.vips[0].backends.map { "\($0.name):\($0.state):\($0.weight)" } == ["a:active:1", "s:active:5", "b:draining:1"])
        #expect(s.vips[1].backends.map { "\($0.name):\($0.state):\($0.weight)" } == ["s:active:2", "b:active:1", "a:draining:1"])
    }

    @Test func healthTargetsAreDeduplicatedByAddressAndCheck() throws {
        let yaml = """
            encap: { source_ipv4: 198.18.0.2 }
            pools:
              one:
                backends: [{ name: a, address: 198.18.1.1 }, { name: b, address: 198.18.1.2 }]
                health_check: { type: tcp, port: 80 }
              two:
                backends: [{ name: a, address: 198.18.1.1 }]
                health_check: { type: tcp, port: 80 }
              three:
                backends: [{ name: a, address: 198.18.1.1 }]
                health_check: { type: tcp, port: 81 }
            vips:
              - { name: v, address: 198.19.0.10, pools: [one, two, three] }
            """
        var s = DesiredState(file: try config(yaml))
        #expect(s.healthTargets.map(\.description) == ["tcp:80@198.18.1.1", "tcp:81@198.18.1.1", "tcp:80@198.18.1.2"])
        // One verdict for a's tcp:80 target counts in both pools that share it.
        s.setHealth(s.target("a", pool: "one"), up: false)
        #expect(s.vips[0].pools.map { $0.members.first { $0.name == "a" }!.healthy } == [false, false, true])
        // A removed backend is not probed.
        try s.apply(.remove("b"))
        #expect(s.healthTargets.map(\.description) == ["tcp:80@198.18.1.1", "tcp:81@198.18.1.1"])
    }

    @Test func setHealthReportsChangesAndBumpsTheGenerationOnlyThen() throws {
        var s = DesiredState(file: try config(twoPoolYAML()))
        let t = s.target("a", pool: "main")
        let g = s.generation
        let changes = [s.setHealth(t, up: true), s.setHealth(t, up: false), s.setHealth(t, up: false)]
        #expect(changes == [false, true, false])
        #expect(s.generation == g + 1)
        let back = s.setHealth(t, up: true)
        #expect(back)
        #expect(s.generation == g + 2)
    }
}

/// A VIP with inline `backends:` gets a pool named after it; a named pool of the same name must
/// not take its place.
@Suite struct InlinePoolNameTests {
    @Test func aVIPsInlineBackendsServeIt() throws {
        let yaml = """
            encap: { source_ipv4: 198.18.0.2 }
            pools:
              web:
                backends: [{ name: a, address: 198.18.1.1 }]
                health_check: { type: tcp, port: 22 }
            vips:
              - { name: web, address: 198.19.0.10, backends: [{ name: b, address: 198.18.1.2 }] }
              - { name: other, address: 198.19.0.11, pool: web }
            """
        let file: MaglevConfigFile
        do {
            file = try MaglevConfigFile.parse(yaml: yaml, path: "t.yaml")
        } catch {
            return  // refusing the clash is a fine fix too
        }
        let s = DesiredState(file: file)
        withKnownIssue("VIP 'web' (inline b) runs pool 'web' (a): DesiredState resolves pools by name, and the named pool comes first") {
            #expect(s.dataplaneConfig.vips[0].backends.map(\.name) == ["b"])
        }
        #expect(s.dataplaneConfig.vips[1].backends.map(\.name) == ["a"])
    }
}
