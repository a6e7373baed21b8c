import Foundation
import Testing

/// Why the live BGP tests cannot run here at all (root, the lab's tools, python3, tcpdump), or nil.
let liveBGPMissing: String? = LiveLabTests.missingCapability(also: ["python3", "tcpdump"]).map { "live BGP tests: \($0)" }

/// Why the lab cannot run ROUTER (bird, frr) as its router here, or nil.
func liveBGPRouterMissing(_ router: String) -> String? {
    if let liveBGPMissing { return liveBGPMissing }
    let binaries = router == "bird" ? ["/usr/sbin/bird", "/usr/sbin/birdc"] : ["/usr/lib/frr/zebra", "/usr/lib/frr/bgpd", "/usr/bin/vtysh"]
    for path in binaries where !FileManager.default.isExecutableFile(atPath: path) {
        return "live BGP tests: \(path) is missing (apt-get install \(router == "bird" ? "bird2" : "frr"))"
    }
    return nil
}

/// The forwarder tier, routed for real (issue 9 §2): the lab's router runs BIRD 2 or FRR, peers
/// with every forwarder's built-in BGP speaker (AS 65001, hold time 3 s) and installs an ECMP
/// route per VIP from what they announce; no static VIP route.
///
/// - the contract, with BIRD and with FRR: after `Tools/lab up --forwarders 2` and `forward`,
///   the router's route to 198.19.0.10 (and 2001:db8:100::10) has two next hops learned over
///   BGP (`proto bird`, `proto bgp`); `forwarder-stop 1`: one next hop within 2 s;
///   `forwarder-start 1`: two again within 10 s; `forwarder-kill 2`: fwd2 gone within 5 s;
/// - the promise, with 3 forwarders: 60 long-lived keep-alive connections (`Tools/lab hold`)
///   keep their backend while one forwarder stops gracefully (none may break), another is
///   killed (the connections lost then are reported) and both start again; `maglev replay` of
///   the client's packets with the matching `--event Ts:forwarders=K` predicts the backend that
///   answered on every connection.
///
/// Each test has its own lab (prefix `mglab-t<pid>b<letter>`) and takes it down whatever
/// happens. Serialized: route timings are asserted, and CI has 2 cores.
@Suite(.serialized, .enabled(if: liveBGPMissing == nil, Comment(rawValue: liveBGPMissing ?? "")))
struct LiveBGPTests {

    /// Brings up a lab (3 backends, `forwarders`, IPv6, `router`), starts the forwarders (which
    /// waits for the routes), runs `body`, and takes the lab down whatever happens.
    func withLab(
        _ tag: String, router: String, forwarders: Int, extra: [String] = [], _ body: (LabSession) throws -> Void
    ) throws {
        let lab = LabSession(tag: tag)
        let start = Date()
        defer {
            let end = Date()
            _ = try? lab.lab(["down"], quiet: true)
            print("\(lab.prefix): \(String(format: "%.1f", end.timeIntervalSince(start))) s up to the end of the test, lab down in \(String(format: "%.1f", Date().timeIntervalSince(end))) s")
        }
        let up = try lab.lab(
            ["up", "--backends", "3", "--forwarders", String(forwarders), "--ipv6", "--router", router] + extra, quiet: true)
        try #require(up.status == 0, "Tools/lab up --router \(router) failed:\n\(up.output)")
        let forward = try lab.lab(["forward"])
        try #require(forward.status == 0, "Tools/lab forward failed:\n\(forward.output)")
        print("\(lab.prefix): lab up and forwarders routed in \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        try body(lab)
    }

    /// The router's route to `vip`: its next hops and its proto ("" when there is no route).
    static func route(_ lab: LabSession, _ vip: String) throws -> (hops: [String], proto: String, text: String) {
        let family = vip.contains(":") ? "-6" : "-4"
        let r = try lab.shell("ip -n \"$P-router\" \(family) route show \(vip)")
        let words = r.output.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init)
        var hops: [String] = []
        var proto = ""
        for (i, w) in words.enumerated() where i + 1 < words.count {
            if w == "via" { hops.append(words[i + 1]) }
            if w == "proto" && proto.isEmpty { proto = words[i + 1] }
        }
        return (hops.sorted(), proto, r.output)
    }

    /// The contract of issue 9 with `router`; `proto` is what the kernel shows for its routes.
    func contract(router: String, proto: String, tag: String) throws {
        try withLab(tag, router: router, forwarders: 2) { lab in
            for (vip, hops) in [("198.19.0.10", ["198.18.1.11", "198.18.1.12"]), ("2001:db8:100::10", ["2001:db8:1::11", "2001:db8:1::12"])] {
                let r = try Self.route(lab, vip)
                #expect(r.hops == hops && r.proto == proto, "\(router): route to \(vip):\n\(r.text)")
            }
            // Each forwarder's view: an established session announcing the 4 VIPs; the metrics.
            for k in [1, 2] {
                let bgp = try lab.status(k)?["bgp"] as? [String: Any]
                let sessions = bgp?["sessions"] as? [[String: Any]] ?? []
                #expect(sessions.count == 1 && sessions.allSatisfy { $0["established"] as? Bool == true && ($0["announced"] as? [Any])?.count == 4 },
                        "fwd\(k): /status bgp: \(String(describing: bgp))")
                let metrics = try lab.admin(k, "/metrics") ?? ""
                #expect(LiveControlTests.samples(metrics, "maglev_bgp_session_up").map(\.value) == [1], "fwd\(k): maglev_bgp_session_up")
                #expect(LiveControlTests.samples(metrics, "maglev_bgp_announced_routes").map(\.value) == [4], "fwd\(k): maglev_bgp_announced_routes")
            }

            // Graceful stop: the route loses fwd1 within 2 s of the SIGTERM (the process itself
            // forwards 3 s more; forwarder-stop waits for it).
            let stop = try lab.start("bash Tools/lab forwarder-stop 1")
            let one = try LabSession.waitUntil(seconds: 2) { try Self.route(lab, "198.19.0.10").hops == ["198.18.1.12"] }
            let stopped = lab.finish(stop)
            #expect(stopped.status == 0, "forwarder-stop 1 failed:\n\(stopped.output)")
            let afterStop = try Self.route(lab, "198.19.0.10").text
            #expect(one != nil, "\(router): not one next hop within 2 s of forwarder-stop 1:\n\(afterStop)")
            if let one { print("\(router): one next hop \(String(format: "%.2f", one)) s after forwarder-stop 1") }
            #expect(try Self.route(lab, "2001:db8:100::10").hops == ["2001:db8:1::12"], "\(router): the IPv6 route still uses fwd1")

            let startedAt = Date()
            let start = try lab.lab(["forwarder-start", "1"])
            #expect(start.status == 0, "forwarder-start 1 failed:\n\(start.output)")
            let two = try LabSession.waitUntil(seconds: max(0.1, 10 - Date().timeIntervalSince(startedAt))) {
                try Self.route(lab, "198.19.0.10").hops == ["198.18.1.11", "198.18.1.12"]
            }
            let afterStart = try Self.route(lab, "198.19.0.10").text
            #expect(two != nil, "\(router): not two next hops within 10 s of forwarder-start 1:\n\(afterStart)")
            print("\(router): two next hops \(String(format: "%.2f", Date().timeIntervalSince(startedAt))) s after forwarder-start 1")

            let killedAt = Date()
            let kill = try lab.lab(["forwarder-kill", "2"])
            #expect(kill.status == 0, "forwarder-kill 2 failed:\n\(kill.output)")
            let gone = try LabSession.waitUntil(seconds: max(0.1, 5 - Date().timeIntervalSince(killedAt))) {
                try !Self.route(lab, "198.19.0.10").hops.contains("198.18.1.12")
            }
            let afterKill = try Self.route(lab, "198.19.0.10")
            #expect(gone != nil, "\(router): the route still uses fwd2 5 s after forwarder-kill 2:\n\(afterKill.text)")
            print("\(router): fwd2 out of the route \(String(format: "%.2f", Date().timeIntervalSince(killedAt))) s after forwarder-kill 2")
            #expect(afterKill.hops == ["198.18.1.11"], "\(router): after forwarder-kill 2:\n\(afterKill.text)")
        }
    }

    @Test(.enabled(if: liveBGPRouterMissing("bird") == nil, Comment(rawValue: liveBGPRouterMissing("bird") ?? "")))
    func birdLearnsTheVIPRoutesAndFollowsForwardersLeavingAndJoining() throws {
        try contract(router: "bird", proto: "bird", tag: "ba")
    }

    @Test(.enabled(if: liveBGPRouterMissing("frr") == nil, Comment(rawValue: liveBGPRouterMissing("frr") ?? "")))
    func frrLearnsTheVIPRoutesAndFollowsForwardersLeavingAndJoining() throws {
        try contract(router: "frr", proto: "bgp", tag: "bb")
    }

    /// Shards (issue 9 §4): with `up --shards` the web VIPs are in shard blue, served by fwd1
    /// (`--shard blue`), the DNS VIPs in green, served by fwd2: the router learns each VIP only
    /// from its shard's forwarder, and each forwarder announces only its shard's VIPs.
    @Test(.enabled(if: liveBGPRouterMissing("bird") == nil, Comment(rawValue: liveBGPRouterMissing("bird") ?? "")))
    func theRouterLearnsEachVIPOnlyFromItsShardsForwarders() throws {
        try withLab("bs", router: "bird", forwarders: 2, extra: ["--shards"]) { lab in
            for (vip, hops) in [
                ("198.19.0.10", ["198.18.1.11"]), ("2001:db8:100::10", ["2001:db8:1::11"]),
                ("198.19.0.11", ["198.18.1.12"]), ("2001:db8:100::11", ["2001:db8:1::12"]),
            ] {
                let r = try Self.route(lab, vip)
                #expect(r.hops == hops && r.proto == "bird", "route to \(vip):\n\(r.text)")
            }
            for (k, vips) in [(1, ["198.19.0.10", "2001:db8:100::10"]), (2, ["198.19.0.11", "2001:db8:100::11"])] {
                let bgp = try lab.status(k)?["bgp"] as? [String: Any]
                #expect((bgp?["vips"] as? [String])?.sorted() == vips.sorted(), "fwd\(k) announces: \(String(describing: bgp))")
            }
        }
    }

    /// One connection of `Tools/lab hold --out`.
    struct HeldConnection: Decodable {
        let port: Int?
        let requests: Int
        let backends: [String]
        let changes: Int
        let error: String?
        let error_at: Double?
    }

    @Test(.enabled(if: liveBGPRouterMissing("bird") == nil, Comment(rawValue: liveBGPRouterMissing("bird") ?? "")))
    func heldConnectionsKeepTheirBackendWhileForwardersLeaveAndJoin() throws {
        try withLab("bc", router: "bird", forwarders: 3) { lab in
            // 60 connections, a request on each every 100-200 ms, for 16 s (bounded by the lab).
            let hold = try lab.start("bash Tools/lab hold 60 16 --out \"$S/hold.json\" --capture \"$S/hold.pcap\"")
            var finished = false
            defer { if !finished { lab.finish(hold, quiet: true) } }
            usleep(3_000_000)
            let stop = try lab.lab(["forwarder-stop", "1"])
            #expect(stop.status == 0, "forwarder-stop 1 failed:\n\(stop.output)")
            usleep(1_000_000)
            let killedAt = Date().timeIntervalSince1970
            let kill = try lab.lab(["forwarder-kill", "2"])
            #expect(kill.status == 0, "forwarder-kill 2 failed:\n\(kill.output)")
            usleep(1_500_000)
            for k in [1, 2] {
                let start = try lab.lab(["forwarder-start", String(k)])
                #expect(start.status == 0, "forwarder-start \(k) failed:\n\(start.output)")
            }
            let result = lab.finish(hold)
            finished = true
            let output = result.output

            let data = try Data(contentsOf: URL(fileURLWithPath: lab.state + "/hold.json"))
            let connections = try JSONDecoder().decode([HeldConnection].self, from: data)
            #expect(connections.count == 60 && connections.allSatisfy { $0.port != nil && $0.requests > 0 }, "not every connection opened and answered:\n\(output)")
            let beforeKill = connections.filter { $0.error != nil && ($0.error_at ?? 0) < killedAt }
            let inKill = connections.filter { $0.error != nil && ($0.error_at ?? 0) >= killedAt }
            #expect(beforeKill.isEmpty, "connections broke before the kill (around the graceful stop):\n\(output)")
            print("connections lost after forwarder-kill 2: \(inKill.count) of \(connections.count)")
            #expect(connections.allSatisfy { $0.changes == 0 }, "a connection changed backend:\n\(output)")
            #expect(Set(connections.flatMap(\.backends)).count == 3, "not every backend held a connection:\n\(output)")
            // Spread over the forwarders: the router sent each of them packets of the hold.
            let spread = output.split(separator: "\n").first { $0.contains("packets the router sent to each forwarder") }
            let counts = spread.map { line in line.split(separator: " ").compactMap { Int($0) } } ?? []
            #expect(counts.count == 3 && counts.allSatisfy { $0 > 100 }, "the connections were not spread over the 3 forwarders:\n\(output)")
            // The replay with the forwarder events predicts every connection's backend (the
            // connections that broke in the kill window count too, up to their last answer).
            #expect(output.contains("the predicted backend is the one that answered on 60 of 60 connections"), "replay vs live:\n\(output)")
            #expect(output.contains("--forwarders 3 --event") && output.contains("s:forwarders=2") && output.contains("s:forwarders=1"), "forwarder events not replayed:\n\(output)")
        }
    }
}
