import Foundation

@testable import MaglevCLI

/// One namespace lab of a live test, with its own prefix (`mglab-t<pid><tag>`) and state dir
/// (`/tmp/mglab-test-<pid>-<tag>`): it never touches a person's lab (prefix mglab), another test
/// process's, or another test's of this process (each passes its own tag).
///
/// Commands run through `bash` in the repository with MAGLEV (the built binary), MGLAB_PREFIX
/// and MGLAB_STATE set, spawned with an empty signal mask and default signal actions: the test
/// runner's threads block most signals, a child inherits that mask across exec, and then nginx
/// and the forwarders could not be stopped with SIGTERM or reloaded with SIGHUP (as in
/// `LiveLabTests.lab`).
struct LabSession {
    let prefix: String
    let state: String

    init(tag: String) {
        prefix = "mglab-t\(getpid())\(tag)"
        state = "/tmp/mglab-test-\(getpid())-\(tag)"
    }

    init(prefix: String, state: String) {
        self.prefix = prefix
        self.state = state
    }

    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// `Tools/lab ARGS...`; its output is printed unless `quiet`.
    @discardableResult
    func lab(_ arguments: [String], quiet: Bool = false) throws -> (status: Int32, output: String) {
        try run(["/bin/bash", "-c", "cd \"$0\" && exec bash Tools/lab \"$@\"", Self.repo] + arguments, quiet: quiet)
    }

    /// `bash -c SCRIPT` in the repository, with $P the namespace prefix and $S the state dir
    /// (and MAGLEV, MGLAB_PREFIX, MGLAB_STATE exported); its output is printed unless `quiet`.
    @discardableResult
    func shell(_ script: String, quiet: Bool = true) throws -> (status: Int32, output: String) {
        try run(["/bin/bash", "-c", "cd \"$0\" && P=$MGLAB_PREFIX S=$MGLAB_STATE && " + script, Self.repo], quiet: quiet)
    }

    /// The body of `GET PATH` from forwarder k's admin API (127.0.0.1:9100 in its namespace), or
    /// nil without a 2xx answer within 2 s.
    func admin(_ k: Int, _ path: String) throws -> String? {
        let r = try shell("ip netns exec \"$P-fwd\(k)\" curl -sf --max-time 2 'http://127.0.0.1:9100\(path)'")
        return r.status == 0 ? r.output : nil
    }

    /// Forwarder k's `/status`, parsed; nil when it does not answer or is not a JSON object.
    func status(_ k: Int) throws -> [String: Any]? {
        guard let body = try admin(k, "/status") else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
    }

    /// The entries of `/status`'s `backends` list (every one, or those named `name`).
    static func backends(_ status: [String: Any]?, named name: String? = nil) -> [[String: Any]] {
        let all = status?["backends"] as? [[String: Any]] ?? []
        return name.map { n in all.filter { $0["name"] as? String == n } } ?? all
    }

    /// Whether forwarder k's `/status` lists backend `name` and every entry of it has
    /// health `health` (and state `state`, when given).
    func shows(_ k: Int, _ name: String, health: String, state: String? = nil) throws -> Bool {
        let entries = Self.backends(try status(k), named: name)
        return !entries.isEmpty
            && entries.allSatisfy { $0["health"] as? String == health && (state == nil || $0["state"] as? String == state) }
    }

    /// Whether forwarder k's `/status` shows backend `name` up after at least one successful
    /// probe of each of its checks (a backend starts out up, before its first probe).
    func probedUp(_ k: Int, _ name: String) throws -> Bool {
        let entries = Self.backends(try status(k), named: name)
        return !entries.isEmpty
            && entries.allSatisfy { e in
                e["health"] as? String == "up"
                    && (e["checks"] as? [[String: Any]] ?? []).allSatisfy { (($0["successes"] as? NSNumber)?.intValue ?? 0) >= 1 }
            }
    }

    /// A one-line summary of backend `name` in forwarder k's `/status`, for failure messages.
    func describe(_ k: Int, _ name: String) -> String {
        guard let status = try? status(k) else { return "fwd\(k): no /status" }
        let entries = Self.backends(status, named: name)
        if entries.isEmpty { return "fwd\(k): no backend \(name) in /status" }
        return "fwd\(k): " + entries.map { e in
            "\(name) health \(e["health"] ?? "-") state \(e["state"] ?? "-") connections \(e["connections"] ?? "-")"
        }.joined(separator: "; ")
    }

    /// Polls `condition` every 0.1 s for at most `seconds`; the seconds it took, or nil.
    static func waitUntil(seconds: Double, _ condition: () throws -> Bool) rethrows -> Double? {
        let start = Date()
        while true {
            if try condition() { return Date().timeIntervalSince(start) }
            if Date().timeIntervalSince(start) >= seconds { return nil }
            usleep(100_000)
        }
    }

    /// Answers per backend in `Tools/lab curl` output ("    backend-1   33" lines).
    static func answersPerBackend(_ output: String) -> [String: Int] {
        var counts: [String: Int] = [:]
        for line in output.split(separator: "\n") {
            let words = line.split(separator: " ")
            if words.count == 2, words[0].hasPrefix("backend"), let n = Int(words[1]) { counts[String(words[0])] = n }
        }
        return counts
    }

    /// A command running in the background (`start`); `finish` waits for it.
    struct Background {
        let pid: pid_t
        let outputPath: String
    }

    /// Starts `bash -c SCRIPT` as `shell` does, without waiting for it. The script must bound
    /// itself (a count and a time limit); `finish` collects it.
    func start(_ script: String) throws -> Background {
        let (pid, path) = try spawn(["/bin/bash", "-c", "cd \"$0\" && P=$MGLAB_PREFIX S=$MGLAB_STATE && " + script, Self.repo])
        return Background(pid: pid, outputPath: path)
    }

    /// Waits for a background command; its exit status and output (printed unless `quiet`).
    @discardableResult
    func finish(_ background: Background, quiet: Bool = false) -> (status: Int32, output: String) {
        collect(background.pid, background.outputPath, quiet: quiet)
    }

    private func run(_ argv: [String], quiet: Bool) throws -> (status: Int32, output: String) {
        let (pid, outputPath) = try spawn(argv)
        return collect(pid, outputPath, quiet: quiet)
    }

    private func collect(_ pid: pid_t, _ outputPath: String, quiet: Bool) -> (status: Int32, output: String) {
        defer { unlink(outputPath) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        if !quiet { print(output) }
        let exited = status & 0x7F == 0
        return (exited ? (status >> 8) & 0xFF : 128 + (status & 0x7F), output)
    }

    private func spawn(_ argv: [String]) throws -> (pid_t, String) {
        let binary = try TableCommandTests.binary()
        var environment = ProcessInfo.processInfo.environment
        environment["MAGLEV"] = binary.path
        environment["MGLAB_PREFIX"] = prefix
        environment["MGLAB_STATE"] = state
        let envp = environment.map { "\($0.key)=\($0.value)" }
        let outputPath = "/tmp/mglab-test-\(getpid())-out-\(UUID().uuidString).txt"

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
        guard rc == 0 else {
            unlink(outputPath)
            throw CLIError("posix_spawn \(argv[0]) failed: errno \(rc)")
        }
        return (pid, outputPath)
    }
}
