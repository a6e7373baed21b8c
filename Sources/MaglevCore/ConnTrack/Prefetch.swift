import Builtin

/// Asks the CPU to start loading the cache line at `address` (x86 `prefetcht0`), without waiting
/// for it and without faulting: any address is allowed, nothing is read. The batch loops use it
/// for the connection-table buckets of the packets they have just hashed.
///
/// Why a builtin and not a load: a load that misses holds its place at the head of the reorder
/// buffer until the line arrives, so a loop of loads (the former `touch`) overlaps the misses
/// with each other but stalls the core once per chunk for a full memory latency. A prefetch
/// retires at once, so the misses overlap with the parsing of the packets that follow.
/// MaglevCore takes no C modules; LLVM's prefetch intrinsic is reached through the `Builtin`
/// module (the `BuiltinModule` feature in Package.swift), as the standard library does.
@inline(__always)
func prefetch(_ address: UnsafeRawPointer) {
    // llvm.prefetch(address, rw: 0 = read, locality: 3 = keep in all levels, cache: 1 = data)
    Builtin.int_prefetch_RawPointer(
        address._rawValue, (0 as Int32)._value, (3 as Int32)._value, (1 as Int32)._value)
}
