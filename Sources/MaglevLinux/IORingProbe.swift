internal import CLibURing
internal import CMaglevShim

/// Whether this kernel lets the process create an io_uring, and if not, why.
public enum IORingProbe {
    public enum Outcome: Sendable, Equatable {
        case available
        case unavailable(errno: Int32, hint: String)
    }

    /// Creates and destroys a tiny ring. The corresponding C function is `io_uring_queue_init`.
    public static func check() -> Outcome {
        var ring = io_uring()
        let rc = io_uring_queue_init(4, &ring, 0)
        if rc == 0 {
            io_uring_queue_exit(&ring)
            return .available
        }
        let disabled = cmaglev_io_uring_disabled_sysctl()
        let hint: String
        switch disabled {
        case 2: hint = "io_uring is disabled by the sysctl kernel.io_uring_disabled=2; set it to 0"
        case 1: hint = "kernel.io_uring_disabled=1 allows io_uring for root only; run as root or set it to 0"
        default: hint = "io_uring_queue_init failed with errno \(-rc)"
        }
        return .unavailable(errno: -rc, hint: hint)
    }
}
