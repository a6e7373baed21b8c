import Glibc

/// How `maglev bench` counts heap allocations without `maglev` replacing malloc.
///
/// The counter (Sources/CAllocationCounter) interposes malloc and friends process-wide, so it is
/// never linked into `maglev`: it is built as its own library, libMaglevAllocationCounter.so
/// (`swift build --product MaglevAllocationCounter`, next to `maglev`). `maglev bench` runs
/// itself again with that library in LD_PRELOAD, and reads the count through
/// `cmaglev_allocation_count`, looked up at run time. Without the library the bench still runs
/// and says that allocations were not counted (JSON `allocations_per_packet: null`).
enum AllocationCounter {
    static let libraryName = "libMaglevAllocationCounter.so"
    /// In the environment of the second run, so that the bench never runs itself again twice.
    static let preloadedMarker = "MAGLEV_BENCH_PRELOADED"

    typealias Reading = @convention(c) () -> UInt64
    private typealias Malloc = @convention(c) (Int) -> UnsafeMutableRawPointer?

    /// The counter's reading function, when the library is loaded and sees an allocation made
    /// here (through malloc as the process resolves it, so the compiler cannot elide it).
    static let reading: Reading? = {
        guard let process = dlopen(nil, RTLD_NOW),
            let symbol = dlsym(process, "cmaglev_allocation_count"),
            let mallocSymbol = dlsym(process, "malloc")
        else { return nil }
        let read = unsafeBitCast(symbol, to: Reading.self)
        let allocate = unsafeBitCast(mallocSymbol, to: Malloc.self)
        let before = read()
        let p = allocate(64)
        let after = read()
        free(p)
        return after > before ? read : nil
    }()

    /// Allocations so far, process-wide; 0 when nothing counts (then `reading` is nil).
    @inline(__always) static func count() -> UInt64 { reading?() ?? 0 }

    /// When nothing counts yet: runs this very command again with the counter preloaded, if the
    /// library is beside the executable and this is not already that second run. Returns only
    /// when it did not; then with the reason allocations will not be counted (nil: they will).
    static func preloadOrExplain() -> String? {
        if reading != nil { return nil }
        if getenv(preloadedMarker) != nil {
            return "\(libraryName) was not loaded or does not count (\(preloadedMarker) is set)"
        }
        guard let executable = executablePath() else { return "cannot read /proc/self/exe" }
        let directory = executable.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let library = directory + "/" + libraryName
        guard access(library, R_OK) == 0 else {
            return "\(library) is not there (build it: swift build [-c release] --product MaglevAllocationCounter)"
        }
        let preload = getenv("LD_PRELOAD").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
        setenv("LD_PRELOAD", preload.map { library + " " + $0 } ?? library, 1)
        setenv(preloadedMarker, "1", 1)
        execv(executable, CommandLine.unsafeArgv)
        return "could not run \(executable) again with \(libraryName) preloaded: \(String(cString: strerror(errno)))"
    }

    private static func executablePath() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
