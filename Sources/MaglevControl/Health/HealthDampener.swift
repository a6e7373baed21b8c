/// Decides up/down from a stream of probe results with rise/fall hysteresis, per target.
///
/// Rules (after glb-director's HealthResultDampener):
/// 1. A target starts up (unknown targets are assumed healthy, so a forwarder that starts or
///    reloads does not black-hole a VIP while its first probes run).
/// 2. An up target goes down after `fall` consecutive failures; a down one comes up after
///    `rise` consecutive successes. Any opposite result resets the run.
/// 3. Every transition is returned once, with the time it happened (time is passed in: the
///    dampener reads no clock, so tests drive it with a fake one).
public struct HealthDampener: Sendable {
    public struct Record: Sendable, Equatable {
        public var up: Bool = true
        /// Consecutive results against the current verdict.
        public var streak: Int = 0
        public var lastChangeMs: UInt64?
        public var successes: UInt64 = 0
        public var failures: UInt64 = 0
        public var lastError: String?
    }

    public let rise: Int
    public let fall: Int
    public private(set) var record = Record()

    public init(rise: Int, fall: Int) {
        precondition(rise >= 1 && fall >= 1, "rise and fall are at least 1")
        self.rise = rise
        self.fall = fall
    }

    /// Feeds one probe result. Returns the new verdict when it changed, else nil.
    public mutating func record(success: Bool, nowMs: UInt64, error: String? = nil) -> Bool? {
        if success {
            record.successes &+= 1
            record.lastError = nil
        } else {
            record.failures &+= 1
            record.lastError = error
        }
        if success == record.up {
            record.streak = 0
            return nil
        }
        record.streak += 1
        if record.streak >= (record.up ? fall : rise) {
            record.up.toggle()
            record.streak = 0
            record.lastChangeMs = nowMs
            return record.up
        }
        return nil
    }
}
