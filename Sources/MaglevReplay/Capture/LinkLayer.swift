// Link-type normalisation: every capture link type the reader supports is turned into what the
// parser reads (an Ethernet frame or a bare IP packet) by stepping over a pseudo header, or, for
// Linux cooked captures of tagged traffic, by putting an Ethernet header back in front.
//
//   link type (libpcap DLT)            header            handed over as
//   EN10MB (1)                         -                 .ethernet at 0
//   RAW (12/14 as libpcap reports       -                 .rawIP at 0
//     LINKTYPE_RAW 101), IPV4 (228),
//     IPV6 (229)
//   LINUX_SLL (113)                    16 bytes, protocol at 14-15
//   LINUX_SLL2 (276)                   20 bytes, protocol at 0-1
//       0x0800 / 0x86DD                                  .rawIP after the header
//       0x8100, 0x88A8, 0x9100,                          .ethernet: a 14-byte header with zero
//       0x8847, 0x8848 (tags, MPLS)                      MACs and that ethertype, then the data
//       anything else (ARP, ...)                         skipped: "sll non-ip" / "sll2 non-ip"
//   NULL (0)                           4 bytes, family in the capturing host's byte order
//   LOOP (108)                         4 bytes, family in network order
//       2 (AF_INET); 10, 24, 28, 30 (AF_INET6 on Linux, Net/OpenBSD, FreeBSD, Darwin)
//                                                        .rawIP after 4 bytes
//       anything else                                    skipped: "null non-ip" / "loop non-ip"
//   PPP (9), PPP_SERIAL (50)           optional FF 03, protocol (1 byte when compressed, odd)
//       0x0021 / 0x0057                                  .rawIP after the protocol
//       anything else (LCP, ...)                         skipped: "ppp non-ip"
//   anything else                                        skipped, counted under the link type's
//                                                        name ("ieee802_11", or "linktype N")
// A packet too short for its pseudo header is skipped as "truncated link header".

import MaglevCore

/// Why the reader did not hand a packet over, for the reasons that do not depend on the file.
enum CaptureSkipReason: Int, CaseIterable {
    case sllNonIP
    case sll2NonIP
    case nullNonIP
    case loopNonIP
    case pppNonIP
    case truncatedLinkHeader
    /// The whole file's link type is not supported: counted per file, under the link type's name.
    case unsupportedLinkType

    var name: String {
        switch self {
        case .sllNonIP: "sll non-ip"
        case .sll2NonIP: "sll2 non-ip"
        case .nullNonIP: "null non-ip"
        case .loopNonIP: "loop non-ip"
        case .pppNonIP: "ppp non-ip"
        case .truncatedLinkHeader: "truncated link header"
        case .unsupportedLinkType: "unsupported link type"
        }
    }
}

/// What to do with one captured frame.
enum LinkDecodeResult: Equatable {
    /// Hand over the bytes from `offset` as `linkType`.
    case frame(offset: Int, linkType: LinkType)
    /// Hand over an Ethernet frame built from a 14-byte header carrying `etherType` and the
    /// bytes from `offset` (Linux cooked captures of VLAN-tagged or MPLS traffic).
    case ethernet(after: Int, etherType: UInt16)
    case skip(CaptureSkipReason)
}

/// How one capture file's link type maps onto what the parser reads.
enum LinkDecoder: Equatable {
    case ethernet
    case rawIP
    case linuxSLL
    case linuxSLL2
    case null
    case loop
    case ppp
    case unsupported

    /// The decoder for a libpcap DLT value (as `pcap_datalink` reports it: LINKTYPE_RAW, 101 in
    /// the file, is DLT_RAW, 12 on Linux and 14 on OpenBSD; both are accepted, and 101 too).
    init(dataLinkType dlt: Int32) {
        switch dlt {
        case 1: self = .ethernet
        case 12, 14, 101, 228, 229: self = .rawIP
        case 113: self = .linuxSLL
        case 276: self = .linuxSLL2
        case 0: self = .null
        case 108: self = .loop
        case 9, 50: self = .ppp
        default: self = .unsupported
        }
    }

    /// The Linux cooked header's length, and where its protocol field lies.
    static let sllHeaderLength = 16
    static let sll2HeaderLength = 20

    /// Decides what one frame becomes. Reads only within `frame`; allocates nothing.
    @inline(__always)
    func decode(_ frame: UnsafeRawBufferPointer) -> LinkDecodeResult {
        switch self {
        case .ethernet: return .frame(offset: 0, linkType: .ethernet)
        case .rawIP: return .frame(offset: 0, linkType: .rawIP)
        case .linuxSLL:
            guard frame.count >= Self.sllHeaderLength else { return .skip(.truncatedLinkHeader) }
            return Self.cooked(protocol: Self.be16(frame, 14), after: Self.sllHeaderLength, nonIP: .sllNonIP)
        case .linuxSLL2:
            guard frame.count >= Self.sll2HeaderLength else { return .skip(.truncatedLinkHeader) }
            return Self.cooked(protocol: Self.be16(frame, 0), after: Self.sll2HeaderLength, nonIP: .sll2NonIP)
        case .null, .loop:
            guard frame.count >= 4 else { return .skip(.truncatedLinkHeader) }
            let big = UInt32(frame[0]) << 24 | UInt32(frame[1]) << 16 | UInt32(frame[2]) << 8 | UInt32(frame[3])
            // NULL: the capturing host's byte order, unknown to us; the families are small
            // numbers, so at most one of the two readings can name one.
            if Self.isIPFamily(big) || (self == .null && Self.isIPFamily(big.byteSwapped)) {
                return .frame(offset: 4, linkType: .rawIP)
            }
            return .skip(self == .null ? .nullNonIP : .loopNonIP)
        case .ppp:
            var offset = 0
            if frame.count >= 2 && frame[0] == 0xFF && frame[1] == 0x03 { offset = 2 }
            guard offset < frame.count else { return .skip(.truncatedLinkHeader) }
            var proto: UInt16
            if frame[offset] & 1 == 1 {
                // Protocol-field compression (RFC 1661 §6.5): a one-byte protocol, odd.
                proto = UInt16(frame[offset])
                offset += 1
            } else {
                guard offset + 2 <= frame.count else { return .skip(.truncatedLinkHeader) }
                proto = Self.be16(frame, offset)
                offset += 2
            }
            if proto == 0x0021 || proto == 0x0057 { return .frame(offset: offset, linkType: .rawIP) }
            return .skip(.pppNonIP)
        case .unsupported:
            return .skip(.unsupportedLinkType)
        }
    }

    @inline(__always)
    private static func cooked(protocol proto: UInt16, after offset: Int, nonIP: CaptureSkipReason)
        -> LinkDecodeResult
    {
        switch proto {
        case 0x0800, 0x86DD: return .frame(offset: offset, linkType: .rawIP)
        // libpcap puts a VLAN tag stripped by the kernel back after the cooked header, with the
        // cooked protocol 0x8100: the data is then TCI, inner ethertype, packet.
        case 0x8100, 0x88A8, 0x9100, 0x8847, 0x8848: return .ethernet(after: offset, etherType: proto)
        default: return .skip(nonIP)
        }
    }

    @inline(__always)
    private static func isIPFamily(_ family: UInt32) -> Bool {
        family == 2 || family == 10 || family == 24 || family == 28 || family == 30
    }

    @inline(__always)
    private static func be16(_ frame: UnsafeRawBufferPointer, _ offset: Int) -> UInt16 {
        UInt16(frame[offset]) << 8 | UInt16(frame[offset + 1])
    }
}
