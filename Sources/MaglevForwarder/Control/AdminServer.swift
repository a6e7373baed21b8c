import Logging
import MaglevControl
import NIOCore
import NIOHTTP1
import NIOPosix
public import ServiceLifecycle

/// Where the admin API listens.
public struct AdminAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    /// Parses `PORT`, `HOST:PORT` or `[IPv6]:PORT` (a bare port means 127.0.0.1).
    public init?(_ text: String) {
        if let p = Int(text) {
            host = "127.0.0.1"
            port = p
        } else if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":"), let p = Int(rest.dropFirst()) else { return nil }
            port = p
        } else if let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") {
            host = String(text[..<colon])
            guard let p = Int(text[text.index(after: colon)...]) else { return nil }
            port = p
        } else {
            return nil
        }
        guard (1...65535).contains(port), !host.isEmpty else { return nil }
    }

    /// 127.0.0.0/8, ::1 or localhost.
    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// The admin HTTP server (swift-nio): `AdminAPI` over HTTP/1.1, one request per connection.
/// Bound before the service group starts, so a busy port is a start-up error, not a log line.
public final class AdminServer: Service, Sendable {
    let channel: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>
    let control: ControlPlane
    let logger: Logger
    public let address: AdminAddress
    /// Requests larger than this (head or body) get 413.
    static let maxBody = 64 * 1024

    static func bind(
        _ address: AdminAddress, control: ControlPlane, group: any EventLoopGroup, logger: Logger
    ) async throws(ForwarderError) -> AdminServer {
        do {
            let channel = try await ServerBootstrap(group: group)
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .bind(host: address.host, port: address.port) { child in
                    child.eventLoop.makeCompletedFuture {
                        try child.pipeline.syncOperations.configureHTTPServerPipeline()
                        return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(
                            wrappingChannelSynchronously: child)
                    }
                }
            return AdminServer(channel: channel, control: control, logger: logger, address: address)
        } catch {
            throw ForwarderError("cannot serve the admin API on \(address): \(error)")
        }
    }

    init(
        channel: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>,
        control: ControlPlane, logger: Logger, address: AdminAddress
    ) {
        self.channel = channel
        self.control = control
        self.logger = logger
        self.address = address
    }

    public func run() async throws {
        logger.info("admin API listening", metadata: ["address": .string(address.description)])
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await channel.executeThenClose { inbound in
                    for try await connection in inbound {
                        group.addTask { await self.serve(connection) }
                    }
                }
            }
        } onGracefulShutdown: {
            self.channel.channel.close(promise: nil)
        }
    }

    func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
        do {
            try await connection.executeThenClose { inbound, outbound in
                var head: HTTPRequestHead?
                var bodyBytes = 0
                for try await part in inbound {
                    switch part {
                    case .head(let h):
                        head = h
                        bodyBytes = 0
                    case .body(let b):
                        bodyBytes += b.readableBytes
                    case .end:
                        guard let h = head else { continue }
                        let response: AdminAPI.Response
                        if bodyBytes > Self.maxBody {
                            response = .error(413, "request body over \(Self.maxBody) bytes")
                        } else {
                            response = await AdminAPI.handle(method: h.method.rawValue, target: h.uri, control: control)
                        }
                        if response.status >= 400 {
                            logger.info(
                                "admin request refused",
                                metadata: [
                                    "method": .string(h.method.rawValue), "target": .string(h.uri),
                                    "status": .stringConvertible(response.status),
                                ])
                        }
                        var headers = HTTPHeaders()
                        headers.add(name: "Content-Type", value: response.contentType)
                        headers.add(name: "Content-Length", value: "\(response.body.utf8.count)")
                        headers.add(name: "Connection", value: "close")
                        if let allow = response.allow { headers.add(name: "Allow", value: allow) }
                        try await outbound.write(
                            .head(HTTPResponseHead(version: h.version, status: .init(statusCode: response.status), headers: headers)))
                        if h.method != .HEAD { try await outbound.write(.body(.byteBuffer(ByteBuffer(string: response.body)))) }
                        try await outbound.write(.end(nil))
                        return
                    }
                }
            }
        } catch {
            logger.debug("admin connection ended", metadata: ["error": .string("\(error)")])
        }
    }
}
