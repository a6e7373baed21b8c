import Glibc
import MaglevConfig
import MaglevCore
import Testing

@testable import MaglevReplay

/// `Tools/lab replay`'s offline pieces: the rewriter that moves a trace onto the lab's VIPs,
/// and the flow-by-flow comparison of replay decisions with what backend hosts captured.
@Suite("Lab replay: rewrite and delivery check")
struct LabTraceTests {
    static let vip4 = (address: IPAddress("198.19.0.10")!, port: UInt16(80))
    static let vip6 = (address: IPAddress("2001:db8:100::10")!, port: UInt16(80))
    static let udpVIP4 = (address: IPAddress("198.19.0.11")!, port: UInt16(53))
    static let udpVIP6 = (address: IPAddress("2001:db8:100::11")!, port: UInt16(53))
    static let rewriter = LabRewriter(
        vip4: vip4, vip6: vip6, udpVIP4: udpVIP4, udpVIP6: udpVIP6,
        sourceMAC: [2, 0, 0, 0, 0, 1], destinationMAC: [2, 0, 0, 0, 0, 2])

    static func parse(_ frame: [UInt8]) throws -> ParsedPacket {
        try frame.withUnsafeBytes { b throws -> ParsedPacket in
            guard case .parsed(let p) = PacketParser.parse(b, linkType: .ethernet) else {
                throw CaptureError(file: "", packetNumber: nil, message: "unparsable")
            }
            return p
        }
    }

    /// The checksum over the pseudo header and `frame[l4..<end]`: 0 (or 0xFFFF) when correct.
    static func transportChecksum(_ frame: [UInt8], _ parsed: ParsedPacket, end: Int) -> UInt16 {
        let l4 = parsed.l4Offset
        let length = end - l4
        let proto = parsed.key.proto
        let pseudo: [UInt8] =
            parsed.isIPv6
            ? Array(frame[22..<54]) + [0, 0, UInt8(length >> 8), UInt8(length & 0xFF), 0, 0, 0, proto]
            : Array(frame[26..<34]) + [0, proto, UInt8(length >> 8), UInt8(length & 0xFF)]
        return LabRewriter.checksum(pseudo + frame[l4..<end])
    }

    /// Writes the rewritten frames of a mixed generated trace to `path`; returns the frames and
    /// the skip reasons.
    static func rewriteMixed(to path: String) throws -> (frames: [[UInt8]], skipped: [String: Int]) {
        let trace = path + ".source.pcap"  // per caller: the suite's tests run in parallel
        defer { removeFile(trace) }
        _ = try TraceGenerator.generate(mixedOptions(), to: trace)
        let reader = try CaptureReader(paths: [trace])
        let writer = try PcapWriter(path: path, linkType: .ethernet)
        var frames: [[UInt8]] = []
        var skipped: [String: Int] = [:]
        while let packet = try reader.next() {
            switch rewriter.rewrite(packet.bytes, linkType: packet.linkType) {
            case .frame(let f):
                frames.append(f)
                f.withUnsafeBytes { writer.write($0, timestampNs: packet.timestampNs) }
            case .skipped(let reason): skipped[reason, default: 0] += 1
            }
        }
        try writer.finish()
        return (frames, skipped)
    }

    @Test("TCP and UDP go to the lab's VIP of their protocol and family with correct checksums; the rest is skipped by reason")
    func rewritesOntoTheVIPs() throws {
        let path = temporaryPath("lab-rewritten.pcap")
        defer { removeFile(path) }
        let (frames, skipped) = try Self.rewriteMixed(to: path)
        #expect(frames.count > 1000)
        #expect((skipped["ICMP error"] ?? 0) > 0)
        var ipv6 = 0
        var udp = 0
        var fragments: [FragmentKind: Int] = [:]
        for frame in frames {
            #expect(Array(frame[0..<12]) == [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1])
            let parsed = try Self.parse(frame)
            #expect(parsed.l3Offset == 14)  // untagged
            let isTCP = parsed.key.proto == IPProtocol.tcp
            #expect(isTCP || parsed.key.proto == IPProtocol.udp)
            if !isTCP { udp += 1 }
            if parsed.isIPv6 { ipv6 += 1 }
            fragments[parsed.fragment, default: 0] += 1
            let vip = parsed.isIPv6 ? (isTCP ? Self.vip6 : Self.udpVIP6) : (isTCP ? Self.vip4 : Self.udpVIP4)
            #expect(parsed.key.destination == vip.address)
            #expect(!parsed.key.source.isIn(network: IPAddress("198.18.0.0")!, prefixLength: 23))
            if !parsed.isIPv6 {
                #expect(LabRewriter.checksum(frame[14..<(14 + Int(frame[14] & 0x0F) * 4)]) == 0)
            }
            guard parsed.fragment != .nonFirst else { continue }
            let l4 = parsed.l4Offset
            #expect(Int(frame[l4 + 2]) << 8 | Int(frame[l4 + 3]) == Int(vip.port))
            // A first fragment's checksum covers the whole datagram (`firstFragmentChecksums`).
            guard parsed.fragment == .none else { continue }
            #expect(parsed.key.destinationPort == vip.port)
            let end = isTCP ? 14 + parsed.l3Length : l4 + (Int(frame[l4 + 4]) << 8 | Int(frame[l4 + 5]))
            #expect([0, 0xFFFF].contains(Self.transportChecksum(frame, parsed, end: end)), "checksum")
        }
        #expect(ipv6 > 0)
        #expect(udp > 0)
        #expect((fragments[.first] ?? 0) > 0 && (fragments[.nonFirst] ?? 0) > 0)

        // Without UDP VIPs, UDP is skipped and named; without any IPv6 VIP, IPv6 too.
        let tcpOnly = LabRewriter(vip4: Self.vip4, vip6: nil, sourceMAC: [2, 0, 0, 0, 0, 1], destinationMAC: [2, 0, 0, 0, 0, 2])
        var reasons: [String: Int] = [:]
        let reader = try CaptureReader(paths: [path])
        while let packet = try reader.next() {
            if case .skipped(let reason) = tcpOnly.rewrite(packet.bytes, linkType: packet.linkType) {
                reasons[reason, default: 0] += 1
            }
        }
        #expect((reasons["UDP (no UDP VIP of its family)"] ?? 0) > 0)
        #expect((reasons["IPv6 (the lab has no IPv6 VIP)"] ?? 0) == ipv6)
    }

    @Test("a first fragment's checksum is adjusted as a full recomputation would give (RFC 1624)")
    func firstFragmentChecksums() throws {
        // The adjustment, applied to whole datagrams, must give what recomputing gives.
        let path = temporaryPath("lab-rewritten-adjust.pcap")
        defer { removeFile(path) }
        _ = try Self.rewriteMixed(to: path)
        let reader = try CaptureReader(paths: [path])
        var checked = 0
        var frames: [[UInt8]] = []
        while let packet = try reader.next() { frames.append(Array(packet.bytes)) }
        for frame in frames {
            let parsed = try Self.parse(frame)
            guard parsed.fragment == .none else { continue }
            let isTCP = parsed.key.proto == IPProtocol.tcp
            let at = parsed.l4Offset + (isTCP ? 16 : 6)
            let addresses = parsed.isIPv6 ? 22..<54 : 26..<34
            // Move the packet to other addresses and port, then compare.
            var moved = frame
            for i in addresses { moved[i] ^= 0x5A }
            moved[parsed.l4Offset + 2] ^= 0xA5
            moved[parsed.l4Offset + 3] ^= 0x0F
            let old = Array(frame[addresses]) + Array(frame[(parsed.l4Offset + 2)..<(parsed.l4Offset + 4)])
            let new = Array(moved[addresses]) + Array(moved[(parsed.l4Offset + 2)..<(parsed.l4Offset + 4)])
            let adjusted = LabRewriter.adjustedChecksum(
                UInt16(frame[at]) << 8 | UInt16(frame[at + 1]), old: old, new: new)
            moved[at] = UInt8(adjusted >> 8)
            moved[at + 1] = UInt8(adjusted & 0xFF)
            let end = isTCP ? 14 + parsed.l3Length : parsed.l4Offset + (Int(frame[parsed.l4Offset + 4]) << 8 | Int(frame[parsed.l4Offset + 5]))
            #expect([0, 0xFFFF].contains(Self.transportChecksum(moved, parsed, end: end)))
            checked += 1
        }
        #expect(checked > 1000)
    }

    @Test("sources in the lab's subnets move next door; unroutable sources are refused")
    func sources() {
        #expect(LabRewriter.movedOutOfLabSubnets(IPAddress("198.18.1.1")!) == IPAddress("198.18.3.1")!)
        #expect(LabRewriter.movedOutOfLabSubnets(IPAddress("198.18.0.10")!) == IPAddress("198.18.2.10")!)
        #expect(LabRewriter.movedOutOfLabSubnets(IPAddress("198.19.0.1")!) == IPAddress("198.19.0.1")!)
        #expect(LabRewriter.movedOutOfLabSubnets(IPAddress("2001:db8:1::5")!) == IPAddress("2001:db8:3::5")!)
        #expect(LabRewriter.movedOutOfLabSubnets(IPAddress("2001:db8:c::5")!) == IPAddress("2001:db8:c::5")!)
        #expect(LabRewriter.isRoutableSource(IPAddress("198.18.7.7")!))
        #expect(!LabRewriter.isRoutableSource(IPAddress("224.0.0.1")!))
        #expect(!LabRewriter.isRoutableSource(IPAddress("127.0.0.1")!))
        #expect(!LabRewriter.isRoutableSource(IPAddress("fe80::1")!))
        #expect(!LabRewriter.isRoutableSource(IPAddress("ff02::1")!))
        #expect(LabRewriter.isRoutableSource(IPAddress("2001:db8:c::1")!))
    }

    /// Replays the rewritten trace with 3 backends, writes the GRE output (`--out`) split by
    /// outer destination into one capture per backend, as backend hosts would record it.
    static func replayAndSplit(
        _ trace: String, decisions: String, forwarders: Int
    ) throws -> [DeliveryCheck.Host] {
        let out = temporaryPath("lab-out.pcap")
        defer { removeFile(out) }
        _ = try replay(trace, backends: 3, forwarders: forwarders, decisions: decisions, out: out)
        var writers: [IPAddress: PcapWriter] = [:]
        var hosts: [DeliveryCheck.Host] = []
        for i in 0..<3 {
            let address = MaglevConfigFile.catchAllBackendAddress(i)
            let path = temporaryPath("lab-host\(i).pcap")
            writers[address] = try PcapWriter(path: path)
            hosts.append(DeliveryCheck.Host(name: "host\(i)", backends: ["backend-\(i)"], capture: path))
        }
        let reader = try CaptureReader(paths: [out])
        while let packet = try reader.next() {
            guard case .parsed(let p) = PacketParser.parse(packet.bytes, linkType: packet.linkType),
                p.key.proto == IPProtocol.gre, let writer = writers[p.key.destination]
            else { continue }
            writer.write(packet.bytes, timestampNs: packet.timestampNs)
        }
        for writer in writers.values { try writer.finish() }
        return hosts
    }

    @Test("the replay's own GRE output matches its decisions flow by flow; swapped captures do not")
    func deliveryCheck() throws {
        let trace = temporaryPath("lab-trace.pcap")
        let decisions = temporaryPath("lab-decisions.csv")
        defer {
            removeFile(trace)
            removeFile(decisions)
            for i in 0..<3 { removeFile(temporaryPath("lab-host\(i).pcap")) }
        }
        _ = try Self.rewriteMixed(to: trace)
        let hosts = try Self.replayAndSplit(trace, decisions: decisions, forwarders: 2)
        let result = try DeliveryCheck.run(decisions: decisions, hosts: hosts)
        #expect(result.flows > 100)
        #expect(result.matched == result.flows)
        #expect(result.mismatches.isEmpty)
        #expect(result.receivedPackets == result.predictedPackets)
        #expect(result.liveFlowsPerForwarder.values.reduce(0, +) == result.flows)
        #expect(result.predictedFlowsPerHost == result.receivedFlowsPerHost)

        // Host 0 and host 1 swap captures: their flows now mismatch, host 2's still match.
        var swapped = hosts
        swapped[0].capture = hosts[1].capture
        swapped[1].capture = hosts[0].capture
        let bad = try DeliveryCheck.run(decisions: decisions, hosts: swapped, mismatchesKept: 5)
        #expect(bad.flows == result.flows)
        // A flow still matches when swapping the two hosts leaves its set of hosts as it was:
        // none of them, or both (a UDP flow's unfragmented packets hash on the 5-tuple, its
        // first fragments on the 3-tuple, so they may reach two hosts).
        let predicted = try DeliveryCheck.predictions(decisions: decisions, hosts: hosts)
        let swap = ["host0": "host1", "host1": "host0"]
        let unmoved = predicted.values.filter { Set($0.hosts.map { swap[$0] ?? $0 }) == $0.hosts }.count
        #expect(bad.matched == unmoved + result.flows - predicted.count)
        #expect(bad.matched < result.flows - (result.predictedFlowsPerHost["host0"] ?? 0))
        #expect(bad.mismatches.count == 5)
        #expect(bad.mismatches.allSatisfy { $0.predicted != $0.received })
        // UDP flows and fragments (3-tuple flows) on the wrong host do not match either.
        let every = try DeliveryCheck.run(decisions: decisions, hosts: swapped, mismatchesKept: .max)
        #expect(every.mismatches.count == every.flows - every.matched)
        #expect(every.mismatches.contains { $0.flow.proto == IPProtocol.udp && $0.flow.destinationPort != 0 })
        #expect(every.mismatches.contains { $0.flow.proto == IPProtocol.udp && $0.flow.destinationPort == 0 })

        // A host whose capture is missing a flow: that flow mismatches (predicted, not received).
        let empty = temporaryPath("lab-empty.pcap")
        defer { removeFile(empty) }
        try PcapWriter(path: empty).finish()
        var missing = hosts
        missing[2].capture = empty
        let lost = try DeliveryCheck.run(decisions: decisions, hosts: missing)
        #expect(lost.flows - lost.matched == result.predictedFlowsPerHost["host2"])
    }
}
