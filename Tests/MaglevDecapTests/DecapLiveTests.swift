import Foundation
import MaglevCore
import MaglevForwarder
import MaglevLinux
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `maglev decap` for real, as root, in two network namespaces joined by a veth:
///
///     mglab-t<pid>-fw  eth0 198.18.5.1/24 2001:db8:5::1/64  (sends GRE through raw sockets)
///     mglab-t<pid>-be  eth0 198.18.5.2/24 2001:db8:5::2/64, VIPs 198.19.0.10 and
///                      2001:db8:100::10 on lo, TUN mgdecap, UDP listeners on VIP:5353
///
/// The decap loop runs in this process; its sockets and TUN device are created on a thread that
/// entered the backend namespace (a socket stays in the namespace it was created in).
@Suite(.serialized) struct DecapLiveTests {
    typealias B = DecapPacketBuilder
    static let vip4 = "198.19.0.10"
    static let vip6 = "2001:db8:100::10"
    static let client4 = "198.18.0.10"
    static let client6 = "2001:db8::10"

    @Test(.enabled(if: unavailableReason == nil, Comment(rawValue: unavailableReason ?? "")))
    func greFromAnotherNamespaceReachesAUDPListenerOnTheVIP() throws {
        let lab = try LiveNamespaces()
        defer { lab.tearDown() }

        // Backend side: listeners, TUN, raw GRE sockets, all inside the backend namespace.
        let listeners = try inNamespace(lab.backend) { () throws -> (Int32, Int32) in
            (try udpListener(address: Self.vip4, port: 5353), try udpListener(address: Self.vip6, port: 5353))
        }
        defer {
            close(listeners.0)
            close(listeners.1)
        }
        let stop = Atomic<Bool>(false)
        let result = Mutex<Result<DecapCounters, GREReceiveError>?>(nil)
        let ready = Atomic<Bool>(false)
        let setupError = Mutex<String?>(nil)
        let loopThread = Thread {
            do {
                try enterNamespace(lab.backend)
                let tun = try TunDevice(name: "mgdecap")
                try tun.setUp()
                let receiver = try GREReceiver(ipv4: true, ipv6: true, ipv6Required: true, batch: 8, bufferSize: 2048)
                var loop = DecapLoop(
                    tun: tun, receiver: receiver,
                    allowedSources: [IPAddress("198.18.5.1")!, IPAddress("2001:db8:5::1")!])
                ready.store(true, ordering: .releasing)
                let outcome: Result<DecapCounters, GREReceiveError>
                do throws(GREReceiveError) {
                    outcome = .success(try loop.run(duration: .seconds(20), pollMilliseconds: 50, shouldStop: { stop.load(ordering: .relaxed) }))
                } catch {
                    outcome = .failure(error)
                }
                result.withLock { $0 = outcome }
            } catch {
                setupError.withLock { $0 = "\(error)" }
                ready.store(true, ordering: .releasing)
            }
        }
        loopThread.start()
        while !ready.load(ordering: .acquiring) { usleep(1000) }
        if let e = setupError.withLock({ $0 }) {
            Issue.record("decap setup failed: \(e)")
            return
        }

        // Forwarder side: raw GRE sockets (the kernel writes the outer header) and one IP_HDRINCL
        // socket to forge an outer source that --only-from must refuse.
        let senders = try inNamespace(lab.forwarder) { () throws -> (Int32, Int32, Int32) in
            (try rawSocket(AF_INET, Int32(IPPROTO_GRE)), try rawSocket(AF_INET6, Int32(IPPROTO_GRE)),
             try rawSocket(AF_INET, Int32(IPPROTO_RAW)))
        }
        defer {
            close(senders.0)
            close(senders.1)
            close(senders.2)
        }
        let good4 = 5
        let good6 = 3
        for i in 0..<good4 {
            let inner = B.ipv4UDP(source: Self.client4, destination: Self.vip4, port: 5353, payload: Array("v4-\(i)".utf8))
            try send4(senders.0, B.gre(inner), to: "198.18.5.2")
        }
        for i in 0..<good6 {
            let inner = B.ipv6UDP(source: Self.client6, destination: Self.vip6, port: 5353, payload: Array("v6-\(i)".utf8))
            try send6(senders.1, B.gre(inner), to: "2001:db8:5::2")
        }
        // IPv4 inside IPv6: the inner family follows the GRE protocol, not the outer one.
        try send6(
            senders.1, B.gre(B.ipv4UDP(source: Self.client4, destination: Self.vip4, port: 5353, payload: Array("v4-in-v6".utf8))),
            to: "2001:db8:5::2")
        let inner = B.ipv4UDP(source: Self.client4, destination: Self.vip4, port: 5353, payload: Array("must-not-arrive".utf8))
        try send4(senders.0, B.gre(inner, flags: 0x0001), to: "198.18.5.2")  // GRE version 1
        try send4(senders.0, B.gre(inner, flags: 0x2000), to: "198.18.5.2")  // key present
        try send4(senders.0, B.gre(inner, protocol: 0x6558), to: "198.18.5.2")  // Ethernet
        let forged = B.ipv4Packet(source: "198.18.5.9", destination: "198.18.5.2", protocol: 47, payload: B.gre(inner))
        try send4(senders.2, forged, to: "198.18.5.2")

        let got4 = receiveAll(listeners.0, expected: good4 + 1)
        let got6 = receiveAll(listeners.1, expected: good6)
        // Let the loop see the invalid packets, which arrive no later than the valid ones.
        usleep(300_000)
        stop.store(true, ordering: .relaxed)
        while result.withLock({ $0 }) == nil { usleep(10_000) }
        let counters = try #require(try result.withLock { $0 }?.get())

        #expect(Set(got4) == Set((0..<good4).map { "v4-\($0)" } + ["v4-in-v6"]))
        #expect(Set(got6) == Set((0..<good6).map { "v6-\($0)" }))
        #expect(counters.deliveredIPv4 == UInt64(good4 + 1))
        #expect(counters.deliveredIPv6 == UInt64(good6))
        #expect(counters[.badGREVersion] == 1)
        #expect(counters[.unsupportedGREFlags] == 1)
        #expect(counters[.unsupportedProtocol] == 1)
        #expect(counters[.sourceNotAllowed] == 1)
        #expect(counters[.tunWriteFailed] == 0)
        #expect(counters.received == counters.deliveredIPv4 + counters.deliveredIPv6 + counters.dropped)
    }

    /// Why the live test cannot run here, or nil (the test is then reported as skipped with it).
    static let unavailableReason: String? = unavailable()

    static func unavailable() -> String? {
        if getuid() != 0 { return "not root (needs CAP_NET_ADMIN for namespaces and TUN)" }
        if access("/dev/net/tun", R_OK | W_OK) != 0 { return "/dev/net/tun is missing" }
        if run(["ip", "-V"], quiet: true) != 0 { return "iproute2 (ip) is not installed" }
        let probe = "mglab-probe-\(getpid())"
        if run(["ip", "netns", "add", probe], quiet: true) != 0 { return "cannot create network namespaces" }
        _ = run(["ip", "netns", "del", probe])
        return nil
    }
}

/// The two namespaces and the veth between them; `tearDown` deletes them (and with them the veth).
struct LiveNamespaces {
    let backend = "mglab-t\(getpid())-be"
    let forwarder = "mglab-t\(getpid())-fw"

    init() throws {
        tearDown()
        let be = backend
        let fw = forwarder
        let steps: [[String]] = [
            ["ip", "netns", "add", be],
            ["ip", "netns", "add", fw],
            ["ip", "-n", be, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", fw],
            ["ip", "-n", be, "link", "set", "lo", "up"],
            ["ip", "-n", fw, "link", "set", "lo", "up"],
            ["ip", "-n", be, "addr", "add", "198.18.5.2/24", "dev", "eth0"],
            ["ip", "-n", fw, "addr", "add", "198.18.5.1/24", "dev", "eth0"],
            ["ip", "-n", be, "addr", "add", "2001:db8:5::2/64", "dev", "eth0", "nodad"],
            ["ip", "-n", fw, "addr", "add", "2001:db8:5::1/64", "dev", "eth0", "nodad"],
            ["ip", "-n", be, "addr", "add", "198.19.0.10/32", "dev", "lo"],
            ["ip", "-n", be, "addr", "add", "2001:db8:100::10/128", "dev", "lo"],
            ["ip", "-n", be, "link", "set", "eth0", "up"],
            ["ip", "-n", fw, "link", "set", "eth0", "up"],
            ["ip", "-n", be, "route", "add", "default", "via", "198.18.5.1"],
            ["ip", "netns", "exec", be, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"],
            ["ip", "netns", "exec", be, "sysctl", "-qw", "net.ipv4.conf.default.rp_filter=0"],
        ]
        for step in steps where run(step) != 0 {
            tearDown()
            throw LiveTestError("failed: \(step.joined(separator: " "))")
        }
    }

    func tearDown() {
        _ = run(["ip", "netns", "del", backend], quiet: true)
        _ = run(["ip", "netns", "del", forwarder], quiet: true)
    }
}

struct LiveTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs a command, waiting for it; returns its exit status.
@discardableResult
func run(_ arguments: [String], quiet: Bool = false) -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = arguments
    if quiet {
        p.standardError = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
    }
    do { try p.run() } catch { return -1 }
    p.waitUntilExit()
    return p.terminationStatus
}

/// Moves the calling thread into the named network namespace.
func enterNamespace(_ name: String) throws {
    try TunNetworkNamespace.enter(named: name)
}

/// Runs `body` on a fresh thread inside the namespace and returns its result; the thread (and
/// its namespace) ends with it, descriptors created there keep their namespace.
func inNamespace<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) throws -> T {
    let box = Mutex<Result<T, LiveTestError>?>(nil)
    let done = Atomic<Bool>(false)
    let thread = Thread {
        do {
            try enterNamespace(name)
            let value = try body()
            box.withLock { $0 = .success(value) }
        } catch {
            box.withLock { $0 = .failure(LiveTestError("\(error)")) }
        }
        done.store(true, ordering: .releasing)
    }
    thread.start()
    while !done.load(ordering: .acquiring) { usleep(1000) }
    return try box.withLock { $0! }.get()
}

func rawSocket(_ family: Int32, _ proto: Int32) throws -> Int32 {
    let fd = socket(family, Int32(SOCK_RAW.rawValue), proto)
    guard fd >= 0 else { throw LiveTestError("socket(\(family), SOCK_RAW, \(proto)): errno \(errno)") }
    return fd
}

/// A UDP socket bound to address:port.
func udpListener(address: String, port: UInt16) throws -> Int32 {
    let isIPv6 = address.contains(":")
    let fd = socket(isIPv6 ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    guard fd >= 0 else { throw LiveTestError("socket: errno \(errno)") }
    let rc: Int32
    if isIPv6 {
        var sa = sockaddr_in6()
        sa.sin6_family = sa_family_t(AF_INET6)
        sa.sin6_port = port.bigEndian
        inet_pton(AF_INET6, address, &sa.sin6_addr)
        rc = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
    } else {
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = port.bigEndian
        inet_pton(AF_INET, address, &sa.sin_addr)
        rc = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    }
    guard rc == 0 else {
        let e = errno
        close(fd)
        throw LiveTestError("bind \(address):\(port): errno \(e)")
    }
    return fd
}

func send4(_ fd: Int32, _ bytes: [UInt8], to address: String) throws {
    var sa = sockaddr_in()
    sa.sin_family = sa_family_t(AF_INET)
    inet_pton(AF_INET, address, &sa.sin_addr)
    let n = bytes.withUnsafeBytes { b in
        withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    }
    guard n == bytes.count else { throw LiveTestError("sendto \(address): errno \(errno)") }
}

func send6(_ fd: Int32, _ bytes: [UInt8], to address: String) throws {
    var sa = sockaddr_in6()
    sa.sin6_family = sa_family_t(AF_INET6)
    inet_pton(AF_INET6, address, &sa.sin6_addr)
    let n = bytes.withUnsafeBytes { b in
        withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
    }
    guard n == bytes.count else { throw LiveTestError("sendto \(address): errno \(errno)") }
}

/// Payloads received until `expected` arrived or nothing came for 3 seconds.
func receiveAll(_ fd: Int32, expected: Int) -> [String] {
    var out: [String] = []
    var buffer = [UInt8](repeating: 0, count: 2048)
    while out.count < expected {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        if poll(&p, 1, 3000) <= 0 { break }
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        out.append(String(decoding: buffer[0..<n], as: UTF8.self))
    }
    return out
}
