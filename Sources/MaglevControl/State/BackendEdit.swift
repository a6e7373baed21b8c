public import MaglevCore

/// One change to the backends, as an operator, a health check or a replay scenario makes it.
/// Live control (`maglev ctl`, the admin API) and `maglev replay --event` apply these same
/// edits to a `DesiredState`; there is no second implementation.
public enum BackendEdit: Sendable, Equatable, CustomStringConvertible {
    /// Takes the backend out of every pool: it owns no slots and its connections move.
    case remove(String)
    /// Brings back a removed backend, or adds a new one (at `address`, or one the state picks)
    /// to every pool.
    case add(String, address: IPAddress? = nil)
    /// Keeps the backend's connections, gives it no new ones. `timeoutMs`: after this long it
    /// is taken out (treated as down) even if connections remain.
    case drain(String, timeoutMs: UInt64? = nil)
    /// Ends a drain.
    case undrain(String)
    /// Marks the backend failed, exactly as failed health checks would (a VIP left with no
    /// qualifying pool fails open over it like over any health failure).
    case fail(String)
    /// Ends `fail` and `drain`: the backend takes new connections again (if its checks pass).
    case recover(String)
    /// Sets the backend's weight everywhere.
    case weight(String, UInt32)

    public var target: String {
        switch self {
        case .remove(let n), .add(let n, _), .drain(let n, _), .undrain(let n), .fail(let n), .recover(let n),
            .weight(let n, _):
            n
        }
    }

    public var description: String {
        switch self {
        case .remove(let n): "remove \(n)"
        case .add(let n, let a): a.map { "add \(n) at \($0)" } ?? "add \(n)"
        case .drain(let n, let t): t.map { "drain \(n) (timeout \($0) ms)" } ?? "drain \(n)"
        case .undrain(let n): "undrain \(n)"
        case .fail(let n): "fail \(n)"
        case .recover(let n): "recover \(n)"
        case .weight(let n, let w): "weight \(n)=\(w)"
        }
    }
}

/// An edit that names no backend this state knows.
public struct EditError: Error, Sendable, Equatable, CustomStringConvertible {
    public var edit: BackendEdit
    public var known: [String]

    public var description: String {
        let list = known.count <= 20 ? known.joined(separator: ", ") : known.prefix(20).joined(separator: ", ") + ", ..."
        return "no backend named '\(edit.target)' (\(edit)); known backends: \(list)"
    }
}
