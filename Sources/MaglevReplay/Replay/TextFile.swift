#if canImport(Glibc)
    import Glibc
#endif

/// A buffered text or binary output file (stdio), for reports and CSV rows.
final class OutputFile {
    let path: String
    private let file: UnsafeMutablePointer<FILE>

    init(path: String) throws(CaptureError) {
        self.path = path
        guard let f = fopen(path, "w") else {
            throw CaptureError(file: path, packetNumber: nil, message: "cannot create: \(String(cString: strerror(errno)))")
        }
        file = f
    }

    func write(_ text: String) {
        var t = text
        t.withUTF8 { _ = fwrite($0.baseAddress, 1, $0.count, file) }
    }

    deinit { fclose(file) }
}

/// Writes `text` to `path` in one go.
public func writeTextFile(_ text: String, to path: String) throws(CaptureError) {
    let f = try OutputFile(path: path)
    f.write(text)
}

/// Whether standard error is a terminal (progress bars only then).
public func standardErrorIsTerminal() -> Bool { isatty(2) == 1 }

/// Writes to standard error without a newline (progress).
public func writeStandardError(_ text: String) {
    var t = text
    t.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
}
