import Foundation
import Logging
import MaglevConfig
import MaglevControl
import MaglevCore
import Testing

@testable import MaglevForwarder

/// The admin API's routes and helpers, without sockets or workers: a `Forwarder` built (not
/// started) from a config, and the `ControlPlane` over it.
@Suite struct AdminAPITests {
    static let yaml = """
        encap: { source_ipv4: 198.18.0.2 }
        table_size: 251
        pools:
          main:
            backends:
              - { name: a, address: 198.18.1.1 }
              - { name: "b 1", address: 198.18.1.2 }
            health_check: { type: http, path: /healthz, rise: 2, fall: 2 }
          backup: [{ name: c, address: 198.18.2.1 }]
        vips:
          - { name: web, address: 198.19.0.10, protocol: tcp, port: 80, pools: [main, backup] }

        """

    static func control(
        _ yaml: String = yaml, path: String? = nil, allowDisruptiveReload: Bool = false
    ) throws -> ControlPlane {
        let file = try MaglevConfigFile.parse(yaml: yaml, path: path ?? "t.yaml")
        let forwarder = try Forwarder(
            config: file.dataplane, configPath: path, options: ForwarderOptions(interface: "lo"))
        return ControlPlane(
            forwarder: forwarder, file: file, configPath: path, allowDisruptiveReload: allowDisruptiveReload,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    /// The `error` string of a JSON error body.
    func errorMessage(_ r: AdminAPI.Response) -> String? {
        let object = try? JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any]
        return object?["error"] as? String
    }

    func json(_ r: AdminAPI.Response) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any])
    }

    // MARK: Helpers

    @Test func splitSeparatesPathAndQuery() {
        func flat(_ target: String) -> String {
            let (path, query) = AdminAPI.split(target)
            return ([path] + query.map { "\($0.0)=\($0.1)" }).joined(separator: " ")
        }
        #expect(flat("/metrics") == "/metrics")
        #expect(flat("/a?") == "/a")
        #expect(flat("/a?x=1&y=2") == "/a x=1 y=2")
        #expect(flat("/a?x") == "/a x=")
        #expect(flat("/a?x=1=2") == "/a x=1=2")
        #expect(flat("/a?&&x=1&") == "/a x=1")
        #expect(flat("/a?t%69meout=%33%30s") == "/a timeout=30s")
        #expect(flat("/a?x=%zz") == "/a x=%zz")  // undecodable: kept as written
        #expect(flat("/a%2Fb?x=1") == "/a%2Fb x=1")  // the path is decoded per segment, later
    }

    @Test func percentDecoding() {
        #expect(AdminAPI.percentDecoded("abc") == "abc")
        #expect(AdminAPI.percentDecoded("") == "")
        #expect(AdminAPI.percentDecoded("a%20b") == "a b")
        #expect(AdminAPI.percentDecoded("%2F%2f") == "//")
        #expect(AdminAPI.percentDecoded("%C3%A9t%C3%A9") == "été")
        #expect(AdminAPI.percentDecoded("a+b") == "a+b")
        #expect(AdminAPI.percentDecoded("%") == nil)
        #expect(AdminAPI.percentDecoded("%4") == nil)
        #expect(AdminAPI.percentDecoded("%zz") == nil)
        #expect(AdminAPI.percentDecoded("%+1") == nil)
        #expect(AdminAPI.percentDecoded("%FF") == nil)  // not UTF-8
        #expect(AdminAPI.percentDecoded("%C3") == nil)
    }

    @Test(arguments: [
        ("30s", 30_000), ("500ms", 500), ("5m", 300_000), ("1h", 3_600_000), ("10", 10_000), ("1ms", 1),
    ] as [(String, UInt64)])
    func millisecondsParse(text: String, ms: UInt64) {
        #expect(AdminAPI.parseMilliseconds(text) == ms)
    }

    @Test(arguments: ["", "0", "0s", "0ms", "-5s", "1.5s", "s", "ms", "5 s", "5d", "abc", "1099511627776ms", "1073741824"])
    func millisecondsRefuse(text: String) {
        #expect(AdminAPI.parseMilliseconds(text) == nil)
    }

    @Test func emptyQueryPairsAreNotACrash() async throws {
        // Once a trap (kv[0] of an empty split).
        #expect(AdminAPI.split("/metrics?=").1.map { "\($0.0)=\($0.1)" } == ["="])
        #expect(AdminAPI.split("/a?x=1&=&=2").1.map { "\($0.0)=\($0.1)" } == ["x=1", "=", "=2"])
        let c = try Self.control()
        #expect(await AdminAPI.handle(method: "GET", target: "/metrics?=", control: c).status == 200)
        let drain = await AdminAPI.handle(method: "POST", target: "/backends/a/drain?timeout=1s&=", control: c)
        #expect(drain.status == 400)
        #expect(errorMessage(drain) == "unknown parameter '': drain takes timeout=DURATION")
    }

    // MARK: Routes

    @Test func healthz() async throws {
        let c = try Self.control()
        let r = await AdminAPI.handle(method: "GET", target: "/healthz", control: c)
        #expect(r == AdminAPI.Response(status: 200, contentType: "text/plain", body: "ok generation 1\n", allow: nil))
    }

    @Test func unknownEndpointsAre404ListingTheEndpoints() async throws {
        let c = try Self.control()
        for (method, target) in [
            ("GET", "/"), ("GET", "/nope"), ("GET", "/metrics/"), ("GET", "/status/x"), ("POST", "/backends/a"),
            ("POST", "/backends/a/drain/now"), ("GET", ""), ("GET", "metrics"),
        ] {
            let r = await AdminAPI.handle(method: method, target: target, control: c)
            #expect(r.status == 404, "\(method) \(target)")
            #expect(r.contentType == "application/json")
            let message = errorMessage(r)
            #expect(message?.hasPrefix("no such endpoint \(method) ") == true, "\(String(describing: message))")
            #expect(message?.contains("POST /backends/NAME/drain[?timeout=DURATION]") == true)
        }
    }

    @Test func wrongMethodsAre405WithAllow() async throws {
        let c = try Self.control()
        for (method, target, allow) in [
            ("POST", "/metrics", "GET"), ("DELETE", "/status", "GET"), ("GET", "/reload", "POST"),
            ("GET", "/backends/a/drain", "POST"), ("PUT", "/backends/a/undrain", "POST"),
            ("GET", "/backends/%zz/drain", "POST"),
        ] {
            let r = await AdminAPI.handle(method: method, target: target, control: c)
            #expect(r.status == 405, "\(method) \(target)")
            #expect(r.allow == allow, "\(method) \(target)")
            #expect(errorMessage(r)?.hasPrefix("use ") == true)
        }
        #expect(await AdminAPI.handle(method: "HEAD", target: "/metrics", control: c).status == 200)
    }

    @Test func badBackendRequestsAre400() async throws {
        let c = try Self.control()
        let cases: [(String, String)] = [
            ("/backends/%zz/drain", "bad backend name in /backends/%zz/drain"),
            ("/backends//drain", "bad backend name"),
            ("/backends/%FF/undrain", "bad backend name"),
            ("/backends/a/drain?timeout=soon", "timeout must be a duration such as 30s, 500ms or 5m, got 'soon'"),
            ("/backends/a/drain?timeout=0s", "got '0s'"),
            ("/backends/a/drain?timeout", "got ''"),
            ("/backends/a/drain?force=1", "unknown parameter 'force': drain takes timeout=DURATION"),
        ]
        for (target, message) in cases {
            let r = await AdminAPI.handle(method: "POST", target: target, control: c)
            #expect(r.status == 400, "\(target)")
            #expect(errorMessage(r)?.contains(message) == true, "\(target): \(r.body)")
        }
        #expect(await c.state.holds.isEmpty)
    }

    @Test func unknownActionsAndBackendsAre404() async throws {
        let c = try Self.control()
        let action = await AdminAPI.handle(method: "POST", target: "/backends/a/explode", control: c)
        #expect(action.status == 404)
        #expect(errorMessage(action) == "unknown action 'explode': use drain, undrain, fail, recover or weight")
        let name = await AdminAPI.handle(method: "POST", target: "/backends/zz/drain", control: c)
        #expect(name.status == 404)
        #expect(errorMessage(name) == "no backend named 'zz' (drain zz); known backends: a, b 1, c")
    }

    @Test func drainAndUndrain() async throws {
        let c = try Self.control()
        let g = await c.state.generation
        let r = await AdminAPI.handle(method: "POST", target: "/backends/b%201/drain?timeout=30s", control: c)
        #expect(r.status == 200)
        #expect(try json(r)["result"] as? String == "applied")
        #expect(try json(r)["edit"] as? String == "drain b 1 (timeout 30000 ms)")
        let hold = await c.state.holds["b 1"]
        guard case .draining(let since, let deadline)? = hold else {
            Issue.record("not draining: \(String(describing: hold))")
            return
        }
        #expect(deadline == since + 30_000)
        #expect(await c.state.generation == g + 1)
        // The workers' snapshot has it too.
        let running = await c.forwarder.snapshot.config.vips[0].backends.first { $0.name == "b 1" }
        #expect(running?.state == .draining)
        let undrain = await AdminAPI.handle(method: "POST", target: "/backends/b%201/undrain", control: c)
        #expect(undrain.status == 200)
        #expect(try json(undrain)["edit"] as? String == "undrain b 1")
        #expect(await c.state.holds.isEmpty)
        #expect(await c.forwarder.snapshot.config.vips[0].backends.first { $0.name == "b 1" }?.state == .active)
    }

    /// fail, recover and weight reach the running snapshot as the drain does; bad parameters are
    /// 400s that say what is expected.
    @Test func failRecoverAndWeight() async throws {
        let c = try Self.control()
        func running(_ name: String) async -> BackendConfig? {
            await c.forwarder.snapshot.config.vips[0].backends.first { $0.name == name }
        }
        let fail = await AdminAPI.handle(method: "POST", target: "/backends/a/fail", control: c)
        #expect(fail.status == 200)
        #expect(try json(fail)["edit"] as? String == "fail a")
        #expect(await running("a")?.state == .down)
        let recover = await AdminAPI.handle(method: "POST", target: "/backends/a/recover", control: c)
        #expect(recover.status == 200)
        #expect(await running("a")?.state == .active)

        let weight = await AdminAPI.handle(method: "POST", target: "/backends/b%201/weight?value=3", control: c)
        #expect(weight.status == 200)
        #expect(try json(weight)["edit"] as? String == "weight b 1=3")
        #expect(await running("b 1")?.weight == 3)

        for bad in ["/backends/a/weight", "/backends/a/weight?value=-1", "/backends/a/weight?value=x",
            "/backends/a/weight?w=2", "/backends/a/fail?now=1"] {
            let r = await AdminAPI.handle(method: "POST", target: bad, control: c)
            #expect(r.status == 400, "\(bad)")
        }
        let unknown = await AdminAPI.handle(method: "POST", target: "/backends/zz/fail", control: c)
        #expect(unknown.status == 404)
    }

    @Test func statusAnswersWithoutWorkers() async throws {
        let c = try Self.control()
        let r = await AdminAPI.handle(method: "GET", target: "/status", control: c)
        #expect(r.status == 200 && r.contentType == "application/json")
        let status = try json(r)
        #expect(status["generation"] as? Int == 1)
        let vips = try #require(status["vips"] as? [[String: Any]])
        #expect(vips.count == 1)
        #expect(vips[0]["serving_pool"] as? String == "main")
        #expect(vips[0]["usable"] as? Bool == true && vips[0]["fail_open"] as? Bool == false)
        let pools = try #require(vips[0]["pools"] as? [[String: Any]])
        #expect(pools.map { $0["name"] as? String } == ["main", "backup"])
        #expect(pools[0]["check"] as? String == "http:80/healthz")
        let backends = try #require(status["backends"] as? [[String: Any]])
        #expect(backends.map { $0["name"] as? String } == ["a", "b 1", "c"])
        #expect(backends.map { $0["health"] as? String } == ["up", "up", "unchecked"])
        #expect(backends.map { $0["state"] as? String } == ["active", "active", "draining"])
        let reloads = try #require(status["reloads"] as? [String: Int])
        #expect(reloads == ["applied": 0, "rejected": 0, "refused": 0])
    }

    @Test func metricsAnswerWithoutWorkers() async throws {
        let c = try Self.control()
        try await c.apply(.drain("a"))
        let r = await AdminAPI.handle(method: "GET", target: "/metrics", control: c)
        #expect(r.status == 200)
        #expect(r.contentType == "text/plain; version=0.0.4; charset=utf-8")
        #expect(r.body.contains("maglev_config_generation 2\n"))
        #expect(r.body.contains("maglev_backend_up{vip=\"web\",pool=\"main\",backend=\"b 1\"} 1\n"))
        #expect(r.body.contains("maglev_backend_serving{vip=\"web\",backend=\"a\"} 0\n"))
        #expect(r.body.contains("maglev_health_checks_total{backend=\"a\",check=\"http:80/healthz\",result=\"failure\"} 0\n"))
        #expect(r.body.contains("maglev_worker_running{worker=\"0\"} 0\n"))
    }

    @Test(.enabled(if: promtoolInstalled, "promtool is not installed at /usr/bin/promtool (Debian: apt-get install prometheus)"))
    func metricsPassPromtool() async throws {
        let c = try Self.control()
        try await c.apply(.drain("a"))
        let r = await AdminAPI.handle(method: "GET", target: "/metrics", control: c)
        #expect(r.status == 200)
        let (status, output) = try promtoolCheck(r.body)
        #expect(status == 0, "\(output)\n\(r.body)")
    }

    // MARK: Reload

    @Test func reloadWithoutAFileIsRejected() async throws {
        let c = try Self.control()
        let r = await AdminAPI.handle(method: "POST", target: "/reload", control: c)
        #expect(r.status == 422)
        #expect(try json(r)["result"] as? String == "rejected")
        #expect(errorMessage(r) == "no config file to reload")
    }

    @Test func reloadAppliesRefusesAndRejects() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("maglev-admin-\(UUID().uuidString).yaml").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Self.yaml.write(toFile: path, atomically: true, encoding: .utf8)
        let c = try Self.control(path: path)
        try await c.apply(.drain("a"))

        let same = await AdminAPI.handle(method: "POST", target: "/reload", control: c)
        #expect(same.status == 200, "\(same.body)")
        #expect(try json(same)["result"] as? String == "applied")
        #expect((try json(same)["notices"] as? [String])?.isEmpty == true)
        #expect(await c.state.isDraining("a"))  // the operator's drain survives

        try ("hash_seed: 9\n" + Self.yaml).write(toFile: path, atomically: true, encoding: .utf8)
        let disruptive = await AdminAPI.handle(method: "POST", target: "/reload", control: c)
        #expect(disruptive.status == 409)
        #expect(try json(disruptive)["result"] as? String == "refused")
        #expect(errorMessage(disruptive)?.hasPrefix("hash_seed changes from 0 to 9: this would move almost every connection") == true)
        #expect(await c.state.file.dataplane.hashSeed == 0)

        try "vips: [".write(toFile: path, atomically: true, encoding: .utf8)
        let broken = await AdminAPI.handle(method: "POST", target: "/reload", control: c)
        #expect(broken.status == 422)
        #expect(errorMessage(broken)?.hasPrefix("\(path):\n\(path):") == true, "\(broken.body)")

        let moved = Self.yaml.replacing("198.18.2.1", with: "198.18.2.9")
        try moved.write(toFile: path, atomically: true, encoding: .utf8)
        let notice = await AdminAPI.handle(method: "POST", target: "/reload", control: c)
        #expect(notice.status == 200)
        #expect(try json(notice)["notices"] as? [String] == ["backend c moves from 198.18.2.1 to 198.18.2.9: its tracked connections follow it"])

        let status = try json(await AdminAPI.handle(method: "GET", target: "/status", control: c))
        #expect(status["reloads"] as? [String: Int] == ["applied": 2, "rejected": 1, "refused": 1])
        let metrics = await AdminAPI.handle(method: "GET", target: "/metrics", control: c).body
        #expect(metrics.contains("maglev_config_reloads_total{result=\"refused\"} 1\n"))
    }

    @Test func disruptiveReloadWhenAllowedSaysSo() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("maglev-admin-\(UUID().uuidString).yaml").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Self.yaml.write(toFile: path, atomically: true, encoding: .utf8)
        let c = try Self.control(path: path, allowDisruptiveReload: true)
        try ("table_size: 257\n" + Self.yaml.replacing("table_size: 251\n", with: "")).write(
            toFile: path, atomically: true, encoding: .utf8)
        let r = await AdminAPI.handle(method: "POST", target: "/reload", control: c)
        #expect(r.status == 200)
        #expect(
            try json(r)["notices"] as? [String]
                == ["disruptive change applied (--allow-disruptive-reload): table_size changes from 251 to 257"])
        #expect(await c.forwarder.snapshot.config.tableSize == 257)
    }

    // MARK: Health through the control plane

    @Test func healthVerdictsFailOverAndBack() async throws {
        let c = try Self.control()
        let targets = await c.healthTargets()
        #expect(targets.map(\.description) == ["http:80/healthz@198.18.1.1", "http:80/healthz@198.18.1.2"])
        for t in targets {
            await c.record(t, success: false, error: "refused")
            await c.record(t, success: false, error: "refused")
        }
        // Both of main down (fall 2): backup serves.
        #expect(await c.state.vips[0].serving == "backup")
        #expect(await c.forwarder.snapshot.config.vips[0].backends.map(\.name) == ["c", "a", "b 1"])
        for _ in 0..<2 { await c.record(targets[0], success: true, error: nil) }
        #expect(await c.state.vips[0].serving == "main")
        // A target that is no longer probed is ignored.
        let stranger = HealthTarget(address: IPAddress("198.18.9.9")!, check: targets[0].check)
        await c.record(stranger, success: false, error: nil)
        #expect(await c.state.healthDown.count == 1)
    }

    @Test func recoverThenFailingChecksTakeTheBackendDownAgain() async throws {
        let c = try Self.control()
        let a = await c.healthTargets()[0]
        for _ in 0..<2 { await c.record(a, success: false, error: "refused") }
        #expect(await c.state.healthDown == [a])
        try await c.apply(.recover("a"))
        #expect(await c.state.healthDown.isEmpty)
        // The checks still fail: after `fall` more failures the backend must be down again.
        await c.record(a, success: false, error: "refused")
        #expect(await c.state.healthDown.isEmpty)  // one failure is not `fall` (2)
        await c.record(a, success: false, error: "refused")
        // (Once a bug: recover cleared the state but left the dampener "down", so failures were no news.)
        #expect(await c.state.healthDown == [a])
    }

    @Test func metricSeriesAreUniqueWhenTwoPoolsProbeOneBackendThroughDifferentVIPs() async throws {
        // One backend in two pools with the same gre-http check, used by two VIPs: two probe
        // targets (each probes its own VIP address) whose check summaries are equal.
        let yaml = """
            encap: { source_ipv4: 198.18.0.2 }
            table_size: 251
            pools:
              one:
                backends: [{ name: a, address: 198.18.1.1 }]
                health_check: { type: gre-http }
              two:
                backends: [{ name: a, address: 198.18.1.1 }]
                health_check: { type: gre-http }
            vips:
              - { name: v, address: 198.19.0.10, protocol: tcp, port: 80, pool: one }
              - { name: w, address: 198.19.0.11, protocol: tcp, port: 80, pool: two }

            """
        let c = try Self.control(yaml)
        #expect(await c.healthTargets().count == 2)
        let body = await AdminAPI.handle(method: "GET", target: "/metrics", control: c).body
        let series = body.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { $0.split(separator: " ").dropLast().joined(separator: " ") }
        var seen = Set<String>()
        let duplicates = series.filter { !seen.insert($0).inserted }
        #expect(duplicates.isEmpty, "\(duplicates)")
    }
}

/// Whether promtool is there for the lint tests (which are reported as skipped without it).
let promtoolInstalled = FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool")

/// Runs `promtool check metrics` on `text`; returns its exit status and output.
func promtoolCheck(_ text: String) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/promtool")
    process.arguments = ["check", "metrics"]
    let input = Pipe()
    let output = Pipe()
    process.standardInput = input
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let writer = Thread {
        input.fileHandleForWriting.write(Data(text.utf8))
        try? input.fileHandleForWriting.close()
    }
    writer.start()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
