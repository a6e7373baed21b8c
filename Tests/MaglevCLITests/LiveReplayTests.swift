import Foundation
import Testing

/// Live vs offline, flow by flow: `Tools/lab replay` brings the namespace lab up (2 forwarders
/// behind ECMP, 3 backends, IPv4 and IPv6), sends a generated trace's TCP packets (rewritten
/// onto the lab's VIPs) from the client through the live forwarders, records the GRE packets
/// every backend receives, replays the same packets offline with the forwarders' config, and
/// requires every flow to have reached exactly the backend the replay predicts; then tears the
/// lab down (the test runs `Tools/lab down` again whatever happens).
///
/// An extension of `LiveLabTests`, so that it runs in that `.serialized` suite: both tests use
/// the lab's namespace names and must never overlap. Needs what that test needs, plus tcpdump.
extension LiveLabTests {
    @Test func replayThroughTheLabMatchesOfflineReplay() throws {
        if let reason = Self.missingCapability(also: ["tcpdump"]) {
            print("skipping the live lab replay: \(reason)")
            return
        }
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
}
