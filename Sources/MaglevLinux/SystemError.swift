#if canImport(Glibc)
    import Glibc
#endif

/// A failed system call: which call, and the errno it left.
public struct SystemError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The C function's name, e.g. `socket(AF_PACKET)`.
    public var call: String
    public var errno: Int32

    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    /// `strerror` text for the errno.
    public var reason: String { String(cString: strerror(errno)) }

    public var description: String { "\(call) failed: \(reason) (errno \(errno))" }

    public var isPermissionDenied: Bool { errno == EPERM || errno == EACCES }
}

/// The one wrapper every system call goes through: retries `EINTR`, reports `EAGAIN` /
/// `EWOULDBLOCK` as "would block" (`nil`), and throws anything else with the call's name.
enum SystemCall {
    /// For calls that return -1 and set `errno`.
    @inline(__always)
    static func retrying<T: FixedWidthInteger>(_ call: @autoclosure () -> String, _ body: () -> T) throws(SystemError) -> T? {
        while true {
            let rc = body()
            if rc != -1 { return rc }
            let e = Glibc.errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return nil }
            throw SystemError(call: call(), errno: e)
        }
    }

    /// Like `retrying`, for calls where "would block" is itself an error.
    @inline(__always)
    static func run<T: FixedWidthInteger>(_ call: @autoclosure () -> String, _ body: () -> T) throws(SystemError) -> T {
        while true {
            let rc = body()
            if rc != -1 { return rc }
            let e = Glibc.errno
            if e == EINTR { continue }
            throw SystemError(call: call(), errno: e)
        }
    }

    /// For liburing calls, which return `-errno` instead of setting it.
    @inline(__always)
    static func liburing(_ call: @autoclosure () -> String, _ body: () -> Int32) throws(SystemError) -> Int32 {
        while true {
            let rc = body()
            if rc >= 0 { return rc }
            if rc == -EINTR { continue }
            throw SystemError(call: call(), errno: -rc)
        }
    }
}

/// Closes a descriptor; errors on close are ignored (nothing useful can be done).
@inline(__always)
func closeDescriptor(_ fd: Int32) {
    if fd >= 0 { _ = Glibc.close(fd) }
}

/// The UTF-8 text of a NUL-terminated C character buffer (up to its first NUL, or all of it).
func string(fromCBuffer buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
