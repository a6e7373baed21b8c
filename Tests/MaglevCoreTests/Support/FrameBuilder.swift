// FrameBuilder: byte-exact test frames, described by value and rendered to [UInt8].
//
// A frame is a link layer (Ethernet with VLAN tags and MPLS labels, or none: raw IP), an IP
// header (IPv4 with options and fragment fields, or IPv6 with an extension header chain), a
// transport (TCP, UDP, SCTP, ICMP/ICMPv6, or any other protocol number) and a payload. Every
// length and checksum is computed on rendering (IPv4 header checksum; TCP, UDP, ICMPv6 over the
// pseudo-header; ICMPv4; SCTP CRC32c), unless a field says it overrides the computed value.
//
// Start from a constructor (the address family follows the address text):
//
//     FrameBuilder.tcp("198.51.100.7", 40000, "192.0.2.10", 80, flags: TCPFlags.syn)
//     FrameBuilder.udp("2001:db8::7", 5353, "2001:db8::10", 53)
//     FrameBuilder.sctp("198.51.100.7", 5000, "192.0.2.10", 5001)
//     FrameBuilder.icmp("198.51.100.7", "192.0.2.10", .echoRequest(id: 7))
//     FrameBuilder.icmp("203.0.113.1", "192.0.2.10", .packetTooBig(mtu: 1400, quoting: inner))
//     FrameBuilder.ip("198.51.100.7", "192.0.2.10", proto: IPProtocol.gre)   // payload as is
//     FrameBuilder.nonIP(etherType: 0x0806, body: arp)                        // ARP, LLDP...
//
// then chain modifiers (each returns a modified copy; the stored properties are `var`s too):
//
//     .vlan(100)                      802.1Q tag; call again for QinQ (first call = outermost);
//     .vlan(200, tpid: 0x88A8)        any TPID (0x8100, 0x88A8, 0x9100, ...)
//     .mpls(16)                       MPLS label, top first; bottom-of-stack set on the last
//     .rawIP()                        no link layer (LinkType.rawIP)
//     .macs(source:destination:)      6-byte MACs (defaults 02:00:00:00:00:01 -> :02)
//     .etherType(0x1234)              override the ethertype after the tags
//     .payload(100)                   100 bytes 0, 1, 2, ...; or .payload([UInt8])
//     .ipv4 { $0.dontFragment = true; $0.options = [1, 1, 1, 1] }    edit the IPv4 header
//     .ipv6 { $0.hopLimit = 1 }                                       edit the IPv6 header
//     .extensionHeaders([.hopByHop(), .routing(), .destinationOptions(), .fragment(...)])
//     .tcpHeader { $0.sequence = 1000 }                               edit the TCP header
//     .trailer([0xAA, 0xBB])          bytes after the IP packet (not counted in its length)
//     .padded()                       zero-pad the frame to 60 bytes (Ethernet minimum)
//
// and render:
//
//     .bytes                          the whole frame
//     .ipPacket                       the IP packet alone
//     .quote(28)                      its first 28 bytes (what an ICMP error quotes)
//     .parse()                        PacketParser's result for .bytes (with the frame's link)
//     .ipv4Fragments(payloadPerFragment: 16)       the frames of the datagram split in IPv4
//                                                  fragments (checksums over the whole datagram)
//     .ipv6Fragments(payloadPerFragment: 16, identification: 7)   the same with a fragment header
//
// IPv4 header fields (FrameBuilder.IPv4Header): source, destination, tos, ttl (64),
// identification, dontFragment, moreFragments, fragmentOffset (bytes, multiple of 8), options
// (padded with zeros to 4 bytes), and overrides version, headerLengthWords (IHL), totalLength
// (0 for a TSO capture), proto, checksum.
// IPv6 header fields (FrameBuilder.IPv6Header): source, destination, trafficClass, flowLabel,
// hopLimit (64), extensionHeaders, and overrides version, payloadLength (0 for a jumbogram or
// TSO capture), nextHeader.
// Extension headers (FrameBuilder.IPv6Extension): .hopByHop(options:), .destinationOptions(
// options:) (PadN added to a multiple of 8), .routing(type:segmentsLeft:addresses:),
// .fragment(offset:moreFragments:identification:) (offset in bytes), .authentication(icvBytes:),
// .raw(type:body:) (body = everything after the next-header byte, lengths not checked).
// ICMP messages (FrameBuilder.ICMPMessage): .echoRequest(id:sequence:), .echoReply(id:sequence:),
// .destinationUnreachable(code:quoting:), .packetTooBig(mtu:quoting:) (ICMPv4: type 3 code 4),
// .timeExceeded(code:quoting:), .parameterProblem(pointer:quoting:), .other(type:code:rest:body:);
// `quoting:` takes the IP packet bytes or another FrameBuilder (optionally `quoteLength:` bytes).
// Type numbers follow the frame's family (echo request is 8 in IPv4, 128 in IPv6).

@testable import MaglevCore

struct FrameBuilder {
    // MARK: Pieces

    enum Link { case ethernet, rawIP }

    struct VLANTag {
        var tpid: UInt16 = 0x8100
        var vid: UInt16
        var priority: UInt8 = 0
        var dropEligible = false
    }

    struct MPLSLabel {
        var label: UInt32
        var trafficClass: UInt8 = 0
        var ttl: UInt8 = 64
    }

    struct IPv4Header {
        var source: IPAddress
        var destination: IPAddress
        var tos: UInt8 = 0
        var ttl: UInt8 = 64
        var identification: UInt16 = 0
        var reservedFlag = false
        var dontFragment = false
        var moreFragments = false
        /// In bytes; a multiple of 8.
        var fragmentOffset = 0
        /// Padded with zeros (end of options) to a multiple of 4.
        var options: [UInt8] = []
        var version: UInt8 = 4
        /// Overrides: nil means computed.
        var headerLengthWords: UInt8? = nil
        var totalLength: UInt16? = nil
        var proto: UInt8? = nil
        var checksum: UInt16? = nil
    }

    struct IPv6Header {
        var source: IPAddress
        var destination: IPAddress
        var trafficClass: UInt8 = 0
        var flowLabel: UInt32 = 0
        var hopLimit: UInt8 = 64
        var extensionHeaders: [IPv6Extension] = []
        var version: UInt8 = 6
        /// Overrides: nil means computed.
        var payloadLength: UInt16? = nil
        var nextHeader: UInt8? = nil
    }

    enum IPv6Extension {
        /// Type 0; options padded with PadN to a multiple of 8 bytes.
        case hopByHop(options: [UInt8] = [])
        /// Type 60; options padded with PadN to a multiple of 8 bytes.
        case destinationOptions(options: [UInt8] = [])
        /// Type 43: 8 bytes + 16 per address.
        case routing(type: UInt8 = 4, segmentsLeft: UInt8 = 0, addresses: [IPAddress] = [])
        /// Type 44: 8 bytes; `offset` in bytes (multiple of 8).
        case fragment(offset: Int = 0, moreFragments: Bool = false, identification: UInt32 = 0)
        /// Type 51: 12 bytes + ICV; length field (n + 2) * 4.
        case authentication(icvBytes: Int = 12)
        /// Any type; `body` is everything after the next-header byte (length byte included).
        case raw(type: UInt8, body: [UInt8])

        var type: UInt8 {
            switch self {
            case .hopByHop: 0
            case .destinationOptions: 60
            case .routing: 43
            case .fragment: 44
            case .authentication: 51
            case .raw(let type, _): type
            }
        }

        func render(next: UInt8) -> [UInt8] {
            var b: [UInt8] = [next]
            switch self {
            case .hopByHop(let options), .destinationOptions(let options):
                let total = 2 + options.count
                let pad = (8 - total % 8) % 8
                b.append(UInt8((total + pad) / 8 - 1))
                b += options
                if pad == 1 { b.append(0) }  // Pad1.
                if pad >= 2 { b += [1, UInt8(pad - 2)] + [UInt8](repeating: 0, count: pad - 2) }
            case .routing(let type, let segmentsLeft, let addresses):
                b += [UInt8(addresses.count * 2), type, segmentsLeft, 0, 0, 0, 0]
                for a in addresses { b.appendAddress(a) }
            case .fragment(let offset, let more, let identification):
                precondition(offset % 8 == 0, "IPv6 fragment offset must be a multiple of 8")
                b.append(0)
                b.append16(UInt16(offset / 8) << 3 | (more ? 1 : 0))
                b.append32(identification)
            case .authentication(let icvBytes):
                let total = 12 + icvBytes
                precondition(total % 4 == 0, "AH length must be a multiple of 4")
                b += [UInt8(total / 4 - 2), 0, 0]
                b.append32(0x1000)  // SPI.
                b.append32(1)  // Sequence number.
                b += [UInt8](repeating: 0xA5, count: icvBytes)
            case .raw(_, let body):
                b += body
            }
            return b
        }
    }

    struct TCPHeader {
        var sourcePort: UInt16
        var destinationPort: UInt16
        var sequence: UInt32 = 1
        var acknowledgment: UInt32 = 0
        var flags: UInt8 = TCPFlags.ack
        var window: UInt16 = 65535
        var urgentPointer: UInt16 = 0
        /// Padded with zeros (end of options) to a multiple of 4.
        var options: [UInt8] = []
        /// Overrides: nil means computed.
        var dataOffsetWords: UInt8? = nil
        var checksum: UInt16? = nil
    }

    struct ICMPMessage {
        enum Kind {
            case echoRequest, echoReply, destinationUnreachable, packetTooBig, timeExceeded
            case parameterProblem
            case other(type: UInt8)
        }
        var kind: Kind
        var code: UInt8 = 0
        /// The 4 bytes after the checksum: identifier and sequence, MTU, pointer, unused.
        var rest: UInt32 = 0
        /// The quoted packet of an error, or echo data (the frame's payload follows it).
        var body: [UInt8] = []
        var checksum: UInt16? = nil

        func typeAndCode(isIPv6: Bool) -> (UInt8, UInt8) {
            switch kind {
            case .echoRequest: (isIPv6 ? 128 : 8, code)
            case .echoReply: (isIPv6 ? 129 : 0, code)
            case .destinationUnreachable: (isIPv6 ? 1 : 3, code)
            case .packetTooBig: isIPv6 ? (2, code) : (3, 4)
            case .timeExceeded: (isIPv6 ? 3 : 11, code)
            case .parameterProblem: (isIPv6 ? 4 : 12, code)
            case .other(let type): (type, code)
            }
        }

        static func echoRequest(id: UInt16, sequence: UInt16 = 1) -> ICMPMessage {
            ICMPMessage(kind: .echoRequest, rest: UInt32(id) << 16 | UInt32(sequence))
        }
        static func echoReply(id: UInt16, sequence: UInt16 = 1) -> ICMPMessage {
            ICMPMessage(kind: .echoReply, rest: UInt32(id) << 16 | UInt32(sequence))
        }
        static func destinationUnreachable(code: UInt8 = 0, quoting: [UInt8]) -> ICMPMessage {
            ICMPMessage(kind: .destinationUnreachable, code: code, body: quoting)
        }
        static func destinationUnreachable(
            code: UInt8 = 0, quoting packet: FrameBuilder, quoteLength: Int? = nil
        ) -> ICMPMessage {
            destinationUnreachable(code: code, quoting: packet.quote(quoteLength))
        }
        /// ICMPv4 "fragmentation needed" (type 3 code 4, MTU in the low 16 bits) or ICMPv6
        /// "packet too big" (type 2, 32-bit MTU).
        static func packetTooBig(mtu: UInt32, quoting: [UInt8]) -> ICMPMessage {
            ICMPMessage(kind: .packetTooBig, rest: mtu, body: quoting)
        }
        static func packetTooBig(
            mtu: UInt32, quoting packet: FrameBuilder, quoteLength: Int? = nil
        ) -> ICMPMessage {
            packetTooBig(mtu: mtu, quoting: packet.quote(quoteLength))
        }
        static func timeExceeded(code: UInt8 = 0, quoting: [UInt8]) -> ICMPMessage {
            ICMPMessage(kind: .timeExceeded, code: code, body: quoting)
        }
        static func timeExceeded(
            code: UInt8 = 0, quoting packet: FrameBuilder, quoteLength: Int? = nil
        ) -> ICMPMessage {
            timeExceeded(code: code, quoting: packet.quote(quoteLength))
        }
        static func parameterProblem(pointer: UInt32 = 0, quoting: [UInt8]) -> ICMPMessage {
            ICMPMessage(kind: .parameterProblem, rest: pointer, body: quoting)
        }
        static func parameterProblem(
            pointer: UInt32 = 0, quoting packet: FrameBuilder, quoteLength: Int? = nil
        ) -> ICMPMessage {
            parameterProblem(pointer: pointer, quoting: packet.quote(quoteLength))
        }
        static func other(type: UInt8, code: UInt8 = 0, rest: UInt32 = 0, body: [UInt8] = [])
            -> ICMPMessage
        {
            ICMPMessage(kind: .other(type: type), code: code, rest: rest, body: body)
        }
    }

    enum Network {
        case ipv4(IPv4Header)
        case ipv6(IPv6Header)
        /// A non-IP body after the link header (with `etherType`).
        case raw(etherType: UInt16, body: [UInt8])
    }

    enum Transport {
        case tcp(TCPHeader)
        case udp(sourcePort: UInt16, destinationPort: UInt16)
        case sctp(sourcePort: UInt16, destinationPort: UInt16, verificationTag: UInt32)
        case icmp(ICMPMessage)
        /// Any protocol number; the payload is the whole transport part.
        case other(proto: UInt8)
    }

    // MARK: State

    var link: Link = .ethernet
    var sourceMAC: [UInt8] = [0x02, 0, 0, 0, 0, 0x01]
    var destinationMAC: [UInt8] = [0x02, 0, 0, 0, 0, 0x02]
    /// Outermost first.
    var vlanTags: [VLANTag] = []
    /// Top of stack first.
    var mplsLabels: [MPLSLabel] = []
    /// Overrides the ethertype after the tags (nil: MPLS, IPv4 or IPv6 as the content says).
    var etherTypeOverride: UInt16? = nil
    var network: Network
    var transport: Transport
    var payload: [UInt8] = []
    /// Bytes after the IP packet: link padding or garbage, not counted in IP lengths.
    var trailer: [UInt8] = []
    /// Zero-pad the frame to at least this many bytes.
    var minimumFrameLength = 0

    // MARK: Constructors

    init(source: IPAddress, destination: IPAddress, transport: Transport) {
        precondition(source.isIPv6 == destination.isIPv6, "mixed address families")
        self.network =
            source.isIPv6
            ? .ipv6(IPv6Header(source: source, destination: destination))
            : .ipv4(IPv4Header(source: source, destination: destination))
        self.transport = transport
    }

    static func address(_ text: String) -> IPAddress {
        guard let a = IPAddress(text) else { preconditionFailure("bad address \(text)") }
        return a
    }

    static func tcp(
        _ source: String, _ sourcePort: UInt16, _ destination: String,
        _ destinationPort: UInt16, flags: UInt8 = TCPFlags.ack
    ) -> FrameBuilder {
        FrameBuilder(
            source: address(source), destination: address(destination),
            transport: .tcp(
                TCPHeader(
                    sourcePort: sourcePort, destinationPort: destinationPort, flags: flags)))
    }

    static func udp(
        _ source: String, _ sourcePort: UInt16, _ destination: String,
        _ destinationPort: UInt16
    ) -> FrameBuilder {
        FrameBuilder(
            source: address(source), destination: address(destination),
            transport: .udp(sourcePort: sourcePort, destinationPort: destinationPort))
    }

    static func sctp(
        _ source: String, _ sourcePort: UInt16, _ destination: String,
        _ destinationPort: UInt16, verificationTag: UInt32 = 0x1234_5678
    ) -> FrameBuilder {
        FrameBuilder(
            source: address(source), destination: address(destination),
            transport: .sctp(
                sourcePort: sourcePort, destinationPort: destinationPort,
                verificationTag: verificationTag))
    }

    static func icmp(_ source: String, _ destination: String, _ message: ICMPMessage)
        -> FrameBuilder
    {
        FrameBuilder(
            source: address(source), destination: address(destination),
            transport: .icmp(message))
    }

    /// Any protocol; the payload is carried as the whole transport part.
    static func ip(_ source: String, _ destination: String, proto: UInt8) -> FrameBuilder {
        FrameBuilder(
            source: address(source), destination: address(destination),
            transport: .other(proto: proto))
    }

    /// A non-IP Ethernet frame.
    static func nonIP(etherType: UInt16, body: [UInt8]) -> FrameBuilder {
        var f = FrameBuilder(
            source: IPAddress(ipv4: 0), destination: IPAddress(ipv4: 0),
            transport: .other(proto: 0))
        f.network = .raw(etherType: etherType, body: body)
        return f
    }

    // MARK: Modifiers

    func vlan(_ vid: UInt16, tpid: UInt16 = 0x8100, priority: UInt8 = 0) -> FrameBuilder {
        var f = self
        f.vlanTags.append(VLANTag(tpid: tpid, vid: vid, priority: priority))
        return f
    }

    func mpls(_ label: UInt32, trafficClass: UInt8 = 0, ttl: UInt8 = 64) -> FrameBuilder {
        var f = self
        f.mplsLabels.append(MPLSLabel(label: label, trafficClass: trafficClass, ttl: ttl))
        return f
    }

    func rawIP() -> FrameBuilder {
        var f = self
        f.link = .rawIP
        return f
    }

    func macs(source: [UInt8], destination: [UInt8]) -> FrameBuilder {
        precondition(source.count == 6 && destination.count == 6, "a MAC is 6 bytes")
        var f = self
        f.sourceMAC = source
        f.destinationMAC = destination
        return f
    }

    func etherType(_ value: UInt16) -> FrameBuilder {
        var f = self
        f.etherTypeOverride = value
        return f
    }

    /// `count` bytes 0, 1, 2, ... (mod 256).
    func payload(_ count: Int) -> FrameBuilder {
        payload((0..<count).map { UInt8(truncatingIfNeeded: $0) })
    }

    func payload(_ bytes: [UInt8]) -> FrameBuilder {
        var f = self
        f.payload = bytes
        return f
    }

    func ipv4(_ edit: (inout IPv4Header) -> Void) -> FrameBuilder {
        guard case .ipv4(var h) = network else { preconditionFailure("not an IPv4 frame") }
        edit(&h)
        var f = self
        f.network = .ipv4(h)
        return f
    }

    func ipv6(_ edit: (inout IPv6Header) -> Void) -> FrameBuilder {
        guard case .ipv6(var h) = network else { preconditionFailure("not an IPv6 frame") }
        edit(&h)
        var f = self
        f.network = .ipv6(h)
        return f
    }

    func extensionHeaders(_ headers: [IPv6Extension]) -> FrameBuilder {
        ipv6 { $0.extensionHeaders = headers }
    }

    func tcpHeader(_ edit: (inout TCPHeader) -> Void) -> FrameBuilder {
        guard case .tcp(var h) = transport else { preconditionFailure("not a TCP frame") }
        edit(&h)
        var f = self
        f.transport = .tcp(h)
        return f
    }

    func trailer(_ bytes: [UInt8]) -> FrameBuilder {
        var f = self
        f.trailer = bytes
        return f
    }

    /// Zero-pads the frame to `length` bytes (60: the Ethernet minimum without FCS).
    func padded(to length: Int = 60) -> FrameBuilder {
        var f = self
        f.minimumFrameLength = length
        return f
    }

    // MARK: Rendering

    /// The whole frame.
    var bytes: [UInt8] { frame(around: ipPacket) }

    /// The IP packet alone (no link layer, no trailer).
    var ipPacket: [UInt8] {
        switch network {
        case .ipv4(let h):
            let l4 = transportBytes(pseudoHeader: pseudoHeaderSum(h.source, h.destination))
            return renderIPv4(h, proto: h.proto ?? transportProto, body: l4)
        case .ipv6(let h):
            let l4 = transportBytes(pseudoHeader: pseudoHeaderSum(h.source, h.destination))
            return renderIPv6(h, extensions: h.extensionHeaders, proto: transportProto, body: l4)
        case .raw(_, let body):
            return body
        }
    }

    /// The datagram split into IPv4 fragments of at most `payloadPerFragment` bytes of
    /// transport data each (rounded down to a multiple of 8), as whole frames. The transport
    /// checksum covers the whole datagram.
    func ipv4Fragments(payloadPerFragment: Int) -> [[UInt8]] {
        guard case .ipv4(let h) = network else { preconditionFailure("not an IPv4 frame") }
        let data = transportBytes(pseudoHeader: pseudoHeaderSum(h.source, h.destination))
        return chunks(of: data, size: payloadPerFragment).map { offset, chunk, last in
            var fh = h
            fh.fragmentOffset = offset
            fh.moreFragments = !last
            return frame(around: renderIPv4(fh, proto: h.proto ?? transportProto, body: chunk))
        }
    }

    /// The datagram split into IPv6 fragments: the configured extension headers stay in every
    /// fragment, a fragment header follows them, then at most `payloadPerFragment` bytes
    /// (rounded down to a multiple of 8) of transport data.
    func ipv6Fragments(payloadPerFragment: Int, identification: UInt32) -> [[UInt8]] {
        guard case .ipv6(let h) = network else { preconditionFailure("not an IPv6 frame") }
        let data = transportBytes(pseudoHeader: pseudoHeaderSum(h.source, h.destination))
        return chunks(of: data, size: payloadPerFragment).map { offset, chunk, last in
            let fragment = IPv6Extension.fragment(
                offset: offset, moreFragments: !last, identification: identification)
            return frame(
                around: renderIPv6(
                    h, extensions: h.extensionHeaders + [fragment], proto: transportProto,
                    body: chunk))
        }
    }

    // MARK: Rendering internals

    /// The first `length` bytes of the IP packet (all of it when nil): what an ICMP error quotes.
    func quote(_ length: Int? = nil) -> [UInt8] {
        let packet = ipPacket
        return Array(packet.prefix(length ?? packet.count))
    }

    private var isIPv6: Bool {
        if case .ipv6 = network { return true }
        return false
    }

    private var transportProto: UInt8 {
        switch transport {
        case .tcp: IPProtocol.tcp
        case .udp: IPProtocol.udp
        case .sctp: IPProtocol.sctp
        case .icmp: isIPv6 ? IPProtocol.icmpv6 : IPProtocol.icmp
        case .other(let proto): proto
        }
    }

    private func chunks(of data: [UInt8], size: Int) -> [(Int, [UInt8], Bool)] {
        let step = size / 8 * 8
        precondition(step > 0, "fragments carry at least 8 bytes")
        var out: [(Int, [UInt8], Bool)] = []
        var offset = 0
        repeat {
            let end = min(offset + step, data.count)
            out.append((offset, Array(data[offset..<end]), end == data.count))
            offset = end
        } while offset < data.count
        return out
    }

    private func frame(around packet: [UInt8]) -> [UInt8] {
        var b: [UInt8] = []
        if link == .ethernet {
            b += destinationMAC
            b += sourceMAC
            for tag in vlanTags {
                b.append16(tag.tpid)
                b.append16(
                    UInt16(tag.priority & 7) << 13 | (tag.dropEligible ? 0x1000 : 0)
                        | tag.vid & 0x0FFF)
            }
            let content: UInt16
            switch network {
            case .ipv4: content = mplsLabels.isEmpty ? 0x0800 : 0x8847
            case .ipv6: content = mplsLabels.isEmpty ? 0x86DD : 0x8847
            case .raw(let etherType, _): content = etherType
            }
            b.append16(etherTypeOverride ?? content)
            for (i, label) in mplsLabels.enumerated() {
                let bottom: UInt32 = i == mplsLabels.count - 1 ? 1 : 0
                b.append32(
                    (label.label & 0xFFFFF) << 12 | UInt32(label.trafficClass & 7) << 9
                        | bottom << 8 | UInt32(label.ttl))
            }
        }
        b += packet
        b += trailer
        if b.count < minimumFrameLength {
            b += [UInt8](repeating: 0, count: minimumFrameLength - b.count)
        }
        return b
    }

    private func renderIPv4(_ h: IPv4Header, proto: UInt8, body: [UInt8]) -> [UInt8] {
        var options = h.options
        while options.count % 4 != 0 { options.append(0) }
        let headerLength = 20 + options.count
        var b: [UInt8] = []
        b.append((h.version & 0xF) << 4 | (h.headerLengthWords ?? UInt8(headerLength / 4)) & 0xF)
        b.append(h.tos)
        b.append16(h.totalLength ?? UInt16(headerLength + body.count))
        b.append16(h.identification)
        precondition(h.fragmentOffset % 8 == 0, "IPv4 fragment offset must be a multiple of 8")
        b.append16(
            (h.reservedFlag ? 0x8000 : 0) | (h.dontFragment ? 0x4000 : 0)
                | (h.moreFragments ? 0x2000 : 0) | UInt16(h.fragmentOffset / 8) & 0x1FFF)
        b.append(h.ttl)
        b.append(proto)
        b.append16(0)
        b.appendAddress(h.source)
        b.appendAddress(h.destination)
        b += options
        let checksum = h.checksum ?? ~UInt16(FrameBuilder.onesComplementSum(b))
        b[10] = UInt8(checksum >> 8)
        b[11] = UInt8(checksum & 0xFF)
        return b + body
    }

    private func renderIPv6(
        _ h: IPv6Header, extensions: [IPv6Extension], proto: UInt8, body: [UInt8]
    ) -> [UInt8] {
        var chain: [UInt8] = []
        for (i, e) in extensions.enumerated() {
            chain += e.render(next: i + 1 < extensions.count ? extensions[i + 1].type : proto)
        }
        var b: [UInt8] = []
        b.append32(
            UInt32(h.version & 0xF) << 28 | UInt32(h.trafficClass) << 20 | h.flowLabel & 0xFFFFF)
        b.append16(h.payloadLength ?? UInt16(chain.count + body.count))
        b.append(h.nextHeader ?? extensions.first?.type ?? proto)
        b.append(h.hopLimit)
        b.appendAddress(h.source)
        b.appendAddress(h.destination)
        return b + chain + body
    }

    /// The pseudo-header's address part (lengths and protocol are added per transport).
    private func pseudoHeaderSum(_ source: IPAddress, _ destination: IPAddress) -> UInt32 {
        var b: [UInt8] = []
        b.appendAddress(source)
        b.appendAddress(destination)
        return FrameBuilder.onesComplementSum(b)
    }

    private func transportBytes(pseudoHeader: UInt32) -> [UInt8] {
        var b: [UInt8] = []
        let proto = transportProto
        func pseudo(_ length: Int) -> UInt32 {
            // IPv4: protocol + 16-bit length; IPv6: 32-bit length + next header. Same sum.
            pseudoHeader + UInt32(proto) + UInt32(length >> 16) + UInt32(length & 0xFFFF)
        }
        func put(_ value: UInt16, at offset: Int) {
            b[offset] = UInt8(value >> 8)
            b[offset + 1] = UInt8(value & 0xFF)
        }
        switch transport {
        case .tcp(let h):
            var options = h.options
            while options.count % 4 != 0 { options.append(0) }
            b.append16(h.sourcePort)
            b.append16(h.destinationPort)
            b.append32(h.sequence)
            b.append32(h.acknowledgment)
            b.append((h.dataOffsetWords ?? UInt8((20 + options.count) / 4)) << 4)
            b.append(h.flags)
            b.append16(h.window)
            b.append16(0)
            b.append16(h.urgentPointer)
            b += options
            b += payload
            put(
                h.checksum ?? ~UInt16(FrameBuilder.onesComplementSum(b, initial: pseudo(b.count))),
                at: 16)
        case .udp(let sourcePort, let destinationPort):
            b.append16(sourcePort)
            b.append16(destinationPort)
            b.append16(UInt16(truncatingIfNeeded: 8 + payload.count))
            b.append16(0)
            b += payload
            let sum = ~UInt16(FrameBuilder.onesComplementSum(b, initial: pseudo(b.count)))
            put(sum == 0 ? 0xFFFF : sum, at: 6)
        case .sctp(let sourcePort, let destinationPort, let tag):
            b.append16(sourcePort)
            b.append16(destinationPort)
            b.append32(tag)
            b.append32(0)
            b += payload
            let crc = FrameBuilder.crc32c(b)  // Stored least significant byte first.
            b[8] = UInt8(crc & 0xFF)
            b[9] = UInt8(crc >> 8 & 0xFF)
            b[10] = UInt8(crc >> 16 & 0xFF)
            b[11] = UInt8(crc >> 24)
        case .icmp(let m):
            let (type, code) = m.typeAndCode(isIPv6: isIPv6)
            b.append(type)
            b.append(code)
            b.append16(0)
            b.append32(m.rest)
            b += m.body
            b += payload
            let initial = isIPv6 ? pseudo(b.count) : 0
            put(m.checksum ?? ~UInt16(FrameBuilder.onesComplementSum(b, initial: initial)), at: 2)
        case .other:
            b = payload
        }
        return b
    }

    /// RFC 1071 sum, folded, not inverted.
    static func onesComplementSum(_ bytes: [UInt8], initial: UInt32 = 0) -> UInt32 {
        var sum = UInt64(initial)
        var i = 0
        while i + 1 < bytes.count {
            sum += UInt64(bytes[i]) << 8 | UInt64(bytes[i + 1])
            i += 2
        }
        if i < bytes.count { sum += UInt64(bytes[i]) << 8 }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        return UInt32(sum)
    }

    /// CRC-32C (Castagnoli), as SCTP uses it (RFC 4960 appendix B).
    static func crc32c(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        }
        return ~crc
    }
}

// MARK: Parsing helpers

extension FrameBuilder {
    /// Parses `frame` as the parser would see it.
    static func parse(_ frame: [UInt8], linkType: LinkType) -> ParseResult {
        frame.withUnsafeBytes { PacketParser.parse($0, linkType: linkType) }
    }

    /// Parses the frame with its own link type.
    func parse() -> ParseResult {
        FrameBuilder.parse(bytes, linkType: link == .rawIP ? .rawIP : .ethernet)
    }

    /// One line for failure messages.
    static func describe(_ r: ParseResult) -> String {
        switch r {
        case .parsed(let p):
            "parsed(\(p.key), l3 \(p.l3Offset)+\(p.l3Length)/\(p.l3ClaimedLength), l4 \(p.l4Offset), "
                + "\(p.fragment) id \(p.fragmentID), flags \(p.tcpFlags), icmpError \(p.isICMPError), "
                + "df \(p.dontFragment), tc \(p.trafficClass))"
        case .notIP: "notIP"
        case .malformed(let reason): "malformed(\(reason))"
        }
    }
}

extension [UInt8] {
    mutating func append16(_ v: UInt16) {
        append(UInt8(v >> 8))
        append(UInt8(v & 0xFF))
    }
    mutating func append32(_ v: UInt32) {
        append16(UInt16(v >> 16))
        append16(UInt16(v & 0xFFFF))
    }
    mutating func append64(_ v: UInt64) {
        append32(UInt32(v >> 32))
        append32(UInt32(v & 0xFFFF_FFFF))
    }
    /// 4 bytes for IPv4, 16 for IPv6.
    mutating func appendAddress(_ a: IPAddress) {
        if a.isIPv6 {
            append64(a.high)
            append64(a.low)
        } else {
            append32(a.ipv4Value)
        }
    }
}
