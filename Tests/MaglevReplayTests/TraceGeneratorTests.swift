import Glibc
import MaglevCore
import Testing

@testable import MaglevReplay

/// Generates to a temporary file and returns its bytes and the summary.
func generateTrace(_ options: TraceOptions, name: String) throws -> (bytes: [UInt8], summary: TraceSummary) {
    let path = temporaryPath(name)
    defer { removeFile(path) }
    let summary = try TraceGenerator.generate(options, to: path)
    return (readFile(path) ?? [], summary)
}

/// Reads a generated trace back through the capture reader.
func readTrace(_ options: TraceOptions, name: String) throws -> (packets: [ReadPacket], summary: TraceSummary) {
    let path = temporaryPath(name)
    defer { removeFile(path) }
    let summary = try TraceGenerator.generate(options, to: path)
    let (packets, error) = readAll(try CaptureReader(paths: [path]))
    #expect(error == nil)
    return (packets, summary)
}

func mixedOptions(seed: UInt64 = 7) -> TraceOptions {
    var o = TraceOptions()
    o.flows = 400
    o.packets = 6000
    o.seed = seed
    o.fragmentShare = 0.2
    o.icmpErrorShare = 0.02
    o.vlanShare = 0.25
    o.ipv6Share = 0.3
    o.tcpShare = 0.6
    return o
}

@Suite("Trace generator")
struct TraceGeneratorTests {
    @Test("the same seed gives the same bytes; another seed other bytes")
    func deterministic() throws {
        let a = try generateTrace(mixedOptions(seed: 7), name: "det-a.pcap")
        let b = try generateTrace(mixedOptions(seed: 7), name: "det-b.pcap")
        let c = try generateTrace(mixedOptions(seed: 8), name: "det-c.pcap")
        #expect(a.bytes.count > 24)
        #expect(a.bytes == b.bytes)
        #expect(a.summary == b.summary)
        #expect(a.bytes != c.bytes)
    }

    @Test("packet and flow counts are as asked; every frame parses; time goes forward")
    func countsAndParsing() throws {
        let options = mixedOptions()
        let (packets, summary) = try readTrace(options, name: "counts.pcap")
        #expect(summary.packets == options.packets)
        #expect(packets.count == options.packets)
        #expect(summary.flows == options.flows)
        #expect(summary.tcpFlows == 240)
        #expect(summary.icmpErrors == 120)
        #expect(summary.bytes == packets.reduce(0) { $0 + $1.bytes.count })
        var flows = Set<FlowKey>()
        var icmpErrors = 0
        var fragments = 0
        var vlanFrames = 0
        var previous: UInt64 = 0
        for p in packets {
            #expect(p.linkType == .ethernet)
            #expect(p.timestampNs >= previous)
            #expect(p.timestampNs >= TraceGenerator.startNs)
            #expect(p.timestampNs < TraceGenerator.startNs + 10_000_000_000)
            previous = p.timestampNs
            if p.bytes[12] == 0x81 { vlanFrames += 1 }
            guard case .parsed(let parsed) = p.parse() else {
                Issue.record("packet \(p.packetNumber) does not parse: \(p.parse())")
                continue
            }
            #expect(!parsed.isTruncated)
            if parsed.isICMPError {
                icmpErrors += 1
            } else if parsed.fragment == .none || parsed.fragment == .first {
                flows.insert(parsed.key)
            }
            if parsed.fragment != .none { fragments += 1 }
        }
        #expect(flows.count == options.flows)
        #expect(icmpErrors == summary.icmpErrors)
        #expect(fragments == summary.fragmentPackets)
        #expect(fragments > 0 && vlanFrames > 0)
        // Every ICMP error is about one of the flows.
        for p in packets {
            if case .parsed(let parsed) = p.parse(), parsed.isICMPError {
                #expect(flows.contains(parsed.key), "ICMP error about an unknown flow \(parsed.key)")
            }
        }
    }

    @Test("addresses and ports are the synthetic network's")
    func addresses() throws {
        let (packets, _) = try readTrace(mixedOptions(), name: "addresses.pcap")
        let vips: Set<String> = ["198.19.0.10", "198.19.0.11", "2001:db8:100::10", "2001:db8:100::11"]
        for p in packets {
            guard case .parsed(let parsed) = p.parse() else { continue }
            let k = parsed.key
            #expect(vips.contains(k.destination.description), "\(k)")
            if k.isIPv6 {
                #expect(k.source.high >> 16 == 0x2001_0DB8_000C)
            } else {
                #expect(k.source.ipv4Value >> 17 == 0xC612 >> 1)
            }
            if parsed.fragment != .nonFirst {
                #expect(k.sourcePort >= 32768 && k.sourcePort < 61000)
                #expect([80, 443, 53].contains(k.destinationPort))
            }
        }
    }

    @Test("TCP flows start with SYN and end with FIN or RST; sequence numbers advance")
    func tcpLifecycle() throws {
        var options = mixedOptions()
        options.zipfExponent = nil
        options.tcpShare = 1
        options.fragmentShare = 0
        options.icmpErrorShare = 0
        options.flows = 300
        options.packets = 3000
        let (packets, summary) = try readTrace(options, name: "tcp.pcap")
        #expect(summary.tcpFlows == 300)
        var byFlow: [FlowKey: [(flags: UInt8, seq: UInt32, payload: Int)]] = [:]
        for p in packets {
            guard case .parsed(let parsed) = p.parse() else { continue }
            let l4 = parsed.l4Offset
            let seq = p.bytes[l4 + 4..<l4 + 8].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let headerLength = Int(p.bytes[l4 + 12] >> 4) * 4
            let payload = parsed.l3Offset + parsed.l3Length - l4 - headerLength
            byFlow[parsed.key, default: []].append((parsed.tcpFlags, seq, payload))
        }
        #expect(byFlow.count == 300)
        var resets = 0
        for (key, segments) in byFlow {
            #expect(segments.count == 10, "\(key)")  // uniform: 3000 / 300
            #expect(segments.first?.flags == TCPFlags.syn, "\(key)")
            let last = segments.last!.flags
            #expect(last & (TCPFlags.fin | TCPFlags.rst) != 0, "\(key)")
            if last & TCPFlags.rst != 0 { resets += 1 }
            for s in segments.dropFirst().dropLast() {
                #expect(s.flags & (TCPFlags.syn | TCPFlags.fin | TCPFlags.rst) == 0)
                #expect(s.flags & TCPFlags.ack != 0)
            }
            for (a, b) in zip(segments, segments.dropFirst()) {
                let advance = a.flags & TCPFlags.syn != 0 ? 1 : a.payload
                #expect(b.seq == a.seq &+ UInt32(advance), "\(key)")
            }
        }
        #expect(resets > 0 && resets < 45)  // about 5% of 300
    }

    @Test("every checksum is right")
    func checksums() throws {
        let (packets, _) = try readTrace(mixedOptions(), name: "checksums.pcap")
        for p in packets {
            guard case .parsed(let parsed) = p.parse() else { continue }
            p.bytes.withUnsafeBytes { raw in
                let b = raw.baseAddress!
                let l3 = parsed.l3Offset
                if !parsed.isIPv6 {
                    #expect(FrameWriter.checksum(b + l3, count: 20) == 0, "IPv4 header of packet \(p.packetNumber)")
                }
                // Whole, unfragmented packets: the transport checksum over the pseudo header.
                guard parsed.fragment == .none else { return }
                let proto = parsed.isIPv6 ? b.load(fromByteOffset: l3 + 6, as: UInt8.self) : b.load(fromByteOffset: l3 + 9, as: UInt8.self)
                let l4 = parsed.l4Offset
                let length = l3 + parsed.l3Length - l4
                let source = parsed.isICMPError ? (parsed.isIPv6 ? TraceAddresses.routerIPv6 : TraceAddresses.routerIPv4) : parsed.key.source
                let initial =
                    proto == IPProtocol.icmp
                    ? 0 : FrameWriter.pseudoHeaderSum(source: source, destination: parsed.key.destination, proto: proto, length: length)
                #expect(FrameWriter.checksum(b + l4, count: length, initial: initial) == 0, "packet \(p.packetNumber) proto \(proto)")
            }
        }
    }

    @Test("fragments reassemble to the datagram's length, with a good UDP checksum")
    func fragmentsReassemble() throws {
        var options = mixedOptions()
        options.tcpShare = 0
        options.icmpErrorShare = 0
        options.fragmentShare = 0.5
        let (packets, summary) = try readTrace(options, name: "fragments.pcap")
        #expect(summary.fragmentPackets > 100)
        // (source, id) -> (offset, bytes, more)
        struct Piece {
            var offset: Int
            var bytes: [UInt8]
            var more: Bool
        }
        var pieces: [String: [Piece]] = [:]
        var keys: [String: FlowKey] = [:]
        for p in packets {
            guard case .parsed(let parsed) = p.parse(), parsed.fragment != .none else { continue }
            let b = p.bytes
            let l3 = parsed.l3Offset
            var offset: Int
            var more: Bool
            var data: Int
            if parsed.isIPv6 {
                #expect(b[l3 + 6] == 44)
                let field = Int(b[l3 + 42]) << 8 | Int(b[l3 + 43])
                offset = field & ~7
                more = field & 1 == 1
                data = l3 + 48
            } else {
                let field = Int(b[l3 + 6]) << 8 | Int(b[l3 + 7])
                offset = (field & 0x1FFF) * 8
                more = field & 0x2000 != 0
                data = l3 + 20
                #expect(field & 0x4000 == 0)
            }
            let id = "\(parsed.key.source)/\(parsed.fragmentID)"
            pieces[id, default: []].append(Piece(offset: offset, bytes: Array(b[data..<l3 + parsed.l3Length]), more: more))
            if parsed.fragment == .first { keys[id] = parsed.key }
        }
        var datagrams = 0
        for (id, list) in pieces {
            let sorted = list.sorted { $0.offset < $1.offset }
            #expect(sorted.count == 2 || sorted.count == 3, "\(id)")
            var whole: [UInt8] = []
            for piece in sorted {
                #expect(piece.offset == whole.count, "\(id)")
                whole += piece.bytes
            }
            #expect(sorted.last?.more == false)
            #expect(sorted.dropLast().allSatisfy { $0.more && $0.bytes.count == 1400 })
            let udpLength = Int(whole[4]) << 8 | Int(whole[5])
            #expect(udpLength == whole.count, "\(id)")
            #expect(whole.count > 1400)
            let key = try #require(keys[id])
            let pseudo = FrameWriter.pseudoHeaderSum(
                source: key.source, destination: key.destination, proto: IPProtocol.udp, length: whole.count)
            whole.withUnsafeBytes { #expect(FrameWriter.checksum($0.baseAddress!, count: whole.count, initial: pseudo) == 0) }
            datagrams += 1
        }
        #expect(datagrams > 0)
        #expect(pieces.values.reduce(0) { $0 + $1.count } == summary.fragmentPackets)
    }

    @Test("Zipf sizes: the first flows are the largest; uniform: all equal")
    func sizes() {
        var o = TraceOptions()
        o.flows = 1000
        o.packets = 50_000
        let zipf = TracePlan(o)
        let sizes = zipf.flows.map { Int($0.packets) }
        #expect(sizes.reduce(0, +) == 50_000)
        #expect(sizes[0] > sizes[10] && sizes[10] > sizes[500])
        o.zipfExponent = nil
        o.tcpShare = 1
        let uniform = TracePlan(o)
        #expect(uniform.flows.allSatisfy { $0.packets == 50 })
        #expect(uniform.records.count == 50_000)
    }

    @Test("options that cannot be generated are refused with a reason")
    func badOptions() {
        var o = TraceOptions()
        o.flows = 100
        o.packets = 150  // 80 TCP flows need 160, 20 UDP flows 20
        #expect(o.problem?.contains("at least 180") == true)
        o.packets = 180
        #expect(o.problem == nil)
        o.ipv6Share = 1.5
        #expect(o.problem?.contains("ipv6 share") == true)
        o.ipv6Share = 0.2
        o.durationSeconds = 0
        #expect(o.problem != nil)
        #expect(throws: CaptureError.self) {
            var bad = TraceOptions()
            bad.flows = 0
            _ = try TraceGenerator.generate(bad, to: temporaryPath("never.pcap"))
        }
    }

    @Test("the smallest traces: one flow, one packet; flows with only their minimum")
    func smallest() throws {
        var o = TraceOptions()
        o.flows = 1
        o.packets = 1
        o.tcpShare = 0
        var (packets, _) = try readTrace(o, name: "one.pcap")
        #expect(packets.count == 1)
        o.flows = 50
        o.packets = 90
        o.tcpShare = 0.8
        (packets, _) = try readTrace(o, name: "minimum.pcap")
        #expect(packets.count == 90)
        for p in packets {
            guard case .parsed = p.parse() else {
                Issue.record("does not parse")
                continue
            }
        }
    }

    @Test("the sample traces in Traces/ are what their README commands make, byte for byte")
    func sampleTraces() throws {
        let traces = repositoryRoot + "/Traces"
        var mixed = TraceOptions()
        mixed.flows = 300
        mixed.packets = 3000
        mixed.fragmentShare = 0.1
        mixed.icmpErrorShare = 0.01
        mixed.vlanShare = 0.1
        var tcp = TraceOptions()
        tcp.flows = 1000
        tcp.packets = 4000
        tcp.zipfExponent = nil
        tcp.tcpShare = 1
        tcp.ipv6Share = 0
        for (name, options) in [("mixed-small.pcap", mixed), ("tcp-1k.pcap", tcp)] {
            guard let committed = readFile(traces + "/" + name) else {
                Issue.record("\(traces)/\(name) is missing")
                continue
            }
            let made = try generateTrace(options, name: "sample-" + name)
            #expect(made.bytes == committed, "\(name) differs from what the generator makes now: regenerate it")
        }
    }
}
