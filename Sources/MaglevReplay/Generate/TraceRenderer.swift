// Turns the plan's records into frames, one at a time, in time order. Each flow's TCP sequence
// and acknowledgement numbers advance as its segments are written (the records of a flow come
// in order); everything else about a packet is drawn from a hash of (flow, packet), so it does
// not depend on what was written before.

import MaglevCore

struct TraceRenderer: ~Copyable {
    let flows: [FlowPlan]
    let random: TraceRandom
    var nextSequence: [UInt32]
    var nextAcknowledgement: [UInt32]
    let writer = FrameWriter()

    static let purposePayload: UInt64 = 10
    static let purposeAckAdvance: UInt64 = 11
    static let purposeICMP: UInt64 = 12
    static let purposeFragmentID: UInt64 = 13

    init(plan: TracePlan, seed: UInt64) {
        flows = plan.flows
        random = TraceRandom(seed: seed)
        nextSequence = flows.map { $0.clientISN }
        nextAcknowledgement = flows.map { $0.serverISN &+ 1 }
    }

    /// The frame for `record`, valid until the next call.
    mutating func render(_ record: PacketRecord) -> UnsafeRawBufferPointer {
        let flow = flows[Int(record.flow)]
        if record.isICMPError { return icmpError(record, flow) }
        if flow.isTCP { return tcp(record, flow) }
        return udp(record, flow)
    }

    /// Writes the Ethernet and IP headers for `l4Length` bytes of `proto` from the client to
    /// the VIP; returns where the transport header begins.
    private func clientHeaders(_ flow: FlowPlan, index: UInt32, proto: UInt8, l4Length: Int, dontFragment: Bool)
        -> Int
    {
        let vip = TraceAddresses.vip(tcp: flow.isTCP, ipv6: flow.isIPv6).address
        let p = writer.frame
        let l3 = writer.ethernet(vlan: flow.vlan, etherType: flow.isIPv6 ? 0x86DD : 0x0800)
        if flow.isIPv6 {
            FrameWriter.ipv6(
                p, at: l3, payloadLength: l4Length, nextHeader: proto, flowLabel: flow.flowLabel, source: flow.client,
                destination: vip)
            return l3 + 40
        }
        FrameWriter.ipv4(
            p, at: l3, totalLength: 20 + l4Length, identification: flow.ipID &+ UInt16(truncatingIfNeeded: index),
            fragment: dontFragment ? 0x4000 : 0, ttl: 64, proto: proto, source: flow.client, destination: vip)
        return l3 + 20
    }

    private mutating func tcp(_ record: PacketRecord, _ flow: FlowPlan) -> UnsafeRawBufferPointer {
        let f = Int(record.flow)
        let j = record.index
        let last = flow.packets - 1
        let h = random.hash(record.flow, j, Self.purposePayload)
        var flags: UInt16
        var payload = 0
        var sequence = nextSequence[f]
        var acknowledgement = nextAcknowledgement[f]
        if j == 0 {
            flags = 0x02  // SYN
            acknowledgement = 0
        } else if j == last {
            flags = flow.endsWithReset ? 0x14 : 0x11  // RST|ACK or FIN|ACK
        } else if j == 1 {
            flags = 0x10  // the handshake's ACK
        } else {
            if j == 2 {
                payload = 80 + Int(h % 320)  // the request
            } else {
                switch h % 100 {
                case 0..<60: payload = 0
                case 60..<90: payload = 1 + Int((h >> 8) % 300)
                default: payload = 536 + Int((h >> 16) % 913)
                }
            }
            flags = payload > 0 ? 0x18 : 0x10  // PSH|ACK or ACK
        }
        if j == 0 {
            sequence = flow.clientISN
            nextSequence[f] = flow.clientISN &+ 1
        } else {
            nextSequence[f] = sequence &+ UInt32(payload) &+ (flags & 0x01 != 0 ? 1 : 0)
            if j >= 2 {
                // The server's data, acknowledged as it arrives.
                nextAcknowledgement[f] = acknowledgement &+ UInt32(random.hash(record.flow, j, Self.purposeAckAdvance) % 4000)
            }
        }
        let headerLength = j == 0 ? 24 : 20
        let l4Length = headerLength + payload
        let vip = TraceAddresses.vip(tcp: true, ipv6: flow.isIPv6)
        let p = writer.frame
        let l4 = clientHeaders(flow, index: j, proto: IPProtocol.tcp, l4Length: l4Length, dontFragment: true)
        p.storeBE16(flow.clientPort, l4)
        p.storeBE16(vip.port, l4 + 2)
        p.storeBE32(sequence, l4 + 4)
        p.storeBE32(acknowledgement, l4 + 8)
        p.storeBE16(UInt16(headerLength / 4) << 12 | flags, l4 + 12)
        p.storeBE16(j == 0 ? 64240 : 502, l4 + 14)
        p.storeBE16(0, l4 + 16)
        p.storeBE16(0, l4 + 18)
        if j == 0 {
            p.storeBE16(0x0204, l4 + 20)  // MSS
            p.storeBE16(flow.isIPv6 ? 1440 : 1460, l4 + 22)
        }
        FrameWriter.payload(p, at: l4 + headerLength, count: payload, salt: UInt8(truncatingIfNeeded: h >> 40))
        let pseudo = FrameWriter.pseudoHeaderSum(
            source: flow.client, destination: vip.address, proto: IPProtocol.tcp, length: l4Length)
        p.storeBE16(FrameWriter.checksum(p + l4, count: l4Length, initial: pseudo), l4 + 16)
        return writer.bytes(count: l4 + l4Length)
    }

    private func udp(_ record: PacketRecord, _ flow: FlowPlan) -> UnsafeRawBufferPointer {
        let j = record.index
        let h = random.hash(record.flow, j, Self.purposePayload)
        let vip = TraceAddresses.vip(tcp: false, ipv6: flow.isIPv6)
        let fragmentBytes = TracePlan.fragmentBytes
        let datagramLength =
            record.parts == 1
            ? 8 + 20 + Int(h % 480)
            : fragmentBytes * (Int(record.parts) - 1) + 1 + Int(h % UInt64(fragmentBytes))
        // The whole datagram first (its checksum covers every fragment), then the part wanted.
        let d = writer.datagram
        d.storeBE16(flow.clientPort, 0)
        d.storeBE16(vip.port, 2)
        d.storeBE16(UInt16(datagramLength), 4)
        d.storeBE16(0, 6)
        FrameWriter.payload(d, at: 8, count: datagramLength - 8, salt: UInt8(truncatingIfNeeded: h >> 40))
        let pseudo = FrameWriter.pseudoHeaderSum(
            source: flow.client, destination: vip.address, proto: IPProtocol.udp, length: datagramLength)
        var checksum = FrameWriter.checksum(d, count: datagramLength, initial: pseudo)
        if checksum == 0 { checksum = 0xFFFF }  // 0 means "no checksum" in UDP
        d.storeBE16(checksum, 6)

        let p = writer.frame
        if record.parts == 1 {
            let l4 = clientHeaders(flow, index: j, proto: IPProtocol.udp, l4Length: datagramLength, dontFragment: false)
            (p + l4).copyMemory(from: d, byteCount: datagramLength)
            return writer.bytes(count: l4 + datagramLength)
        }
        let offset = Int(record.part) * fragmentBytes
        let size = min(fragmentBytes, datagramLength - offset)
        let more = record.part + 1 < record.parts
        let l3 = writer.ethernet(vlan: flow.vlan, etherType: flow.isIPv6 ? 0x86DD : 0x0800)
        var data: Int
        if flow.isIPv6 {
            FrameWriter.ipv6(
                p, at: l3, payloadLength: 8 + size, nextHeader: 44, flowLabel: flow.flowLabel, source: flow.client,
                destination: vip.address)
            p.storeBE8(IPProtocol.udp, l3 + 40)
            p.storeBE8(0, l3 + 41)
            p.storeBE16(UInt16(offset) | (more ? 1 : 0), l3 + 42)
            p.storeBE32(
                UInt32(truncatingIfNeeded: random.hash(record.flow, j, Self.purposeFragmentID)), l3 + 44)
            data = l3 + 48
        } else {
            FrameWriter.ipv4(
                p, at: l3, totalLength: 20 + size, identification: flow.ipID &+ UInt16(truncatingIfNeeded: j),
                fragment: (more ? 0x2000 : 0) | UInt16(offset / 8), ttl: 64, proto: IPProtocol.udp,
                source: flow.client, destination: vip.address)
            data = l3 + 20
        }
        (p + data).copyMemory(from: d + offset, byteCount: size)
        return writer.bytes(count: data + size)
    }

    /// An ICMP error from the router to the VIP about a packet of the reverse flow.
    private func icmpError(_ record: PacketRecord, _ flow: FlowPlan) -> UnsafeRawBufferPointer {
        let h = random.hash(record.flow, record.index, Self.purposeICMP)
        let vip = TraceAddresses.vip(tcp: flow.isTCP, ipv6: flow.isIPv6)
        let proto = flow.isTCP ? IPProtocol.tcp : IPProtocol.udp
        let tooBig = h & 1 == 0
        let p = writer.frame
        let l3 = writer.ethernet(vlan: flow.vlan, etherType: flow.isIPv6 ? 0x86DD : 0x0800)
        let ipHeader = flow.isIPv6 ? 40 : 20
        let icmp = l3 + ipHeader
        let quote = icmp + 8
        // The quoted transport header: 8 bytes in ICMP (RFC 792), the whole of it in ICMPv6.
        let quotedL4 = flow.isIPv6 && flow.isTCP ? 20 : 8
        let quotedClaim = tooBig ? 1500 : ipHeader + (flow.isTCP ? 20 : 8) + 100
        if flow.isIPv6 {
            FrameWriter.ipv6(
                p, at: quote, payloadLength: quotedClaim - 40, nextHeader: proto, flowLabel: 0,
                source: vip.address, destination: flow.client)
        } else {
            FrameWriter.ipv4(
                p, at: quote, totalLength: quotedClaim, identification: UInt16(truncatingIfNeeded: h >> 16),
                fragment: flow.isTCP ? 0x4000 : 0, ttl: 62, proto: proto, source: vip.address,
                destination: flow.client)
        }
        let ql4 = quote + ipHeader
        p.storeBE16(vip.port, ql4)
        p.storeBE16(flow.clientPort, ql4 + 2)
        if flow.isTCP {
            p.storeBE32(flow.serverISN &+ 1 &+ UInt32(truncatingIfNeeded: h >> 32) % 100_000, ql4 + 4)
            if quotedL4 == 20 {
                p.storeBE32(flow.clientISN &+ 1, ql4 + 8)
                p.storeBE16(5 << 12 | 0x10, ql4 + 12)
                p.storeBE16(502, ql4 + 14)
                p.storeBE32(UInt32(truncatingIfNeeded: h >> 24) & 0xFFFF_0000, ql4 + 16)
            }
        } else {
            p.storeBE16(UInt16(quotedClaim - ipHeader), ql4 + 4)
            p.storeBE16(UInt16(truncatingIfNeeded: h >> 48), ql4 + 6)
        }
        let icmpLength = 8 + ipHeader + quotedL4
        if flow.isIPv6 {
            p.storeBE8(tooBig ? 2 : 1, icmp)  // packet too big, or destination unreachable
            p.storeBE8(tooBig ? 0 : 3, icmp + 1)  // (address unreachable)
            p.storeBE16(0, icmp + 2)
            p.storeBE32(tooBig ? 1280 : 0, icmp + 4)
            FrameWriter.ipv6(
                p, at: l3, payloadLength: icmpLength, nextHeader: IPProtocol.icmpv6, flowLabel: 0,
                source: TraceAddresses.routerIPv6, destination: vip.address)
            let pseudo = FrameWriter.pseudoHeaderSum(
                source: TraceAddresses.routerIPv6, destination: vip.address, proto: IPProtocol.icmpv6,
                length: icmpLength)
            p.storeBE16(FrameWriter.checksum(p + icmp, count: icmpLength, initial: pseudo), icmp + 2)
        } else {
            p.storeBE8(3, icmp)  // destination unreachable
            p.storeBE8(tooBig ? 4 : 1, icmp + 1)  // fragmentation needed, or host unreachable
            p.storeBE16(0, icmp + 2)
            p.storeBE16(0, icmp + 4)
            p.storeBE16(tooBig ? 1400 : 0, icmp + 6)  // next-hop MTU
            FrameWriter.ipv4(
                p, at: l3, totalLength: 20 + icmpLength, identification: UInt16(truncatingIfNeeded: h >> 32),
                fragment: 0, ttl: 64, proto: IPProtocol.icmp, source: TraceAddresses.routerIPv4,
                destination: vip.address)
            p.storeBE16(FrameWriter.checksum(p + icmp, count: icmpLength), icmp + 2)
        }
        return writer.bytes(count: icmp + icmpLength)
    }
}
