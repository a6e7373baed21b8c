import MaglevCore

/// Synthetic receive buffers for the in-memory benchmarks: a small ring of Ethernet frames (TCP
/// over IPv4 or IPv6 to one VIP), reused the way a worker reuses its receive buffers, so they
/// stay in cache as they would live. Before each packet the client's address and port are
/// stamped into the buffer: that is what tells flows apart.
struct BenchFrames {
    static let headroom = 64
    static let slotSize = 256
    static let ringSize = 4096

    let storage: UnsafeMutableRawPointer
    let lengths: UnsafeMutableBufferPointer<Int>
    let isIPv6: UnsafeMutableBufferPointer<Bool>

    static let ethernetIPv4: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]
    static let ethernetIPv6: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xDD]

    /// `ipv6Share` of the ring's frames are IPv6; `payload` bytes of TCP payload; `flags` the
    /// TCP flags.
    init(ipv6Share: Double, payload: Int, flags: UInt8, vip4: IPAddress, vip6: IPAddress) {
        let n = BenchFrames.ringSize
        storage = .allocate(byteCount: n * BenchFrames.slotSize, alignment: 64)
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: n * BenchFrames.slotSize)
        lengths = .allocate(capacity: n)
        isIPv6 = .allocate(capacity: n)
        var rng = SplitMix64(seed: 42)
        for i in 0..<n {
            let v6 = Double(rng.next() % 1_000_000) / 1_000_000 < ipv6Share
            isIPv6[i] = v6
            lengths[i] = BenchFrames.write(
                frame(i) + BenchFrames.headroom, ipv6: v6, payload: payload, flags: flags, vip4: vip4, vip6: vip6)
        }
    }

    func frame(_ i: Int) -> UnsafeMutableRawPointer { storage + i * BenchFrames.slotSize }

    func deallocate() {
        storage.deallocate()
        lengths.deallocate()
        isIPv6.deallocate()
    }

    /// Makes ring slot `i` a packet of flow `flow`: restores the Ethernet header (encapsulation
    /// wrote over it) and stamps the client address and port.
    @inline(__always)
    func stamp(_ i: Int, flow: UInt32, eth4: UnsafeRawPointer, eth6: UnsafeRawPointer) {
        let p = frame(i) + BenchFrames.headroom
        let v6 = isIPv6[i]
        p.copyMemory(from: v6 ? eth6 : eth4, byteCount: 14)
        p.storeBytes(of: (0xC612_0000 ^ flow).bigEndian, toByteOffset: v6 ? 14 + 20 : 14 + 12, as: UInt32.self)
        p.storeBytes(of: UInt16(truncatingIfNeeded: 1024 &+ (flow >> 20)).bigEndian, toByteOffset: v6 ? 54 : 34, as: UInt16.self)
    }

    static func write(
        _ p: UnsafeMutableRawPointer, ipv6: Bool, payload: Int, flags: UInt8, vip4: IPAddress, vip6: IPAddress
    ) -> Int {
        func be16(_ v: UInt16, _ o: Int) { p.storeBytes(of: v.bigEndian, toByteOffset: o, as: UInt16.self) }
        func be32(_ v: UInt32, _ o: Int) { p.storeBytes(of: v.bigEndian, toByteOffset: o, as: UInt32.self) }
        func be64(_ v: UInt64, _ o: Int) { p.storeBytes(of: v.bigEndian, toByteOffset: o, as: UInt64.self) }
        let eth = ipv6 ? ethernetIPv6 : ethernetIPv4
        for (i, b) in eth.enumerated() { p.storeBytes(of: b, toByteOffset: i, as: UInt8.self) }
        let l3 = 14
        let l4: Int
        if ipv6 {
            be32(0x6000_0000, l3)
            be16(UInt16(20 + payload), l3 + 4)
            p.storeBytes(of: IPProtocol.tcp, toByteOffset: l3 + 6, as: UInt8.self)
            p.storeBytes(of: 64, toByteOffset: l3 + 7, as: UInt8.self)
            be64(0x2001_0DB8_0000_0001, l3 + 8)
            be64(0, l3 + 16)
            be64(vip6.high, l3 + 24)
            be64(vip6.low, l3 + 32)
            l4 = l3 + 40
        } else {
            p.storeBytes(of: 0x45, toByteOffset: l3, as: UInt8.self)
            be16(UInt16(20 + 20 + payload), l3 + 2)
            be16(0x4000, l3 + 6)
            p.storeBytes(of: 64, toByteOffset: l3 + 8, as: UInt8.self)
            p.storeBytes(of: IPProtocol.tcp, toByteOffset: l3 + 9, as: UInt8.self)
            be32(vip4.ipv4Value, l3 + 16)
            l4 = l3 + 20
        }
        be16(80, l4 + 2)
        p.storeBytes(of: 0x50, toByteOffset: l4 + 12, as: UInt8.self)
        p.storeBytes(of: flags, toByteOffset: l4 + 13, as: UInt8.self)
        return l4 + 20 + payload
    }
}
