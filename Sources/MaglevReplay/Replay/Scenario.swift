public import MaglevConfig
import MaglevControl

/// When an event happens on the trace's timeline.
public enum EventTime: Sendable, Equatable {
    /// Before the packet at this fraction of all packets (0...1).
    case fraction(Double)
    /// This many seconds after the first packet.
    case seconds(Double)
    /// Before this packet (1-based index over all inputs, in time order).
    case packet(Int)
}

/// What happens.
public enum EventAction: Sendable, Equatable {
    /// The backend leaves every pool (its connections are lost).
    case remove
    /// The backend joins (again): a backend removed earlier returns to its pools; a new name
    /// joins every VIP's pool with an address of its own.
    case add
    /// No new connections; existing ones stay.
    case drain
    /// Health down: owns no slots, its connections are reselected.
    case fail
    /// Back to active after drain or fail.
    case recover
    case weight(UInt32)
    /// The ECMP group now has this many forwarders (new ones start with empty tables).
    case forwarders(Int)

    public var name: String {
        switch self {
        case .remove: "remove"
        case .add: "add"
        case .drain: "drain"
        case .fail: "fail"
        case .recover: "recover"
        case .weight(let w): "weight=\(w)"
        case .forwarders(let k): "forwarders=\(k)"
        }
    }
}

/// One `--event AT:ACTION[:TARGET]`.
public struct ScenarioEvent: Sendable, Equatable {
    public var text: String
    public var at: EventTime
    public var atText: String
    public var action: EventAction
    /// Backend name; empty for `forwarders=K`.
    public var target: String

    /// Parses `AT:ACTION[:TARGET]`: AT is `N%`, `Ns` or `#N`; ACTION is remove, add, drain, fail,
    /// recover, weight=W (these need a TARGET backend) or forwarders=K.
    public init(parsing text: String) throws(ScenarioError) {
        self.text = text
        let parts = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2 else {
            throw ScenarioError("event '\(text)': expected AT:ACTION[:TARGET], e.g. 50%:remove:backend-3")
        }
        atText = parts[0]
        if atText.hasSuffix("%"), let v = Double(atText.dropLast()), v >= 0, v <= 100 {
            at = .fraction(v / 100)
        } else if atText.hasSuffix("s"), let v = Double(atText.dropLast()), v >= 0 {
            at = .seconds(v)
        } else if atText.hasPrefix("#"), let v = Int(atText.dropFirst()), v >= 1 {
            at = .packet(v)
        } else {
            throw ScenarioError("event '\(text)': time '\(atText)' must be N% (0-100), Ns (seconds) or #N (packet, from 1)")
        }
        let actionText = parts[1]
        target = parts.count > 2 ? parts[2] : ""
        switch actionText {
        case "remove": action = .remove
        case "add": action = .add
        case "drain": action = .drain
        case "fail": action = .fail
        case "recover": action = .recover
        default:
            if actionText.hasPrefix("weight="), let w = UInt32(actionText.dropFirst(7)) {
                action = .weight(w)
            } else if actionText.hasPrefix("forwarders="), let k = Int(actionText.dropFirst(11)), (1...64).contains(k) {
                action = .forwarders(k)
            } else {
                throw ScenarioError(
                    "event '\(text)': unknown action '\(actionText)'; use remove, add, drain, fail, recover, weight=W or forwarders=K (1-64)")
            }
        }
        if case .forwarders = action {
            guard target.isEmpty else { throw ScenarioError("event '\(text)': forwarders=K takes no target") }
        } else if target.isEmpty {
            throw ScenarioError("event '\(text)': \(actionText) needs a backend name, e.g. \(atText):\(actionText):backend-3")
        }
    }
}

public struct ScenarioError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension ScenarioEvent {
    /// Checks every event's target against the backends of `config` (the names the backend
    /// edits know, as `DesiredState` lists them): a target that is neither one of them nor
    /// introduced by an `add` event is an error listing the known names. `add` of a new name
    /// is allowed (it joins every VIP's pool).
    public static func check(_ events: [ScenarioEvent], config: MaglevConfigFile) throws(ScenarioError) {
        let known = DesiredState(file: config).backendNames
        var names = Set(known)
        for e in events { if case .add = e.action { names.insert(e.target) } }
        for e in events {
            if case .forwarders = e.action { continue }
            guard !names.contains(e.target) else { continue }
            let shown = known.prefix(20).joined(separator: ", ")
            let more = known.count > 20 ? " and \(known.count - 20) more" : ""
            throw ScenarioError(
                "event '\(e.text)': no backend named '\(e.target)'; known backends: "
                    + (known.isEmpty ? "(none)" : shown + more) + " (add:NAME introduces a new one)")
        }
    }
}
