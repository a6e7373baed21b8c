import MaglevConfig
import MaglevControl
import MaglevCore
import Testing

/// A reload replaces only the file layer: health and operator overlays survive it, entries of
/// backends (and health targets) that left are dropped, and a backend that comes back later
/// comes back clean.
@Suite struct DesiredStateReloadTests {
    /// a drained (with a deadline), b failed, c weighted, d health-down, x removed.
    func heldState() throws -> DesiredState {
        var s = DesiredState(file: try config(twoPoolYAML()))
        try s.apply(.drain("a", timeoutMs: 5000), nowMs: 100)
        try s.apply(.fail("b"), nowMs: 100)
        try s.apply(.weight("c", 7), nowMs: 100)
        s.health(["d"], pool: "main", up: false)
        try s.apply(.remove("x"), nowMs: 100)
        return s
    }

    @Test func overlaysSurviveAReloadOfTheSameFile() throws {
        var s = try heldState()
        let before = s.summary
        let generation = s.generation
        // main has only c left taking new connections (1 < 50% of 4): backup (y) serves.
        #expect(before == ["y:active", "a:draining", "b:down", "c:draining", "d:down"])
        s.replaceFile(try config(twoPoolYAML()))
        #expect(s.generation > generation)
        #expect(s.holds["a"] == .draining(sinceMs: 100, deadlineMs: 5100))
        #expect(s.failed == ["b"])
        #expect(s.weights == ["c": 7])
        #expect(s.healthDown == [s.target("d", pool: "main")])
        #expect(s.removed == ["x"])
        #expect(s.summary == before)
        #expect(s.vips[0].backends.first { $0.name == "c" }?.weight == 7)
        // The drain's deadline still counts from the edit, not the reload.
        #expect(s.expireDrains(nowMs: 5099).isEmpty)
        #expect(s.expireDrains(nowMs: 5100) == ["a"])
    }

    @Test func overlaysOfBackendsThatLeftAreDropped() throws {
        var s = try heldState()
        // a, b, c, d leave main; x leaves backup.
        let smaller = twoPoolYAML(main: "      - { name: e, address: 198.18.1.5 }")
            .replacing("      - { name: x, address: 198.18.2.1 }\n", with: "")
        s.replaceFile(try config(smaller))
        #expect(s.holds.isEmpty)
        #expect(s.failed.isEmpty)
        #expect(s.weights.isEmpty)
        #expect(s.removed.isEmpty)
        #expect(s.healthDown.isEmpty)
        #expect(s.backendNames == ["e", "y"])
        #expect(s.summary == ["e:active", "y:draining"])
    }

    @Test func aBackendThatComesBackComesBackClean() throws {
        var s = try heldState()
        s.replaceFile(try config(twoPoolYAML(main: "      - { name: e, address: 198.18.1.5 }")))
        s.replaceFile(try config(twoPoolYAML()))
        #expect(s.holds.isEmpty && s.failed.isEmpty && s.weights.isEmpty && s.healthDown.isEmpty)
        // x was removed and stayed in the file: its removal survives (only leavers are cleaned).
        #expect(s.removed == ["x"])
        #expect(s.summary == ["a:active", "b:active", "c:active", "d:active", "y:draining"])
        for name in ["a", "b", "c", "d"] {
            let m = s.member(name, pool: "main")
            #expect(m?.hold == nil && m?.healthy == true && m?.weight == 1, "\(name): \(String(describing: m))")
        }
    }

    @Test func aRemovedBackendThatLeavesAndComesBackIsNotRemoved() throws {
        var s = DesiredState(file: try config(twoPoolYAML()))
        try s.apply(.remove("c"))
        s.replaceFile(try config(twoPoolYAML().replacing("      - { name: c, address: 198.18.1.3 }\n", with: "")))
        #expect(s.removed.isEmpty)
        s.replaceFile(try config(twoPoolYAML()))
        #expect(s.member("c", pool: "main")?.state == .active)
    }

    @Test func healthDownOfATargetWhoseCheckChangedIsDropped() throws {
        var s = DesiredState(file: try config(twoPoolYAML()))
        s.health(["a", "b"], pool: "main", up: false)
        s.health(["x"], pool: "backup", up: false)
        // main's check changes (a new target); backup's stays.
        s.replaceFile(try config(twoPoolYAML(mainCheck: "{ type: tcp, port: 8080 }")))
        #expect(s.healthDown == [s.target("x", pool: "backup")])
        #expect(s.member("a", pool: "main")?.healthy == true)
        #expect(s.member("x", pool: "backup")?.healthy == false)
    }

    @Test func healthDownSurvivesWhenTheTargetStays() throws {
        var s = DesiredState(file: try config(twoPoolYAML()))
        s.health(["a"], pool: "main", up: false)
        // Another backend is added and weights change: a's target (address, check) is the same.
        let more = twoPoolYAML(
            main: """
                      - { name: a, address: 198.18.1.1, weight: 3 }
                      - { name: b, address: 198.18.1.2 }
                      - { name: c, address: 198.18.1.3 }
                      - { name: d, address: 198.18.1.4 }
                      - { name: e, address: 198.18.1.5 }
                """)
        s.replaceFile(try config(more))
        #expect(s.member("a", pool: "main")?.healthy == false)
        #expect(s.member("a", pool: "main")?.state == .down)
    }

    @Test func additionsTheFileNowHasAreDroppedAndTheFileWins() throws {
        var s = DesiredState(file: try config(twoPoolYAML()))
        try s.apply(.add("n", address: address("198.18.9.9")))
        try s.apply(.drain("n"))
        try s.apply(.add("m"))
        #expect(s.added.map(\.name) == ["n", "m"])
        let withN = twoPoolYAML(
            main: """
                      - { name: a, address: 198.18.1.1 }
                      - { name: n, address: 198.18.1.99 }
                """)
        s.replaceFile(try config(withN))
        #expect(s.added.map(\.name) == ["m"])
        #expect(s.member("n", pool: "main")?.address == address("198.18.1.99"))
        // n's drain was on a name that stayed (now in the file): it survives.
        #expect(s.isDraining("n"))
        #expect(s.backendNames == ["a", "m", "n", "x", "y"])
    }

    @Test func heldAdditionsSurviveAReload() throws {
        var s = DesiredState(file: try config(twoPoolYAML()))
        try s.apply(.add("n"))
        try s.apply(.fail("n"))
        s.replaceFile(try config(twoPoolYAML(hashSeed: 0)))
        #expect(s.added.map(\.name) == ["n"])
        #expect(s.failed == ["n"])
    }
}
