import Foundation
import Testing

/// Why the live control tests cannot run here, or nil.
let liveControlMissing: String? = {
    if let reason = LiveLabTests.missingCapability(also: ["promtool"]) { return "live control tests: \(reason)" }
    guard let help = try? ConfigCommandTests.runBinary(["--help"]),
        help.stdout.split(separator: "\n").contains(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix("ctl ") })
    else { return "live control tests: maglev has no `ctl` command yet (registered in MaglevCommand.swift)" }
    return nil
}()

/// The control plane of `maglev forward`, live, in the namespace lab (`Tools/lab`): 2 forwarders
/// behind the router's ECMP route, 3 backends (`maglev decap` and nginx), pools with a gre-http
/// health check (every 500 ms, rise 2, fall 2; `MGLAB_CHECK` picks another type), each
/// forwarder's admin API on 127.0.0.1:9100 in its namespace (`Tools/lab forward`).
///
/// - `/metrics` passes `promtool check metrics`, `/status` is JSON with every backend up;
/// - a backend whose nginx stops is marked down by both forwarders within 3 s and gets no
///   request, and is up again within 3 s of its nginx starting and gets new connections;
/// - `maglev ctl drain` keeps new connections off a backend while a keep-alive connection on it
///   keeps working;
/// - a reload (POST /reload on one forwarder, SIGHUP on the other) keeps a down backend down.
///
/// Each test brings up a lab of its own (prefix `mglab-t<pid>c<letter>`, state
/// `/tmp/mglab-test-<pid>-c<letter>`: never a person's lab, nor LiveLabTests') and takes it down
/// whatever happens. Serialized: the health-check timings are asserted, and a 2-core CI
/// machine also runs the other live suites. Needs root, iproute2, nginx, curl, promtool
/// (`prometheus` package) and /dev/net/tun, and a maglev with the `ctl` command.
@Suite(.serialized, .enabled(if: liveControlMissing == nil, Comment(rawValue: liveControlMissing ?? "")))
struct LiveControlTests {

    /// Brings up a lab (3 backends, 2 forwarders, IPv6 when asked), starts the forwarders, waits
    /// until every backend is up in both, runs `body`, and takes the lab down whatever happens.
    func withLab(_ tag: String, ipv6: Bool = false, _ body: (LabSession) throws -> Void) throws {
        let lab = LabSession(tag: tag)
        let start = Date()
        defer {
            let body = Date()
            _ = try? lab.lab(["down"], quiet: true)
            print("\(lab.prefix): \(String(format: "%.1f", body.timeIntervalSince(start))) s up to the end of the test, lab down in \(String(format: "%.1f", Date().timeIntervalSince(body))) s")
        }
        let up = try lab.lab(["up", "--backends", "3", "--forwarders", "2"] + (ipv6 ? ["--ipv6"] : []), quiet: true)
        try #require(up.status == 0, "Tools/lab up failed:\n\(up.output)")
        let upSeconds = Date().timeIntervalSince(start)
        let forward = try lab.lab(["forward"])
        try #require(forward.status == 0, "Tools/lab forward failed:\n\(forward.output)")
        print("\(lab.prefix): lab up in \(String(format: "%.1f", upSeconds)) s, forwarders ready \(String(format: "%.1f", Date().timeIntervalSince(start) - upSeconds)) s later")
        let names = (1...3).map { "backend-\($0)" } + (ipv6 ? (1...3).map { "backend6-\($0)" } : [])
        let allUp = try LabSession.waitUntil(seconds: 5) {
            try [1, 2].allSatisfy { k in try names.allSatisfy { try lab.probedUp(k, $0) } }
        }
        try #require(allUp != nil, "not every backend up after 5 s: \(names.map { lab.describe(1, $0) + ", " + lab.describe(2, $0) })")
        try body(lab)
    }

    /// `Tools/lab curl N`: the exit status and the answers per backend.
    func requests(_ lab: LabSession, _ count: Int) throws -> (output: String, perBackend: [String: Int]) {
        let r = try lab.lab(["curl", String(count)])
        #expect(r.output.contains("\(count) requests to http://198.19.0.10/: \(count) answered, 0 failed"), "requests failed:\n\(r.output)")
        return (r.output, LabSession.answersPerBackend(r.output))
    }

    /// The samples of metric `name` in a Prometheus text exposition: (labels, value).
    static func samples(_ exposition: String, _ name: String) -> [(labels: String, value: Double)] {
        exposition.split(separator: "\n").compactMap { line in
            guard line.hasPrefix(name + "{") || line.hasPrefix(name + " "), let space = line.lastIndex(of: " "),
                let value = Double(line[line.index(after: space)...])
            else { return nil }
            return (String(line[line.index(line.startIndex, offsetBy: name.count)..<space]), value)
        }
    }

    @Test func metricsPassPromtoolAndStatusShowsEveryBackendUp() throws {
        try withLab("ca", ipv6: true) { lab in
            for k in [1, 2] {
                // promtool reads the exposition on stdin; exit 0 means no format or lint problem.
                let lint = try lab.shell(
                    "ip netns exec \"$P-fwd\(k)\" curl -sf --max-time 2 http://127.0.0.1:9100/metrics >\"$S/metrics\(k).txt\""
                        + " && promtool check metrics <\"$S/metrics\(k).txt\"")
                #expect(lint.status == 0, "fwd\(k): promtool check metrics failed (\(lint.status)):\n\(lint.output)")
                let metrics = try #require(try lab.admin(k, "/metrics"))
                let up = Self.samples(metrics, "maglev_backend_up")
                #expect(up.count >= 6, "fwd\(k): maglev_backend_up has \(up.count) samples")
                #expect(up.allSatisfy { $0.value == 1 }, "fwd\(k): a backend not up: \(up)")
                #expect(!Self.samples(metrics, "maglev_health_checks_total").isEmpty, "fwd\(k): no maglev_health_checks_total")

                let body = try #require(try lab.admin(k, "/status"), "fwd\(k): no /status")
                let json = try JSONSerialization.jsonObject(with: Data(body.utf8))
                let status = try #require(json as? [String: Any], "fwd\(k): /status is not a JSON object:\n\(body)")
                let backends = LabSession.backends(status)
                let names = Set(backends.compactMap { $0["name"] as? String })
                #expect(names == Set((1...3).flatMap { ["backend-\($0)", "backend6-\($0)"] }), "fwd\(k): backends \(names)")
                for b in backends {
                    #expect(b["health"] as? String == "up", "fwd\(k): \(b)")
                    #expect(b["state"] as? String == "active", "fwd\(k): \(b)")
                    #expect(b["address"] is String && b["connections"] is NSNumber, "fwd\(k): \(b)")
                }
                let vips = status["vips"] as? [[String: Any]] ?? []
                #expect(Set(vips.compactMap { $0["name"] as? String }) == ["web4", "dns4", "web6", "dns6"], "fwd\(k): vips \(vips)")
                #expect(vips.allSatisfy { $0["pools"] != nil }, "fwd\(k): a VIP without pools: \(vips)")
            }
            // The CLI client, through the lab's wrapper.
            let ctl = try lab.lab(["ctl", "1", "status"])
            #expect(ctl.status == 0, "maglev ctl status failed:\n\(ctl.output)")
            #expect(ctl.output.contains("backend-2"))
            let ctlMetrics = try lab.lab(["ctl", "2", "metrics"], quiet: true)
            #expect(ctlMetrics.status == 0 && ctlMetrics.output.contains("maglev_backend_up"), "maglev ctl metrics:\n\(ctlMetrics.output)")
        }
    }

    @Test func aBackendWhoseServiceStopsIsMarkedDownAndBackUp() throws {
        try withLab("cb", ipv6: true) { lab in
            let down = try lab.lab(["backend-down", "2"])
            try #require(down.status == 0, "Tools/lab backend-down 2 failed:\n\(down.output)")
            let names = ["backend-2", "backend6-2"]
            let seenDown = try LabSession.waitUntil(seconds: 3) {
                try [1, 2].allSatisfy { k in try names.allSatisfy { try lab.shows(k, $0, health: "down", state: "down") } }
            }
            #expect(seenDown != nil, "backend-2 not down in both forwarders within 3 s: \(names.flatMap { [lab.describe(1, $0), lab.describe(2, $0)] })")
            if let seconds = seenDown { print("backend-2 down in both forwarders after \(String(format: "%.2f", seconds)) s") }
            #expect(try lab.shows(1, "backend-1", health: "up") && lab.shows(2, "backend-3", health: "up"))

            let without = try requests(lab, 200)
            #expect(without.perBackend["backend-2"] == nil, "backend-2 answered while down:\n\(without.output)")
            #expect(without.perBackend["backend-1"] != nil && without.perBackend["backend-3"] != nil)

            let up = try lab.lab(["backend-up", "2"])
            try #require(up.status == 0, "Tools/lab backend-up 2 failed:\n\(up.output)")
            let seenUp = try LabSession.waitUntil(seconds: 3) {
                try [1, 2].allSatisfy { k in try names.allSatisfy { try lab.shows(k, $0, health: "up", state: "active") } }
            }
            #expect(seenUp != nil, "backend-2 not up in both forwarders within 3 s: \(names.flatMap { [lab.describe(1, $0), lab.describe(2, $0)] })")
            if let seconds = seenUp { print("backend-2 up in both forwarders after \(String(format: "%.2f", seconds)) s") }
            let with = try requests(lab, 100)
            #expect((with.perBackend["backend-2"] ?? 0) > 0, "backend-2 got no new connection after it came back:\n\(with.output)")
        }
    }

    /// One HTTP/1.1 request per call on an open keep-alive connection (bash's /dev/tcp), as in
    /// `Tools/lab check`: prints the body's first line.
    static let httpOnFD = #"""
        http_on_fd() {
            local fd=$1 line length=0
            printf 'GET / HTTP/1.1\r\nHost: vip\r\nConnection: keep-alive\r\n\r\n' >&"$fd"
            while IFS= read -r -t 3 -u "$fd" line; do
                line=${line%$'\r'}
                [[ -z $line ]] && break
                [[ ${line,,} == content-length:* ]] && length=${line#*: }
            done
            ((length > 0)) || return 1
            IFS= read -r -t 3 -N "$length" -u "$fd" line || return 1
            printf '%s\n' "${line%$'\n'}"
        }
        """#

    @Test func drainKeepsNewConnectionsOffWhileAnOpenOneKeepsWorking() throws {
        try withLab("cc") { lab in
            // A keep-alive connection on backend-1: connections until one lands there (each does
            // with probability 1/3; at most 40), one request, then three more once drained.
            let script = lab.state + "/keepalive.sh"
            try (Self.httpOnFD + "\n" + #"""
                for c in $(seq 40); do
                    exec {fd}<>/dev/tcp/198.19.0.10/80 || exit 2
                    http_on_fd $fd >"$MGLAB_STATE/first.txt" || exit 3
                    [[ $(<"$MGLAB_STATE/first.txt") == backend-1 ]] && break
                    exec {fd}>&-
                done
                [[ $(<"$MGLAB_STATE/first.txt") == backend-1 ]] || { echo "no connection landed on backend-1 in 40"; exit 4; }
                cp "$MGLAB_STATE/first.txt" "$MGLAB_STATE/keepalive.txt"
                for i in $(seq 250); do [[ -e $MGLAB_STATE/drained ]] && break; sleep 0.1; done
                [[ -e $MGLAB_STATE/drained ]] || { echo "never told the drain was done"; exit 5; }
                for r in 1 2 3; do http_on_fd $fd >>"$MGLAB_STATE/keepalive.txt" || exit 6; done
                """#).write(toFile: script, atomically: true, encoding: .utf8)
            let client = try lab.start("timeout 40 ip netns exec \"$P-client\" bash \"$S/keepalive.sh\"")
            var finished = false
            defer {
                if !finished {
                    _ = try? lab.shell("touch \"$S/drained\"")
                    lab.finish(client, quiet: true)
                }
            }
            let open = LabSession.waitUntil(seconds: 15) { FileManager.default.fileExists(atPath: lab.state + "/keepalive.txt") }
            try #require(open != nil, "no keep-alive connection on backend-1")

            for k in [1, 2] {
                let drain = try lab.lab(["ctl", String(k), "drain", "backend-1"])
                #expect(drain.status == 0, "fwd\(k): maglev ctl drain backend-1 failed:\n\(drain.output)")
            }
            for k in [1, 2] {
                #expect(try lab.shows(k, "backend-1", health: "up", state: "draining"), "\(lab.describe(k, "backend-1"))")
            }
            let tracked = try [1, 2].reduce(0) { sum, k in
                sum + LabSession.backends(try lab.status(k), named: "backend-1").reduce(0) { $0 + (($1["connections"] as? NSNumber)?.intValue ?? 0) }
            }
            #expect(tracked >= 1, "the open connection to backend-1 is not among its connections while draining")

            let during = try requests(lab, 100)
            #expect(during.perBackend["backend-1"] == nil, "a new connection reached draining backend-1:\n\(during.output)")

            _ = try lab.shell("touch \"$S/drained\"")
            let result = lab.finish(client)
            finished = true
            #expect(result.status == 0, "the keep-alive connection failed after the drain (exit \(result.status)):\n\(result.output)")
            let answers = (try? String(contentsOfFile: lab.state + "/keepalive.txt", encoding: .utf8)) ?? ""
            #expect(answers == "backend-1\nbackend-1\nbackend-1\nbackend-1\n", "answers on the kept connection: \(answers)")

            for k in [1, 2] {
                let undrain = try lab.lab(["ctl", String(k), "undrain", "backend-1"])
                #expect(undrain.status == 0, "fwd\(k): maglev ctl undrain backend-1 failed:\n\(undrain.output)")
                #expect(try lab.shows(k, "backend-1", health: "up", state: "active"), "\(lab.describe(k, "backend-1"))")
            }
            let after = try requests(lab, 60)
            #expect((after.perBackend["backend-1"] ?? 0) > 0, "backend-1 got no new connection after undrain:\n\(after.output)")

            // fail / recover / weight through `maglev ctl` on both forwarders.
            func state(_ k: Int) throws -> [String] {
                LabSession.backends(try lab.status(k), named: "backend-1").map { $0["state"] as? String ?? "?" }
            }
            for k in [1, 2] {
                let fail = try lab.lab(["ctl", String(k), "fail", "backend-1"])
                #expect(fail.status == 0, "fwd\(k): maglev ctl fail backend-1 failed:\n\(fail.output)")
                let states = try state(k)
                #expect(states.allSatisfy { $0 == "down" }, "fwd\(k): \(states)")
            }
            let failed = try requests(lab, 60)
            #expect(failed.perBackend["backend-1"] == nil, "a connection reached failed backend-1:\n\(failed.output)")
            for k in [1, 2] {
                let recover = try lab.lab(["ctl", String(k), "recover", "backend-1"])
                #expect(recover.status == 0, "fwd\(k): maglev ctl recover backend-1 failed:\n\(recover.output)")
                let states = try state(k)
                #expect(states.allSatisfy { $0 == "active" } && !states.isEmpty, "fwd\(k): \(states)")
                let weight = try lab.lab(["ctl", String(k), "weight", "backend-1", "--value", "2"])
                #expect(weight.status == 0, "fwd\(k): maglev ctl weight failed:\n\(weight.output)")
                #expect(weight.output.contains("weight backend-1=2"), "\(weight.output)")
            }
            let recovered = try requests(lab, 60)
            #expect((recovered.perBackend["backend-1"] ?? 0) > 0, "backend-1 got no new connection after recover:\n\(recovered.output)")
        }
    }

    @Test func aReloadKeepsADownBackendDown() throws {
        try withLab("cd") { lab in
            try #require(try lab.lab(["backend-down", "2"]).status == 0)
            let seenDown = try LabSession.waitUntil(seconds: 3) { try [1, 2].allSatisfy { try lab.shows($0, "backend-2", health: "down") } }
            try #require(seenDown != nil, "backend-2 not down within 3 s: \(lab.describe(1, "backend-2")), \(lab.describe(2, "backend-2"))")

            // A real change (backend-3's weight), so that the pool is rebuilt: fwd1 reloads
            // through its admin API (maglev ctl reload), fwd2 on SIGHUP.
            let edit = try lab.shell(
                #"sed -i 's/{name: backend-3, address: 198.18.1.103}/{name: backend-3, address: 198.18.1.103, weight: 2}/' "$S/fwd1.yaml" "$S/fwd2.yaml" && grep -c 'weight: 2' "$S/fwd1.yaml" "$S/fwd2.yaml""#)
            try #require(edit.status == 0, "config edit failed: \(edit.output)")
            let reload = try lab.lab(["ctl", "1", "reload"])
            #expect(reload.status == 0, "maglev ctl reload failed:\n\(reload.output)")
            let hup = try lab.shell("kill -HUP \"$(cat \"$S/fwd2-forward.pid\")\"")
            #expect(hup.status == 0, "SIGHUP to fwd2 failed: \(hup.output)")
            let applied = try LabSession.waitUntil(seconds: 3) {
                try [1, 2].allSatisfy { k in
                    Self.samples(try lab.admin(k, "/metrics") ?? "", "maglev_config_reloads_total")
                        .contains { $0.labels.contains("result=\"applied\"") && $0.value >= 1 }
                }
            }
            #expect(applied != nil, "maglev_config_reloads_total{result=\"applied\"} not 1 in both forwarders within 3 s")

            // Down at every look for 1.5 s (3 check intervals) after the reload, never
            // unchecked or up in between.
            var looks: [String] = []
            let start = Date()
            while Date().timeIntervalSince(start) < 1.5 {
                for k in [1, 2] where try !lab.shows(k, "backend-2", health: "down") { looks.append(lab.describe(k, "backend-2")) }
                usleep(100_000)
            }
            #expect(looks.isEmpty, "backend-2 not down after the reload: \(looks)")
            let after = try requests(lab, 100)
            #expect(after.perBackend["backend-2"] == nil, "backend-2 answered after the reload:\n\(after.output)")
        }
    }
}
