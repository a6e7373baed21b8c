import MaglevControl
import MaglevCore

/// The admin API's routes, independent of the HTTP server (tested without sockets).
///
///     GET  /metrics                       Prometheus text exposition (0.0.4)
///     GET  /status                        JSON: VIPs, pools, backends, workers, generation
///     GET  /healthz                       "ok" while the control plane answers
///     POST /backends/NAME/drain[?timeout=30s]   keep NAME's connections, no new ones
///     POST /backends/NAME/undrain
///     POST /backends/NAME/fail            out of service now (its connections move), health aside
///     POST /backends/NAME/recover         end a fail (and forget its failed health checks)
///     POST /backends/NAME/weight?value=N  its share of new connections (0: none)
///     POST /reload                        re-read the config file
///     POST /bgp/withdraw, /bgp/announce   withdraw every VIP route by hand (maintenance), and back
///
/// Every error is a 4xx with a JSON body `{"error": "..."}` that says what was wrong.
public enum AdminAPI {
    public struct Response: Sendable, Equatable {
        public var status: Int
        public var contentType: String
        public var body: String
        public var allow: String?

        static func json(_ status: Int, _ value: JSONValue) -> Response {
            Response(status: status, contentType: "application/json", body: value.rendered(pretty: true) + "\n")
        }

        static func error(_ status: Int, _ message: String, allow: String? = nil) -> Response {
            var r = json(status, .object([("error", .string(message))]))
            r.allow = allow
            return r
        }
    }

    static let endpoints =
        "GET /metrics, GET /status, GET /healthz, POST /backends/NAME/drain[?timeout=DURATION], "
        + "POST /backends/NAME/undrain, POST /backends/NAME/fail, POST /backends/NAME/recover, "
        + "POST /backends/NAME/weight?value=N, POST /reload, POST /bgp/withdraw, POST /bgp/announce"

    /// Answers one request. `target` is the request target (path and query).
    public static func handle(method: String, target: String, control: ControlPlane) async -> Response {
        let (path, query) = split(target)
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        switch parts {
        case ["metrics"]:
            guard method == "GET" || method == "HEAD" else { return .error(405, "use GET /metrics", allow: "GET") }
            return Response(
                status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", body: await control.metrics())
        case ["status"]:
            guard method == "GET" || method == "HEAD" else { return .error(405, "use GET /status", allow: "GET") }
            return .json(200, await control.status())
        case ["healthz"]:
            // Answered by the control plane's actor: a wedged control plane does not say ok.
            let generation = await control.state.generation
            return Response(status: 200, contentType: "text/plain", body: "ok generation \(generation)\n")
        case ["bgp", "withdraw"], ["bgp", "announce"]:
            guard method == "POST" else { return .error(405, "use POST /bgp/\(parts[1])", allow: "POST") }
            guard await control.state.file.bgp != nil else {
                return .error(409, "this forwarder has no bgp section in its config: nothing to \(parts[1])")
            }
            await control.setWithdrawnByOperator(parts[1] == "withdraw")
            return .json(200, .object([("result", "applied"), ("bgp", await control.bgpStatus())]))
        case ["reload"]:
            guard method == "POST" else { return .error(405, "use POST /reload", allow: "POST") }
            switch await control.reload() {
            case .applied(let notices):
                return .json(
                    200,
                    .object([
                        ("result", "applied"), ("notices", .array(notices.map { .string($0) })),
                        ("generation", .uint(await control.state.generation)),
                    ]))
            case .rejected(let m):
                return .json(422, .object([("result", "rejected"), ("error", .string(m))]))
            case .refused(let m):
                return .json(409, .object([("result", "refused"), ("error", .string(m))]))
            }
        case _ where parts.count == 3 && parts[0] == "backends":
            guard method == "POST" else {
                return .error(405, "use POST /backends/NAME/\(parts[2])", allow: "POST")
            }
            guard let name = percentDecoded(parts[1]), !name.isEmpty else {
                return .error(400, "bad backend name in \(path): use /backends/NAME/drain with NAME percent-encoded")
            }
            let edit: BackendEdit
            switch parts[2] {
            case "drain":
                var timeout: UInt64?
                for (key, value) in query {
                    guard key == "timeout" else { return .error(400, "unknown parameter '\(key)': drain takes timeout=DURATION") }
                    guard let ms = parseMilliseconds(value) else {
                        return .error(400, "timeout must be a duration such as 30s, 500ms or 5m, got '\(value)'")
                    }
                    timeout = ms
                }
                edit = .drain(name, timeoutMs: timeout)
            case "undrain", "fail", "recover":
                if let (key, _) = query.first {
                    return .error(400, "unknown parameter '\(key)': \(parts[2]) takes none")
                }
                edit = parts[2] == "undrain" ? .undrain(name) : parts[2] == "fail" ? .fail(name) : .recover(name)
            case "weight":
                guard query.count == 1, query[0].0 == "value", let w = UInt32(query[0].1) else {
                    return .error(
                        400, "weight takes value=N, N an integer 0 .. 4294967295 (0: no new connections): "
                            + "POST /backends/\(parts[1])/weight?value=2")
                }
                edit = .weight(name, w)
            default:
                return .error(404, "unknown action '\(parts[2])': use drain, undrain, fail, recover or weight")
            }
            do {
                try await control.apply(edit)
            } catch {
                return .error(404, error.description)
            }
            return .json(200, .object([("result", "applied"), ("edit", .string(edit.description))]))
        default:
            return .error(404, "no such endpoint \(method) \(path); endpoints: \(endpoints)")
        }
    }

    static func split(_ target: String) -> (String, [(String, String)]) {
        guard let q = target.firstIndex(of: "?") else { return (target, []) }
        let query = target[target.index(after: q)...].split(separator: "&").map { pair -> (String, String) in
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let key = kv.first ?? ""
            return (percentDecoded(key) ?? key, kv.count > 1 ? percentDecoded(kv[1]) ?? kv[1] : "")
        }
        return (String(target[..<q]), query)
    }

    static func percentDecoded(_ s: String) -> String? {
        var bytes: [UInt8] = []
        var it = Array(s.utf8).makeIterator()
        while let c = it.next() {
            if c == UInt8(ascii: "%") {
                guard let h = it.next().flatMap(hexValue), let l = it.next().flatMap(hexValue) else { return nil }
                bytes.append(h << 4 | l)
            } else {
                bytes.append(c)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// "30s", "500ms", "5m", "1h" or a bare number of seconds.
    static func parseMilliseconds(_ s: String) -> UInt64? {
        let units: [(String, UInt64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        for (suffix, scale) in units where s.hasSuffix(suffix) {
            guard let v = UInt64(s.dropLast(suffix.count)), v > 0, v < 1 << 40 else { return nil }
            return v * scale
        }
        guard let v = UInt64(s), v > 0, v < 1 << 30 else { return nil }
        return v * 1000
    }
}
