#if canImport(MaglevCore)
    public import MaglevCore  // Tools/fuzz bgp compiles the core into the same module
#endif

/// BGP-4 messages (RFC 4271) with the extensions an announce-only speaker needs: multiprotocol
/// IPv6 unicast (RFC 4760), 4-octet AS numbers (RFC 6793), capabilities (RFC 5492) and
/// ROUTE-REFRESH (RFC 2918).
///
/// Wire form of every message (RFC 4271 §4.1):
///
///      0                   1                   2                   3
///      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |                   Marker (16 bytes of 0xFF)                   |
///     +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///     |     Length (19...4096)        |     Type      |  body...
///
/// `encode()` writes one message; `decode(_:fourOctetAS:)` reads exactly one and returns either
/// the message or a `BGPDecodeError` that carries the NOTIFICATION to send (RFC 4271 §6);
/// `BGPFramer` cuts a TCP byte stream into messages.
public enum BGPMessage: Equatable, Sendable, CustomStringConvertible {
    case open(BGPOpen)
    case update(BGPUpdate)
    case notification(BGPNotification)
    case keepalive
    /// ROUTE-REFRESH (RFC 2918): the peer asks us to send our routes of one family again.
    case routeRefresh(afi: UInt16, safi: UInt8)

    /// The type octet of the header.
    public var type: UInt8 {
        switch self {
        case .open: BGP.typeOpen
        case .update: BGP.typeUpdate
        case .notification: BGP.typeNotification
        case .keepalive: BGP.typeKeepalive
        case .routeRefresh: BGP.typeRouteRefresh
        }
    }

    /// The message's name as RFC 4271 spells it, for logs.
    public var name: String { BGP.typeName(type) }

    public var description: String {
        switch self {
        case .open(let o): "OPEN \(o)"
        case .update(let u): "UPDATE \(u)"
        case .notification(let n): "NOTIFICATION \(n)"
        case .keepalive: "KEEPALIVE"
        case .routeRefresh(let afi, let safi): "ROUTE-REFRESH afi \(afi) safi \(safi)"
        }
    }
}

/// Protocol constants.
public enum BGP {
    /// The TCP port BGP listens on.
    public static let port: UInt16 = 179
    public static let headerLength = 19
    /// The largest message (RFC 4271 §4.1; extended messages, RFC 8654, are not negotiated).
    public static let maxMessageLength = 4096
    /// The 2-octet stand-in for a 4-octet AS number (RFC 6793).
    public static let asTrans: UInt32 = 23456

    public static let typeOpen: UInt8 = 1
    public static let typeUpdate: UInt8 = 2
    public static let typeNotification: UInt8 = 3
    public static let typeKeepalive: UInt8 = 4
    public static let typeRouteRefresh: UInt8 = 5

    public static let afiIPv4: UInt16 = 1
    public static let afiIPv6: UInt16 = 2
    public static let safiUnicast: UInt8 = 1

    public static func typeName(_ type: UInt8) -> String {
        switch type {
        case typeOpen: "OPEN"
        case typeUpdate: "UPDATE"
        case typeNotification: "NOTIFICATION"
        case typeKeepalive: "KEEPALIVE"
        case typeRouteRefresh: "ROUTE-REFRESH"
        default: "type \(type)"
        }
    }
}

// MARK: OPEN

/// An OPEN message (RFC 4271 §4.2) with its capabilities (RFC 5492).
///
/// `myAS` is the speaker's real AS number. The 2-octet "My Autonomous System" field on the wire
/// carries it when it fits and AS_TRANS (23456) otherwise; the 4-octet value travels in the
/// `.fourOctetAS` capability (RFC 6793), which the encoder does not add by itself. When decoding,
/// a `.fourOctetAS` capability wins over the 2-octet field.
public struct BGPOpen: Equatable, Sendable, CustomStringConvertible {
    public var version: UInt8
    public var myAS: UInt32
    /// Seconds; 0 (no keepalives, no hold timer) or at least 3.
    public var holdTime: UInt16
    /// The BGP Identifier, host order (`0xC6120101` is 198.18.1.1).
    public var routerID: UInt32
    public var capabilities: [BGPCapability]

    public init(version: UInt8 = 4, myAS: UInt32, holdTime: UInt16, routerID: UInt32, capabilities: [BGPCapability]) {
        self.version = version
        self.myAS = myAS
        self.holdTime = holdTime
        self.routerID = routerID
        self.capabilities = capabilities
    }

    /// The value of the 2-octet "My Autonomous System" field.
    public var twoOctetAS: UInt16 { myAS <= 0xFFFF ? UInt16(myAS) : UInt16(BGP.asTrans) }

    /// The AS number of the `.fourOctetAS` capability, if the speaker sent one.
    public var fourOctetASCapability: UInt32? {
        for case .fourOctetAS(let asn) in capabilities { return asn }
        return nil
    }

    /// Whether the speaker offers the given address family (`.multiprotocol`). A speaker that
    /// sends no multiprotocol capability at all supports IPv4 unicast only (RFC 4760 §8).
    public func supports(afi: UInt16, safi: UInt8) -> Bool {
        var any = false
        for case .multiprotocol(let a, let s) in capabilities {
            if a == afi && s == safi { return true }
            any = true
        }
        return !any && afi == BGP.afiIPv4 && safi == BGP.safiUnicast
    }

    public var description: String {
        "version \(version) AS \(myAS) hold \(holdTime) s id \(BGP.dottedQuad(routerID)) capabilities ["
            + capabilities.map(\.description).joined(separator: ", ") + "]"
    }
}

/// A capability inside an OPEN's optional parameters (RFC 5492).
public enum BGPCapability: Equatable, Sendable, CustomStringConvertible {
    /// Code 1 (RFC 4760): AFI (1 IPv4, 2 IPv6), SAFI (1 unicast).
    case multiprotocol(afi: UInt16, safi: UInt8)
    /// Code 2 (RFC 2918).
    case routeRefresh
    /// Code 65 (RFC 6793): the speaker's 4-octet AS number.
    case fourOctetAS(UInt32)
    /// Anything else (graceful restart 64, add-path 69, enhanced route refresh 70, ...), and a
    /// known code with an unexpected length, kept as bytes.
    case other(code: UInt8, value: [UInt8])

    public var code: UInt8 {
        switch self {
        case .multiprotocol: 1
        case .routeRefresh: 2
        case .fourOctetAS: 65
        case .other(let code, _): code
        }
    }

    public var description: String {
        switch self {
        case .multiprotocol(let afi, let safi): "multiprotocol \(BGP.familyName(afi: afi, safi: safi))"
        case .routeRefresh: "route-refresh"
        case .fourOctetAS(let asn): "4-octet AS \(asn)"
        case .other(let code, let value): "capability \(code) (\(value.count) bytes)"
        }
    }
}

// MARK: UPDATE

/// An UPDATE message (RFC 4271 §4.3). IPv4 unicast routes travel in `withdrawn` and `nlri`
/// (with a NEXT_HOP attribute); IPv6 routes in the MP_REACH_NLRI / MP_UNREACH_NLRI attributes
/// (RFC 4760). An UPDATE with nothing at all is an End-of-RIB marker for IPv4 (RFC 4724).
public struct BGPUpdate: Equatable, Sendable, CustomStringConvertible {
    /// IPv4 prefixes withdrawn.
    public var withdrawn: [BGPPrefix]
    public var attributes: [BGPPathAttribute]
    /// IPv4 prefixes announced with these attributes.
    public var nlri: [BGPPrefix]

    public init(withdrawn: [BGPPrefix] = [], attributes: [BGPPathAttribute] = [], nlri: [BGPPrefix] = []) {
        self.withdrawn = withdrawn
        self.attributes = attributes
        self.nlri = nlri
    }

    /// Every prefix announced: the IPv4 NLRI and those of MP_REACH_NLRI attributes.
    public var announcedPrefixes: [BGPPrefix] {
        var out = nlri
        for case .mpReach(let r) in attributes { out += r.prefixes }
        return out
    }

    /// Every prefix withdrawn: the IPv4 withdrawn routes and those of MP_UNREACH_NLRI.
    public var withdrawnPrefixes: [BGPPrefix] {
        var out = withdrawn
        for case .mpUnreach(let u) in attributes { out += u.prefixes }
        return out
    }

    public var description: String {
        var parts: [String] = []
        let a = announcedPrefixes
        let w = withdrawnPrefixes
        if !a.isEmpty { parts.append("announce \(a.count) [\(BGP.list(a))]") }
        if !w.isEmpty { parts.append("withdraw \(w.count) [\(BGP.list(w))]") }
        if !attributes.isEmpty { parts.append("attributes [" + attributes.map(\.description).joined(separator: ", ") + "]") }
        return parts.isEmpty ? "(empty)" : parts.joined(separator: " ")
    }
}

/// ORIGIN values (RFC 4271 §5.1.1).
public enum BGPOrigin: UInt8, Sendable {
    case igp = 0
    case egp = 1
    case incomplete = 2
}

/// One AS_PATH segment (RFC 4271 §4.3): type 1 AS_SET, 2 AS_SEQUENCE (3 and 4 are the
/// confederation types of RFC 5065), with 1 to 255 AS numbers.
public struct BGPASPathSegment: Equatable, Sendable {
    public static let asSet: UInt8 = 1
    public static let asSequence: UInt8 = 2

    public var type: UInt8
    public var asns: [UInt32]

    public init(type: UInt8, asns: [UInt32]) {
        self.type = type
        self.asns = asns
    }

    public static func sequence(_ asns: [UInt32]) -> BGPASPathSegment { BGPASPathSegment(type: asSequence, asns: asns) }
}

/// An AS_PATH (or AS4_PATH) value. `fourOctet` says how wide its AS numbers are on the wire:
/// 4 octets when both speakers announced the 4-octet AS capability (and always in AS4_PATH),
/// 2 otherwise (RFC 6793).
public struct BGPASPath: Equatable, Sendable {
    public var segments: [BGPASPathSegment]
    public var fourOctet: Bool

    public init(segments: [BGPASPathSegment], fourOctet: Bool) {
        self.segments = segments
        self.fourOctet = fourOctet
    }
}

/// MP_REACH_NLRI for a unicast family (RFC 4760 §3): next hops (one IPv4 or IPv6 address, or an
/// IPv6 global and link-local pair) and the prefixes they reach. Other families are kept as
/// `BGPPathAttribute.other`.
public struct BGPMPReach: Equatable, Sendable {
    public var afi: UInt16
    public var safi: UInt8
    public var nextHops: [IPAddress]
    public var prefixes: [BGPPrefix]

    public init(afi: UInt16, safi: UInt8 = BGP.safiUnicast, nextHops: [IPAddress], prefixes: [BGPPrefix]) {
        self.afi = afi
        self.safi = safi
        self.nextHops = nextHops
        self.prefixes = prefixes
    }
}

/// MP_UNREACH_NLRI for a unicast family (RFC 4760 §4).
public struct BGPMPUnreach: Equatable, Sendable {
    public var afi: UInt16
    public var safi: UInt8
    public var prefixes: [BGPPrefix]

    public init(afi: UInt16, safi: UInt8 = BGP.safiUnicast, prefixes: [BGPPrefix]) {
        self.afi = afi
        self.safi = safi
        self.prefixes = prefixes
    }
}

/// A path attribute (RFC 4271 §4.3, §5). The flags of the known ones follow from their type
/// code; `other` keeps the flags (without the extended-length bit, which the encoder sets when
/// the value needs it) and the value bytes.
public enum BGPPathAttribute: Equatable, Sendable, CustomStringConvertible {
    case origin(BGPOrigin)
    case asPath(BGPASPath)
    /// NEXT_HOP: an IPv4 address.
    case nextHop(IPAddress)
    case multiExitDisc(UInt32)
    case localPref(UInt32)
    case mpReach(BGPMPReach)
    case mpUnreach(BGPMPUnreach)
    /// AS4_PATH (RFC 6793): the real path, 4-octet, beside a 2-octet AS_PATH with AS_TRANS.
    case as4Path([BGPASPathSegment])
    case other(flags: UInt8, code: UInt8, value: [UInt8])

    public static let flagOptional: UInt8 = 0x80
    public static let flagTransitive: UInt8 = 0x40
    public static let flagPartial: UInt8 = 0x20
    public static let flagExtendedLength: UInt8 = 0x10

    public static let codeOrigin: UInt8 = 1
    public static let codeASPath: UInt8 = 2
    public static let codeNextHop: UInt8 = 3
    public static let codeMultiExitDisc: UInt8 = 4
    public static let codeLocalPref: UInt8 = 5
    public static let codeAtomicAggregate: UInt8 = 6
    public static let codeAggregator: UInt8 = 7
    public static let codeMPReach: UInt8 = 14
    public static let codeMPUnreach: UInt8 = 15
    public static let codeAS4Path: UInt8 = 17
    public static let codeAS4Aggregator: UInt8 = 18

    public var code: UInt8 {
        switch self {
        case .origin: Self.codeOrigin
        case .asPath: Self.codeASPath
        case .nextHop: Self.codeNextHop
        case .multiExitDisc: Self.codeMultiExitDisc
        case .localPref: Self.codeLocalPref
        case .mpReach: Self.codeMPReach
        case .mpUnreach: Self.codeMPUnreach
        case .as4Path: Self.codeAS4Path
        case .other(_, let code, _): code
        }
    }

    /// Optional and transitive bits that a type code requires (nil: not a code we know).
    static func requiredFlags(code: UInt8) -> UInt8? {
        switch code {
        case codeOrigin, codeASPath, codeNextHop, codeLocalPref, codeAtomicAggregate: flagTransitive
        case codeMultiExitDisc, codeMPReach, codeMPUnreach: flagOptional
        case codeAggregator, codeAS4Path, codeAS4Aggregator: flagOptional | flagTransitive
        default: nil
        }
    }

    public var description: String {
        switch self {
        case .origin(let o): "ORIGIN \(o)"
        case .asPath(let p): "AS_PATH [\(BGP.pathText(p.segments))]"
        case .nextHop(let a): "NEXT_HOP \(a)"
        case .multiExitDisc(let v): "MED \(v)"
        case .localPref(let v): "LOCAL_PREF \(v)"
        case .mpReach(let r):
            "MP_REACH \(BGP.familyName(afi: r.afi, safi: r.safi)) next hop \(r.nextHops.map(\.description).joined(separator: " ")) (\(r.prefixes.count) prefixes)"
        case .mpUnreach(let u): "MP_UNREACH \(BGP.familyName(afi: u.afi, safi: u.safi)) (\(u.prefixes.count) prefixes)"
        case .as4Path(let s): "AS4_PATH [\(BGP.pathText(s))]"
        case .other(let flags, let code, let value): "attribute \(code) flags 0x\(String(flags, radix: 16)) (\(value.count) bytes)"
        }
    }
}

// MARK: Text helpers

extension BGP {
    static func dottedQuad(_ v: UInt32) -> String { "\(v >> 24).\(v >> 16 & 0xFF).\(v >> 8 & 0xFF).\(v & 0xFF)" }

    static func familyName(afi: UInt16, safi: UInt8) -> String {
        switch (afi, safi) {
        case (afiIPv4, safiUnicast): "IPv4 unicast"
        case (afiIPv6, safiUnicast): "IPv6 unicast"
        default: "afi \(afi) safi \(safi)"
        }
    }

    static func list(_ prefixes: [BGPPrefix], limit: Int = 8) -> String {
        let shown = prefixes.prefix(limit).map(\.description).joined(separator: " ")
        return prefixes.count > limit ? shown + " ..." : shown
    }

    static func pathText(_ segments: [BGPASPathSegment]) -> String {
        segments.map { s in
            let asns = s.asns.map(String.init).joined(separator: " ")
            return s.type == BGPASPathSegment.asSet ? "{\(asns)}" : asns
        }.joined(separator: " ")
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits: [Character] = Array("0123456789abcdef")
        var s = ""
        for b in bytes {
            s.append(digits[Int(b >> 4)])
            s.append(digits[Int(b & 0xF)])
        }
        return s
    }
}
