#if canImport(Glibc)
    import Glibc
#endif

/// Names for this host in reports (the packet tracer's `forwarder`).
public enum HostName {
    /// The host name (`gethostname`), or "localhost" when it cannot be read.
    public static func current() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        return string(fromCBuffer: buffer)
    }

    /// The name of the network namespace this process runs in, when it is a named one (`ip
    /// netns add NAME`: a file under /run/netns with the same inode as /proc/self/ns/net); nil
    /// for the initial namespace or an unnamed one. The corresponding C functions are `stat`,
    /// `opendir` and `readdir`.
    public static func networkNamespace() -> String? {
        var own = stat()
        guard stat("/proc/self/ns/net", &own) == 0 else { return nil }
        guard let dir = opendir("/run/netns") else { return nil }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            var other = stat()
            if stat("/run/netns/\(name)", &other) == 0 && other.st_ino == own.st_ino && other.st_dev == own.st_dev {
                return name
            }
        }
        return nil
    }

    /// The host name, followed by `/NAMESPACE` when the process runs in a named network
    /// namespace (several forwarders of one lab host then have distinct names).
    public static func forwarderDefault() -> String {
        let host = current()
        return networkNamespace().map { "\(host)/\($0)" } ?? host
    }
}
