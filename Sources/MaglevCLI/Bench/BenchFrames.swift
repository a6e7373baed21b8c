import MaglevCore

/// Synthetic Ethernet frames for the in-memory benchmarks: TCP over IPv4 or IPv6 to one VIP,
/// each flow told apart by its client address and port.
struct BenchFrames {
    static let headroom = 64
    static let slotSize = 256

    let count: Int
    let storage: UnsafeMutableRawPointer
    let lengths: [Int]
    /// The Ethernet header of every frame, restored before each pass (encapsulation writes the
    /// outer headers over it, as it would in a receive buffer).
    static let ethernetIPv4: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]
    static let ethernetIPv6: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xDD]

    /// `ipv6Share` of the flows are IPv6; `payload` bytes of TCP payload; `flags` the TCP flags.
    init(flows: Int, ipv6Share: Double, payload: Int, flags: UInt8, vip4: IPAddress, vip6: IPAddress) {
        count = flows
        storage = .allocate(byteCount: flows * BenchFrames.slotSize, alignment: 64)
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: flows * BenchFrames.slotSize)
        var lengths: [Int] = []
        lengths.reserveCapacity(flows)
        var rng = SplitMix64(seed: 42)
        for i in 0..<flows {
            let isIPv6 = Double(rng.next() % 1_000_000) / 1_000_000 < ipv6Share
            let p = storage + i * BenchFrames.slotSize + BenchFrames.headroom
            let client = UInt32(0xC612_0000) | UInt32(truncatingIfNeeded: i >> 14)  // 198.18.x.y
            let port = UInt16(truncatingIfNeeded: 1024 + (i & 0x3FFF))
            lengths.append(BenchFrames.write(p, ipv6: isIPv6, client: client, port: port, payload: payload, flags: flags, vip4: vip4, vip6: vip6))
        }
        self.lengths = lengths
    }

    func frame(_ i: Int) -> UnsafeMutableRawPointer { storage + i * BenchFrames.slotSize }

    func deallocate() { storage.deallocate() }

    static func write(
        _ p: UnsafeMutableRawPointer, ipv6: Bool, client: UInt32, port: UInt16, payload: Int, flags: UInt8,
        vip4: IPAddress, vip6: IPAddress
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
            be64(UInt64(client), l3 + 16)
            be64(vip6.high, l3 + 24)
            be64(vip6.low, l3 + 32)
            l4 = l3 + 40
        } else {
            p.storeBytes(of: 0x45, toByteOffset: l3, as: UInt8.self)
            be16(UInt16(20 + 20 + payload), l3 + 2)
            be16(0x4000, l3 + 6)
            p.storeBytes(of: 64, toByteOffset: l3 + 8, as: UInt8.self)
            p.storeBytes(of: IPProtocol.tcp, toByteOffset: l3 + 9, as: UInt8.self)
            be32(client, l3 + 12)
            be32(vip4.ipv4Value, l3 + 16)
            l4 = l3 + 20
        }
        be16(port, l4)
        be16(80, l4 + 2)
        p.storeBytes(of: 0x50, toByteOffset: l4 + 12, as: UInt8.self)
        p.storeBytes(of: flags, toByteOffset: l4 + 13, as: UInt8.self)
        return l4 + 20 + payload
    }
}
