import MaglevCore

/// Builds client packets byte by byte (checksums included, so what the client's kernel sends
/// is exactly these bytes) and reads captured frames.
enum Packets {
    static func ipv4Bytes(_ s: String) -> [UInt8] { s.split(separator: ".").map { UInt8($0)! } }

    static func ipv6Bytes(_ s: String) -> [UInt8] {
        let a = IPAddress(s)!
        var out: [UInt8] = []
        for word in [a.high, a.low] { for i in (0..<8).reversed() { out.append(UInt8(truncatingIfNeeded: word >> (8 * UInt64(i)))) } }
        return out
    }

    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt16 {
        var sum: UInt32 = 0
        var i = bytes.startIndex
        while i + 1 < bytes.endIndex {
            sum += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1])
            i += 2
        }
        if i < bytes.endIndex { sum += UInt32(bytes[i]) << 8 }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        return ~UInt16(sum)
    }

    static func be16(_ v: Int) -> [UInt8] { [UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)] }

    /// L4 header + payload for UDP or TCP (checksum left 0; the forwarder does not look at it).
    static func l4(proto: UInt8, sourcePort: Int, destinationPort: Int, payload: Int, tcpFlags: UInt8, seed: Int) -> [UInt8] {
        let body = (0..<payload).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed) }
        if proto == IPProtocol.udp {
            return be16(sourcePort) + be16(destinationPort) + be16(8 + payload) + [0, 0] + body
        }
        return be16(sourcePort) + be16(destinationPort) + [0, 0, 0x10, 0x01, 0, 0, 0, 0] + [0x50, tcpFlags]
            + be16(65535) + [0, 0, 0, 0] + body
    }

    static func ipv4(
        source: String, destination: String, proto: UInt8, sourcePort: Int, destinationPort: Int, payload: Int = 32,
        tcpFlags: UInt8 = 0x02, dontFragment: Bool = false, id: Int = 0x1234
    ) -> [UInt8] {
        let l4 = l4(proto: proto, sourcePort: sourcePort, destinationPort: destinationPort, payload: payload, tcpFlags: tcpFlags, seed: sourcePort)
        var h: [UInt8] = [0x45, 0] + be16(20 + l4.count) + be16(id) + [dontFragment ? 0x40 : 0, 0, 64, proto, 0, 0]
        h += ipv4Bytes(source) + ipv4Bytes(destination)
        let c = checksum(h[0..<20])
        h[10] = UInt8(c >> 8)
        h[11] = UInt8(c & 0xFF)
        return h + l4
    }

    static func ipv6(
        source: String, destination: String, proto: UInt8, sourcePort: Int, destinationPort: Int, payload: Int = 32,
        tcpFlags: UInt8 = 0x02
    ) -> [UInt8] {
        let l4 = l4(proto: proto, sourcePort: sourcePort, destinationPort: destinationPort, payload: payload, tcpFlags: tcpFlags, seed: sourcePort)
        return [0x60, 0, 0, 0] + be16(l4.count) + [proto, 64] + ipv6Bytes(source) + ipv6Bytes(destination) + l4
    }

    /// What the forwarder's veth would carry: Ethernet (client MAC -> forwarder MAC) + packet.
    static func frame(_ packet: [UInt8]) -> [UInt8] {
        let type: [UInt8] = packet[0] >> 4 == 6 ? [0x86, 0xDD] : [0x08, 0x00]
        return [0x02, 0x00, 0x5e, 0x12, 0x00, 0x01, 0x02, 0x00, 0x5e, 0x12, 0x00, 0x02] + type + packet
    }

    /// The IP packet of an Ethernet frame (nil when not IPv4/IPv6).
    static func ipPacket(ofFrame f: [UInt8]) -> [UInt8]? {
        guard f.count > 14 else { return nil }
        let type = Int(f[12]) << 8 | Int(f[13])
        guard type == 0x0800 || type == 0x86DD else { return nil }
        return Array(f[14...])
    }

    /// Whether two IP packets are equal, ignoring the IPv4 identification and header checksum
    /// (the kernel fills both in for raw sends whose identification is 0).
    static func sameExceptIPv4IDAndChecksum(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count, !a.isEmpty else { return false }
        if a[0] >> 4 != 4 { return a == b }
        for i in 0..<a.count where !(4...5).contains(i) && !(10...11).contains(i) {
            if a[i] != b[i] { return false }
        }
        return true
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

/// What the offline data plane does with the same frames: the live forwarder must agree.
final class OfflineForwarder {
    let dataplane: Dataplane
    let snapshot: ForwardingSnapshot

    init(_ config: DataplaneConfig) throws {
        snapshot = try ForwardingSnapshot(config: config)
        dataplane = Dataplane(snapshot: snapshot)
    }

    /// The verdict and output bytes for one client packet.
    func process(_ packet: [UInt8], now: UInt64 = 1_000_000_000) -> (verdict: Verdict, output: [UInt8]) {
        let frame = Packets.frame(packet)
        let headroom = 64
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: headroom + frame.count, alignment: 16)
        defer { buffer.deallocate() }
        frame.withUnsafeBytes { (buffer + headroom).copyMemory(from: $0.baseAddress!, byteCount: frame.count) }
        let v = dataplane.process(base: buffer, offset: headroom, length: frame.count, linkType: .ethernet, now: now)
        let out = [UInt8](UnsafeRawBufferPointer(start: buffer + v.outputOffset, count: v.outputLength))
        return (v, out)
    }
}
