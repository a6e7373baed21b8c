import MaglevCore

/// Why the decapsulator dropped a packet. Every dropped packet has exactly one reason.
public enum DecapDropReason: Int, CaseIterable, Sendable {
    /// Shorter than the headers it claims (outer IPv4, GRE, inner IP), or cut by the buffer.
    case truncated
    /// The outer IPv4 header is not IPv4, has a bad header length, or is not GRE.
    case badOuterHeader
    /// GRE version other than 0 (version 1 is PPTP's enhanced GRE).
    case badGREVersion
    /// Checksum, routing, key, sequence or reserved bits set: we send none of them (RFC 2784 says
    /// to discard packets with reserved bits we do not implement).
    case unsupportedGREFlags
    /// GRE protocol type other than IPv4 (0x0800) and IPv6 (0x86DD), e.g. 0x6558 (Ethernet).
    case unsupportedProtocol
    /// The inner packet's version nibble contradicts the GRE protocol type, or its header is
    /// shorter than the minimum.
    case innerHeaderMismatch
    /// The outer source is not in `--only-from`.
    case sourceNotAllowed
    /// The TUN device refused the inner packet (write failed).
    case tunWriteFailed

    /// The counter's name as printed (snake case, stable).
    public var name: String {
        switch self {
        case .truncated: "truncated"
        case .badOuterHeader: "bad_outer_header"
        case .badGREVersion: "bad_gre_version"
        case .unsupportedGREFlags: "unsupported_gre_flags"
        case .unsupportedProtocol: "unsupported_protocol"
        case .innerHeaderMismatch: "inner_header_mismatch"
        case .sourceNotAllowed: "source_not_allowed"
        case .tunWriteFailed: "tun_write_failed"
        }
    }
}

/// What to do with one received GRE packet: hand the inner packet (a range of the received bytes)
/// to the TUN device, or drop it.
public enum DecapOutcome: Equatable, Sendable {
    case deliver(innerOffset: Int, innerLength: Int, innerIsIPv6: Bool)
    case drop(DecapDropReason)
}

/// Validation of GRE packets as raw sockets deliver them (docs/maglev.md §6: outer IPv4 or IPv6,
/// a 4-byte GRE header with no optional fields, protocol 0x0800 or 0x86DD, the inner packet
/// unchanged). Pure: no I/O, no allocation.
public enum GREDecapsulation {
    /// Classifies one packet. `outerIsIPv6 == false`: `packet` starts at the outer IPv4 header
    /// (an `AF_INET` raw socket); `true`: it starts at the GRE header (an `AF_INET6` raw socket
    /// strips the IPv6 header). The inner length is the inner header's own total length (trailing
    /// bytes are not passed on).
    public static func classify(_ packet: UnsafeRawBufferPointer, outerIsIPv6: Bool) -> DecapOutcome {
        guard let base = packet.baseAddress else { return .drop(.truncated) }
        let length = packet.count
        var greOffset = 0
        var end = length
        if !outerIsIPv6 {
            guard length >= 20 else { return .drop(.truncated) }
            let versionIHL = base.load(fromByteOffset: 0, as: UInt8.self)
            let headerLength = Int(versionIHL & 0x0F) * 4
            guard versionIHL >> 4 == 4, headerLength >= 20, base.load(fromByteOffset: 9, as: UInt8.self) == 47 else {
                return .drop(.badOuterHeader)
            }
            let totalLength = Int(loadBE16(base, 2))
            guard totalLength >= headerLength else { return .drop(.badOuterHeader) }
            guard totalLength <= length else { return .drop(.truncated) }
            greOffset = headerLength
            end = totalLength
        }
        guard end - greOffset >= 4 else { return .drop(.truncated) }
        let flags = loadBE16(base, greOffset)
        guard flags & 0x0007 == 0 else { return .drop(.badGREVersion) }
        guard flags == 0 else { return .drop(.unsupportedGREFlags) }
        let innerOffset = greOffset + 4
        let available = end - innerOffset
        switch loadBE16(base, greOffset + 2) {
        case 0x0800:
            guard available >= 20 else { return .drop(.truncated) }
            let versionIHL = base.load(fromByteOffset: innerOffset, as: UInt8.self)
            guard versionIHL >> 4 == 4, versionIHL & 0x0F >= 5 else { return .drop(.innerHeaderMismatch) }
            let innerLength = Int(loadBE16(base, innerOffset + 2))
            guard innerLength >= Int(versionIHL & 0x0F) * 4 else { return .drop(.innerHeaderMismatch) }
            guard innerLength <= available else { return .drop(.truncated) }
            return .deliver(innerOffset: innerOffset, innerLength: innerLength, innerIsIPv6: false)
        case 0x86DD:
            guard available >= 40 else { return .drop(.truncated) }
            guard base.load(fromByteOffset: innerOffset, as: UInt8.self) >> 4 == 6 else { return .drop(.innerHeaderMismatch) }
            // Payload length 0 is a jumbogram (hop-by-hop option); pass what arrived.
            let payloadLength = Int(loadBE16(base, innerOffset + 4))
            let innerLength = payloadLength == 0 ? available : 40 + payloadLength
            guard innerLength <= available else { return .drop(.truncated) }
            return .deliver(innerOffset: innerOffset, innerLength: innerLength, innerIsIPv6: true)
        default:
            return .drop(.unsupportedProtocol)
        }
    }

    /// The outer source of a packet as `classify` sees it: IPv4 from the outer header (the
    /// caller checked `count >= 20`), IPv6 from the 16 bytes at `ipv6Source`.
    @inline(__always)
    static func outerSource(ipv4Packet: UnsafeRawPointer) -> IPAddress {
        IPAddress(ipv4: loadBE32(ipv4Packet, 12))
    }

    @inline(__always)
    static func outerSource(ipv6Address p: UnsafeRawPointer) -> IPAddress {
        IPAddress(high: loadBE64(p, 0), low: loadBE64(p, 8), isIPv6: true)
    }

    @inline(__always)
    static func loadBE16(_ p: UnsafeRawPointer, _ offset: Int) -> UInt16 {
        UInt16(bigEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always)
    static func loadBE32(_ p: UnsafeRawPointer, _ offset: Int) -> UInt32 {
        UInt32(bigEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inline(__always)
    static func loadBE64(_ p: UnsafeRawPointer, _ offset: Int) -> UInt64 {
        UInt64(bigEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
}

/// Counters of the decapsulator: one per outcome, so no packet disappears without a reason.
public struct DecapCounters: Sendable, Equatable {
    /// GRE packets read from the raw sockets.
    public var received: UInt64 = 0
    public var deliveredIPv4: UInt64 = 0
    public var deliveredIPv6: UInt64 = 0
    /// Bytes of inner packets written to the TUN device.
    public var deliveredBytes: UInt64 = 0
    /// Indexed by `DecapDropReason.rawValue`.
    public var drops: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)

    public init() {}

    public static func == (a: DecapCounters, b: DecapCounters) -> Bool {
        a.received == b.received && a.deliveredIPv4 == b.deliveredIPv4 && a.deliveredIPv6 == b.deliveredIPv6
            && a.deliveredBytes == b.deliveredBytes
            && DecapDropReason.allCases.allSatisfy { a[$0] == b[$0] }
    }

    /// Drops for one reason.
    public subscript(reason: DecapDropReason) -> UInt64 {
        get {
            switch reason.rawValue {
            case 0: drops.0
            case 1: drops.1
            case 2: drops.2
            case 3: drops.3
            case 4: drops.4
            case 5: drops.5
            case 6: drops.6
            default: drops.7
            }
        }
        set {
            switch reason.rawValue {
            case 0: drops.0 = newValue
            case 1: drops.1 = newValue
            case 2: drops.2 = newValue
            case 3: drops.3 = newValue
            case 4: drops.4 = newValue
            case 5: drops.5 = newValue
            case 6: drops.6 = newValue
            default: drops.7 = newValue
            }
        }
    }

    /// All drops.
    public var dropped: UInt64 { DecapDropReason.allCases.reduce(0) { $0 + self[$1] } }

    /// Counters as (name, value) rows in a fixed order, for printing.
    public var rows: [(name: String, value: UInt64)] {
        [("received", received), ("delivered_ipv4", deliveredIPv4), ("delivered_ipv6", deliveredIPv6),
         ("delivered_bytes", deliveredBytes), ("dropped", dropped)]
            + DecapDropReason.allCases.map { ("drop_\($0.name)", self[$0]) }
    }
}
