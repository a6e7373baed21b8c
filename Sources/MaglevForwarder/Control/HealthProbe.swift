import MaglevConfig
import MaglevControl
import MaglevCore
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// Why a probe failed, in words for logs and `/status`.
struct ProbeFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// One probe of one target, over swift-nio. Never touches a packet buffer or a worker.
struct HealthProbe: Sendable {
    let group: any EventLoopGroup
    /// For gre- checks: the tunnel the probe's packets leave through (none: gre- checks fail
    /// with the reason the tunnel could not open).
    let tunnels: GREProbeTunnelHolder

    /// Runs the probe; returns nil on success, else why it failed.
    func run(_ target: HealthTarget) async -> String? {
        let check = target.check
        let timeout = TimeAmount.milliseconds(Int64(check.timeoutMs))
        do {
            try await withDeadline(milliseconds: Int(check.timeoutMs)) {
                switch check.type {
                case .tcp: try await tcp(target, timeout: timeout, http: false)
                case .http: try await tcp(target, timeout: timeout, http: true)
                case .greTCP: try await gre(target, timeout: timeout, http: false)
                case .greHTTP: try await gre(target, timeout: timeout, http: true)
                case .udpDNS: try await dns(target)
                }
            }
            return nil
        } catch let e as ProbeFailure {
            return e.description
        } catch let e as ChannelError {
            return e == .connectTimeout(timeout) ? "connect timed out" : "\(e)"
        } catch let e as IOError {
            return Self.describe(e)
        } catch {
            return "\(error)"
        }
    }

    /// "connection refused (errno 111)" rather than NIO's "connection reset (error set): ...".
    static func describe(_ e: IOError) -> String {
        let text = String(cString: strerror(e.errnoCode)).lowercased()
        return "\(text) (errno \(e.errnoCode))"
    }

    func socketAddress(_ a: IPAddress, _ port: UInt16) throws -> SocketAddress {
        try SocketAddress(ipAddress: a.description, port: Int(port))
    }

    func tcp(_ target: HealthTarget, timeout: TimeAmount, http: Bool) async throws {
        let address = try socketAddress(target.address, target.check.port)
        let channel = try await ClientBootstrap(group: group).connectTimeout(timeout).connect(to: address).get()
        defer { channel.close(promise: nil) }
        if http { try await httpExchange(channel, host: target.address, check: target.check) }
    }

    /// A TCP (and HTTP) probe to the VIP address, marked so that its packets take the probe
    /// tunnel, which wraps them in GRE to the backend.
    func gre(_ target: HealthTarget, timeout: TimeAmount, http: Bool) async throws {
        let (open, problem) = tunnels.current
        guard let tunnel = open else { throw ProbeFailure("GRE probes unavailable: \(problem ?? "no probe tunnel yet")") }
        let v6 = target.address.isIPv6
        guard let vip = v6 ? target.check.vipIPv6 : target.check.vipIPv4 else {
            throw ProbeFailure("no IPv\(v6 ? 6 : 4) VIP to probe through GRE")
        }
        guard let source = tunnel.source(ipv6: v6) else { throw ProbeFailure("no IPv\(v6 ? 6 : 4) encapsulation source") }
        // A local port whose 4-tuple is still held by an earlier connection (TIME_WAIT or
        // LAST-ACK, perhaps of an earlier process) fails with EADDRNOTAVAIL: try the next ones.
        var attempt = 0
        while true {
            attempt += 1
            let lease = try tunnel.lease(backend: target.address, ipv6: v6)
            defer { tunnel.release(lease) }
            let channel: any Channel
            do {
                channel = try await ClientBootstrap(group: group)
                    .connectTimeout(timeout)
                    .channelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                    .channelOption(
                        ChannelOptions.Types.SocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_MARK)),
                        value: Int(GREProbeTunnel.mark)
                    )
                    .bind(to: try socketAddress(source, lease.port))
                    .connect(to: try socketAddress(vip, target.check.port)).get()
            } catch let e as IOError where e.errnoCode == EADDRNOTAVAIL && attempt < 8 {
                continue
            } catch let e as IOError {
                throw ProbeFailure("\(Self.describe(e)) (GRE probe from \(source):\(lease.port) to \(vip):\(target.check.port))")
            } catch {
                throw ProbeFailure("\(error) (GRE probe from \(source):\(lease.port) to \(vip):\(target.check.port))")
            }
            defer { channel.close(promise: nil) }
            if http { try await httpExchange(channel, host: vip, check: target.check) }
            return
        }
    }

    /// Sends `GET path` and waits for the status line; the status must be in `expect`.
    func httpExchange(_ channel: any Channel, host: IPAddress, check: HealthCheckConfig) async throws {
        let status = try await channel.eventLoop.submit {
            let reader = StatusLineReader(eventLoop: channel.eventLoop)
            try channel.pipeline.syncOperations.addHandler(reader)
            return reader.status.futureResult
        }.get()
        let hostText = host.isIPv6 ? "[\(host)]" : host.description
        let request =
            "GET \(check.path) HTTP/1.1\r\nHost: \(hostText)\r\nUser-Agent: maglev-health-check\r\n"
            + "Accept: */*\r\nConnection: close\r\n\r\n"
        try await channel.writeAndFlush(ByteBuffer(string: request)).get()
        let code = try await status.get()
        guard check.expect.contains(code) else {
            throw ProbeFailure("HTTP status \(code), expected \(check.expect.lowerBound)-\(check.expect.upperBound)")
        }
    }

    /// A DNS query (type A, recursion desired) over UDP; any well-formed answer with our id counts.
    func dns(_ target: HealthTarget) async throws {
        let v6 = target.address.isIPv6
        let id = UInt16.random(in: 0...UInt16.max)
        let reader = DNSReplyReader(eventLoop: group.next(), id: id)
        let channel = try await DatagramBootstrap(group: group)
            .channelInitializer { ch in ch.pipeline.addHandler(reader) }
            .bind(host: v6 ? "::" : "0.0.0.0", port: 0).get()
        defer { channel.close(promise: nil) }
        var buffer = ByteBuffer()
        buffer.writeInteger(id)
        buffer.writeInteger(UInt16(0x0100))  // standard query, recursion desired
        buffer.writeInteger(UInt16(1))  // one question
        buffer.writeRepeatingByte(0, count: 6)
        for label in target.check.queryName.split(separator: ".") {
            buffer.writeInteger(UInt8(label.utf8.count))
            buffer.writeString(String(label))
        }
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt16(1))  // A
        buffer.writeInteger(UInt16(1))  // IN
        let envelope = AddressedEnvelope(remoteAddress: try socketAddress(target.address, target.check.port), data: buffer)
        try await channel.writeAndFlush(envelope).get()
        try await reader.answered.futureResult.get()
    }
}

/// Runs `body`, failing with "timed out" after `milliseconds`.
func withDeadline(milliseconds: Int, _ body: @escaping @Sendable () async throws -> Void) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .milliseconds(milliseconds))
            throw ProbeFailure("timed out after \(milliseconds) ms")
        }
        defer { group.cancelAll() }
        try await group.next()
    }
}

/// Reads an HTTP response's status line (`HTTP/1.x NNN ...`) and fulfils `status`.
/// Created and used on its channel's event loop only.
final class StatusLineReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let status: EventLoopPromise<Int>
    var buffered = ByteBuffer()

    init(eventLoop: any EventLoop) {
        status = eventLoop.makePromise()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        buffered.writeBuffer(&chunk)
        let view = buffered.readableBytesView
        guard let end = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if view.count > 8192 { status.fail(ProbeFailure("no HTTP status line in the first 8 KiB")) }
            return
        }
        let line = String(decoding: view[view.startIndex..<end], as: UTF8.self)
        let parts = line.split(separator: " ", maxSplits: 2)
        if parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let code = Int(parts[1]), (100...599).contains(code) {
            status.succeed(code)
        } else {
            status.fail(ProbeFailure("not an HTTP response: \(line.prefix(60))"))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        status.fail(ProbeFailure("connection closed before an HTTP status line"))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        status.fail(error)
        context.close(promise: nil)
    }
}

/// Waits for a DNS reply with our query id (any response code counts: the server answered).
final class DNSReplyReader: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let answered: EventLoopPromise<Void>
    let id: UInt16

    init(eventLoop: any EventLoop, id: UInt16) {
        answered = eventLoop.makePromise()
        self.id = id
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        var b = envelope.data
        guard b.readableBytes >= 12, let replyID = b.readInteger(as: UInt16.self), let flags = b.readInteger(as: UInt16.self)
        else { return }
        if replyID == id && flags & 0x8000 != 0 { answered.succeed(()) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        answered.fail(error)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        answered.fail(ProbeFailure("probe closed"))
    }
}
