import Foundation
import Testing

/// Live vs offline, flow by flow: `Tools/lab replay` brings the namespace lab up (2 forwarders
/// behind ECMP, 3 backends, IPv4 and IPv6), sends a generated trace's TCP packets (rewritten
/// onto the lab's VIPs) from the client through the live forwarders, records the GRE packets
/// every backend receives, replays the same packets offline with the forwarders' config, and
/// requires every flow to have reached exactly the backend the replay predicts; then tears the
/// lab down (the test runs `Tools/lab down` again whatever happens).
///
/// An extension of `LiveLabTests`, so that it runs in that `.serialized` suite: these tests use
/// that suite's namespace prefix (`LiveLabTests.labPrefix`) and state dir and must never
/// overlap. Needs what that test needs, plus tcpdump.
extension LiveLabTests {
    @Test(.enabled(if: labWithTcpdumpMissing == nil, Comment(rawValue: labWithTcpdumpMissing ?? "")))
    func replayThroughTheLabMatchesOfflineReplay() throws {
        let trace = "/tmp/mglab-replay-test-\(getpid()).pcap"
        defer {
            _ = try? Self.lab(["down"])
            try? FileManager.default.removeItem(atPath: trace)
        }
        // 300 TCP connections of 5 packets, a fifth over IPv6: 1500 packets, 0.3 s at 5000/s.
        let generated = try ConfigCommandTests.runBinary([
            "trace", "generate", "--flows", "300", "--packets", "1500", "--seed", "5", "--ipv6-share", "0.2",
            "--tcp-share", "1", "--uniform", "--out", trace,
        ])
        #expect(generated.status == 0, "trace generate failed: \(generated.stderr)")

        // 2000 packets per second: other live tests run in parallel; a slower send keeps the
        // backends' captures from dropping packets under that load.
        let (status, output) = try Self.lab(["replay", trace, "--forwarders", "2", "--pps", "2000"])
        #expect(status == 0, "Tools/lab replay failed:\n\(output)")
        #expect(output.contains("1500 packets read, 1500 written"))
        #expect(output.contains("1500 frames sent"))
        #expect(output.contains("matched 300 of 300 flows"), "not every flow reached its predicted backend:\n\(output)")
        #expect(!output.contains("MISMATCH"))
    }

    /// UDP and fragments, live: a generated trace of TCP connections and UDP flows (a tenth of
    /// the UDP datagrams in 2 or 3 fragments), a fifth over IPv6, through the lab's TCP and UDP
    /// VIPs; every flow must reach the backend `maglev replay` predicts. Then the same captures
    /// with two backends' swapped must fail the comparison, UDP flows among the mismatches: a
    /// flow on the wrong host is never counted as matched.
    @Test(.enabled(if: labWithTcpdumpMissing == nil, Comment(rawValue: labWithTcpdumpMissing ?? "")))
    func replayOfUDPFlowsThroughTheLabMatchesOfflineReplay() throws {
        let trace = "/tmp/mglab-replay-udp-test-\(getpid()).pcap"
        defer {
            _ = try? Self.lab(["down"])
            try? FileManager.default.removeItem(atPath: trace)
        }
        // 300 flows of 5 packets (fragments count as packets), 60% UDP: 1500 packets, 0.75 s.
        let generated = try ConfigCommandTests.runBinary([
            "trace", "generate", "--flows", "300", "--packets", "1500", "--seed", "6", "--ipv6-share", "0.2",
            "--tcp-share", "0.4", "--fragments", "0.1", "--uniform", "--out", trace,
        ])
        #expect(generated.status == 0, "trace generate failed: \(generated.stderr)")

        // The lab first, so that it is still up after the replay and its captures can be compared
        // again below.
        let (upStatus, upOutput) = try Self.lab(["up", "--backends", "3", "--forwarders", "2", "--ipv6"])
        try #require(upStatus == 0, "Tools/lab up failed:\n\(upOutput)")
        let (status, output) = try Self.lab(["replay", trace, "--pps", "2000"])
        #expect(status == 0, "Tools/lab replay failed:\n\(output)")
        #expect(output.contains("UDP 198.19.0.11:53"))
        #expect(output.contains("1500 packets read, 1500 written"))
        #expect(!output.contains("MISMATCH"))
        let matched = output.split(separator: "\n").compactMap { line -> (Int, Int)? in
            let words = line.split(separator: " ")
            guard words.count == 5, words[0] == "matched", words[2] == "of", words[4] == "flows",
                let m = Int(words[1]), let n = Int(words[3])
            else { return nil }
            return (m, n)
        }
        try #require(matched.count == 1, "no `matched M of N flows` line:\n\(output)")
        #expect(matched[0].0 == matched[0].1 && matched[0].1 >= 300, "not every flow reached its predicted backend")

        // The replay's prediction really covered UDP: forwarded UDP packets, fragments among them.
        let work = Self.labState + "/replay"
        let decisions = try String(contentsOfFile: work + "/decisions.csv", encoding: .utf8)
        let rows: [[Substring]] = decisions.split(separator: "\n").dropFirst().map {
            $0.split(separator: ",", omittingEmptySubsequences: false)
        }
        let udp = rows.filter { $0.count == 11 && $0[4] == "17" && $0[10] == "forward" }
        #expect(udp.count > 500, "only \(udp.count) UDP packets forwarded by the replay")
        #expect(udp.contains { $0[5] == "0" && $0[6] == "0" }, "no UDP fragment (3-tuple flow) in the replay")

        // be1 and be2 swap captures: their flows, UDP ones included, must not match.
        let hosts = [(1, 2), (2, 1), (3, 3)].flatMap { host, capture in
            ["--host", "be\(host)=backend-\(host),backend6-\(host):\(work)/be\(capture).pcap"]
        }
        let swapped = try ConfigCommandTests.runBinary(["trace", "compare", "--decisions", work + "/decisions.csv"] + hosts)
        #expect(swapped.status != 0, "swapped captures passed the comparison:\n\(swapped.stdout)")
        let mismatches = swapped.stdout.split(separator: "\n").filter { $0.hasPrefix("MISMATCH") }
        #expect(mismatches.contains { $0.contains(" proto 17: ") }, "no UDP flow among the mismatches:\n\(swapped.stdout)")
        #expect(!swapped.stdout.contains("matched \(matched[0].1) of \(matched[0].1) flows"))
    }
}
