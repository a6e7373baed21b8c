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
    static let rewriter = LabRewriter(
        vip4: vip4, vip6: vip6, sourceMAC: [2, 0, 0, 0, 0, 1], destinationMAC: [2, 0, 0, 0, 0, 2])

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

    @Test("TCP goes to the lab's VIP of its family with correct checksums; the rest is skipped by reason")
    func rewritesOntoTheVIPs() throws {
        let path = temporaryPath("lab-rewritten.pcap")
        defer { removeFile(path) }
        let (frames, skipped) = try Self.rewriteMixed(to: path)
        #expect(frames.count > 1000)
        #expect((skipped["not TCP"] ?? 0) > 0)
        #expect((skipped["ICMP error"] ?? 0) > 0)
        var ipv6 = 0
        for frame in frames {
            #expect(Array(frame[0..<12]) == [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1])
            let parsed = try frame.withUnsafeBytes { b throws -> ParsedPacket in
                guard case .parsed(let p) = PacketParser.parse(b, linkType: .ethernet) else {
                    throw CaptureError(file: "", packetNumber: nil, message: "unparsable")
                }
                return p
            }
            #expect(parsed.l3Offset == 14)  // untagged
            #expect(parsed.key.proto == IPProtocol.tcp && parsed.fragment == .none)
            let vip = parsed.isIPv6 ? Self.vip6 : Self.vip4
            #expect(parsed.key.destination == vip.address && parsed.key.destinationPort == vip.port)
            #expect(!parsed.key.source.isIn(network: IPAddress("198.18.0.0")!, prefixLength: 23))
            let l4 = parsed.l4Offset
            let end = 14 + parsed.l3Length
            var pseudo: [UInt8]
            if parsed.isIPv6 {
                ipv6 += 1
                let length = end - l4
                pseudo = Array(frame[22..<54]) + [0, 0, UInt8(length >> 8), UInt8(length & 0xFF), 0, 0, 0, 6]
            } else {
                #expect(LabRewriter.checksum(frame[14..<(14 + Int(frame[14] & 0x0F) * 4)]) == 0)
                pseudo = Array(frame[26..<34]) + [0, 6, UInt8((end - l4) >> 8), UInt8((end - l4) & 0xFF)]
            }
            #expect(LabRewriter.checksum(pseudo + frame[l4..<end]) == 0, "TCP checksum")
        }
        #expect(ipv6 > 0)
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
        #expect(bad.matched == result.flows - (result.predictedFlowsPerHost["host0"] ?? 0) - (result.predictedFlowsPerHost["host1"] ?? 0))
        #expect(bad.mismatches.count == 5)
        #expect(bad.mismatches.allSatisfy { $0.predicted != $0.received })

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
