import Glibc
import MaglevConfig
import MaglevControl
import MaglevCore
import Testing

@testable import MaglevReplay

/// `--event AT:config=FILE`, the per-VIP and per-backend event figures, `ConfigDiff`, and
/// `TableDiff` across table sizes and seeds.
@Suite struct WhatIfTests {
    static let repo = #filePath.split(separator: "/").dropLast(3).map(String.init).reduce("") { $0 + "/" + $1 }
    static let tcp1k = repo + "/Traces/tcp-1k.pcap"

    /// catchAll(10) without backend-3, as a file of its own.
    static func withoutBackend3() -> MaglevConfigFile {
        var f = MaglevConfigFile.catchAll(backends: 10)
        for v in f.dataplane.vips.indices { f.dataplane.vips[v].backends.removeAll { $0.name == "backend-3" } }
        for p in f.pools.indices { f.pools[p].backends.removeAll { $0.name == "backend-3" } }
        f.path = "without-3.yaml"
        return f
    }

    @Test func aConfigEventIsAppliedAsTheSameRemovalWould() throws {
        let removal = try replay(Self.tcp1k, events: ["50%:remove:backend-3"])
        let reload = try replay(Self.tcp1k, events: ["50%:config=without-3.yaml"]) {
            $0.eventConfigs = ["without-3.yaml": Self.withoutBackend3()]
            $0.eventConfigs["without-3.yaml"]!.dataplane.acceptTruncated = true
        }
        let a = try #require(removal.events.first)
        let b = try #require(reload.events.first)
        #expect(b.action == "config" && b.target == "without-3.yaml")
        #expect(b.disruptive.isEmpty)
        #expect(a.connectionsAlive == b.connectionsAlive)
        #expect(a.broken == b.broken && a.brokenUnavoidable == b.brokenUnavoidable && a.brokenCollateral == b.brokenCollateral)
        #expect(a.slotsChangedAll == b.slotsChangedAll && a.slotsChangedExtra == b.slotsChangedExtra)
        #expect(a.atRisk == b.atRisk && a.byBackend == b.byBackend)
        #expect(b.broken > 0)
        // Only backend-3's connections break, and every one that broke was at risk.
        #expect(b.byBackend.map(\.name) == ["backend-3"])
        #expect(b.atRisk >= b.broken && b.byBackend.first?.broken == b.broken)
        let v4 = try #require(b.byVIP.first { $0.name == "any-ipv4" })
        #expect(v4.broken == b.broken && v4.atRisk == b.atRisk && v4.alive == b.connectionsAlive)
        #expect((v4.slotsChangedAll ?? 0) > 0.09 && (v4.slotsChangedExtra ?? 1) < 0.02)
    }

    @Test func aDisruptiveConfigEventIsAppliedAndFlagged() throws {
        var seeded = MaglevConfigFile.catchAll(backends: 10, hashSeed: 7)
        seeded.path = "seed.yaml"
        seeded.dataplane.acceptTruncated = true
        let r = try replay(Self.tcp1k, events: ["50%:config=seed.yaml"]) { $0.eventConfigs = ["seed.yaml": seeded] }
        let e = try #require(r.events.first)
        #expect(e.disruptive == ["hash_seed changes from 0 to 7"])
        #expect(r.warnings.contains { $0.hasPrefix("DISRUPTIVE: event '50%:config=seed.yaml': hash_seed changes from 0 to 7") })
        // Almost every flow moves: about 90% of the alive connections, all collateral.
        #expect(e.atRisk > e.connectionsAlive * 8 / 10)
        #expect(e.brokenCollateral == e.broken && e.broken > 0)
        #expect(e.slotsChangedAll > 0.85)
        let json = JSONReport.render(r)
        #expect(json.contains("\"disruptive\": [\"hash_seed changes from 0 to 7\"]"))
        #expect(TextReport.render(r, markdown: false).contains("DISRUPTIVE"))
    }

    @Test func aBrokenEventConfigIsAnErrorNamingIt() throws {
        let path = "/tmp/maglev-whatif-\(getpid())-broken.yaml"
        writeFile(path, Array("vips:\n  - name: web\n    address: not-an-address\n".utf8))
        defer { unlink(path) }
        let events = [try ScenarioEvent(parsing: "50%:config=\(path)")]
        #expect(throws: ScenarioError.self) { try ScenarioEvent.loadConfigs(events) }
        do {
            _ = try ScenarioEvent.loadConfigs(events)
        } catch {
            #expect(error.description.hasPrefix("event '50%:config=\(path)': \(path) is not a config"))
            #expect(error.description.contains(path + ":"))
        }
        let missing = [try ScenarioEvent(parsing: "10s:config=/nonexistent/x.yaml")]
        #expect(throws: ScenarioError.self) { try ScenarioEvent.loadConfigs(missing) }
    }

    @Test func aConfigEventPathMayHoldColons() throws {
        let e = try ScenarioEvent(parsing: "#10:config=/tmp/a:b.yaml")
        #expect(e.action == .config && e.target == "/tmp/a:b.yaml" && e.atText == "#10")
        #expect(throws: ScenarioError.self) { try ScenarioEvent(parsing: "50%:config=") }
    }

    @Test func configDiffCountsWhatTheTraceWouldLose() throws {
        let old = MaglevConfigFile.catchAll(backends: 10)
        var diff = try ConfigDiff(old: old, new: Self.withoutBackend3())
        let v4 = try #require(diff.vips.first)
        #expect(v4.name == "any-ipv4" && v4.status == "changed" && v4.backendsRemoved == ["backend-3"])
        try diff.addTrace(inputs: [Self.tcp1k], old: old, new: Self.withoutBackend3(), at: "50%")
        let t = try #require(diff.trace)
        let same = try replay(Self.tcp1k, events: ["50%:remove:backend-3"])
        #expect(t.connectionsAlive == same.events[0].connectionsAlive)
        #expect(t.connectionsBroken == same.events[0].atRisk && t.connectionsBroken > 0)
        #expect(t.brokenByBackend.map(\.name) == ["backend-3"])
        #expect(diff.vips[0].connectionsBroken == t.connectionsBroken)
        let json = DiffReport.json(diff).rendered(.indented)
        for key in ["slots_changed_all", "slots_changed_extra", "connections_alive", "connections_broken", "broken_by_backend"] {
            #expect(json.contains("\"\(key)\""), "\(key)")
        }
        #expect(DiffReport.html(diff).contains("<h2>Trace</h2>"))
        // Past the end of the trace: an error, not a silent 0.
        #expect(throws: ScenarioError.self) {
            try diff.addTrace(inputs: [Self.tcp1k], old: old, new: Self.withoutBackend3(), at: "60s")
        }
    }

    @Test func tableDiffAcrossSizesAndSeeds() throws {
        let backends = (0..<10).map { BackendSpec(name: "b\($0)", weight: 1) }
        let a = try LookupTableBuilder.build(.maglev, backends: backends, size: 65537)
        let b = try LookupTableBuilder.build(.maglev, backends: backends, size: 65521)
        let same = TableDiff(old: a, oldSeed: 0, new: a, newSeed: 0)
        #expect(same.changedAll == 0 && same.changedExtra == 0)
        // Another size: Maglev's permutations differ, most flows move (about 1 - 1/n).
        let resized = TableDiff(old: a, oldSeed: 0, new: b, newSeed: 0)
        #expect(resized.changedAll > 0.8 && resized.changedAll < 0.95 && resized.changedExtra == resized.changedAll)
        // Another seed: independent, 1 - sum of share products = 0.9 for 10 equal backends.
        let reseeded = TableDiff(old: a, oldSeed: 0, new: a, newSeed: 1)
        #expect(abs(reseeded.changedAll - 0.9) < 0.001)
        // One removal across sizes: backend b3's flows plus the rest.
        let fewer = try LookupTableBuilder.build(.maglev, backends: backends.filter { $0.name != "b3" }, size: 65537)
        let removal = TableDiff(old: a, oldSeed: 0, new: fewer, newSeed: 0)
        #expect(removal == TableDiff(old: a, new: fewer))
    }
}
