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
    /// printed).
    ///
    /// Spawned with an empty signal mask and default signal actions: the test runner's threads
    /// block most signals, a spawned child inherits that mask across exec, and then tcpdump,
    /// nginx and the forwarders could not be stopped with SIGTERM or reloaded with SIGHUP.
    static func lab(
        _ arguments: [String], prefix: String = labPrefix, state: String = labState
    ) throws -> (status: Int32, output: String) {
        let binary = try TableCommandTests.binary()
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        var environment = ProcessInfo.processInfo.environment
        environment["MAGLEV"] = binary.path
        environment["MGLAB_PREFIX"] = prefix
        environment["MGLAB_STATE"] = state
        let argv = ["/bin/bash", "-c", "cd \"$0\" && exec bash Tools/lab \"$@\"", repo.path] + arguments
        let envp = environment.map { "\($0.key)=\($0.value)" }
        let outputPath = "\(state)-output.txt"
        defer { unlink(outputPath) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)

        func cStrings(_ strings: [String]) -> [UnsafeMutablePointer<CChar>?] { strings.map { strdup($0) } + [nil] }
        let cArgv = cStrings(argv)
        let cEnv = cStrings(envp)
        defer {
            for p in cArgv { free(p) }
            for p in cEnv { free(p) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, &attributes, cArgv, cEnv)
        guard rc == 0 else { throw CLIError("posix_spawn \(argv[0]) failed: errno \(rc)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        print(output)
        let exited = status & 0x7F == 0
        return (exited ? (status >> 8) & 0xFF : 128 + (status & 0x7F), output)
    }
}
