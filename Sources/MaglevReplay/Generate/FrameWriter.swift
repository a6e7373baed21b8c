// The generator's frame writer: Ethernet (optionally 802.1Q-tagged), IPv4 / IPv6 (with a
// fragment header), TCP, UDP, ICMP and ICMPv6, with every length and checksum filled in.
// Not the test-only FrameBuilder: this one writes into a buffer it owns and reuses, so writing a
// million frames allocates nothing per frame.

import MaglevCore

/// Writes frames into one reused buffer. Offsets are from the frame's start; the caller keeps
/// every write within `capacity` (frames here are at most a few kilobytes).
struct FrameWriter: ~Copyable {
    static let capacity = 16 * 1024
    /// The frame being built.
    let frame: UnsafeMutableRawPointer
    /// Room for a whole UDP datagram before it is cut into fragments.
    let datagram: UnsafeMutableRawPointer

    init() {
        frame = .allocate(byteCount: Self.capacity, alignment: 16)
        datagram = .allocate(byteCount: Self.capacity, alignment: 16)
        frame.initializeMemory(as: UInt8.self, repeating: 0, count: Self.capacity)
        datagram.initializeMemory(as: UInt8.self, repeating: 0, count: Self.capacity)
    }

    deinit {
        frame.deallocate()
        datagram.deallocate()
    }

    /// The frame's bytes, `count` long, zero-padded to the Ethernet minimum of 60 (no FCS).
    func bytes(count: Int) -> UnsafeRawBufferPointer {
        let padded = max(count, 60)
        if padded > count { (frame + count).initializeMemory(as: UInt8.self, repeating: 0, count: padded - count) }
        return UnsafeRawBufferPointer(start: frame, count: padded)
    }

    /// Destination and source MACs, an 802.1Q tag when `vlan` is not 0, the ethertype.
    /// Returns where the IP header begins.
    func ethernet(vlan: UInt16, etherType: UInt16) -> Int {
        let p = frame
        p.storeBE32(0x0200_0000, 0)  // 02:00:00:00:00:02, the balancer
        p.storeBE16(0x0002, 4)
        p.storeBE32(0x0200_0000, 6)  // 02:00:00:00:00:01, the upstream router
        p.storeBE16(0x0001, 10)
        if vlan != 0 {
            p.storeBE16(0x8100, 12)
            p.storeBE16(vlan & 0x0FFF, 14)
            p.storeBE16(etherType, 16)
            return 18
        }
        p.storeBE16(etherType, 12)
        return 14
    }

    /// A 20-byte IPv4 header at `o` with its checksum. `fragment` is the flags-and-offset field
    /// (DF 0x4000, MF 0x2000, offset in 8-byte units).
    static func ipv4(
        _ p: UnsafeMutableRawPointer, at o: Int, totalLength: Int, identification: UInt16, fragment: UInt16,
        ttl: UInt8, proto: UInt8, source: IPAddress, destination: IPAddress
    ) {
        p.storeBE8(0x45, o)
        p.storeBE8(0, o + 1)
        p.storeBE16(UInt16(totalLength), o + 2)
        p.storeBE16(identification, o + 4)
        p.storeBE16(fragment, o + 6)
        p.storeBE8(ttl, o + 8)
        p.storeBE8(proto, o + 9)
        p.storeBE16(0, o + 10)
        p.storeBE32(source.ipv4Value, o + 12)
        p.storeBE32(destination.ipv4Value, o + 16)
        p.storeBE16(checksum(p + o, count: 20), o + 10)
    }

    /// A 40-byte IPv6 header at `o`.
    static func ipv6(
        _ p: UnsafeMutableRawPointer, at o: Int, payloadLength: Int, nextHeader: UInt8, flowLabel: UInt32,
        source: IPAddress, destination: IPAddress
    ) {
        p.storeBE32(0x6000_0000 | (flowLabel & 0xF_FFFF), o)
        p.storeBE16(UInt16(payloadLength), o + 4)
        p.storeBE8(nextHeader, o + 6)
        p.storeBE8(64, o + 7)
        p.storeBE64(source.high, o + 8)
        p.storeBE64(source.low, o + 16)
        p.storeBE64(destination.high, o + 24)
        p.storeBE64(destination.low, o + 32)
    }

    /// The partial sum of the TCP/UDP/ICMPv6 pseudo header.
    static func pseudoHeaderSum(source: IPAddress, destination: IPAddress, proto: UInt8, length: Int) -> UInt32 {
        var sum: UInt64 = UInt64(proto) + UInt64(length & 0xFFFF) + UInt64(length >> 16)
        func add32(_ v: UInt32) { sum += UInt64(v >> 16) + UInt64(v & 0xFFFF) }
        func add64(_ v: UInt64) {
            add32(UInt32(truncatingIfNeeded: v >> 32))
            add32(UInt32(truncatingIfNeeded: v))
        }
        if source.isIPv6 {
            add64(source.high)
            add64(source.low)
            add64(destination.high)
            add64(destination.low)
        } else {
            add32(source.ipv4Value)
            add32(destination.ipv4Value)
        }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        return UInt32(sum)
    }

    /// The Internet checksum (RFC 1071) of `count` bytes, continuing from `initial`.
    static func checksum(_ p: UnsafeRawPointer, count: Int, initial: UInt32 = 0) -> UInt16 {
        var sum = UInt64(initial)
        var i = 0
        while i + 8 <= count {
            let w = p.loadBE64(i)
            sum &+= (w >> 48) &+ ((w >> 32) & 0xFFFF) &+ ((w >> 16) & 0xFFFF) &+ (w & 0xFFFF)
            i += 8
        }
        while i + 1 < count {
            sum &+= UInt64(p.loadBE16(i))
            i += 2
        }
        if i < count { sum &+= UInt64(p.loadBE8(i)) << 8 }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) &+ (sum >> 16) }
        return ~UInt16(truncatingIfNeeded: sum)
    }

    /// `count` payload bytes at `o`: a pattern that varies with `salt`.
    static func payload(_ p: UnsafeMutableRawPointer, at o: Int, count: Int, salt: UInt8) {
        var i = 0
        var b = salt
        while i < count {
            p.storeBE8(b, o + i)
            b &+= 1
            i += 1
        }
    }
}

// Local big-endian stores and loads (MaglevCore keeps its own internal).
extension UnsafeMutableRawPointer {
    @inline(__always) func storeBE8(_ v: UInt8, _ o: Int) { storeBytes(of: v, toByteOffset: o, as: UInt8.self) }
    @inline(__always) func storeBE16(_ v: UInt16, _ o: Int) {
        storeBytes(of: v.bigEndian, toByteOffset: o, as: UInt16.self)
    }
    @inline(__always) func storeBE32(_ v: UInt32, _ o: Int) {
        storeBytes(of: v.bigEndian, toByteOffset: o, as: UInt32.self)
    }
    @inline(__always) func storeBE64(_ v: UInt64, _ o: Int) {
        storeBytes(of: v.bigEndian, toByteOffset: o, as: UInt64.self)
    }
}

extension UnsafeRawPointer {
    @inline(__always) func loadBE8(_ o: Int) -> UInt8 { load(fromByteOffset: o, as: UInt8.self) }
    @inline(__always) func loadBE16(_ o: Int) -> UInt16 {
        UInt16(bigEndian: loadUnaligned(fromByteOffset: o, as: UInt16.self))
    }
    @inline(__always) func loadBE64(_ o: Int) -> UInt64 {
        UInt64(bigEndian: loadUnaligned(fromByteOffset: o, as: UInt64.self))
    }
}
