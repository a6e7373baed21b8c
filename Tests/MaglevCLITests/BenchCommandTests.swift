import Foundation
import Testing

/// `maglev bench` counts allocations per packet without `maglev` replacing malloc: the counter
/// (CAllocationCounter) is built as libMaglevAllocationCounter.so beside the binary and preloaded
/// by the bench, which runs itself again with it (docs: `maglev bench --help`).
@Suite struct BenchCommandTests {
    static let quick = [
        "bench", "--format", "json", "--seconds", "0.1", "--flows", "1000", "--connections", "4096", "--backends", "10",
        "--no-huge-pages",
    ]

    /// Runs the built `maglev` with ARGUMENTS; the environment is this process's without
    /// LD_PRELOAD and the bench's marker, plus `extra`.
    static func runBinary(
        _ arguments: [String], extra: [String: String] = [:]
    ) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = try TableCommandTests.binary()
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["LD_PRELOAD"] = nil
        environment["MAGLEV_BENCH_PRELOADED"] = nil
        process.environment = environment.merging(extra) { $1 }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }

    static func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not a JSON object: \(text)")
    }

    /// The contract: 0 allocations per packet, counted by a live counter (the bench reports a
    /// number only when the preloaded counter saw an allocation of its own first). A heap
    /// allocation on the per-packet path makes this number non-zero.
    @Test func benchCountsNoAllocationsPerPacket() throws {
        let library = try TableCommandTests.binary().deletingLastPathComponent().appendingPathComponent(
            "libMaglevAllocationCounter.so")
        #expect(
            FileManager.default.fileExists(atPath: library.path),
            "\(library.path) is missing: swift build --product MaglevAllocationCounter")
        let result = try Self.runBinary(Self.quick)
        #expect(result.status == 0, "\(result.stderr)")
        let bench = try Self.json(result.stdout)
        #expect(bench["allocations_not_counted"] == nil, "\(result.stdout)")
        let perPacket = try #require(bench["allocations_per_packet"] as? NSNumber, "\(result.stdout)")
        #expect(perPacket.doubleValue == 0, "\(result.stdout)")
    }

    /// Without the counter preloaded the binary counts nothing (it does not link the counter), and
    /// says so: null, never a 0 that reads as a pass.
    @Test func withoutThePreloadedCounterAllocationsAreNotCounted() throws {
        let result = try Self.runBinary(Self.quick, extra: ["MAGLEV_BENCH_PRELOADED": "1"])
        #expect(result.status == 0, "\(result.stderr)")
        let bench = try Self.json(result.stdout)
        #expect(bench["allocations_per_packet"] is NSNull, "\(result.stdout)")
        #expect((bench["allocations_not_counted"] as? String)?.contains("libMaglevAllocationCounter.so") == true)
    }

    static let nm = ["/usr/bin/nm", "/bin/nm"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// The shipped binary leaves glibc's allocator alone: neither its dynamic symbols (which is
    /// what would interpose) nor its symbol table define malloc's family or the counter.
    @Test(.enabled(if: nm != nil, "nm (binutils) is not installed"))
    func maglevDoesNotReplaceMalloc() throws {
        func defined(_ options: [String]) throws -> Set<String> {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: try #require(Self.nm))
            process.arguments = options + ["--defined-only", try TableCommandTests.binary().path]
            let out = Pipe()
            process.standardOutput = out
            try process.run()
            let symbols = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            return Set(symbols.split(separator: "\n").compactMap { $0.split(separator: " ").last.map(String.init) })
        }
        let family = ["malloc", "calloc", "realloc", "memalign", "aligned_alloc", "posix_memalign", "cmaglev_allocation_count"]
        let dynamic = try defined(["-D"])
        #expect(family.filter(dynamic.contains) == [])
        let all = try defined([])
        #expect(all.contains("cmaglev_recvmmsg"), "nm did not list the binary's own C symbols")
        #expect(family.filter(all.contains) == [])
    }
}
