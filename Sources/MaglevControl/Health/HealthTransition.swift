/// A health verdict that changed, for logs, counters and the desired state.
public struct HealthTransition: Sendable, Equatable {
    public var target: HealthTarget
    public var up: Bool
    public var atMs: UInt64
    /// The last probe's error, for a target that went down.
    public var reason: String?

    public init(target: HealthTarget, up: Bool, atMs: UInt64, reason: String?) {
        self.target = target
        self.up = up
        self.atMs = atMs
        self.reason = reason
    }
}
