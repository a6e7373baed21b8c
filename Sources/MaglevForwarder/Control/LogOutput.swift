public import Logging
import MaglevControl

#if canImport(Glibc)
    import Glibc
#endif

/// How `maglev forward` writes its log lines.
public enum LogFormat: String, Sendable, CaseIterable {
    /// `2026-12-06T12:00:00.123Z info  message key=value ...`
    case text
    /// One JSON object per line: `{"time":"...","level":"info","message":"...","key":"value"}`.
    case json
}

/// A swift-log handler that writes one line per message to standard output (standard error
/// for warnings and worse), with an RFC 3339 UTC timestamp, the level and the metadata, as
/// text or as one valid JSON object per line (every string escaped by the one JSON writer).
public struct LineLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    let format: LogFormat

    public init(format: LogFormat, level: Logger.Level) {
        self.format = format
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { _, new in new } }
        let keys = all.keys.sorted()
        let time = Self.timestamp()
        var line: String
        switch format {
        case .text:
            line = "\(time) \(event.level.rawValue.padding(8)) \(event.message)"
            for k in keys { line += " \(k)=\(Self.text(all[k]!))" }
        case .json:
            var pairs: [(String, JSONValue)] = [
                ("time", .string(time)), ("level", .string(event.level.rawValue)),
                ("message", .string(event.message.description)),
            ]
            for k in keys { pairs.append((k, Self.json(all[k]!))) }
            line = JSONValue.object(pairs).rendered()
        }
        line += "\n"
        let fd: Int32 = event.level >= .warning ? 2 : 1
        line.withUTF8 { buf in
            var offset = 0
            while offset < buf.count {
                let n = write(fd, buf.baseAddress! + offset, buf.count - offset)
                if n <= 0 { break }
                offset += n
            }
        }
    }

    static func text(_ v: Logger.Metadata.Value) -> String {
        switch v {
        case .string(let s): s.contains(" ") || s.isEmpty ? JSONValue.quoted(s) : s
        case .stringConvertible(let c): text(.string(c.description))
        case .array(let a): "[" + a.map(text).joined(separator: ",") + "]"
        case .dictionary(let d): "{" + d.keys.sorted().map { "\($0)=\(text(d[$0]!))" }.joined(separator: ",") + "}"
        }
    }

    static func json(_ v: Logger.Metadata.Value) -> JSONValue {
        switch v {
        case .string(let s): .string(s)
        case .stringConvertible(let c): .string(c.description)
        case .array(let a): .array(a.map(json))
        case .dictionary(let d): .object(d.keys.sorted().map { ($0, json(d[$0]!)) })
        }
    }

    /// Now, UTC, RFC 3339 with milliseconds (the log line's own clock read, control side).
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let ms = Int(ts.tv_nsec / 1_000_000)
        let msText = ms < 10 ? "00\(ms)" : ms < 100 ? "0\(ms)" : "\(ms)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(msText)Z"
    }
}

extension String {
    fileprivate func padding(_ n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
}
