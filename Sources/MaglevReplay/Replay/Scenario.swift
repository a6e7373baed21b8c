public import MaglevConfig
import MaglevControl
import MaglevCore

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
    /// A whole new config file (the event's target is its path), applied as a live reload
    /// applies it (`DesiredState.reload`), disruptive changes included (they are flagged).
    case config

    public var name: String {
        switch self {
        case .remove: "remove"
        case .add: "add"
        case .drain: "drain"
        case .fail: "fail"
        case .recover: "recover"
        case .weight(let w): "weight=\(w)"
        case .forwarders(let k): "forwarders=\(k)"
        case .config: "config"
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
    /// recover, weight=W (these need a TARGET backend), forwarders=K or config=FILE.
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
        if actionText.hasPrefix("config=") {
            // The rest of the text is the path (which may hold colons of its own).
            action = .config
            target = String(text.dropFirst(atText.count + 1 + "config=".count))
            guard !target.isEmpty else {
                throw ScenarioError("event '\(text)': config= needs a file, e.g. \(atText):config=new.yaml")
            }
            return
        }
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
                    "event '\(text)': unknown action '\(actionText)'; use remove, add, drain, fail, recover, weight=W, forwarders=K (1-64) or config=FILE")
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
    public static func check(
        _ events: [ScenarioEvent], config: MaglevConfigFile, eventConfigs: [String: MaglevConfigFile] = [:]
    ) throws(ScenarioError) {
        let known = DesiredState(file: config).backendNames
        var names = Set(known)
        for e in events {
            switch e.action {
            case .add: names.insert(e.target)
            case .config:
                // A backend a config event brings is known to the events (before or after it:
                // one that does not exist yet when its event fires is reported as rejected).
                for n in eventConfigs[e.target].map({ DesiredState(file: $0).backendNames }) ?? [] { names.insert(n) }
            default: break
            }
        }
        for e in events {
            if case .forwarders = e.action { continue }
            if case .config = e.action { continue }
            guard !names.contains(e.target) else { continue }
            let shown = known.prefix(20).joined(separator: ", ")
            let more = known.count > 20 ? " and \(known.count - 20) more" : ""
            throw ScenarioError(
                "event '\(e.text)': no backend named '\(e.target)'; known backends: "
                    + (known.isEmpty ? "(none)" : shown + more) + " (add:NAME introduces a new one)")
        }
    }
}

extension ScenarioEvent {
    /// Loads and checks the file of every `config=FILE` event, before anything is replayed: a
    /// file that does not load, or whose VIPs and pools give no snapshot, is an error naming the
    /// event and the file, with every problem. Keyed by the path as written.
    public static func loadConfigs(_ events: [ScenarioEvent]) throws(ScenarioError) -> [String: MaglevConfigFile] {
        var files: [String: MaglevConfigFile] = [:]
        for e in events {
            guard case .config = e.action, files[e.target] == nil else { continue }
            let file: MaglevConfigFile
            do {
                file = try MaglevConfigFile.load(path: e.target)
            } catch {
                throw ScenarioError(
                    "event '\(e.text)': \(e.target) is not a config this forwarder would load:\n\(error)\n"
                        + "(maglev config check \(e.target) lists every problem)")
            }
            do {
                _ = try ForwardingSnapshot(config: DesiredState(file: file).dataplaneConfig)
            } catch {
                throw ScenarioError("event '\(e.text)': \(e.target): \(error)")
            }
            files[e.target] = file
        }
        return files
    }
}
