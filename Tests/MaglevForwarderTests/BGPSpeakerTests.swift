import Foundation
import Logging
import MaglevConfig
import MaglevControl
import MaglevCore
import NIOPosix
import ServiceLifecycle
import Testing

@testable import MaglevForwarder

/// The BGP speaker service over real TCP on loopback, against a scripted peer (no root, no
/// workers): it connects, opens, announces the usable VIPs, answers a malformed message with a
/// NOTIFICATION and closes (never crashes), reconnects, and withdraws everything on a graceful
/// stop before its Cease.
@Suite(.serialized) struct BGPSpeakerTests {
    static func yaml(port: UInt16) -> String {
        """
        encap: { source_ipv4: 198.18.0.2 }
        table_size: 251
        bgp:
          local_as: 65001
          router_id: 198.18.0.2
          peers: [{ address: 127.0.0.1, remote_as: 65000, port: \(port), hold_time: 3 }]
        vips:
          - { name: web, address: 198.19.0.10, protocol: tcp, port: 80, backends: [{ name: a, address: 198.18.1.1 }] }
          - { name: all, address: 0.0.0.0/0, backends: [{ name: b, address: 198.18.1.2 }] }

        """
    }

    @Test func opensAnnouncesSurvivesGarbageAndWithdrawsOnStop() async throws {
        let peer = try ScriptedPeer()
        defer { peer.close() }
        let file = try MaglevConfigFile.parse(yaml: Self.yaml(port: peer.port), path: "t.yaml")
        let forwarder = try Forwarder(config: file.dataplane, configPath: nil, options: ForwarderOptions(interface: "lo"))
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let control = ControlPlane(forwarder: forwarder, file: file, configPath: nil, allowDisruptiveReload: false, logger: logger)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var speaker = BGPSpeakerService(config: file.bgp!, control: control, group: group, logger: logger, drainSeconds: 0)
        // Other suites' blocking calls can hold this process's concurrency threads for many
        // seconds: a connect timer must not fire between the connect and its event.
        speaker.connectTimeoutMs = 600_000
        let serviceGroup = ServiceGroup(
            configuration: .init(services: [.init(service: speaker)], logger: logger))
        let running = Task { try await serviceGroup.run() }

        // 1. The speaker's OPEN; we answer with ours and a KEEPALIVE.
        var c1 = try #require(await blocking { peer.accept(timeoutSeconds: 120) }, "the speaker connects")
        let first = await c1.read(120)
        let open = try #require(first)
        guard case .open(let o) = open else {
            Issue.record("expected OPEN, got \(open)")
            return
        }
        #expect(o.myAS == 65001)
        #expect(o.fourOctetASCapability == 65001)
        #expect(o.holdTime == 3)
        // Hold time 0: no timers, so a test process whose threads are busy with other suites
        // cannot make the session expire between the script's steps (timeouts are generous
        // for the same reason: they only matter when something is wrong).
        let ours = BGPOpen(
            myAS: 65000, holdTime: 0, routerID: 0x7F00_0001,
            capabilities: [.multiprotocol(afi: BGP.afiIPv4, safi: BGP.safiUnicast), .fourOctetAS(65000)])
        c1.send(BGPMessage.open(ours).encode())
        c1.send(BGPMessage.keepalive.encode())

        // 2. Established: the usable single-address VIP is announced (not the /0 catch-all).
        var announced: [BGPPrefix] = []
        while announced.isEmpty, let m = await c1.read(120) {
            if case .update(let u) = m { announced = u.announcedPrefixes }
        }
        #expect(announced.map(\.description) == ["198.19.0.10/32"])

        // 3. A malformed message (bad marker): a NOTIFICATION 1/1, then the connection closes.
        c1.send([UInt8](repeating: 0xAB, count: 16) + [0, 19, 4])
        var notification: BGPNotification?
        while let m = await c1.read(120) {
            if case .notification(let n) = m {
                notification = n
                break
            }
        }
        #expect(notification?.code == BGPNotification.messageHeaderError)
        #expect(notification?.subcode == 1)
        let after = await c1.read(120)
        #expect(after == nil, "closed after the NOTIFICATION")
        c1.close()

        // 4. It reconnects (backoff ~1 s) and announces again on the new session.
        c1 = try #require(await blocking { peer.accept(timeoutSeconds: 120) }, "the speaker reconnects")
        _ = await c1.read(120)  // OPEN
        c1.send(BGPMessage.open(ours).encode())
        c1.send(BGPMessage.keepalive.encode())
        announced = []
        while announced.isEmpty, let m = await c1.read(120) {
            if case .update(let u) = m { announced = u.announcedPrefixes }
        }
        #expect(announced.map(\.description) == ["198.19.0.10/32"])

        // 5. Graceful stop: a withdrawal of the route, then a Cease.
        await serviceGroup.triggerGracefulShutdown()
        var withdrawn: [BGPPrefix] = []
        var cease: BGPNotification?
        while let m = await c1.read(120) {
            if case .update(let u) = m { withdrawn += u.withdrawnPrefixes }
            if case .notification(let n) = m {
                cease = n
                break
            }
        }
        #expect(withdrawn.map(\.description) == ["198.19.0.10/32"])
        #expect(cease?.code == BGPNotification.cease)
        try await running.value
        try await group.shutdownGracefully()
        let status = await control.bgpPeers["127.0.0.1"]
        #expect(status?.established == false)
        #expect((status?.updatesSent ?? 0) >= 3)
    }
}

/// A reload's bgp section is applied live: a peer added is connected, a peer removed gets a
/// Cease and leaves `/status`, the peer that stays keeps its session.
@Suite(.serialized) struct BGPReconfigurationTests {
    static func yaml(peers: [(String, UInt16)]) -> String {
        let list = peers.map { "{ address: \($0.0), remote_as: 65000, port: \($0.1), hold_time: 3 }" }.joined(separator: ", ")
        return """
            encap: { source_ipv4: 198.18.0.2 }
            table_size: 251
            bgp:
              local_as: 65001
              router_id: 198.18.0.2
              peers: [\(list)]
            vips:
              - { name: web, address: 198.19.0.10, protocol: tcp, port: 80, backends: [{ name: a, address: 198.18.1.1 }] }

            """
    }

    /// Reads the speaker's OPEN on `c`, answers (hold time 0: no timers), and waits for its
    /// first UPDATE; true when all came.
    static func establish(_ c: ScriptedPeer.Connection) async -> Bool {
        guard case .open = await c.read(120) else { return false }
        let ours = BGPOpen(
            myAS: 65000, holdTime: 0, routerID: 0x7F00_0001,
            capabilities: [.multiprotocol(afi: BGP.afiIPv4, safi: BGP.safiUnicast), .fourOctetAS(65000)])
        c.send(BGPMessage.open(ours).encode())
        c.send(BGPMessage.keepalive.encode())
        while let m = await c.read(120) {
            if case .update = m { return true }
        }
        return false
    }

    @Test func peersAddedAndRemovedByAReloadAreAppliedLive() async throws {
        let a = try ScriptedPeer(address: "127.0.0.1")
        let b = try ScriptedPeer(address: "127.0.0.2")
        defer {
            a.close()
            b.close()
        }
        let path = NSTemporaryDirectory() + "maglev-bgp-reload-\(getpid()).yaml"
        defer { unlink(path) }
        try Self.yaml(peers: [("127.0.0.1", a.port)]).write(toFile: path, atomically: true, encoding: .utf8)
        let file = try MaglevConfigFile.load(path: path)
        let forwarder = try Forwarder(config: file.dataplane, configPath: path, options: ForwarderOptions(interface: "lo"))
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let control = ControlPlane(forwarder: forwarder, file: file, configPath: path, allowDisruptiveReload: false, logger: logger)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var speaker = BGPSpeakerService(config: file.bgp!, control: control, group: group, logger: logger, drainSeconds: 0)
        speaker.connectTimeoutMs = 600_000
        let serviceGroup = ServiceGroup(configuration: .init(services: [.init(service: speaker)], logger: logger))
        let running = Task { try await serviceGroup.run() }

        let ca = try #require(await blocking { a.accept(timeoutSeconds: 120) }, "the speaker connects to peer a")
        #expect(await Self.establish(ca))

        // Peer b added: connected, while a's session stays.
        try Self.yaml(peers: [("127.0.0.1", a.port), ("127.0.0.2", b.port)]).write(toFile: path, atomically: true, encoding: .utf8)
        let added = await control.reload()
        guard case .applied(let notices) = added else {
            Issue.record("reload: \(added)")
            return
        }
        #expect(notices.contains { $0.contains("the bgp section changed: applied live") }, "\(notices)")
        let cb = try #require(await blocking { b.accept(timeoutSeconds: 120) }, "the speaker connects to the new peer b")
        #expect(await Self.establish(cb))

        // Peer a removed: its session ends with a Cease; b's goes on.
        try Self.yaml(peers: [("127.0.0.2", b.port)]).write(toFile: path, atomically: true, encoding: .utf8)
        #expect(await control.reload().label == "applied")
        var cease: BGPNotification?
        while let m = await ca.read(120) {
            if case .notification(let n) = m {
                cease = n
                break
            }
        }
        #expect(cease?.code == BGPNotification.cease)
        var gone = false
        for _ in 0..<100 where !gone {
            gone = await control.bgpPeers["127.0.0.1"] == nil
            if !gone { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(gone, "the removed peer left /status")
        #expect(await control.bgpPeers["127.0.0.2"]?.established == true)

        await serviceGroup.triggerGracefulShutdown()
        var bCease: BGPNotification?
        while let m = await cb.read(120) {
            if case .notification(let n) = m {
                bCease = n
                break
            }
        }
        #expect(bCease?.code == BGPNotification.cease)
        try await running.value
        try await group.shutdownGracefully()
        ca.close()
        cb.close()
    }
}

/// Runs a blocking call on a thread of its own: the speaker under test needs the Swift
/// concurrency threads (two on a 2-CPU machine, shared with every test running beside this one).
func blocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}

struct Failure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A TCP listener on 127.0.0.1 (ephemeral port) whose connections the test reads and writes
/// by hand, with timeouts (plain sockets: the peer's side must not share the speaker's code).
final class ScriptedPeer: @unchecked Sendable {
    let fd: Int32
    let port: UInt16

    init(address: String = "127.0.0.1") throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr(address)
        addr.sin_port = 0
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 4) == 0 else { throw Failure("cannot listen: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.port = UInt16(bigEndian: addr.sin_port)
    }

    func accept(timeoutSeconds: Int32) -> Connection? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, timeoutSeconds * 1000) == 1 else { return nil }
        let c = Glibc.accept(fd, nil, nil)
        return c >= 0 ? Connection(fd: c) : nil
    }

    func close() { _ = Glibc.close(fd) }

    /// A connection; its framer is behind a lock so reads can run on another thread.
    final class Connection: @unchecked Sendable {
        let fd: Int32
        var framer = BGPFramer()

        init(fd: Int32) { self.fd = fd }

        func send(_ bytes: [UInt8]) {
            _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }

        /// `readMessage` on a thread of its own.
        func read(_ timeoutSeconds: Int32) async -> BGPMessage? {
            await blocking { self.readMessage(timeoutSeconds: timeoutSeconds) }
        }

        /// The next message, or nil on close, error or timeout. One reader at a time.
        func readMessage(timeoutSeconds: Int32) -> BGPMessage? {
            let deadline = Date().addingTimeInterval(TimeInterval(timeoutSeconds))
            while true {
                if let next = framer.next() {
                    if case .success(let m) = next { return m }
                    return nil
                }
                let left = Int32(max(0, deadline.timeIntervalSinceNow * 1000))
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard left > 0, poll(&p, 1, left) == 1 else { return nil }
                var buffer = [UInt8](repeating: 0, count: 4096)
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                guard n > 0 else { return nil }
                framer.append(buffer[0..<n])
            }
        }

        func close() { _ = Glibc.close(fd) }
    }
}

/// What BGP announces follows the workers: with a worker not running (here: never started),
/// the next control tick withdraws every route and says why; an operator's withdraw does the
/// same until `announce`.
@Suite struct AnnouncedVIPsTests {
    @Test func aWorkerNotRunningWithdrawsEverything() async throws {
        let file = try MaglevConfigFile.parse(yaml: BGPSpeakerTests.yaml(port: 179), path: "t.yaml")
        let forwarder = try Forwarder(config: file.dataplane, configPath: nil, options: ForwarderOptions(interface: "lo"))
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let control = ControlPlane(forwarder: forwarder, file: file, configPath: nil, allowDisruptiveReload: false, logger: logger)
        #expect(await control.announcedVIPs().map(\.description) == ["198.19.0.10"], "only the single-address VIP")
        await control.setWithdrawnByOperator(true)
        #expect(await control.announcedVIPs().isEmpty)
        #expect(await control.withdrawReason == "withdrawn by the operator")
        await control.setWithdrawnByOperator(false)
        #expect(await control.announcedVIPs().count == 1)
        await control.tick()  // the workers were never started: not running, not progressing
        #expect(await control.workersHealthy == false)
        #expect(await control.announcedVIPs().isEmpty)
        #expect(await control.withdrawReason == "workers not running or not making progress")
        await control.beginStop()
        #expect(await control.withdrawReason == "stopping")
    }
}
