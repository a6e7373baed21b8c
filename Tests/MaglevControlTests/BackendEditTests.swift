import MaglevConfig
import MaglevCore
import Testing

@testable import MaglevControl

/// Every `BackendEdit` applied to a `DesiredState`: what it holds, how the backend then stands,
/// unknown names, additions, drain deadlines.
@Suite struct BackendEditTests {
    func state() throws -> DesiredState { DesiredState(file: try config(twoPoolYAML())) }

    @Test func descriptions() {
        #expect(BackendEdit.remove("a").description == "remove a")
        #expect(BackendEdit.add("a").description == "add a")
        #expect(BackendEdit.add("a", address: address("10.0.0.1")).description == "add a at 10.0.0.1")
        #expect(BackendEdit.drain("a").description == "drain a")
        #expect(BackendEdit.drain("a", timeoutMs: 500).description == "drain a (timeout 500 ms)")
        #expect(BackendEdit.undrain("a").description == "undrain a")
        #expect(BackendEdit.fail("a").description == "fail a")
        #expect(BackendEdit.recover("a").description == "recover a")
        #expect(BackendEdit.weight("a", 3).description == "weight a=3")
        let all: [BackendEdit] = [.remove("n"), .add("n"), .drain("n"), .undrain("n"), .fail("n"), .recover("n"), .weight("n", 1)]
        #expect(all.allSatisfy { $0.target == "n" })
    }

    @Test func everyEditButAddOfAnUnknownNameFailsListingTheKnownOnes() throws {
        var s = try state()
        let generation = s.generation
        let edits: [BackendEdit] = [
            .remove("zz"), .drain("zz"), .drain("zz", timeoutMs: 5), .undrain("zz"), .fail("zz"), .recover("zz"),
            .weight("zz", 2),
        ]
        for edit in edits {
            #expect(throws: EditError(edit: edit, known: ["a", "b", "c", "d", "x", "y"])) {
                try s.apply(edit, nowMs: 1)
            }
        }
        #expect(s.generation == generation)
        #expect(s.holds.isEmpty && s.weights.isEmpty && s.removed.isEmpty && s.added.isEmpty)
        do {
            try s.apply(.fail("zz"))
            Issue.record("no error")
        } catch {
            #expect(error.description == "no backend named 'zz' (fail zz); known backends: a, b, c, d, x, y")
        }
    }

    @Test func editErrorListsAtMostTwentyNames() {
        let known = (0..<25).map { "b\($0)" }
        let e = EditError(edit: .fail("q"), known: known)
        #expect(e.description.hasSuffix("known backends: " + known.prefix(20).joined(separator: ", ") + ", ..."))
        #expect(!e.description.contains("b20"))
    }

    @Test func namesAreCaseSensitive() throws {
        var s = try state()
        #expect(throws: EditError.self) { try s.apply(.drain("A")) }
    }

    @Test func drainKeepsConnectionsAndUndrainEndsIt() throws {
        var s = try state()
        let g = s.generation
        try s.apply(.drain("a"), nowMs: 42)
        #expect(s.generation == g + 1)
        #expect(s.holds["a"] == .draining(sinceMs: 42, deadlineMs: nil))
        #expect(s.isDraining("a"))
        #expect(s.member("a", pool: "main")?.state == .draining)
        #expect(s.member("a", pool: "main")?.takesNew == false)
        // Without a deadline it never expires.
        #expect(s.expireDrains(nowMs: .max).isEmpty)
        try s.apply(.undrain("a"))
        #expect(s.holds["a"] == nil && !s.isDraining("a"))
        #expect(s.member("a", pool: "main")?.state == .active)
        // Undrain of a backend that is not draining changes nothing but is not an error.
        try s.apply(.undrain("b"))
        #expect(s.holds.isEmpty)
    }

    @Test func drainTimeoutExpiresOnceAtItsDeadline() throws {
        var s = try state()
        try s.apply(.drain("a", timeoutMs: 30_000), nowMs: 1_000)
        try s.apply(.drain("b", timeoutMs: 10_000), nowMs: 2_000)
        try s.apply(.drain("c"), nowMs: 2_000)
        #expect(s.holds["a"] == .draining(sinceMs: 1_000, deadlineMs: 31_000))
        let g = s.generation
        #expect(s.expireDrains(nowMs: 11_999).isEmpty)
        #expect(s.generation == g)
        #expect(s.expireDrains(nowMs: 12_000) == ["b"])
        #expect(s.generation == g + 1)
        #expect(s.holds["b"] == .drainExpired(sinceMs: 12_000))
        #expect(!s.isDraining("b"))
        // Past its deadline the backend is taken out: down, its connections move.
        #expect(s.member("b", pool: "main")?.state == .down)
        #expect(s.expireDrains(nowMs: 12_001).isEmpty)
        // Both late ones at once, in name order.
        try s.apply(.drain("d", timeoutMs: 1), nowMs: 12_000)
        #expect(s.expireDrains(nowMs: 100_000) == ["a", "d"])
        #expect(s.holds["c"] == .draining(sinceMs: 2_000, deadlineMs: nil))
        // Undrain brings an expired one back.
        try s.apply(.undrain("b"))
        #expect(s.member("b", pool: "main")?.state == .active)
    }

    @Test func drainingAgainRestartsTheDeadline() throws {
        var s = try state()
        try s.apply(.drain("a", timeoutMs: 100), nowMs: 0)
        try s.apply(.drain("a", timeoutMs: 100), nowMs: 50)
        #expect(s.expireDrains(nowMs: 100).isEmpty)
        #expect(s.expireDrains(nowMs: 150) == ["a"])
        // A drain without a timeout after an expired one drains again.
        try s.apply(.drain("a"), nowMs: 200)
        #expect(s.member("a", pool: "main")?.state == .draining)
    }

    @Test func failMarksTheBackendUnhealthyUntilRecover() throws {
        var s = try state()
        try s.apply(.fail("a"))
        try s.apply(.fail("x"))
        #expect(s.failed == ["a", "x"])
        #expect(s.holds.isEmpty)
        // Exactly as a failed check: unhealthy, down.
        #expect(s.member("a", pool: "main")?.healthy == false)
        #expect(s.member("a", pool: "main")?.state == .down)
        #expect(s.member("x", pool: "backup")?.state == .down)
        // Undrain does not end it.
        try s.apply(.undrain("a"))
        #expect(s.failed.contains("a"))
        try s.apply(.recover("a"))
        #expect(!s.failed.contains("a"))
        #expect(s.member("a", pool: "main")?.healthy == true)
        #expect(s.member("a", pool: "main")?.state == .active)
    }

    @Test func failAndDrainAreIndependent() throws {
        var s = try state()
        try s.apply(.drain("a", timeoutMs: 10), nowMs: 0)
        try s.apply(.fail("a"))
        #expect(s.holds["a"] == .draining(sinceMs: 0, deadlineMs: 10))
        #expect(s.member("a", pool: "main")?.state == .down)
        #expect(s.expireDrains(nowMs: 1_000) == ["a"])
        try s.apply(.recover("a"))
        #expect(s.holds.isEmpty && s.failed.isEmpty)
    }

    @Test func failOnABackendWithoutACheckMarksItUnhealthy() throws {
        let yaml = """
            encap: { source_ipv4: 198.18.0.2 }
            vips:
              - { name: v, address: 198.19.0.10, backends: [{ name: a, address: 198.18.1.1 }, { name: b, address: 198.18.1.2 }] }
            """
        var s = DesiredState(file: try config(yaml))
        #expect(s.vips[0].pools[0].members[0].healthy == nil)
        try s.apply(.fail("a"))
        #expect(s.vips[0].pools[0].members[0].healthy == false)
        #expect(s.vips[0].backends.map { "\($0.name):\($0.state)" } == ["a:down", "b:active"])
    }

    @Test func recoverEndsDrainsAndFailuresAndClearsHealthDown() throws {
        var s = try state()
        try s.apply(.drain("a", timeoutMs: 10), nowMs: 0)
        _ = s.expireDrains(nowMs: 10)
        try s.apply(.drain("b"))
        try s.apply(.fail("b"))
        s.health(["c"], pool: "main", up: false)
        try s.apply(.recover("a"))
        try s.apply(.recover("b"))
        try s.apply(.recover("c"))
        #expect(s.holds.isEmpty && s.failed.isEmpty)
        #expect(s.healthDown.isEmpty)
        #expect(s.summary == ["a:active", "b:active", "c:active", "d:active", "x:draining", "y:draining"])
    }

    @Test func recoverDoesNotLiftAFileState() throws {
        let main = "      - { name: a, address: 198.18.1.1, state: down }\n      - { name: b, address: 198.18.1.2 }"
        var s = DesiredState(file: try config(twoPoolYAML(main: main)))
        try s.apply(.recover("a"))
        #expect(s.member("a", pool: "main")?.state == .down)
    }

    @Test func weightAppliesEverywhere() throws {
        let yaml = """
            encap: { source_ipv4: 198.18.0.2 }
            pools:
              one: [{ name: a, address: 198.18.1.1 }, { name: b, address: 198.18.1.2 }]
            vips:
              - { name: v, address: 198.19.0.10, pool: one }
              - { name: w, address: 198.19.0.11, backends: [{ name: a, address: 198.18.1.1, weight: 4 }] }
            """
        var s = DesiredState(file: try config(yaml))
        try s.apply(.weight("a", 9))
        #expect(s.weights == ["a": 9])
        #expect(s.dataplaneConfig.vips.map { $0.backends.first { $0.name == "a" }!.weight } == [9, 9])
        try s.apply(.weight("a", 0))
        #expect(s.vips[0].pools[0].members[0].takesNew == false)
        // w's only backend takes nothing new: it fails open, and the data plane (no slot
        // owners) drops its new connections as no_backend.
        #expect(s.vips[1].serving == "w" && s.vips[1].failingOpen)
        _ = try ForwardingSnapshot(config: s.dataplaneConfig)
    }

    @Test func removeTakesTheBackendOutOfEveryPoolAndAddBringsItBack() throws {
        var s = try state()
        try s.apply(.drain("a"))
        try s.apply(.remove("a"))
        #expect(s.removed == ["a"])
        #expect(!s.vips[0].backends.contains { $0.name == "a" })
        #expect(!s.vips[0].pools[0].members.contains { $0.name == "a" })
        #expect(s.backendNames.contains("a"))  // still known: it can be added back
        // An address given for a known, removed backend does not move it.
        try s.apply(.add("a", address: address("198.18.7.7")))
        #expect(s.removed.isEmpty && s.added.isEmpty)
        #expect(s.member("a", pool: "main")?.address == address("198.18.1.1"))
        // Its drain ended with the removal.
        #expect(s.holds["a"] == nil)
        #expect(s.member("a", pool: "main")?.state == .active)
    }

    @Test func addOfANewNameJoinsEveryPoolAtAFreshAddress() throws {
        var s = try state()
        try s.apply(.add("n"))
        try s.apply(.add("m"))
        try s.apply(.add("k", address: address("198.18.5.5")))
        #expect(s.added.map(\.name) == ["n", "m", "k"])
        let used = Set(s.file.pools.flatMap(\.backends).map(\.address))
        let n = s.added[0].address
        let m = s.added[1].address
        #expect(!used.contains(n) && !used.contains(m) && n != m)
        #expect(!n.isIPv6 && !m.isIPv6)
        #expect(n.description.hasPrefix("198.18.2.") && m.description.hasPrefix("198.18.2."))
        #expect(s.added[2] == BackendConfig(name: "k", address: address("198.18.5.5")))
        #expect(s.backendNames == ["a", "b", "c", "d", "k", "m", "n", "x", "y"])
        for pool in s.vips[0].pools {
            #expect(pool.members.suffix(3).map(\.name) == ["n", "m", "k"], "\(pool.name)")
        }
        // Added backends count toward min_healthy (7 in main now, 50% -> 4).
        #expect(s.vips[0].pools[0].required == 4 && s.vips[0].pools[0].available == 7)
        // And they can be edited like file backends.
        try s.apply(.drain("n"))
        #expect(s.member("n", pool: "main")?.state == .draining)
        // Adding a known name again changes nothing.
        try s.apply(.add("n", address: address("198.18.6.6")))
        #expect(s.added.count == 3 && s.added[0].address == n)
        _ = try ForwardingSnapshot(config: s.dataplaneConfig)
    }

    @Test func addedBackendsAreProbedWithThePoolsCheck() throws {
        var s = try state()
        try s.apply(.add("k", address: address("198.18.5.5")))
        let probed = s.healthTargets.filter { $0.address == address("198.18.5.5") }.map(\.check.summary).sorted()
        #expect(probed == ["http:80/healthz", "tcp:80"])
    }
}
