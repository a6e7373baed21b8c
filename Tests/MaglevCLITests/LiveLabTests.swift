import Foundation
import Testing

/// The whole product, live: `Tools/lab check` builds the namespace lab (client, router with an
/// ECMP route, 2 forwarders running `maglev forward`, 3 backends running `maglev decap` and
/// nginx), sends real HTTP over IPv4 and IPv6 through the forwarders, reloads a forwarder
/// config that adds a backend under 12 open keep-alive connections (each must keep its
/// backend), checks new connections reach the new backend, and tears everything down.
/// Runs as root with iproute2, nginx, curl and ethtool (CI installs them); skips otherwise,
/// saying why. It takes over the lab's namespace names (mglab-client, ...) while it runs.
///
/// Every test that brings up the lab (this one, and `replayThroughTheLabMatchesOfflineReplay`
/// in LiveReplayTests.swift, an extension of this suite) lives in this one `.serialized` suite:
/// they share the lab's namespace names, so they must never run at the same time.
@Suite(.serialized) struct LiveLabTests {
    static func missingCapability(also extraTools: [String] = []) -> String? {
        if getuid() != 0 { return "not root (network namespaces need it)" }
        for tool in ["ip", "nginx", "curl", "ethtool"] + extraTools {
            let found = ["/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"].contains {
                FileManager.default.isExecutableFile(atPath: $0 + tool)
            }
            if !found { return "\(tool) is not installed" }
        }
        if !FileManager.default.fileExists(atPath: "/dev/net/tun") { return "/dev/net/tun is missing" }
        return nil
    }

    @Test func httpThroughTheForwardersKeepsConnectionsAcrossAReload() throws {
        if let reason = Self.missingCapability() {
            print("skipping the live lab check: \(reason)")
            return
        }
        let (status, output) = try Self.lab(["check"])
        #expect(status == 0, "Tools/lab check failed:\n\(output)")
        #expect(output.contains("check: passed"))
        #expect(output.contains("12 of 12 connections kept their backend"))
        #expect(output.contains("60 answered, 0 failed"))
        #expect(output.contains("90 answered, 0 failed"))
    }

    /// Runs `Tools/lab ARGS...` with MAGLEV set to the built binary and a state directory of
    /// this process's own; returns its exit status and its output (also printed).
    static func lab(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let binary = try TableCommandTests.binary()
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [repo.appendingPathComponent("Tools/lab").path] + arguments
        process.currentDirectoryURL = repo
        var environment = ProcessInfo.processInfo.environment
        environment["MAGLEV"] = binary.path
        environment["MGLAB_STATE"] = "/tmp/mglab-test-\(getpid())"
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        print(output)
        return (process.terminationStatus, output)
    }
}
