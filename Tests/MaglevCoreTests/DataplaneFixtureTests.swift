// Packet fixtures, Katran style: each case is a description, an input frame, the expected
// verdict and the expected output packet, compared byte for byte (a hex diff on failure).
// Expected outputs are built independently with FrameBuilder (its own header and checksum
// code), not with the encoder under test. Every VIP here has a single backend, so the backend
// of every case is known without consulting a table.
import Testing

@testable import MaglevCore

/// The fixture world: one forwarder, four VIPs covering every inner/outer family pair.
enum FixtureWorld {
    static let forwarder4 = "198.18.0.2"
    static let forwarder6 = "2001:db8::2"
    static let client4 = "198.18.200.7"
    static let client6 = "2001:db8:c::7"
    static let router4 = "198.18.250.1"
    static let router6 = "2001:db8:ff::1"

    static let web4 = "198.19.0.10"  // TCP 80 -> backend a4 (IPv4)
    static let dns4 = "198.19.0.11"  // any protocol -> backend b6 (IPv6)
    static let web6 = "2001:db8:100::10"  // TCP 443 -> backend c6 (IPv6)
    static let any6 = "2001:db8:100::11"  // any protocol -> backend d4 (IPv4)

    static let backends = ["a4": "198.18.1.1", "b6": "2001:db8:1::1", "c6": "2001:db8:1::2", "d4": "198.18.1.2"]

    static func config(pathMTU: Int = 1500) -> DataplaneConfig {
        func b(_ name: String) -> [BackendConfig] { [BackendConfig(name: name, address: IPAddress(backends[name]!)!)] }
        return DataplaneConfig(
            vips: [
                VIPConfig(name: "web4", address: IPAddress(web4)!, proto: IPProtocol.tcp, port: 80, backends: b("a4")),
                VIPConfig(name: "dns4", address: IPAddress(dns4)!, backends: b("b6")),
                VIPConfig(name: "web6", address: IPAddress(web6)!, proto: IPProtocol.tcp, port: 443, backends: b("c6")),
                VIPConfig(name: "any6", address: IPAddress(any6)!, backends: b("d4")),
            ],
            tableSize: 251, hashSeed: 7, pathMTU: pathMTU, encapSourceIPv4: IPAddress(forwarder4)!,
            encapSourceIPv6: IPAddress(forwarder6)!)
    }

    /// The GRE packet the forwarder must send for `inner` to `backend`, built with FrameBuilder.
    static func gre(_ inner: [UInt8], to backend: String, trafficClass: UInt8 = 0) -> [UInt8] {
        let backendAddress = backends[backend]!
        let innerIPv6 = inner[0] >> 4 == 6
        let greHeader: [UInt8] = [0, 0, innerIPv6 ? 0x86 : 0x08, innerIPv6 ? 0xDD : 0x00]
        if backendAddress.contains(":") {
            let key: FlowKey
            if case .parsed(let p) = FrameBuilder.parse(inner, linkType: .rawIP) { key = p.key } else { return [] }
            let label = UInt32(truncatingIfNeeded: FlowHash.hash(key, seed: 7)) & 0xF_FFFF
            return FrameBuilder.ip(forwarder6, backendAddress, proto: IPProtocol.gre).payload(greHeader + inner)
                .ipv6 {
                    $0.trafficClass = trafficClass
                    $0.flowLabel = label
                    $0.hopLimit = 64
                }.ipPacket
        }
        return FrameBuilder.ip(forwarder4, backendAddress, proto: IPProtocol.gre).payload(greHeader + inner)
            .ipv4 {
                $0.tos = trafficClass
                $0.ttl = 64
                $0.dontFragment = true
                $0.identification = 0
            }.ipPacket
    }
}

struct Fixture: CustomStringConvertible {
    enum Expect {
        case forward(backend: String, output: [UInt8])
        case icmp(output: [UInt8])
        case pass(DropReason)
        case drop(DropReason)
    }
    var description: String
    var frame: [UInt8]
    var linkType: LinkType = .ethernet
    var expect: Expect
    var pathMTU: Int = 1500
}

/// Hex dump of two byte strings, marking the lines that differ.
func hexDiff(_ got: [UInt8], _ want: [UInt8]) -> String {
    func hex(_ b: ArraySlice<UInt8>) -> String {
        b.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: " ")
    }
    var lines = ["got \(got.count) bytes, want \(want.count) bytes"]
    var offset = 0
    while offset < max(got.count, want.count) {
        let g = got[min(offset, got.count)..<min(offset + 16, got.count)]
        let w = want[min(offset, want.count)..<min(offset + 16, want.count)]
        let mark = Array(g) == Array(w) ? "  " : "! "
        let off = String(offset, radix: 16)
        lines.append("\(mark)\(String(repeating: "0", count: max(0, 4 - off.count)) + off)  got  \(hex(g))")
        if mark != "  " {
            lines.append("        want \(hex(w))")
        }
        offset += 16
    }
    return lines.joined(separator: "\n")
}

/// Runs one frame through a fresh data plane with 64 bytes of headroom.
func runFixture(_ frame: [UInt8], linkType: LinkType, config: DataplaneConfig, offset: Int = 64)
    -> (Verdict, [UInt8], ForwardingSnapshot)
{
    let snapshot = try! ForwardingSnapshot(config: config)
    let dataplane = Dataplane(snapshot: snapshot, connectionCapacity: 64, fragmentCapacity: 16)
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: offset + frame.count + 1, alignment: 16)
    defer { buffer.deallocate() }
    frame.withUnsafeBytes { (buffer + offset).copyMemory(from: $0.baseAddress!, byteCount: frame.count) }
    let v = dataplane.process(base: buffer, offset: offset, length: frame.count, linkType: linkType, now: 5_000_000_000)
    var output: [UInt8] = []
    if v.action == .forward || v.action == .icmpReply {
        precondition(v.outputOffset >= 0 && v.outputOffset + v.outputLength <= offset + frame.count)
        output = Array(UnsafeRawBufferPointer(start: buffer + v.outputOffset, count: v.outputLength))
    }
    return (v, output, snapshot)
}

enum Fixtures {
    typealias W = FixtureWorld

    static var all: [Fixture] {
        var cases: [Fixture] = []
        let syn4 = FrameBuilder.tcp(W.client4, 40000, W.web4, 80, flags: TCPFlags.syn)
        cases.append(.init(description: "TCP SYN over IPv4, IPv4 backend", frame: syn4.bytes, expect: .forward(backend: "a4", output: W.gre(syn4.ipPacket, to: "a4"))))
        let udp4 = FrameBuilder.udp(W.client4, 5353, W.dns4, 53).payload(40)
        cases.append(.init(description: "UDP over IPv4, IPv6 backend", frame: udp4.bytes, expect: .forward(backend: "b6", output: W.gre(udp4.ipPacket, to: "b6"))))
        let tcp6 = FrameBuilder.tcp(W.client6, 50000, W.web6, 443, flags: TCPFlags.ack).payload(100)
        cases.append(.init(description: "TCP over IPv6, IPv6 backend", frame: tcp6.bytes, expect: .forward(backend: "c6", output: W.gre(tcp6.ipPacket, to: "c6"))))
        let udp6 = FrameBuilder.udp(W.client6, 5353, W.any6, 53).payload(33)
        cases.append(.init(description: "UDP over IPv6, IPv4 backend", frame: udp6.bytes, expect: .forward(backend: "d4", output: W.gre(udp6.ipPacket, to: "d4"))))
        cases.append(.init(description: "raw IP input (no link layer)", frame: syn4.rawIP().bytes, linkType: .rawIP, expect: .forward(backend: "a4", output: W.gre(syn4.ipPacket, to: "a4"))))
        cases.append(.init(description: "802.1Q tag is stripped, inner unchanged", frame: syn4.vlan(100).bytes, expect: .forward(backend: "a4", output: W.gre(syn4.ipPacket, to: "a4"))))
        cases.append(.init(description: "QinQ (802.1ad + 802.1Q)", frame: tcp6.vlan(10, tpid: 0x88A8).vlan(20).bytes, expect: .forward(backend: "c6", output: W.gre(tcp6.ipPacket, to: "c6"))))
        cases.append(.init(description: "MPLS labels", frame: udp4.mpls(16).mpls(17).bytes, expect: .forward(backend: "b6", output: W.gre(udp4.ipPacket, to: "b6"))))
        let padded = FrameBuilder.udp(W.client4, 1000, W.dns4, 53).payload(2)
        cases.append(.init(description: "Ethernet padding is not forwarded", frame: padded.padded(to: 60).bytes, expect: .forward(backend: "b6", output: W.gre(padded.ipPacket, to: "b6"))))
        let tosTTL = FrameBuilder.tcp(W.client4, 40001, W.web4, 80, flags: TCPFlags.ack).payload(10).ipv4 {
            $0.tos = 0xB8
            $0.ttl = 1
            $0.dontFragment = true
        }
        cases.append(.init(description: "TTL 1 and TOS 0xB8 kept inside; outer TOS copies the inner", frame: tosTTL.bytes, expect: .forward(backend: "a4", output: W.gre(tosTTL.ipPacket, to: "a4", trafficClass: 0xB8))))
        let tc6 = tcp6.ipv6 {
            $0.trafficClass = 0x2E
            $0.hopLimit = 1
            $0.flowLabel = 0xABCDE
        }
        cases.append(.init(description: "IPv6 traffic class copied outward, hop limit and flow label kept inside", frame: tc6.bytes, expect: .forward(backend: "c6", output: W.gre(tc6.ipPacket, to: "c6", trafficClass: 0x2E))))
        let options = syn4.ipv4 { $0.options = [0x94, 0x04, 0x00, 0x00] }  // router alert
        cases.append(.init(description: "IPv4 options", frame: options.bytes, expect: .forward(backend: "a4", output: W.gre(options.ipPacket, to: "a4"))))
        let chain = FrameBuilder.tcp(W.client6, 50001, W.web6, 443, flags: TCPFlags.syn)
            .extensionHeaders([.hopByHop(), .routing(segmentsLeft: 0, addresses: [IPAddress(W.web6)!]), .destinationOptions()])
        cases.append(.init(description: "IPv6 extension chain: hop-by-hop, routing, destination options", frame: chain.bytes, expect: .forward(backend: "c6", output: W.gre(chain.ipPacket, to: "c6"))))

        // Fragments: every fragment is forwarded unchanged to the VIP's backend.
        let bigUDP4 = FrameBuilder.udp(W.client4, 4000, W.dns4, 53).payload(60).ipv4 { $0.identification = 0x1234 }
        for (i, f) in bigUDP4.ipv4Fragments(payloadPerFragment: 24).enumerated() {
            let ip = Array(f[14...])
            cases.append(.init(description: "IPv4 fragment \(i)", frame: f, expect: .forward(backend: "b6", output: W.gre(ip, to: "b6"))))
        }
        let bigUDP6 = FrameBuilder.udp(W.client6, 4000, W.any6, 53).payload(60)
        for (i, f) in bigUDP6.ipv6Fragments(payloadPerFragment: 24, identification: 99).enumerated() {
            let ip = Array(f[14...])
            cases.append(.init(description: "IPv6 fragment \(i)", frame: f, expect: .forward(backend: "d4", output: W.gre(ip, to: "d4"))))
        }

        // ICMP errors about a flow go to that flow's backend.
        let reply4 = FrameBuilder.tcp(W.web4, 80, W.client4, 40000, flags: TCPFlags.syn | TCPFlags.ack)
        let unreach = FrameBuilder.icmp(W.router4, W.web4, .destinationUnreachable(code: 1, quoting: reply4))
        cases.append(.init(description: "ICMP unreachable quoting a VIP flow", frame: unreach.bytes, expect: .forward(backend: "a4", output: W.gre(unreach.ipPacket, to: "a4"))))
        let reply6 = FrameBuilder.tcp(W.web6, 443, W.client6, 50000, flags: TCPFlags.ack).payload(1300)
        let ptb = FrameBuilder.icmp(W.router6, W.web6, .packetTooBig(mtu: 1280, quoting: reply6, quoteLength: 1232))
        cases.append(.init(description: "ICMPv6 packet too big quoting a VIP flow", frame: ptb.bytes, expect: .forward(backend: "c6", output: W.gre(ptb.ipPacket, to: "c6"))))
        let echo6 = FrameBuilder.icmp(W.client6, W.any6, .echoRequest(id: 77)).payload(16)
        cases.append(.init(description: "ICMPv6 echo to an any-protocol VIP", frame: echo6.bytes, expect: .forward(backend: "d4", output: W.gre(echo6.ipPacket, to: "d4"))))

        // Too big once encapsulated (path MTU 1500).
        let big4 = FrameBuilder.tcp(W.client4, 40002, W.web4, 80, flags: TCPFlags.ack).payload(1440).ipv4 { $0.dontFragment = true }
        let frag4 = FrameBuilder.icmp(W.web4, W.client4, .packetTooBig(mtu: 1476, quoting: big4.quote(548)))
        cases.append(.init(description: "IPv4 with DF, 1480 bytes + 24 > 1500: fragmentation needed", frame: big4.bytes, expect: .icmp(output: frag4.ipPacket)))
        let bigNoDF = big4.ipv4 { $0.dontFragment = false }
        cases.append(.init(description: "IPv4 without DF, too big: dropped", frame: bigNoDF.bytes, expect: .drop(.packetTooBigNoDF)))
        let fits4 = FrameBuilder.tcp(W.client4, 40003, W.web4, 80, flags: TCPFlags.ack).payload(1436).ipv4 { $0.dontFragment = true }
        cases.append(.init(description: "IPv4 of exactly 1500 - 24 bytes fits", frame: fits4.bytes, expect: .forward(backend: "a4", output: W.gre(fits4.ipPacket, to: "a4"))))
        let big6 = FrameBuilder.tcp(W.client6, 50002, W.web6, 443, flags: TCPFlags.ack).payload(1420)
        let ptb6 = FrameBuilder.icmp(W.web6, W.client6, .packetTooBig(mtu: 1456, quoting: big6.quote(1232)))
        cases.append(.init(description: "IPv6, 1480 bytes + 44 > 1500: packet too big", frame: big6.bytes, expect: .icmp(output: ptb6.ipPacket)))

        // Not ours.
        cases.append(.init(description: "not a VIP", frame: FrameBuilder.tcp(W.client4, 1, "198.19.0.99", 80, flags: TCPFlags.syn).bytes, expect: .pass(.unknownVIP)))
        cases.append(.init(description: "VIP address, other port", frame: FrameBuilder.tcp(W.client4, 1, W.web4, 81, flags: TCPFlags.syn).bytes, expect: .pass(.unknownVIP)))
        cases.append(.init(description: "VIP address, other protocol", frame: FrameBuilder.udp(W.client4, 1, W.web4, 80).bytes, expect: .pass(.unknownVIP)))
        cases.append(.init(description: "ARP", frame: FrameBuilder.nonIP(etherType: 0x0806, body: Array(repeating: 0, count: 28)).bytes, expect: .pass(.notIP)))

        // Malformed.
        cases.append(.init(description: "IPv4 header cut short", frame: Array(syn4.bytes.prefix(14 + 12)), expect: .drop(.truncatedIPv4Header)))
        cases.append(.init(description: "frame shorter than the IPv4 total length", frame: Array(udp4.bytes.dropLast(10)), expect: .drop(.truncatedPacket)))
        cases.append(.init(description: "bad IP version", frame: syn4.ipv4 { $0.version = 5 }.bytes, expect: .drop(.badIPVersion)))
        return cases
    }
}

@Suite struct DataplaneFixtureTests {
    @Test(arguments: Fixtures.all)
    func fixture(_ f: Fixture) {
        let (v, output, snapshot) = runFixture(f.frame, linkType: f.linkType, config: FixtureWorld.config(pathMTU: f.pathMTU))
        switch f.expect {
        case .forward(let backend, let want):
            #expect(v.action == .forward, "\(f.description): \(v.label)")
            if v.backend >= 0 { #expect(snapshot.backendNames[Int(v.backend)] == backend, "\(f.description)") }
            #expect(output == want, "\(f.description)\n\(hexDiff(output, want))")
            #expect(v.outputIsIPv6 == FixtureWorld.backends[backend]!.contains(":"))
        case .icmp(let want):
            #expect(v.action == .icmpReply, "\(f.description): \(v.label)")
            #expect(output == want, "\(f.description)\n\(hexDiff(output, want))")
        case .pass(let reason):
            #expect(v.action == .pass && v.reason == reason, "\(f.description): \(v.label)")
        case .drop(let reason):
            #expect(v.action == .drop && v.reason == reason, "\(f.description): \(v.label)")
        }
    }

    /// Every prefix of every fixture goes through `process` without a trap, and whatever it
    /// writes stays inside the buffer.
    @Test func everyPrefixIsSafe() {
        for f in Fixtures.all {
            for length in 0...f.frame.count {
                let (v, _, _) = runFixture(Array(f.frame.prefix(length)), linkType: f.linkType, config: FixtureWorld.config())
                if length < f.frame.count, case .forward = f.expect, f.frame.count - length > 0 {
                    // A cut frame is never forwarded as if whole.
                    #expect(v.action != .forward || v.outputLength < f.frame.count + 44, "\(f.description) at \(length)")
                }
            }
        }
    }
}

extension Fixture: Sendable {}
extension Fixture.Expect: Sendable {}
