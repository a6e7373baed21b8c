import NIOCore
import NIOHTTP1
import NIOPosix

/// The admin API's client (`maglev ctl`): one HTTP/1.1 request, the whole response.
public enum AdminClient {
    public struct Reply: Sendable {
        public var status: Int
        public var body: String
    }

    /// Sends `method target` to `address`; fails with a message saying what to check.
    public static func request(_ address: AdminAddress, method: String, target: String, timeoutSeconds: Int64 = 10)
        async throws(ForwarderError) -> Reply
    {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { group.shutdownGracefully { _ in } }
        do {
            let channel = try await ClientBootstrap(group: group)
                .connectTimeout(.seconds(3))
                .connect(host: address.host, port: address.port) { ch in
                    ch.eventLoop.makeCompletedFuture {
                        try ch.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: ch)
                    }
                }
            return try await withDeadlineResult(seconds: timeoutSeconds) {
                try await channel.executeThenClose { inbound, outbound in
                    var headers = HTTPHeaders()
                    headers.add(name: "Host", value: address.description)
                    headers.add(name: "User-Agent", value: "maglev-ctl")
                    headers.add(name: "Content-Length", value: "0")
                    try await outbound.write(
                        .head(HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: target, headers: headers)))
                    try await outbound.write(.end(nil))
                    var status = 0
                    var body = ByteBuffer()
                    for try await part in inbound {
                        switch part {
                        case .head(let h): status = Int(h.status.code)
                        case .body(var b): body.writeBuffer(&b)
                        case .end: return Reply(status: status, body: String(buffer: body))
                        }
                    }
                    throw ForwarderError("the admin API closed the connection before answering")
                }
            }
        } catch let e as ForwarderError {
            throw e
        } catch {
            throw ForwarderError(
                "cannot reach the admin API at \(address): \(error). Is `maglev forward --admin \(address)` running "
                    + "(in this network namespace: `ip netns exec NAME maglev ctl ...`)?")
        }
    }

    static func withDeadlineResult<T: Sendable>(seconds: Int64, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                throw ForwarderError("the admin API did not answer within \(seconds) s")
            }
            return value
        }
    }
}
