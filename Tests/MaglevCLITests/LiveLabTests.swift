import Foundation
import Testing

@testable import MaglevCLI

/// The whole product, live: `Tools/lab check` builds the namespace lab (client, router with an
/// ECMP route, 2 forwarders running `maglev forward`, 3 backends running `maglev decap` and
/// nginx), sends real HTTP over IPv4 and IPv6 through the forwarders, reloads a forwarder
/// config that adds a backend under 12 open keep-alive connections (each must keep its
/// backend), checks new connections reach the new backend, and tears everything down.
/// Runs as root with iproute2, nginx and curl (CI installs them); reported as skipped
/// otherwise, saying why.
///
/// The lab runs with this process's own namespace prefix and state dir (`labPrefix`,
/// `labState`), so it never touches a person's lab (default prefix mglab) or another test
/// process's. Every test that brings up the lab (this one, and the replays in
/// LiveReplayTests.swift, an extension of this suite) lives in this one `.serialized` suite:
/// they share that prefix, so they must never run at the same time.
@Suite(.serialized) struct LiveLabTests {
    /// The namespace prefix of this process's labs: `mglab-t<pid>l-client`, ... The `l` keeps
    /// them apart from DecapLiveTests' `mglab-t<pid>-be`; the lab's interface names do not
    /// depend on it.
    static let labPrefix = "mglab-t\(getpid())l"
    static let labState = "/tmp/mglab-test-\(getpid())"

    static func missingCapability(also extraTools: [String] = []) -> String? {
        if getuid() != 0 { return "not root (network namespaces need it)" }
        for tool in ["ip", "nginx", "curl", "bird"] + extraTools {
            let found = ["/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"].contains {
                FileManager.default.isExecutableFile(atPath: $0 + tool)
            }
            if !found { return "\(tool) is not installed" }
        }
        if !FileManager.default.fileExists(atPath: "/dev/net/tun") { return "/dev/net/tun is missing" }
        return nil
    }

    /// Why the lab cannot run here, or nil; tests that bring it up are reported as skipped with it.
    static let labMissing: String? = missingCapability().map { "live lab: \($0)" }
    /// The same for the tests that also record with tcpdump.
    static let labWithTcpdumpMissing: String? = missingCapability(also: ["tcpdump"]).map { "live lab: \($0)" }

    @Test(.enabled(if: labMissing == nil, Comment(rawValue: labMissing ?? "")))
    func httpThroughTheForwardersKeepsConnectionsAcrossAReload() throws {
        let (status, output) = try Self.lab(["check"])
        #expect(status == 0, "Tools/lab check failed:\n\(output)")
        #expect(output.contains("check: passed"))
        #expect(output.contains("12 of 12 connections kept their backend"))
        #expect(output.contains("60 answered, 0 failed"))
        #expect(output.contains("90 answered, 0 failed"))
    }

    /// Runs `Tools/lab ARGS...` with MAGLEV set to the built binary, and the namespace prefix
    /// and state directory of this process's own; returns its exit status and its output (also
    /// printed), through `LabSession` (which spawns with an empty signal mask: see there).
    static func lab(
        _ arguments: [String], prefix: String = labPrefix, state: String = labState
    ) throws -> (status: Int32, output: String) {
        try LabSession(prefix: prefix, state: state).lab(arguments)
    }
}
