import Testing

@testable import MaglevCore

// Addresses used throughout: a client, a VIP, a router that sends ICMP errors.
private let client4 = "198.51.100.7"
private let vip4 = "192.0.2.10"
private let router4 = "203.0.113.1"
private let client6 = "2001:db8:1::7"
private let vip6 = "2001:db8::10"
private let router6 = "2001:db8:ff::1"

private func key(
    _ source: String, _ sourcePort: UInt16, _ destination: String, _ destinationPort: UInt16,
    _ proto: UInt8
) -> FlowKey {
    FlowKey(
        source: FrameBuilder.address(source), destination: FrameBuilder.address(destination),
        sourcePort: sourcePort, destinationPort: destinationPort, proto: proto)
}

/// A PPPoE session header (version 1, type 1, code 0, session 0x1234) and PPP protocol before
/// `body`.
private func pppoe(_ proto: UInt16, _ body: [UInt8]) -> [UInt8] {
    let length = body.count + 2
    return [0x11, 0x00, 0x12, 0x34, UInt8(length >> 8), UInt8(length & 0xFF), UInt8(proto >> 8), UInt8(proto & 0xFF)] + body
}

private func parse(_ frame: [UInt8], _ linkType: LinkType = .ethernet) -> ParseResult {
    FrameBuilder.parse(frame, linkType: linkType)
}

/// What a case expects of the parser.
enum ParserExpectation: Sendable {
    case parsed(Fields)
    case notIP
    case malformed(DropReason)

    struct Fields: Sendable {
        var key: FlowKey
        var l3Offset = 14
        var l4Offset: Int
        /// nil: the frame's bytes after `l3Offset`.
        var l3Length: Int? = nil
        /// nil: `l3Length`.
        var claimed: Int? = nil
        var fragment: FragmentKind = .none
        var fragmentID: UInt32 = 0
        var tcpFlags: UInt8 = 0
        var isICMPError = false
        /// nil: true for IPv6, false for IPv4.
        var dontFragment: Bool? = nil
        var trafficClass: UInt8 = 0
    }
}

struct ParserCase: Sendable, CustomTestStringConvertible {
    var name: String
    var frame: [UInt8]
    var linkType: LinkType = .ethernet
    var expected: ParserExpectation
    var testDescription: String { name }

    init(
        _ name: String, _ frame: [UInt8], _ linkType: LinkType = .ethernet,
        _ expected: ParserExpectation
    ) {
        self.name = name
        self.frame = frame
        self.linkType = linkType
        self.expected = expected
    }

    init(_ name: String, _ frame: FrameBuilder, _ expected: ParserExpectation) {
        self.init(name, frame.bytes, frame.link == .rawIP ? .rawIP : .ethernet, expected)
    }
}

private func describe(_ r: ParseResult) -> String { FrameBuilder.describe(r) }

// MARK: The cases

enum ParserCases {
    static let tcp4 = FrameBuilder.tcp(client4, 40000, vip4, 80, flags: TCPFlags.syn)
    static let udp4 = FrameBuilder.udp(client4, 5353, vip4, 53).payload(10)
    static let tcp6 = FrameBuilder.tcp(client6, 40000, vip6, 443, flags: TCPFlags.ack).payload(7)
    static let udp6 = FrameBuilder.udp(client6, 5353, vip6, 53).payload(3)
    static let tcp4Key = key(client4, 40000, vip4, 80, IPProtocol.tcp)
    static let udp4Key = key(client4, 5353, vip4, 53, IPProtocol.udp)
    static let tcp6Key = key(client6, 40000, vip6, 443, IPProtocol.tcp)
    static let udp6Key = key(client6, 5353, vip6, 53, IPProtocol.udp)
    /// Packets a backend sends back (VIP -> client): what ICMP errors quote.
    static let reply4 = FrameBuilder.tcp(vip4, 80, client4, 40000).payload(100)
    static let replyUDP4 = FrameBuilder.udp(vip4, 53, client4, 5353).payload(30)
    static let reply6 = FrameBuilder.tcp(vip6, 443, client6, 40000).payload(1300)
    static let replyUDP6 = FrameBuilder.udp(vip6, 53, client6, 5353).payload(30)

    static let basics: [ParserCase] = [
        ParserCase(
            "TCP/IPv4 SYN", tcp4,
            .parsed(.init(key: tcp4Key, l4Offset: 34, tcpFlags: TCPFlags.syn))),
        ParserCase("UDP/IPv4", udp4, .parsed(.init(key: udp4Key, l4Offset: 34))),
        ParserCase(
            "TCP/IPv6", tcp6, .parsed(.init(key: tcp6Key, l4Offset: 54, tcpFlags: TCPFlags.ack))),
        ParserCase("UDP/IPv6", udp6, .parsed(.init(key: udp6Key, l4Offset: 54))),
        ParserCase(
            "SCTP/IPv4", FrameBuilder.sctp(client4, 5000, vip4, 5001).payload(16),
            .parsed(.init(key: key(client4, 5000, vip4, 5001, IPProtocol.sctp), l4Offset: 34))),
        ParserCase(
            "SCTP/IPv6", FrameBuilder.sctp(client6, 5000, vip6, 5001),
            .parsed(.init(key: key(client6, 5000, vip6, 5001, IPProtocol.sctp), l4Offset: 54))),
        ParserCase(
            "raw IPv4 TCP", tcp4.rawIP(),
            .parsed(.init(key: tcp4Key, l3Offset: 0, l4Offset: 20, tcpFlags: TCPFlags.syn))),
        ParserCase(
            "raw IPv6 UDP", udp6.rawIP(), .parsed(.init(key: udp6Key, l3Offset: 0, l4Offset: 40))),
        ParserCase(
            "IPv4 TOS, DF, TTL",
            tcp4.ipv4 {
                $0.tos = 0xB8
                $0.dontFragment = true
                $0.ttl = 1
            },
            .parsed(
                .init(
                    key: tcp4Key, l4Offset: 34, tcpFlags: TCPFlags.syn, dontFragment: true,
                    trafficClass: 0xB8))),
        ParserCase(
            "IPv4 identification of an unfragmented packet is not reported",
            tcp4.ipv4 { $0.identification = 0x1234 },
            .parsed(.init(key: tcp4Key, l4Offset: 34, tcpFlags: TCPFlags.syn))),
        ParserCase(
            "IPv6 traffic class",
            tcp6.ipv6 {
                $0.trafficClass = 0xA4
                $0.flowLabel = 0xFFFFF
            },
            .parsed(.init(key: tcp6Key, l4Offset: 54, tcpFlags: TCPFlags.ack, trafficClass: 0xA4))),
        ParserCase(
            "IPv4 with 8 bytes of options", tcp4.ipv4 { $0.options = [0x94, 4, 0, 0, 1, 1, 1, 0] },
            .parsed(.init(key: tcp4Key, l4Offset: 42, tcpFlags: TCPFlags.syn))),
        ParserCase(
            "IPv4 with 40 bytes of options (IHL 15)",
            tcp4.ipv4 { $0.options = [UInt8](repeating: 1, count: 40) },
            .parsed(.init(key: tcp4Key, l4Offset: 74, tcpFlags: TCPFlags.syn))),
        ParserCase(
            "TCP flags FIN|PSH|ACK",
            FrameBuilder.tcp(client4, 1, vip4, 2, flags: 0x19),
            .parsed(.init(key: key(client4, 1, vip4, 2, 6), l4Offset: 34, tcpFlags: 0x19))),
        ParserCase(
            "GRE/IPv4: 3-tuple, l4Offset where GRE begins",
            FrameBuilder.ip(client4, vip4, proto: IPProtocol.gre).payload([0, 0, 0x08, 0]),
            .parsed(.init(key: key(client4, 0, vip4, 0, IPProtocol.gre), l4Offset: 34))),
        ParserCase(
            "ESP/IPv6: 3-tuple", FrameBuilder.ip(client6, vip6, proto: 50).payload(16),
            .parsed(.init(key: key(client6, 0, vip6, 0, 50), l4Offset: 54))),
        ParserCase(
            "protocol with an empty body: no l4Offset",
            FrameBuilder.ip(client4, vip4, proto: IPProtocol.gre),
            .parsed(.init(key: key(client4, 0, vip4, 0, IPProtocol.gre), l4Offset: -1))),
        ParserCase(
            "ICMP (protocol 1) inside IPv6 is just another protocol",
            FrameBuilder.ip(client6, vip6, proto: 1).payload([8, 0, 0, 0, 0, 7, 0, 1]),
            .parsed(.init(key: key(client6, 0, vip6, 0, 1), l4Offset: 54))),
    ]

    static let linkLayer: [ParserCase] = [
        ParserCase(
            "802.1Q", tcp4.vlan(100),
            .parsed(.init(key: tcp4Key, l3Offset: 18, l4Offset: 38, tcpFlags: TCPFlags.syn))),
        ParserCase(
            "QinQ 802.1ad + 802.1Q", udp6.vlan(10, tpid: 0x88A8).vlan(20),
            .parsed(.init(key: udp6Key, l3Offset: 22, l4Offset: 62))),
        ParserCase(
            "3 tags (0x9100, 0x88A8, 0x8100)",
            tcp4.vlan(1, tpid: 0x9100).vlan(2, tpid: 0x88A8).vlan(3),
            .parsed(.init(key: tcp4Key, l3Offset: 26, l4Offset: 46, tcpFlags: TCPFlags.syn))),
        ParserCase(
            "8 tags: the most allowed",
            (0..<8).reduce(tcp4) { f, i in f.vlan(UInt16(i)) },
            .parsed(.init(key: tcp4Key, l3Offset: 46, l4Offset: 66, tcpFlags: TCPFlags.syn))),
        ParserCase(
            "9 tags", (0..<9).reduce(tcp4) { f, i in f.vlan(UInt16(i)) },
            .malformed(.tooManyL2Headers)),
        ParserCase(
            "MPLS label over IPv4", tcp4.mpls(16),
            .parsed(.init(key: tcp4Key, l3Offset: 18, l4Offset: 38, tcpFlags: TCPFlags.syn))),
        ParserCase(
            "MPLS 3 labels over IPv6", udp6.mpls(16).mpls(17).mpls(18),
            .parsed(.init(key: udp6Key, l3Offset: 26, l4Offset: 66))),
        ParserCase(
            "VLAN then MPLS", udp4.vlan(7).mpls(100),
            .parsed(.init(key: udp4Key, l3Offset: 22, l4Offset: 42))),
        ParserCase(
            "multicast MPLS ethertype 0x8848", udp4.mpls(100).etherType(0x8848),
            .parsed(.init(key: udp4Key, l3Offset: 18, l4Offset: 38))),
        ParserCase(
            "4 tags + 4 labels: the most allowed",
            (0..<4).reduce(udp4) { f, i in f.vlan(UInt16(i)).mpls(UInt32(i)) },
            .parsed(.init(key: udp4Key, l3Offset: 46, l4Offset: 66))),
        ParserCase(
            "4 tags + 5 labels",
            (0..<5).reduce(udp4.vlan(1).vlan(2).vlan(3).vlan(4)) { f, i in f.mpls(UInt32(i)) },
            .malformed(.tooManyL2Headers)),
        ParserCase(
            "MPLS carrying an Ethernet pseudowire (control word 0)",
            FrameBuilder.nonIP(
                etherType: 0x8847, body: [0x00, 0x06, 0x41, 0x40, 0, 0, 0, 0] + tcp4.bytes),
            .notIP),
        ParserCase(
            "PPPoE session carrying IPv4", FrameBuilder.nonIP(etherType: 0x8864, body: pppoe(0x0021, tcp4.ipPacket)),
            .parsed(.init(key: tcp4Key, l3Offset: 22, l4Offset: 42, tcpFlags: TCPFlags.syn))),
        ParserCase(
            "PPPoE session carrying IPv6", FrameBuilder.nonIP(etherType: 0x8864, body: pppoe(0x0057, udp6.ipPacket)),
            .parsed(.init(key: udp6Key, l3Offset: 22, l4Offset: 62))),
        ParserCase(
            "VLAN then PPPoE", FrameBuilder.nonIP(etherType: 0x8864, body: pppoe(0x0021, udp4.ipPacket)).vlan(7),
            .parsed(.init(key: udp4Key, l3Offset: 26, l4Offset: 46))),
        ParserCase(
            "PPPoE session carrying LCP", FrameBuilder.nonIP(etherType: 0x8864, body: pppoe(0xC021, [1, 1, 0, 4])),
            .notIP),
        ParserCase(
            "PPPoE discovery (PADI)", FrameBuilder.nonIP(etherType: 0x8863, body: [0x11, 0x09, 0, 0, 0, 0]), .notIP),
        ParserCase(
            "PPPoE version 2", FrameBuilder.nonIP(etherType: 0x8864, body: [0x21] + pppoe(0x0021, tcp4.ipPacket).dropFirst()),
            .notIP),
        ParserCase(
            "PPPoE header cut", Array(FrameBuilder.nonIP(etherType: 0x8864, body: pppoe(0x0021, tcp4.ipPacket)).bytes.prefix(21)),
            .ethernet, .malformed(.truncatedL2)),
        ParserCase(
            "Ethernet padding is not part of the packet",
            FrameBuilder.udp(client4, 5353, vip4, 53).padded(),
            .parsed(.init(key: udp4Key, l4Offset: 34, l3Length: 28))),
        ParserCase(
            "trailer after an IPv6 packet is not part of it", udp6.trailer([1, 2, 3, 4]),
            .parsed(.init(key: udp6Key, l4Offset: 54, l3Length: 40 + 8 + 3))),
        ParserCase(
            "ARP", FrameBuilder.nonIP(etherType: 0x0806, body: [UInt8](repeating: 0, count: 28)),
            .notIP),
        ParserCase("LLDP", FrameBuilder.nonIP(etherType: 0x88CC, body: [2, 7, 4]), .notIP),
        ParserCase(
            "802.3 length field",
            FrameBuilder.nonIP(etherType: 46, body: [UInt8](repeating: 0xAA, count: 46)), .notIP),
        ParserCase(
            "VLAN-tagged ARP", FrameBuilder.nonIP(etherType: 0x0806, body: [0, 1]).vlan(5), .notIP),
        ParserCase(
            "13-byte frame", [UInt8](repeating: 0, count: 13), .ethernet, .malformed(.truncatedL2)),
        ParserCase("empty frame", [], .ethernet, .malformed(.truncatedL2)),
        ParserCase(
            "VLAN tag cut", Array(tcp4.vlan(1).bytes.prefix(16)), .ethernet,
            .malformed(.truncatedL2)),
        ParserCase(
            "MPLS label cut", Array(tcp4.mpls(1).bytes.prefix(17)), .ethernet,
            .malformed(.truncatedL2)),
        ParserCase(
            "nothing after MPLS", Array(tcp4.mpls(1).bytes.prefix(18)), .ethernet,
            .malformed(.truncatedPacket)),
        ParserCase("empty raw IP packet", [], .rawIP, .malformed(.truncatedPacket)),
    ]

    static let ipErrors: [ParserCase] = [
        ParserCase(
            "raw IP version 5", [0x55] + [UInt8](repeating: 0, count: 39), .rawIP,
            .malformed(.badIPVersion)),
        ParserCase(
            "raw IP version 0", [UInt8](repeating: 0, count: 40), .rawIP, .malformed(.badIPVersion)),
        ParserCase("ethertype IPv4, version 6", tcp6.etherType(0x0800), .malformed(.badIPVersion)),
        ParserCase("ethertype IPv6, version 4", tcp4.etherType(0x86DD), .malformed(.badIPVersion)),
        ParserCase("IPv4 version field 5", tcp4.ipv4 { $0.version = 5 }, .malformed(.badIPVersion)),
        ParserCase("IPv6 version field 7", tcp6.ipv6 { $0.version = 7 }, .malformed(.badIPVersion)),
        ParserCase(
            "IHL 4", tcp4.ipv4 { $0.headerLengthWords = 4 }, .malformed(.badIPv4HeaderLength)),
        ParserCase(
            "IHL 0", tcp4.ipv4 { $0.headerLengthWords = 0 }, .malformed(.badIPv4HeaderLength)),
        ParserCase(
            "IHL 15 beyond the frame", tcp4.ipv4 { $0.headerLengthWords = 15 },
            .malformed(.truncatedIPv4Header)),
        ParserCase(
            "IPv4 header cut", Array(tcp4.bytes.prefix(33)), .ethernet,
            .malformed(.truncatedIPv4Header)),
        ParserCase(
            "IPv4 options cut", Array(tcp4.ipv4 { $0.options = [1, 1, 1, 1] }.bytes.prefix(37)),
            .ethernet, .malformed(.truncatedIPv4Header)),
        ParserCase(
            "IPv4 total length 19", tcp4.ipv4 { $0.totalLength = 19 },
            .malformed(.badIPv4TotalLength)),
        ParserCase(
            "IPv4 total length below options",
            tcp4.ipv4 {
                $0.options = [1, 1, 1, 1]
                $0.totalLength = 23
            }, .malformed(.badIPv4TotalLength)),
        ParserCase(
            "IPv6 header cut", Array(tcp6.bytes.prefix(53)), .ethernet,
            .malformed(.truncatedIPv6Header)),
        ParserCase(
            "TCP header cut by the capture", Array(tcp4.bytes.prefix(53)), .ethernet,
            .malformed(.truncatedL4Header)),
        ParserCase(
            "TCP header cut by the total length (padding follows)",
            tcp4.ipv4 { $0.totalLength = 30 }, .malformed(.truncatedL4Header)),
        ParserCase(
            "UDP header cut", Array(udp6.bytes.prefix(61)), .ethernet,
            .malformed(.truncatedL4Header)),
        ParserCase(
            "SCTP header cut", Array(FrameBuilder.sctp(client4, 1, vip4, 2).bytes.prefix(45)),
            .ethernet, .malformed(.truncatedL4Header)),
        ParserCase(
            "ICMP header cut",
            Array(FrameBuilder.icmp(client4, vip4, .echoRequest(id: 1)).bytes.prefix(41)),
            .ethernet, .malformed(.truncatedL4Header)),
    ]

    static let lengths: [ParserCase] = [
        ParserCase(
            "IPv4 total length 0 (TSO): the capture is the claim",
            tcp4.payload(1000).ipv4 { $0.totalLength = 0 },
            .parsed(.init(key: tcp4Key, l4Offset: 34, l3Length: 1040, tcpFlags: TCPFlags.syn))),
        ParserCase(
            "IPv6 payload length 0 (jumbogram/TSO): the capture is the claim",
            tcp6.ipv6 { $0.payloadLength = 0 },
            .parsed(.init(key: tcp6Key, l4Offset: 54, l3Length: 67, tcpFlags: TCPFlags.ack))),
        ParserCase(
            "snaplen-truncated IPv4: parsed, claim kept",
            Array(tcp4.payload(1000).bytes.prefix(96)), .ethernet,
            .parsed(
                .init(
                    key: tcp4Key, l4Offset: 34, l3Length: 82, claimed: 1040, tcpFlags: TCPFlags.syn)
            )),
        ParserCase(
            "snaplen-truncated IPv6: parsed, claim kept",
            Array(tcp6.payload(1000).bytes.prefix(74)), .ethernet,
            .parsed(
                .init(
                    key: tcp6Key, l4Offset: 54, l3Length: 60, claimed: 1060, tcpFlags: TCPFlags.ack)
            )),
        ParserCase(
            "IPv4 total length larger than the frame", udp4.ipv4 { $0.totalLength = 9000 },
            .parsed(.init(key: udp4Key, l4Offset: 34, l3Length: 38, claimed: 9000))),
    ]

    static let fragments: [ParserCase] = {
        let datagram4 = FrameBuilder.tcp(client4, 40000, vip4, 80).payload(40)
            .ipv4 { $0.identification = 0xBEEF }
        let frags4 = datagram4.ipv4Fragments(payloadPerFragment: 24)  // 24 + 24 + 12 bytes.
        let udpFrags4 = FrameBuilder.udp(client4, 5353, vip4, 53).payload(20)
            .ipv4 { $0.identification = 7 }.ipv4Fragments(payloadPerFragment: 8)
        let tooShort4 = datagram4.ipv4Fragments(payloadPerFragment: 16)
        let datagram6 = FrameBuilder.tcp(client6, 40000, vip6, 443).payload(40)
        let frags6 = datagram6.ipv6Fragments(payloadPerFragment: 32, identification: 0xDEAD_BEEF)
        let tooShort6 = datagram6.ipv6Fragments(payloadPerFragment: 8, identification: 1)
        let frags6Ext = datagram6.extensionHeaders([.hopByHop()])
            .ipv6Fragments(payloadPerFragment: 32, identification: 5)
        let key4 = key(client4, 40000, vip4, 80, 6)
        let threeTuple4 = key(client4, 0, vip4, 0, 6)
        let key6 = key(client6, 40000, vip6, 443, 6)
        let threeTuple6 = key(client6, 0, vip6, 0, 6)
        return [
            ParserCase(
                "IPv4 first fragment", frags4[0], .ethernet,
                .parsed(
                    .init(
                        key: key4, l4Offset: 34, fragment: .first, fragmentID: 0xBEEF,
                        tcpFlags: TCPFlags.ack))),
            ParserCase(
                "IPv4 middle fragment", frags4[1], .ethernet,
                .parsed(
                    .init(key: threeTuple4, l4Offset: -1, fragment: .nonFirst, fragmentID: 0xBEEF))),
            ParserCase(
                "IPv4 last fragment", frags4[2], .ethernet,
                .parsed(
                    .init(key: threeTuple4, l4Offset: -1, fragment: .nonFirst, fragmentID: 0xBEEF))),
            ParserCase(
                "IPv4 first fragment with DF clear and a UDP header of exactly 8 bytes",
                udpFrags4[0], .ethernet,
                .parsed(.init(key: udp4Key, l4Offset: 34, fragment: .first, fragmentID: 7))),
            ParserCase(
                "IPv4 first fragment too short for the TCP header", tooShort4[0], .ethernet,
                .malformed(.firstFragmentTooShort)),
            ParserCase(
                "IPv4 first fragment cut by the capture (its claim holds the header)",
                Array(frags4[0].prefix(50)), .ethernet, .malformed(.truncatedL4Header)),
            ParserCase(
                "IPv4 non-first fragment with a tiny payload", tooShort4[1], .ethernet,
                .parsed(
                    .init(key: threeTuple4, l4Offset: -1, fragment: .nonFirst, fragmentID: 0xBEEF))),
            ParserCase(
                "IPv6 first fragment", frags6[0], .ethernet,
                .parsed(
                    .init(
                        key: key6, l4Offset: 62, fragment: .first, fragmentID: 0xDEAD_BEEF,
                        tcpFlags: TCPFlags.ack))),
            ParserCase(
                "IPv6 last fragment", frags6[1], .ethernet,
                .parsed(
                    .init(
                        key: threeTuple6, l4Offset: -1, fragment: .nonFirst, fragmentID: 0xDEAD_BEEF
                    ))),
            ParserCase(
                "IPv6 first fragment too short for the TCP header", tooShort6[0], .ethernet,
                .malformed(.firstFragmentTooShort)),
            ParserCase(
                "IPv6 fragments after a hop-by-hop header", frags6Ext[0], .ethernet,
                .parsed(
                    .init(
                        key: key6, l4Offset: 70, fragment: .first, fragmentID: 5,
                        tcpFlags: TCPFlags.ack))),
            ParserCase(
                "IPv6 non-first fragment after a hop-by-hop header", frags6Ext[1], .ethernet,
                .parsed(.init(key: threeTuple6, l4Offset: -1, fragment: .nonFirst, fragmentID: 5))),
            ParserCase(
                "IPv6 atomic fragment", tcp6.extensionHeaders([.fragment(identification: 99)]),
                .parsed(.init(key: tcp6Key, l4Offset: 62, fragmentID: 99, tcpFlags: TCPFlags.ack))),
        ]
    }()

    static let ipv6Chains: [ParserCase] = [
        ParserCase(
            "hop-by-hop + routing + destination options + TCP",
            tcp6.extensionHeaders([
                .hopByHop(), .routing(addresses: [FrameBuilder.address(vip6)]),
                .destinationOptions(options: [1, 12] + [UInt8](repeating: 0, count: 12)),
            ]),
            .parsed(.init(key: tcp6Key, l4Offset: 54 + 8 + 24 + 16, tcpFlags: TCPFlags.ack))),
        ParserCase(
            "AH + UDP", udp6.extensionHeaders([.authentication()]),
            .parsed(.init(key: udp6Key, l4Offset: 54 + 24))),
        ParserCase(
            "8 extension headers: the most allowed",
            udp6.extensionHeaders([IPv6Extension](repeating: .destinationOptions(), count: 8)),
            .parsed(.init(key: udp6Key, l4Offset: 54 + 64))),
        ParserCase(
            "9 extension headers",
            udp6.extensionHeaders([IPv6Extension](repeating: .destinationOptions(), count: 9)),
            .malformed(.ipv6ExtensionChainTooLong)),
        ParserCase(
            "extension header longer than the payload length",
            udp6.extensionHeaders([.raw(type: 0, body: [2, 1, 4, 0, 0, 0, 0])]),
            .malformed(.truncatedIPv6ExtensionHeader)),
        ParserCase(
            "extension header cut by the capture",
            Array(
                udp6.extensionHeaders([.hopByHop(options: [UInt8](repeating: 1, count: 14))]).bytes
                    .prefix(64)),
            .ethernet, .malformed(.truncatedIPv6ExtensionHeader)),
        ParserCase(
            "no next header (59)", FrameBuilder.ip(client6, vip6, proto: 59).payload(8),
            .parsed(.init(key: key(client6, 0, vip6, 0, 59), l4Offset: -1))),
        ParserCase(
            "no next header after a hop-by-hop header",
            FrameBuilder.ip(client6, vip6, proto: 59).extensionHeaders([.hopByHop()]),
            .parsed(.init(key: key(client6, 0, vip6, 0, 59), l4Offset: -1))),
        ParserCase(
            "unknown extension-like value ends the walk (Mobility 135)",
            FrameBuilder.ip(client6, vip6, proto: 135).extensionHeaders([.hopByHop()]).payload(8),
            .parsed(.init(key: key(client6, 0, vip6, 0, 135), l4Offset: 62))),
    ]

    static let icmp: [ParserCase] = {
        let echo4 = FrameBuilder.icmp(client4, vip4, .echoRequest(id: 0x1234, sequence: 9)).payload(
            56)
        let echoReply4 = FrameBuilder.icmp(vip4, client4, .echoReply(id: 0x1234, sequence: 9))
        let echo6 = FrameBuilder.icmp(client6, vip6, .echoRequest(id: 77))
        let echoReply6 = FrameBuilder.icmp(vip6, client6, .echoReply(id: 77))
        let fragmentedReply4 = reply4.ipv4 { $0.identification = 5 }.ipv4Fragments(
            payloadPerFragment: 64)
        let fragmentedReply6 = reply6.ipv6Fragments(payloadPerFragment: 64, identification: 5)
        let tcpBack4 = key(client4, 40000, vip4, 80, IPProtocol.tcp)
        let udpBack4 = key(client4, 5353, vip4, 53, IPProtocol.udp)
        let tcpBack6 = key(client6, 40000, vip6, 443, IPProtocol.tcp)
        let udpBack6 = key(client6, 5353, vip6, 53, IPProtocol.udp)
        return [
            ParserCase(
                "ICMPv4 echo request", echo4,
                .parsed(.init(key: key(client4, 0x1234, vip4, 0, 1), l4Offset: 34))),
            ParserCase(
                "ICMPv4 echo reply", echoReply4,
                .parsed(.init(key: key(vip4, 0x1234, client4, 0, 1), l4Offset: 34))),
            ParserCase(
                "ICMPv6 echo request", echo6,
                .parsed(.init(key: key(client6, 77, vip6, 0, 58), l4Offset: 54))),
            ParserCase(
                "ICMPv6 echo reply", echoReply6,
                .parsed(.init(key: key(vip6, 77, client6, 0, 58), l4Offset: 54))),
            ParserCase(
                "ICMPv4 destination unreachable quoting TCP (header + 8 bytes)",
                FrameBuilder.icmp(
                    router4, vip4,
                    .destinationUnreachable(code: 1, quoting: reply4, quoteLength: 28)),
                .parsed(.init(key: tcpBack4, l4Offset: 34, isICMPError: true))),
            ParserCase(
                "ICMPv4 port unreachable quoting UDP",
                FrameBuilder.icmp(
                    client4, vip4, .destinationUnreachable(code: 3, quoting: replyUDP4)),
                .parsed(.init(key: udpBack4, l4Offset: 34, isICMPError: true))),
            ParserCase(
                "ICMPv4 fragmentation needed quoting TCP, through a VLAN",
                FrameBuilder.icmp(
                    router4, vip4,
                    .packetTooBig(
                        mtu: 1400, quoting: reply4.ipv4 { $0.dontFragment = true }, quoteLength: 576
                    )
                ).vlan(3),
                .parsed(.init(key: tcpBack4, l3Offset: 18, l4Offset: 38, isICMPError: true))),
            ParserCase(
                "ICMPv4 time exceeded quoting TCP",
                FrameBuilder.icmp(router4, vip4, .timeExceeded(quoting: reply4)),
                .parsed(.init(key: tcpBack4, l4Offset: 34, isICMPError: true))),
            ParserCase(
                "ICMPv4 parameter problem quoting UDP",
                FrameBuilder.icmp(
                    router4, vip4, .parameterProblem(pointer: 1 << 24, quoting: replyUDP4)),
                .parsed(.init(key: udpBack4, l4Offset: 34, isICMPError: true))),
            ParserCase(
                "ICMPv4 error quoting options and TCP",
                FrameBuilder.icmp(
                    router4, vip4,
                    .destinationUnreachable(
                        quoting: reply4.ipv4 { $0.options = [1, 1, 1, 1] }, quoteLength: 32)),
                .parsed(.init(key: tcpBack4, l4Offset: 34, isICMPError: true))),
            ParserCase(
                "ICMPv4 error whose quote stops after the IP header: 3-tuple",
                FrameBuilder.icmp(
                    router4, vip4, .destinationUnreachable(quoting: reply4, quoteLength: 20)),
                .parsed(.init(key: key(client4, 0, vip4, 0, 6), l4Offset: 34, isICMPError: true))),
            ParserCase(
                "ICMPv4 error whose quote stops inside the options: 3-tuple",
                FrameBuilder.icmp(
                    router4, vip4,
                    .destinationUnreachable(
                        quoting: reply4.ipv4 { $0.options = [1, 1, 1, 1] }, quoteLength: 22)),
                .parsed(.init(key: key(client4, 0, vip4, 0, 6), l4Offset: 34, isICMPError: true))),
            ParserCase(
                "ICMPv4 error quoting a non-first fragment: 3-tuple",
                FrameBuilder.icmp(
                    router4, vip4,
                    .timeExceeded(code: 1, quoting: Array(fragmentedReply4[1].dropFirst(14)))),
                .parsed(.init(key: key(client4, 0, vip4, 0, 6), l4Offset: 34, isICMPError: true))),
            ParserCase(
                "ICMPv4 error quoting a first fragment",
                FrameBuilder.icmp(
                    router4, vip4,
                    .timeExceeded(code: 1, quoting: Array(fragmentedReply4[0].dropFirst(14)))),
                .parsed(.init(key: tcpBack4, l4Offset: 34, isICMPError: true))),
            ParserCase(
                "ICMPv4 error quoting an echo reply: the echo flow's key",
                FrameBuilder.icmp(router4, vip4, .timeExceeded(quoting: echoReply4)),
                .parsed(
                    .init(key: key(client4, 0x1234, vip4, 0, 1), l4Offset: 34, isICMPError: true))),
            ParserCase(
                "ICMPv4 error quoting GRE: 3-tuple",
                FrameBuilder.icmp(
                    router4, vip4,
                    .destinationUnreachable(
                        quoting: FrameBuilder.ip(vip4, client4, proto: 47).payload(8))),
                .parsed(.init(key: key(client4, 0, vip4, 0, 47), l4Offset: 34, isICMPError: true))),
            ParserCase(
                "ICMPv4 error quote too short for the addresses",
                FrameBuilder.icmp(
                    router4, vip4, .destinationUnreachable(quoting: reply4, quoteLength: 19)),
                .malformed(.truncatedICMPQuote)),
            ParserCase(
                "ICMPv4 error with no quote",
                FrameBuilder.icmp(router4, vip4, .destinationUnreachable(quoting: [])),
                .malformed(.truncatedICMPQuote)),
            ParserCase(
                "ICMPv4 error quote cut by the outer total length",
                FrameBuilder.icmp(
                    router4, vip4, .destinationUnreachable(quoting: reply4, quoteLength: 28)
                ).ipv4 { $0.totalLength = 20 + 8 + 12 },
                .malformed(.truncatedICMPQuote)),
            ParserCase(
                "ICMPv4 error quoting IPv6",
                FrameBuilder.icmp(
                    router4, vip4, .destinationUnreachable(quoting: reply6, quoteLength: 48)),
                .malformed(.badICMPQuote)),
            ParserCase(
                "ICMPv4 error quoting IHL 4",
                FrameBuilder.icmp(
                    router4, vip4,
                    .destinationUnreachable(
                        quoting: reply4.ipv4 { $0.headerLengthWords = 4 }, quoteLength: 28)),
                .malformed(.badICMPQuote)),
            ParserCase(
                "ICMPv4 redirect: not an error we follow, 3-tuple",
                FrameBuilder.icmp(
                    router4, vip4,
                    .other(type: 5, code: 1, rest: 0x0A00_0001, body: reply4.quote(28))),
                .parsed(.init(key: key(router4, 0, vip4, 0, 1), l4Offset: 34))),
            ParserCase(
                "ICMPv6 packet too big quoting TCP",
                FrameBuilder.icmp(
                    router6, vip6, .packetTooBig(mtu: 1280, quoting: reply6, quoteLength: 1232)),
                .parsed(.init(key: tcpBack6, l4Offset: 54, isICMPError: true))),
            ParserCase(
                "ICMPv6 destination unreachable quoting UDP",
                FrameBuilder.icmp(
                    router6, vip6, .destinationUnreachable(code: 4, quoting: replyUDP6)),
                .parsed(.init(key: udpBack6, l4Offset: 54, isICMPError: true))),
            ParserCase(
                "ICMPv6 time exceeded quoting UDP behind a hop-by-hop and a routing header",
                FrameBuilder.icmp(
                    router6, vip6,
                    .timeExceeded(
                        quoting: replyUDP6.extensionHeaders([
                            .hopByHop(), .routing(addresses: [FrameBuilder.address(router6)]),
                        ]))),
                .parsed(.init(key: udpBack6, l4Offset: 54, isICMPError: true))),
            ParserCase(
                "ICMPv6 parameter problem quoting TCP",
                FrameBuilder.icmp(
                    router6, vip6, .parameterProblem(pointer: 6, quoting: reply6, quoteLength: 60)),
                .parsed(.init(key: tcpBack6, l4Offset: 54, isICMPError: true))),
            ParserCase(
                "ICMPv6 error quoting a non-first fragment: 3-tuple",
                FrameBuilder.icmp(
                    router6, vip6,
                    .packetTooBig(mtu: 1280, quoting: Array(fragmentedReply6[1].dropFirst(14)))),
                .parsed(.init(key: key(client6, 0, vip6, 0, 6), l4Offset: 54, isICMPError: true))),
            ParserCase(
                "ICMPv6 error quoting a first fragment",
                FrameBuilder.icmp(
                    router6, vip6,
                    .packetTooBig(mtu: 1280, quoting: Array(fragmentedReply6[0].dropFirst(14)))),
                .parsed(.init(key: tcpBack6, l4Offset: 54, isICMPError: true))),
            ParserCase(
                "ICMPv6 error whose quote stops after the IPv6 header: 3-tuple",
                FrameBuilder.icmp(
                    router6, vip6, .packetTooBig(mtu: 1280, quoting: reply6, quoteLength: 40)),
                .parsed(.init(key: key(client6, 0, vip6, 0, 6), l4Offset: 54, isICMPError: true))),
            ParserCase(
                "ICMPv6 error quote too short for the addresses",
                FrameBuilder.icmp(
                    router6, vip6, .packetTooBig(mtu: 1280, quoting: reply6, quoteLength: 39)),
                .malformed(.truncatedICMPQuote)),
            ParserCase(
                "ICMPv6 error whose quote cuts an extension header",
                FrameBuilder.icmp(
                    router6, vip6,
                    .timeExceeded(
                        quoting: replyUDP6.extensionHeaders([.hopByHop()]), quoteLength: 44)),
                .malformed(.truncatedICMPQuote)),
            ParserCase(
                "ICMPv6 error quoting IPv4",
                FrameBuilder.icmp(router6, vip6, .destinationUnreachable(quoting: reply4)),
                .malformed(.badICMPQuote)),
            ParserCase(
                "ICMPv6 error quoting a 9-header chain",
                FrameBuilder.icmp(
                    router6, vip6,
                    .timeExceeded(
                        quoting: replyUDP6.extensionHeaders(
                            [IPv6Extension](repeating: .destinationOptions(), count: 9)))),
                .malformed(.badICMPQuote)),
            ParserCase(
                "ICMPv6 neighbour solicitation: 3-tuple",
                FrameBuilder.icmp(
                    client6, vip6, .other(type: 135, body: [UInt8](repeating: 0, count: 16))),
                .parsed(.init(key: key(client6, 0, vip6, 0, 58), l4Offset: 54))),
            ParserCase(
                "ICMPv6 behind extension headers",
                FrameBuilder.icmp(
                    router6, vip6, .packetTooBig(mtu: 1280, quoting: reply6, quoteLength: 60)
                ).extensionHeaders([.destinationOptions()]),
                .parsed(.init(key: tcpBack6, l4Offset: 62, isICMPError: true))),
            ParserCase(
                "ICMPv4 error sent as a non-first fragment: no ICMP header",
                FrameBuilder.icmp(router4, vip4, .destinationUnreachable(quoting: reply4)).ipv4 {
                    $0.fragmentOffset = 64
                    $0.identification = 3
                },
                .parsed(
                    .init(
                        key: key(router4, 0, vip4, 0, 1), l4Offset: -1, fragment: .nonFirst,
                        fragmentID: 3))),
        ]
    }()

    static let all: [ParserCase] =
        basics + linkLayer + ipErrors + lengths + fragments + ipv6Chains + icmp
}

typealias IPv6Extension = FrameBuilder.IPv6Extension

// MARK: Tests

@Suite struct PacketParserTests {
    @Test(arguments: ParserCases.all)
    func parses(_ c: ParserCase) {
        let result = parse(c.frame, c.linkType)
        switch (c.expected, result) {
        case (.notIP, .notIP):
            break
        case (.malformed(let expected), .malformed(let actual)):
            #expect(actual == expected, "\(c.name)")
        case (.parsed(let e), .parsed(let p)):
            let l3Length = e.l3Length ?? (c.frame.count - e.l3Offset)
            #expect(p.key == e.key, "\(c.name): key \(p.key)")
            #expect(p.key.source.isIPv6 == e.key.source.isIPv6)
            #expect(p.l3Offset == e.l3Offset)
            #expect(p.l3Length == l3Length)
            #expect(p.l3ClaimedLength == (e.claimed ?? l3Length))
            #expect(p.l4Offset == e.l4Offset)
            #expect(p.fragment == e.fragment)
            #expect(p.fragmentID == e.fragmentID)
            #expect(p.tcpFlags == e.tcpFlags)
            #expect(p.isICMPError == e.isICMPError)
            #expect(p.dontFragment == (e.dontFragment ?? e.key.isIPv6))
            #expect(p.trafficClass == e.trafficClass)
            #expect(p.isTruncated == (e.claimed.map { $0 > l3Length } ?? false))
        default:
            Issue.record("\(c.name): expected \(c.expected), got \(describe(result))")
        }
    }

    /// Every prefix of every case's frame parses without a trap; a prefix too short for the
    /// headers the full frame needed does not come back as a parsed packet; once a prefix
    /// parses, every longer one does, with the same flow unless an ICMP quote was cut.
    @Test(arguments: ParserCases.all)
    func everyPrefix(_ c: ParserCase) {
        let full = parse(c.frame, c.linkType)
        let needed: Int
        if case .parsed(let p) = full {
            needed = minimumLength(of: p)
        } else {
            needed = c.frame.count + 1
        }
        var parsedBefore = false
        for length in 0...c.frame.count {
            let prefix = Array(c.frame.prefix(length))
            let result = parse(prefix, c.linkType)
            checkParsedPacketInvariants(result, frameLength: length, "\(c.name) prefix \(length)")
            switch result {
            case .parsed(let p):
                if length < needed {
                    Issue.record(
                        "\(c.name): prefix \(length) < \(needed) parsed: \(describe(result))")
                }
                if case .parsed(let f) = full, !f.isICMPError {
                    #expect(p.key == f.key, "\(c.name) prefix \(length)")
                    #expect(p.fragment == f.fragment)
                }
                parsedBefore = true
            case .notIP, .malformed:
                if parsedBefore {
                    Issue.record(
                        "\(c.name): prefix \(length) \(describe(result)) after a shorter one parsed"
                    )
                }
            }
        }
    }

    @Test func notIPIsNeverADropForNonIPEthertypes() {
        for etherType: UInt16 in [0x0806, 0x88CC, 0x8035, 0x88E5, 0x8906, 0x0842, 0x22F0] {
            let frame = FrameBuilder.nonIP(
                etherType: etherType, body: [UInt8](repeating: 0x45, count: 46))
            guard case .notIP = parse(frame.bytes) else {
                Issue.record("ethertype \(etherType): \(describe(parse(frame.bytes)))")
                continue
            }
        }
    }

    @Test func partlyTaggedConnectionHasOneKey() {
        let plain = ParserCases.tcp4
        let keys = [
            plain, plain.vlan(1), plain.vlan(2, tpid: 0x88A8).vlan(3), plain.mpls(9), plain.rawIP(),
        ]
        .map { f -> FlowKey? in
            if case .parsed(let p) = parse(f.bytes, f.link == .rawIP ? .rawIP : .ethernet) {
                return p.key
            }
            return nil
        }
        #expect(Set(keys.compactMap { $0 }).count == 1)
        #expect(keys.allSatisfy { $0 != nil })
    }

    @Test func icmpErrorFollowsTheConnection() {
        // The client's flow and the error about the backend's reply share one key.
        let forward = parse(ParserCases.tcp4.bytes)
        let error = parse(
            FrameBuilder.icmp(router4, vip4, .packetTooBig(mtu: 1400, quoting: ParserCases.reply4))
                .bytes)
        guard case .parsed(let f) = forward, case .parsed(let e) = error else {
            Issue.record("not parsed")
            return
        }
        #expect(f.key == e.key)
        // The same for echo: request, reply and an error about the reply share one key.
        let request = parse(FrameBuilder.icmp(client4, vip4, .echoRequest(id: 5)).bytes)
        let replyError = parse(
            FrameBuilder.icmp(
                router4, vip4,
                .timeExceeded(quoting: FrameBuilder.icmp(vip4, client4, .echoReply(id: 5)))
            ).bytes)
        guard case .parsed(let r) = request, case .parsed(let re) = replyError else {
            Issue.record("not parsed")
            return
        }
        #expect(r.key == re.key)
    }

    @Test func emptyBufferWithNilBase() {
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        guard case .malformed(.truncatedL2) = PacketParser.parse(empty, linkType: .ethernet) else {
            Issue.record("ethernet")
            return
        }
        guard case .malformed(.truncatedPacket) = PacketParser.parse(empty, linkType: .rawIP) else {
            Issue.record("rawIP")
            return
        }
    }

    @Test func dropReasonNamesAreUniqueSnakeCase() {
        let names = DropReason.allCases.map(\.description)
        #expect(Set(names).count == names.count)
        #expect(names.allSatisfy { $0.allSatisfy { $0 == "_" || $0.isLowercase || $0.isNumber } })
        #expect(DropReason.badICMPQuote.description == "bad_icmp_quote")
    }
}

/// The shortest frame that can parse to `p`: its IP header, plus the transport header the
/// parser reads (and an ICMP error's quoted addresses).
private func minimumLength(of p: ParsedPacket) -> Int {
    let ipHeader = p.l3Offset + (p.isIPv6 ? 40 : 20)
    guard p.l4Offset >= 0 else { return ipHeader }
    if p.isICMPError { return p.l4Offset + 8 + (p.isIPv6 ? 40 : 20) }
    switch p.key.proto {
    case IPProtocol.tcp: return p.l4Offset + 20
    case IPProtocol.udp: return p.l4Offset + 8
    case IPProtocol.sctp: return p.l4Offset + 12
    case IPProtocol.icmp where !p.isIPv6, IPProtocol.icmpv6 where p.isIPv6: return p.l4Offset + 8
    default: return p.l4Offset  // Parses (with l4Offset -1) even when its body is absent.
    }
}

/// The promises every parsed packet keeps, whatever the input. Returns whether they held.
@discardableResult
func checkParsedPacketInvariants(
    _ result: ParseResult, frameLength: Int, _ context: @autoclosure () -> String
) -> Bool {
    guard case .parsed(let p) = result else { return true }
    var problems: [String] = []
    if p.l3Offset < 0 { problems.append("l3Offset < 0") }
    if p.l3Length < (p.isIPv6 ? 40 : 20) { problems.append("l3Length below an IP header") }
    if p.l3Offset + p.l3Length > frameLength { problems.append("l3 beyond the frame") }
    if p.l3Length > p.l3ClaimedLength { problems.append("l3Length > claimed") }
    if p.l4Offset != -1 && !(p.l4Offset > p.l3Offset && p.l4Offset < p.l3Offset + p.l3Length) {
        problems.append("l4Offset outside the packet")
    }
    if p.l4Offset >= frameLength { problems.append("l4Offset >= frame length") }
    if p.key.source.isIPv6 != p.key.destination.isIPv6 { problems.append("mixed families") }
    if p.fragment == .nonFirst
        && (p.l4Offset != -1 || p.key.sourcePort != 0 || p.key.destinationPort != 0
            || p.tcpFlags != 0)
    {
        problems.append("non-first fragment with L4 fields")
    }
    if p.tcpFlags != 0 && p.key.proto != IPProtocol.tcp { problems.append("flags without TCP") }
    if p.isIPv6 && !p.dontFragment { problems.append("IPv6 without DF") }
    if !problems.isEmpty {
        Issue.record("\(context()): \(problems.joined(separator: ", ")) in \(describe(result))")
        return false
    }
    return true
}
