import Foundation
import MaglevLinux
import Synchronization

/// Two network namespaces joined by a veth pair, made for one test and torn down after it:
///
///     netns "fwd" (the forwarder)                 netns "cli" (client, backends' router)
///     veth fwdIf 198.18.0.1/24, 2001:db8::1/64 <-> veth cliIf 198.18.0.2/24, 2001:db8::2/64
///     route 198.18.1.0/24, 2001:db8:1::/64         route 198.18.100.0/24, 2001:db8:100::/64
///        via the client (backends)                    via the forwarder (VIPs)
///
/// The client sends to a VIP; the frame reaches the forwarder's veth; the forwarder sends
/// GRE to a backend address, which its namespace routes back out of the same veth to the
/// client namespace, where the test captures it. Neighbours are static (no ARP/ND races).
/// Addresses only from 198.18.0.0/15 and 2001:db8::/32. Nothing touches the root namespace.
final class NetworkLab: @unchecked Sendable {
    // @unchecked: names are immutable; `created` is touched by the owning test thread only.
    let forwarderNamespace: String
    let clientNamespace: String
    let forwarderInterface: String
    let clientInterface: String
    private var created = false
    private let heartbeat: BusyHeartbeat

    static let forwarderMAC = "02:00:5e:12:00:01"
    static let clientMAC = "02:00:5e:12:00:02"

    /// Why live tests cannot run here, or nil when they can.
    static let unavailableReason: String? = {
        if let why = namespacesUnavailableReason { return why }
        if case .unavailable(_, let hint) = IORingProbe.check() { return "io_uring unavailable: \(hint)" }
        return nil
    }()

    /// Why tests that need only root and network namespaces (not io_uring) cannot run here.
    static let namespacesUnavailableReason: String? = {
        if getuid() != 0 { return "live forwarding tests need root (network namespaces, raw sockets)" }
        guard let ip = ipPath else { return "iproute2 `ip` not found" }
        let probe = run([ip, "netns", "list"])
        if probe.status != 0 { return "`ip netns` does not work here: \(probe.output)" }
        return nil
    }()

    static let ipPath: String? = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    nonisolated(unsafe) private static var counter = 0
    private static let counterLock = NSLock()

    /// `namespacePrefix` starts both namespace names (`PREFIX-fwd-TAG`, `PREFIX-cli-TAG`); tests
    /// that follow the lab's convention pass `mglab-t<pid>`, which `Tools/lab` never touches.
    /// `queues`: receive and transmit queues of each veth end (veth's default otherwise).
    init(namespacePrefix: String = "mglv", queues: Int? = nil) throws {
        NetworkLab.counterLock.lock()
        NetworkLab.counter += 1
        let n = NetworkLab.counter
        NetworkLab.counterLock.unlock()
        let tag = "\(getpid() % 100_000)x\(n)"
        forwarderNamespace = "\(namespacePrefix)-fwd-\(tag)"
        clientNamespace = "\(namespacePrefix)-cli-\(tag)"
        forwarderInterface = "mf\(tag)"
        clientInterface = "mc\(tag)"
        heartbeat = try BusyHeartbeat()
        do {
            try setUp(queues: queues)
        } catch {
            tearDown()
            throw error
        }
    }

    deinit { tearDown() }

    var forwarderNamespacePath: String { "/run/netns/\(forwarderNamespace)" }
    var clientNamespacePath: String { "/run/netns/\(clientNamespace)" }

    private func setUp(queues: Int?) throws {
        let f = forwarderNamespace
        let c = clientNamespace
        try ip("netns", "add", f)
        created = true
        try ip("netns", "add", c)
        let q = queues.map { ["numtxqueues", "\($0)", "numrxqueues", "\($0)"] } ?? []
        try ip(
            ["-n", f, "link", "add", forwarderInterface, "address", NetworkLab.forwarderMAC] + q + ["type", "veth", "peer",
            "name", clientInterface, "address", NetworkLab.clientMAC] + q + ["netns", c])
        for (ns, dev, v4, v6) in [
            (f, forwarderInterface, "198.18.0.1/24", "2001:db8::1/64"),
            (c, clientInterface, "198.18.0.2/24", "2001:db8::2/64"),
        ] {
            try ip("-n", ns, "link", "set", "lo", "up")
            try ip("-n", ns, "addr", "add", v4, "dev", dev)
            try ip("-n", ns, "-6", "addr", "add", v6, "dev", dev, "nodad")
            try ip("-n", ns, "link", "set", dev, "up")
        }
        try ip("-n", f, "neigh", "replace", "198.18.0.2", "lladdr", NetworkLab.clientMAC, "dev", forwarderInterface, "nud", "permanent")
        try ip("-n", f, "-6", "neigh", "replace", "2001:db8::2", "lladdr", NetworkLab.clientMAC, "dev", forwarderInterface, "nud", "permanent")
        try ip("-n", c, "neigh", "replace", "198.18.0.1", "lladdr", NetworkLab.forwarderMAC, "dev", clientInterface, "nud", "permanent")
        try ip("-n", c, "-6", "neigh", "replace", "2001:db8::1", "lladdr", NetworkLab.forwarderMAC, "dev", clientInterface, "nud", "permanent")
        try ip("-n", f, "route", "add", "198.18.1.0/24", "via", "198.18.0.2", "dev", forwarderInterface)
        try ip("-n", f, "-6", "route", "add", "2001:db8:1::/64", "via", "2001:db8::2", "dev", forwarderInterface)
        try ip("-n", c, "route", "add", "198.18.100.0/24", "via", "198.18.0.1", "dev", clientInterface)
        try ip("-n", c, "-6", "route", "add", "2001:db8:100::/64", "via", "2001:db8::1", "dev", clientInterface)
    }

    func tearDown() {
        heartbeat.stop()
        guard created, let ip = NetworkLab.ipPath else { return }
        created = false
        // Deleting a namespace deletes its end of the veth, and so the pair.
        _ = NetworkLab.run([ip, "netns", "del", forwarderNamespace])
        _ = NetworkLab.run([ip, "netns", "del", clientNamespace])
    }

    struct CommandError: Error, CustomStringConvertible {
        var description: String
    }

    func ip(_ args: String...) throws { try ip(args) }

    func ip(_ args: [String]) throws {
        guard let ip = NetworkLab.ipPath else { throw CommandError(description: "no ip") }
        let r = NetworkLab.run([ip] + args)
        if r.status != 0 { throw CommandError(description: "ip \(args.joined(separator: " ")): \(r.output)") }
    }

    @discardableResult
    static func run(_ argv: [String]) -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        do { try p.run() } catch { return (-1, "\(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Runs `body` on a fresh thread inside the client namespace and returns its result.
    func inClientNamespace<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        let path = clientNamespacePath
        let box = ResultBox<T>()
        let thread = try OSThread {
            do {
                try ThreadContext.enterNetworkNamespace(path: path)
                box.set(.success(try body()))
            } catch {
                box.set(.failure(error))
            }
        }
        thread.join()
        return try box.get()
    }
}

/// Keeps the process visibly busy to the core's allocation test while a live test runs.
///
/// That test counts mallocs process-wide and measures only after the process has been quiet
/// for 50 ms. A live test allocates in spaced bursts (namespace set-up, captures, statistics
/// every 200 ms) that can fall inside its measured window. One tiny allocation every 5 ms
/// means "not quiet" until the live test ends, so the allocation test simply waits for it.
final class BusyHeartbeat: Sendable {
    private let flag = StopFlag()
    private let stopped = StopFlag()
    private let thread: OSThread

    init() throws {
        let flag = self.flag
        thread = try OSThread {
            while !flag.isSet {
                let p = UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 16)
                p.storeBytes(of: 1, as: UInt8.self)
                p.deallocate()
                ThreadContext.sleep(milliseconds: 5)
            }
        }
    }

    func stop() {
        if stopped.testAndSet() { return }
        flag.set()
        thread.join()
    }
}

final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
    /// Sets the flag; returns whether it was already set.
    func testAndSet() -> Bool { value.exchange(true, ordering: .relaxed) }
}

final class ResultBox<T: Sendable>: @unchecked Sendable {
    private var value: Result<T, any Error>?
    private let lock = NSLock()
    func set(_ v: Result<T, any Error>) {
        lock.lock()
        value = v
        lock.unlock()
    }
    func get() throws -> T {
        lock.lock()
        defer { lock.unlock() }
        return try value!.get()
    }
}
