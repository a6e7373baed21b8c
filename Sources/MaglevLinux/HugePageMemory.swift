#if canImport(Glibc)
    import Glibc
#endif

/// Memory for large tables backed by transparent huge pages (2 MiB): `mmap` of an aligned anonymous
/// region and `madvise(MADV_HUGEPAGE)`. A 16 MiB connection table then spans 8 TLB entries
/// instead of 4096. Where the kernel declines huge pages the memory still works, on ordinary pages. Drivers wrap it as the core's `TableMemory`. The corresponding C functions are `mmap`, `madvise` and `munmap`.
public enum HugePageMemory {
    static let hugePage = 2 << 20

    /// Maps `byteCount` bytes (rounded up to 2 MiB), zero-filled, 2 MiB aligned.
    @Sendable public static func allocate(_ byteCount: Int) -> UnsafeMutableRawPointer {
        let size = roundUp(byteCount)
        // Over-map by one huge page, then trim both ends so the region starts 2 MiB aligned.
        guard let raw = mmap(nil, size + hugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            raw != MAP_FAILED
        else {
            fatalError("cannot map \(size) bytes for a table: out of memory (errno \(errno)); use a smaller capacity")
        }
        let address = UInt(bitPattern: raw)
        let aligned = (address + UInt(hugePage) - 1) & ~UInt(hugePage - 1)
        let head = Int(aligned - address)
        if head > 0 { munmap(raw, head) }
        let tail = hugePage - head
        let start = UnsafeMutableRawPointer(bitPattern: aligned)!
        if tail > 0 { munmap(start + size, tail) }
        _ = madvise(start, size, MADV_HUGEPAGE)
        return start
    }

    /// Unmaps what `allocate` returned.
    @Sendable public static func deallocate(_ pointer: UnsafeMutableRawPointer, _ byteCount: Int) {
        munmap(pointer, roundUp(byteCount))
    }

    static func roundUp(_ n: Int) -> Int { (n + hugePage - 1) / hugePage * hugePage }
}
