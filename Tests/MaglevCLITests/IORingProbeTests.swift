import Testing
import MaglevLinux

@Suite struct IORingProbeTests {
    /// Real io_uring: creating a ring must work on the machines we target (kernel 6.x).
    @Test func ringCanBeCreated() {
        let outcome = IORingProbe.check()
        if case .unavailable(_, let hint) = outcome {
            print("io_uring unavailable: \(hint)")
        }
        #expect(outcome == .available)
    }
}
