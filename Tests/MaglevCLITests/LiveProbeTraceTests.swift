import Foundation
import Testing

/// The packet tracer, live: `Tools/lab probe-trace` brings up its own lab (2 forwarders behind
/// ECMP, 3 backends, IPv4 and IPv6), sends `maglev probe` TCP and UDP probes from the client to
/// every VIP with the collector in the client, and requires every probe to be answered, by the
/// backend `maglev replay` predicts for its 5-tuple; then tears the lab down (and the test runs
/// `Tools/lab down` again whatever happens). Its own namespace prefix and state dir
/// (`mglab-t<pid>p`), so it may run beside `LiveLabTests`. Root, iproute2, nginx and curl;
/// reported as skipped otherwise, saying why.
@Suite(.serialized) struct LiveProbeTraceTests {
    static let prefix = "mglab-t\(getpid())p"
    static let state = "/tmp/mglab-probe-test-\(getpid())"

    @Test(.enabled(if: LiveLabTests.labMissing == nil, Comment(rawValue: LiveLabTests.labMissing ?? "")))
    func probesAreAnsweredByTheBackendsReplayPredicts() throws {
        defer { _ = try? LiveLabTests.lab(["down"], prefix: Self.prefix, state: Self.state) }
        let (status, output) = try LiveLabTests.lab(
            ["probe-trace", "--count", "24", "--forwarders", "2"], prefix: Self.prefix, state: Self.state)
        #expect(status == 0, "Tools/lab probe-trace failed:\n\(output)")
        #expect(output.contains("probe-trace: ok"))
        // TCP and UDP over IPv4 and IPv6: 4 runs of 24 probes, each all answered and predicted.
        let predicted = output.components(separatedBy: "\n").filter { $0.contains("24 answered, 24 as replay predicts, 0 wrong") }
        #expect(predicted.count == 4, "\(output)")
        // Both forwarders answered (the router's ECMP spreads the 5-tuples); the lab names them
        // fwdK (`--name`, their forwarder-group names): "reports by forwarder: fwd1=N fwd2=M".
        let byForwarder = output.components(separatedBy: "\n").filter { $0.contains("as replay predicts") }
        #expect(byForwarder.count == 4 && byForwarder.allSatisfy { $0.contains(" fwd1=") && $0.contains(" fwd2=") }, "\(output)")
        #expect(!output.contains("MISMATCH") && !output.contains("UNANSWERED"))
    }
}
