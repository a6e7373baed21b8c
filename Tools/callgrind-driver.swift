// The driver behind `Tools/callgrind`: runs packets through the release MaglevCore's
// `Dataplane.process(batch:linkType:now:)` so that valgrind's callgrind can count the
// instructions per packet. Not part of the package (SwiftPM never sees this file), never linked
// into `maglev`.
//
//     callgrind-driver established|new PACKETS
//
// Setup (always done, so a run with 0 packets measures it alone): one IPv4 VIP (TCP port 80)
// with 100 backends, M = 65537, a 131,072-entry connection table, 40-byte TCP/IPv4 packets in
// Ethernet frames, batches of 64 from a 4096-frame ring reused like a receive ring (each
// packet's client address and port are stamped into its buffer first), as `maglev bench` does.
// - established: one pass over 65,536 flows (ACK) records them (half the table: 4 of 8 ways per
//   bucket on average, the bench's load); then PACKETS more packets of the same flows.
// - new: 262,144 SYNs of distinct flows fill the table with half-open entries; then PACKETS
//   SYNs of flows never seen before, so every insert evicts (as under a SYN flood).
// Every measured packet must be forwarded, or the driver exits 1.

import Glibc
import MaglevCore

let args = CommandLine.arguments
guard args.count == 3, args[1] == "established" || args[1] == "new", let packets = Int(args[2]), packets >= 0 else {
    print("usage: callgrind-driver established|new PACKETS")
    exit(2)
}
let established = args[1] == "established"

let headroom = 64
let slotSize = 256
let ringSize = 4096
let batchSize = 64
let flows = 65_536
let capacity = 131_072

let vip = IPAddress(ipv4: 0xC613_000A)  // 198.19.0.10
var pool: [BackendConfig] = []
for i in 0..<100 {
    pool.append(BackendConfig(name: "backend-\(i)", address: IPAddress(ipv4: 0xC612_8000 | UInt32(i))))
}
let config = DataplaneConfig(
    vips: [VIPConfig(name: "web4", address: vip, proto: IPProtocol.tcp, port: 80, backends: pool)],
    encapSourceIPv4: IPAddress(ipv4: 0xC612_0002))
let snapshot = try! ForwardingSnapshot(config: config)
let dataplane = Dataplane(snapshot: snapshot, connectionCapacity: capacity)

// The frame ring: Ethernet + IPv4 (DF) + TCP, no payload.
let flags: UInt8 = established ? 0x10 : 0x02
let ring = UnsafeMutableRawPointer.allocate(byteCount: ringSize * slotSize, alignment: 64)
ring.initializeMemory(as: UInt8.self, repeating: 0, count: ringSize * slotSize)
let frameLength = 54
func be16(_ p: UnsafeMutableRawPointer, _ v: UInt16, _ o: Int) { p.storeBytes(of: v.bigEndian, toByteOffset: o, as: UInt16.self) }
func be32(_ p: UnsafeMutableRawPointer, _ v: UInt32, _ o: Int) { p.storeBytes(of: v.bigEndian, toByteOffset: o, as: UInt32.self) }
let ethernet: [UInt8] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]
for i in 0..<ringSize {
    let p = ring + i * slotSize + headroom
    p.storeBytes(of: 0x45, toByteOffset: 14, as: UInt8.self)
    be16(p, 40, 16)
    be16(p, 0x4000, 20)
    p.storeBytes(of: 64, toByteOffset: 22, as: UInt8.self)
    p.storeBytes(of: IPProtocol.tcp, toByteOffset: 23, as: UInt8.self)
    be32(p, vip.ipv4Value, 30)
    be16(p, 80, 36)
    p.storeBytes(of: 0x50, toByteOffset: 46, as: UInt8.self)
    p.storeBytes(of: flags, toByteOffset: 47, as: UInt8.self)
}

let batch = UnsafeMutableBufferPointer<PacketSlot>.allocate(capacity: batchSize)
var ringIndex = 0
var now: UInt64 = 1_000_000_000

/// Sends one packet of each flow `first ..< first + count` (flow numbers wrap at `modulo`);
/// returns how many were forwarded.
func send(first: Int, count: Int, modulo: Int) -> Int {
    var forwarded = 0
    var sent = 0
    ethernet.withUnsafeBytes { eth in
        while sent < count {
            let n = min(batchSize, count - sent)
            for j in 0..<n {
                let flow = UInt32(truncatingIfNeeded: (first + sent + j) % modulo)
                let p = ring + ringIndex * slotSize + headroom
                p.copyMemory(from: eth.baseAddress!, byteCount: 14)  // encapsulation wrote over it
                be32(p, 0xC612_0000 ^ flow, 26)
                be16(p, UInt16(truncatingIfNeeded: 1024 &+ (flow >> 20)), 34)
                batch[j] = PacketSlot(base: ring + ringIndex * slotSize, offset: headroom, length: frameLength)
                ringIndex = ringIndex + 1 == ringSize ? 0 : ringIndex + 1
            }
            let slots = UnsafeMutableBufferPointer(rebasing: batch[0..<n])
            dataplane.process(batch: slots, linkType: .ethernet, now: now)
            for j in 0..<n where slots[j].verdict.action == .forward { forwarded += 1 }
            sent += n
            if sent % flows == 0 { now &+= 1_000_000 }
        }
    }
    return forwarded
}

let modulo = established ? flows : Int(UInt32.max)
let warmUp = established ? flows : 2 * capacity
guard send(first: 0, count: warmUp, modulo: modulo) == warmUp else {
    print("warm-up: not every packet was forwarded")
    exit(1)
}
let forwarded = send(first: established ? 0 : warmUp, count: packets, modulo: modulo)
guard forwarded == packets else {
    print("only \(forwarded) of \(packets) packets were forwarded")
    exit(1)
}
let s = dataplane.connections.statistics
print("\(args[1]): \(packets) packets forwarded; table inserts \(s.inserts), evictions (half-open) \(s.evictedHalfOpen), refused \(s.insertsRefused)")
