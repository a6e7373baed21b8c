// Big-endian loads and stores: the one place where the data path touches raw bytes by offset.
// Callers validate a header's length once, then read; these helpers do no bounds checks of
// their own (debug builds assert).

extension UnsafeRawPointer {
    @inline(__always) func loadBE8(_ offset: Int) -> UInt8 {
        load(fromByteOffset: offset, as: UInt8.self)
    }
    @inline(__always) func loadBE16(_ offset: Int) -> UInt16 {
        UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }
    @inline(__always) func loadBE32(_ offset: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
    @inline(__always) func loadBE64(_ offset: Int) -> UInt64 {
        UInt64(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
}

extension UnsafeMutableRawPointer {
    @inline(__always) func storeBE8(_ value: UInt8, _ offset: Int) {
        storeBytes(of: value, toByteOffset: offset, as: UInt8.self)
    }
    @inline(__always) func storeBE16(_ value: UInt16, _ offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt16.self)
    }
    @inline(__always) func storeBE32(_ value: UInt32, _ offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
    }
    @inline(__always) func storeBE64(_ value: UInt64, _ offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt64.self)
    }
}

/// The Internet checksum (RFC 1071) over `count` bytes at `pointer`, folded, not inverted,
/// continuing from `initial` (a partial sum, e.g. a pseudo-header's).
@inline(__always)
func internetChecksumSum(_ pointer: UnsafeRawPointer, count: Int, initial: UInt32 = 0) -> UInt32 {
    var sum = UInt64(initial)
    var i = 0
    while i + 1 < count {
        sum &+= UInt64(pointer.loadBE16(i))
        i += 2
    }
    if i < count { sum &+= UInt64(pointer.loadBE8(i)) << 8 }
    while sum > 0xFFFF { sum = (sum & 0xFFFF) &+ (sum >> 16) }
    return UInt32(sum)
}

/// The final checksum field value: the ones' complement of the folded sum.
@inline(__always)
func internetChecksum(_ pointer: UnsafeRawPointer, count: Int, initial: UInt32 = 0) -> UInt16 {
    ~UInt16(truncatingIfNeeded: internetChecksumSum(pointer, count: count, initial: initial))
}
