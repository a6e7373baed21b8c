#if canImport(Glibc)
    import Glibc
#endif
internal import CMaglevShim

/// A POSIX thread running one closure (the blocking worker loop), joined by its owner.
/// The corresponding C functions are `pthread_create` and `pthread_join`.
public final class OSThread: @unchecked Sendable {
    // @unchecked: `handle` is written once before start returns and read only by join.
    private var handle = pthread_t()
    private var joined = false

    private final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Starts `body` on a new thread.
    public init(_ body: @escaping @Sendable () -> Void) throws(SystemError) {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        let rc = pthread_create(
            &handle, nil,
            { raw in
                let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
                box.body()
                return nil
            }, box)
        if rc != 0 {
            Unmanaged<Box>.fromOpaque(box).release()
            throw SystemError(call: "pthread_create", errno: rc)
        }
    }

    /// Lets the thread end on its own (no join; its resources are freed when it ends).
    public func detach() {
        guard !joined else { return }
        joined = true
        pthread_detach(handle)
    }

    /// Waits for the thread to end. Call once.
    public func join() {
        guard !joined else { return }
        joined = true
        pthread_join(handle, nil)
    }
}

/// Properties of the calling thread: CPU affinity and network namespace.
public enum ThreadContext {
    /// Pins the calling thread to `cpu`. The corresponding C function is `sched_setaffinity`.
    public static func pin(toCPU cpu: Int) throws(SystemError) {
        if cmaglev_pin_to_cpu(Int32(cpu)) != 0 {
            throw SystemError(call: "sched_setaffinity(cpu \(cpu))", errno: Glibc.errno)
        }
    }

    /// The CPUs the calling thread may run on, in order (`sched_getaffinity`).
    public static func allowedCPUs() -> [Int] {
        let n = Int(cmaglev_allowed_cpu_count())
        guard n > 0 else { return [0] }
        return (0..<n).map { Int(cmaglev_allowed_cpu(Int32($0))) }.filter { $0 >= 0 }
    }

    /// Sleeps the calling thread. The corresponding C function is `nanosleep`.
    public static func sleep(milliseconds: Int) {
        var ts = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
        var left = timespec()
        while nanosleep(&ts, &left) != 0 && Glibc.errno == EINTR { ts = left }
    }

    /// Moves the calling thread into the network namespace at `path` (for example
    /// `/run/netns/NAME`, as `ip netns add` creates). Sockets the thread opens afterwards
    /// belong to that namespace. The corresponding C function is `setns`.
    public static func enterNetworkNamespace(path: String) throws(SystemError) {
        let fd = try SystemCall.run("open(\(path))") { open(path, O_RDONLY | O_CLOEXEC) }
        defer { closeDescriptor(fd) }
        _ = try SystemCall.run("setns(\(path), CLONE_NEWNET)") { cmaglev_setns_net(fd) }
    }
}

/// The process id. The corresponding C function is `getpid`.
public var currentProcessID: Int32 { getpid() }

/// The monotonic clock, in nanoseconds. The corresponding C function is `clock_gettime`.
public enum MonotonicClock {
    @inline(__always)
    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}

/// CPU time this process has used. The corresponding C function is `getrusage`.
public struct ProcessCPUTime: Sendable, Equatable {
    public var userNanoseconds: UInt64
    public var systemNanoseconds: UInt64
    public var totalNanoseconds: UInt64 { userNanoseconds + systemNanoseconds }

    public static func now() -> ProcessCPUTime {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        func ns(_ t: timeval) -> UInt64 { UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_usec) * 1000 }
        return ProcessCPUTime(userNanoseconds: ns(usage.ru_utime), systemNanoseconds: ns(usage.ru_stime))
    }
}


