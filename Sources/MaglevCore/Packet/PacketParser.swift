/// The per-packet parser: raw frame bytes in, a `ParseResult` out.
///
/// One pass over the headers, front to back. Every header's length is checked once against the
/// bytes that may hold it, then its fields are read with the unchecked big-endian loads of
/// `Bytes.swift`. Nothing is allocated, nothing throws, no input traps.
///
/// Two ends bound every read:
/// - the frame's end (what was captured), and
/// - the IP packet's end (`l3Offset + l3Length`): the IP length claim bounded by the capture, so
///   Ethernet padding after a short packet is never read as headers.
///
/// Semantics, layer by layer:
///
/// **Link layer** (`LinkType.ethernet`). Ethertype 0x0800 is IPv4, 0x86DD IPv6; 0x8100, 0x88A8 and
/// 0x9100 are VLAN tags, at any depth; 0x8847 and 0x8848 are MPLS, whose labels are walked to the
/// bottom of the stack, after which the IP version nibble decides (neither 4 nor 6, as in an
/// Ethernet pseudowire: `.notIP`). At most `maxL2Headers` tags and labels together
/// (`.tooManyL2Headers` beyond). A frame too short for its Ethernet header, a tag or a label:
/// `.truncatedL2`. Other ethertypes (ARP, LLDP, 802.3 length fields): `.notIP`. L2 fields never
/// reach the flow key: a connection may be captured partly tagged and partly not.
///
/// **Raw IP** (`LinkType.rawIP`): the version nibble decides; neither 4 nor 6: `.badIPVersion`.
/// An empty packet (raw IP, or nothing after the MPLS bottom of stack): `.truncatedPacket`.
///
/// **IPv4**. Version 4 (`.badIPVersion`), IHL >= 5 (`.badIPv4HeaderLength`), header with its
/// options inside the frame (`.truncatedIPv4Header`), total length >= IHL * 4
/// (`.badIPv4TotalLength`). A total length of 0 (TSO captures) claims the captured bytes.
/// `l3ClaimedLength` is the claim, `l3Length` the claim bounded by the capture. DF, MF and the
/// fragment offset give `dontFragment` and `fragment`: offset > 0 is `.nonFirst` (3-tuple,
/// `l4Offset` -1); offset 0 with MF is `.first` and carries the ports. `fragmentID` is the
/// identification of a fragment, 0 for an unfragmented packet.
///
/// **IPv6**. A 40-byte header (`.truncatedIPv6Header`), version 6 (`.badIPVersion`). A payload
/// length of 0 (jumbogram, TSO) claims the captured bytes. Up to `maxIPv6ExtensionHeaders`
/// extension headers are walked: hop-by-hop (0), routing (43), destination options (60),
/// fragment (44, 8 bytes) and AH (51, (n + 2) * 4 bytes); any other value ends the walk as the
/// upper-layer protocol. A longer chain: `.ipv6ExtensionChainTooLong`; a header cut short of the
/// packet's end: `.truncatedIPv6ExtensionHeader`. A fragment header with offset > 0 stops the
/// walk (what follows is fragment data, the header's next-header value is the protocol) and
/// gives `.nonFirst`; offset 0 with M set gives `.first`; offset 0 with M clear is an atomic
/// fragment, `.none`, with ports. `fragmentID` comes from the fragment header when there is one.
/// Next header 59 (no next header): protocol 59, no ports, `l4Offset` -1. `dontFragment` is
/// always true for IPv6. Known limit: when extension headers follow the fragment header (rare;
/// destination options), a non-first fragment's protocol is the fragment header's next-header
/// value while the first fragment's is the upper-layer protocol, so their 3-tuples differ.
///
/// **Transport** (unfragmented packets and first fragments). The fixed header must lie within
/// the IP packet: TCP 20 bytes, UDP 8, SCTP 12, ICMP/ICMPv6 8. When it does not:
/// `.firstFragmentTooShort` for a first fragment whose own length claim cannot hold it,
/// otherwise `.truncatedL4Header`. TCP, UDP and SCTP give ports (at the same place); TCP also
/// `tcpFlags`. ICMP (protocol 1 in IPv4) and ICMPv6 (58 in IPv6):
/// - echo request/reply (v4 types 8/0, v6 128/129): `sourcePort` = identifier,
///   `destinationPort` = 0, in both directions;
/// - errors (v4 types 3, 11, 12; v6 types 1, 2, 3, 4): `isICMPError`, and `key` is the flow of
///   the quoted packet reversed (source = quoted destination, ports swapped, protocol = quoted
///   protocol), so that the error follows the connection it is about. A quote too short for the
///   quoted addresses (or, in IPv6, its extension chain): `.truncatedICMPQuote`; a quote that is
///   not an IP header of the outer packet's family, or whose IPv6 chain is too long:
///   `.badICMPQuote`. Quoted ports are read when the quoted packet is not a non-first fragment
///   and its first 4 L4 bytes are present; otherwise they stay 0 (not an error). A quoted ICMP
///   echo gives the echo's own key shape (identifier as `sourcePort`, addresses swapped), equal
///   to the key of the echo flow seen from the other side;
/// - other types (neighbour discovery, router advertisements, ...): 3-tuple, ports 0.
///
/// Other protocols (GRE, ESP, ICMP in the wrong family, ...): 3-tuple, ports 0, `l4Offset` where
/// their header begins (-1 when the packet ends there).
///
/// **Tracer marker**. `traceMarked` is set when the IPv4 reserved flag (0x8000 of the
/// flags/fragment-offset field, RFC 3514's bit) is set, or the IPv6 flow label is
/// `TraceMarker.ipv6FlowLabel`. The parser reads no more for it, and nothing else depends on it:
/// a marked packet parses exactly like an unmarked one (docs/maglev.md, "The packet tracer").
///
/// Snaplen-truncated packets (claim larger than the capture) parse as long as the headers read
/// are present; `ParsedPacket.isTruncated` lets the caller decide.
///
/// Every `.parsed` result satisfies `0 <= l3Offset`, `l3Offset + l3Length <= frame.count`,
/// `l3Length <= l3ClaimedLength`, and `l4Offset == -1` or
/// `l3Offset < l4Offset < l3Offset + l3Length`.
public enum PacketParser {
    /// The most VLAN tags and MPLS labels, together, before the IP header.
    public static let maxL2Headers = 8
    /// The most IPv6 extension headers walked before the upper-layer header.
    public static let maxIPv6ExtensionHeaders = 8

    /// Parses one frame. Never traps on any input, allocates nothing, never throws.
    ///
    /// See the type's documentation for what each layer accepts and which `DropReason` each
    /// malformation gets.
    public static func parse(_ frame: UnsafeRawBufferPointer, linkType: LinkType) -> ParseResult {
        var packet = ParsedPacket.zero
        guard let reason = parse(frame, linkType: linkType, into: &packet) else { return .parsed(packet) }
        return reason == .notIP ? .notIP : .malformed(reason)
    }

    /// The same, for the data path: the packet is written into `packet` (in place, no copy of
    /// the result), and the answer is nil when it parsed, `.notIP` for a frame that is not an
    /// IP packet, or the malformation. `packet` holds no meaning unless the answer is nil.
    public static func parse(
        _ frame: UnsafeRawBufferPointer, linkType: LinkType, into packet: inout ParsedPacket
    ) -> DropReason? {
        guard let base = frame.baseAddress, frame.count > 0 else {
            return linkType == .ethernet ? .truncatedL2 : .truncatedPacket
        }
        let p = UnsafeRawPointer(base)
        switch linkType {
        case .ethernet:
            if parseCommonEthernetIPv4(p, count: frame.count, into: &packet) { return nil }
            return parseEthernet(p, end: frame.count, into: &packet)
        case .rawIP: return parseIP(p, at: 0, end: frame.count, into: &packet)
        }
    }

    /// Dispatches on the version nibble of the byte at `l3` (the frame holds at least one byte
    /// there unless `l3 == end`).
    @inline(__always)
    static func parseIP(_ p: UnsafeRawPointer, at l3: Int, end: Int, into packet: inout ParsedPacket) -> DropReason? {
        guard l3 < end else { return .truncatedPacket }
        switch p.loadBE8(l3) >> 4 {
        case 4: return parseIPv4(p, at: l3, end: end, into: &packet)
        case 6: return parseIPv6(p, at: l3, end: end, into: &packet)
        default: return .badIPVersion
        }
    }
}
