/// Where large fixed tables get their memory. The core allocates from the heap; a driver can
/// hand in memory backed by huge pages (MaglevLinux's `HugePageMemory`), which removes most TLB
/// misses from connection-table lookups. Called only when a table is created or destroyed.
public struct TableMemory: Sendable {
    /// Returns `byteCount` bytes aligned to at least 128, zero-filled or not.
    public let allocate: @Sendable (_ byteCount: Int) -> UnsafeMutableRawPointer
    public let deallocate: @Sendable (_ pointer: UnsafeMutableRawPointer, _ byteCount: Int) -> Void

    public init(
        allocate: @escaping @Sendable (Int) -> UnsafeMutableRawPointer,
        deallocate: @escaping @Sendable (UnsafeMutableRawPointer, Int) -> Void
    ) {
        self.allocate = allocate
        self.deallocate = deallocate
    }

    /// The Swift heap, 128-byte aligned.
    public static let heap = TableMemory(
        allocate: { UnsafeMutableRawPointer.allocate(byteCount: $0, alignment: 128) },
        deallocate: { pointer, _ in pointer.deallocate() })
}
