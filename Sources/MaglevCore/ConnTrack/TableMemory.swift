/// Where large fixed tables get their memory. The core allocates from the heap; a driver can
/// hand in memory backed by huge pages (MaglevLinux's `HugePageMemory`), which removes most TLB
/// misses from connection-table lookups. Called only when a table is created or destroyed.
public struct TableMemory: Sendable {
    /// Returns `byteCount` bytes aligned to at least 128, zero-filled or not.
    public let allocate: @Sendable (_ byteCount: Int) -> UnsafeMutableRawPointer
    public let deallocate: @Sendable (_ pointer: UnsafeMutableRawPointer, _ byteCount: Int) -> Void
    /// `allocate` always returns zero-filled memory (a fresh anonymous mapping): a table whose
    /// empty entries are zero bits then skips its own clearing pass (for a 16 MiB connection
    /// table, a 16 MiB memset at start-up on top of the kernel's zeroing of each page).
    public let zeroFilled: Bool

    public init(
        allocate: @escaping @Sendable (Int) -> UnsafeMutableRawPointer,
        deallocate: @escaping @Sendable (UnsafeMutableRawPointer, Int) -> Void,
        zeroFilled: Bool = false
    ) {
        self.allocate = allocate
        self.deallocate = deallocate
        self.zeroFilled = zeroFilled
    }

    /// The Swift heap, 128-byte aligned.
    public static let heap = TableMemory(
        allocate: { UnsafeMutableRawPointer.allocate(byteCount: $0, alignment: 128) },
        deallocate: { pointer, _ in pointer.deallocate() })
}
