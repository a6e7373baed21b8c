#if canImport(Glibc)
    import Glibc
#endif

/// An output could not be written (disk full, I/O error, a closed pipe): which file, and the
/// system's reason. The report is kept when the replay itself finished, so the caller can
/// still show it before failing.
public struct OutputError: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var message: String
    /// The replay's report, when the failure was in an output written alongside it.
    public var report: ReplayReport?
    public var description: String { "\(file): \(message)" }
    public init(file: String, message: String, report: ReplayReport? = nil) {
        self.file = file
        self.message = message
        self.report = report
    }

    /// "No space left on device (errno 28)".
    static func reason(_ code: Int32) -> String { "\(String(cString: strerror(code))) (errno \(code))" }
}

/// A buffered text or binary output file (stdio), for reports and CSV rows. Every write and
/// the close are checked: the first failure is kept (later writes are skipped) and `finish()`
/// throws it, naming the file.
final class OutputFile {
    let path: String
    private var file: UnsafeMutablePointer<FILE>?
    /// The first failure: what was being done and errno.
    private(set) var failure: (doing: String, code: Int32)?

    init(path: String) throws(OutputError) {
        self.path = path
        guard let f = fopen(path, "w") else {
            throw OutputError(file: path, message: "cannot create: \(OutputError.reason(errno))")
        }
        file = f
    }

    func write(_ text: String) {
        guard failure == nil, let file else { return }
        var t = text
        let count = t.utf8.count
        let written = t.withUTF8 { fwrite($0.baseAddress, 1, $0.count, file) }
        if written != count { failure = ("write", errno) }
    }

    /// Flushes and closes the file; throws the first write failure, or the close's own.
    func finish() throws(OutputError) {
        guard let f = file else { return }
        file = nil
        if failure == nil && fflush(f) != 0 { failure = ("write", errno) }
        if fclose(f) != 0 && failure == nil { failure = ("close", errno) }
        if let failure {
            throw OutputError(file: path, message: "could not \(failure.doing) it: \(OutputError.reason(failure.code))")
        }
    }

    deinit { if let file { fclose(file) } }
}

/// Writes `text` to `path` in one go; throws naming the file when it cannot be created,
/// written or closed.
public func writeTextFile(_ text: String, to path: String) throws(OutputError) {
    let f = try OutputFile(path: path)
    f.write(text)
    try f.finish()
}

/// Writes `text` to standard output (unbuffered, whole); throws when it could not be written
/// (a full disk behind a redirection, a closed pipe).
public func writeStandardOutput(_ text: String) throws(OutputError) {
    var t = text
    let code: Int32 = t.withUTF8 { bytes in
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(1, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            done += n
        }
        return 0
    }
    if code != 0 {
        throw OutputError(file: "standard output", message: "could not write it: \(OutputError.reason(code))")
    }
}

/// Whether standard error is a terminal (progress bars only then).
public func standardErrorIsTerminal() -> Bool { isatty(2) == 1 }

/// Writes to standard error without a newline (progress).
public func writeStandardError(_ text: String) {
    var t = text
    t.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
}
