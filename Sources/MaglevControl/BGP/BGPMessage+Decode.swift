#if canImport(MaglevCore)
    import MaglevCore  // Tools/fuzz bgp compiles the core into the same module
#endif

/// Why a message could not be accepted: the NOTIFICATION to send the peer (RFC 4271 §6) and a
/// sentence for the log.
public struct BGPDecodeError: Error, Equatable, Sendable, CustomStringConvertible {
    public var notification: BGPNotification
    public var reason: String

    public init(_ notification: BGPNotification, _ reason: String) {
        self.notification = notification
        self.reason = reason
    }

    init(_ code: UInt8, _ subcode: UInt8, data: [UInt8] = [], _ reason: String) {
        self.init(BGPNotification(code: code, subcode: subcode, data: data), reason)
    }

    public var description: String { "\(reason) -> \(notification)" }
}

extension BGPMessage {
    /// Decodes exactly one message (header included) defensively: every length is checked
    /// before it is used, and no input traps. `fourOctetAS` is whether both speakers announced
    /// the 4-octet AS capability: it sets the width of AS numbers in AS_PATH.
    ///
    /// What is refused, with the NOTIFICATION it carries:
    /// - header (§6.1): marker not all ones 1/1; length under 19, over 4096, different from the
    ///   bytes given, or wrong for the type 1/2 (data: the length field); unknown type 1/3
    ///   (data: the type);
    /// - OPEN (§6.2): version other than 4 2/1 (data: 4, the version we speak); hold time 1 or
    ///   2 s 2/6; BGP Identifier 0 2/3; an optional parameter other than capabilities 2/4; a
    ///   parameter or capability that overruns its container 2/0. Peer AS is the session's
    ///   business (2/2);
    /// - UPDATE (§6.3): withdrawn routes or attribute lengths too long, an attribute that
    ///   overruns the list or appears twice 3/1; an unknown attribute marked well-known 3/2;
    ///   ORIGIN or AS_PATH missing when routes are announced, NEXT_HOP missing with IPv4 NLRI 3/3
    ///   (data: the type code); flags that contradict a known type 3/4; a fixed-size attribute
    ///   of the wrong size 3/5; ORIGIN over 2 3/6; a malformed MP_REACH/MP_UNREACH 3/9; a prefix
    ///   too long for its family or cut short 3/10; a malformed AS_PATH 3/11. Attribute errors
    ///   carry the attribute as data. A malformed AS4_PATH is kept as raw bytes (RFC 6793 §6
    ///   says to discard it, not to reset the session).
    /// - NOTIFICATION and KEEPALIVE: only their lengths; ROUTE-REFRESH: length 23.
    public static func decode(_ bytes: [UInt8], fourOctetAS: Bool = true) -> Result<BGPMessage, BGPDecodeError> {
        guard bytes.count >= BGP.headerLength else {
            return .failure(BGPDecodeError(1, 2, "message of \(bytes.count) bytes is shorter than the 19-byte header"))
        }
        let header: (length: Int, type: UInt8)
        switch checkHeader(bytes) {
        case .success(let h): header = h
        case .failure(let e): return .failure(e)
        }
        guard header.length == bytes.count else {
            return .failure(
                BGPDecodeError(
                    1, 2, data: [bytes[16], bytes[17]], "length field \(header.length) differs from the \(bytes.count) bytes received"))
        }
        var r = BGPReader(bytes, from: BGP.headerLength)
        switch header.type {
        case BGP.typeOpen: return decodeOpen(&r).map { .open($0) }
        case BGP.typeUpdate: return decodeUpdate(&r, fourOctetAS: fourOctetAS).map { .update($0) }
        case BGP.typeNotification:
            let code = r.u8() ?? 0
            let subcode = r.u8() ?? 0
            return .success(.notification(BGPNotification(code: code, subcode: subcode, data: r.take(r.remaining) ?? [])))
        case BGP.typeKeepalive: return .success(.keepalive)
        default:
            let afi = r.u16() ?? 0
            _ = r.u8()  // reserved (the subtype of enhanced route refresh, RFC 7313)
            return .success(.routeRefresh(afi: afi, safi: r.u8() ?? 0))
        }
    }

    /// Checks the 19-byte header at the start of `bytes` (marker, length, type and the least
    /// and most length each type allows) and returns the length and type.
    static func checkHeader(_ bytes: [UInt8]) -> Result<(length: Int, type: UInt8), BGPDecodeError> {
        guard bytes.count >= BGP.headerLength else { return .failure(BGPDecodeError(1, 2, "short header")) }
        for i in 0..<16 where bytes[i] != 0xFF {
            return .failure(BGPDecodeError(1, 1, "marker byte \(i) is 0x\(String(bytes[i], radix: 16)), not 0xff"))
        }
        let length = Int(bytes[16]) << 8 | Int(bytes[17])
        let type = bytes[18]
        let lengthField = [bytes[16], bytes[17]]
        guard length >= BGP.headerLength, length <= BGP.maxMessageLength else {
            return .failure(BGPDecodeError(1, 2, data: lengthField, "message length \(length) outside 19...4096"))
        }
        let allowed: ClosedRange<Int>
        switch type {
        case BGP.typeOpen: allowed = 29...BGP.maxMessageLength
        case BGP.typeUpdate: allowed = 23...BGP.maxMessageLength
        case BGP.typeNotification: allowed = 21...BGP.maxMessageLength
        case BGP.typeKeepalive: allowed = 19...19
        case BGP.typeRouteRefresh: allowed = 23...23
        default: return .failure(BGPDecodeError(1, 3, data: [type], "unknown message type \(type)"))
        }
        guard allowed.contains(length) else {
            return .failure(BGPDecodeError(1, 2, data: lengthField, "\(BGP.typeName(type)) of length \(length) (allowed \(allowed))"))
        }
        return .success((length, type))
    }

    // MARK: OPEN

    static func decodeOpen(_ r: inout BGPReader) -> Result<BGPOpen, BGPDecodeError> {
        // The header check guarantees the 10 fixed bytes.
        guard let version = r.u8(), let myAS = r.u16(), let holdTime = r.u16(), let routerID = r.u32(), let paramsLength = r.u8()
        else { return .failure(BGPDecodeError(1, 2, "OPEN shorter than 29 bytes")) }
        guard version == 4 else {
            return .failure(BGPDecodeError(2, 1, data: [0, 4], "peer speaks BGP version \(version), we speak 4"))
        }
        guard holdTime == 0 || holdTime >= 3 else {
            return .failure(BGPDecodeError(2, 6, "peer proposes hold time \(holdTime) s (0 or at least 3 allowed)"))
        }
        guard routerID != 0 else { return .failure(BGPDecodeError(2, 3, "peer's BGP Identifier is 0.0.0.0")) }
        guard Int(paramsLength) == r.remaining else {
            return .failure(
                BGPDecodeError(2, 0, "optional parameters length \(paramsLength) but \(r.remaining) bytes follow"))
        }
        var capabilities: [BGPCapability] = []
        while r.remaining > 0 {
            guard let type = r.u8(), let length = r.u8(), var p = r.sub(Int(length)) else {
                return .failure(BGPDecodeError(2, 0, "optional parameter overruns the OPEN"))
            }
            guard type == 2 else {
                return .failure(BGPDecodeError(2, 4, data: [type], "unsupported optional parameter type \(type)"))
            }
            while p.remaining > 0 {
                guard let code = p.u8(), let n = p.u8(), let value = p.take(Int(n)) else {
                    return .failure(BGPDecodeError(2, 0, "capability overruns its optional parameter"))
                }
                capabilities.append(BGPCapability(code: code, value: value))
            }
        }
        var open = BGPOpen(version: version, myAS: UInt32(myAS), holdTime: holdTime, routerID: routerID, capabilities: capabilities)
        if let asn = open.fourOctetASCapability { open.myAS = asn }
        return .success(open)
    }

    // MARK: UPDATE

    static func decodeUpdate(_ r: inout BGPReader, fourOctetAS: Bool) -> Result<BGPUpdate, BGPDecodeError> {
        guard let withdrawnLength = r.u16(), var withdrawnReader = r.sub(Int(withdrawnLength)) else {
            return .failure(BGPDecodeError(3, 1, "withdrawn routes length overruns the UPDATE"))
        }
        guard let attributesLength = r.u16(), var attributesReader = r.sub(Int(attributesLength)) else {
            return .failure(BGPDecodeError(3, 1, "total path attribute length overruns the UPDATE"))
        }
        guard let withdrawn = BGPPrefix.readAll(from: &withdrawnReader, ipv6: false) else {
            return .failure(BGPDecodeError(3, 10, "malformed prefix in withdrawn routes"))
        }
        guard let nlri = BGPPrefix.readAll(from: &r, ipv6: false) else {
            return .failure(BGPDecodeError(3, 10, "malformed prefix in NLRI"))
        }
        var attributes: [BGPPathAttribute] = []
        var seen = [Bool](repeating: false, count: 256)
        while attributesReader.remaining > 0 {
            let start = attributesReader.position
            guard let flags = attributesReader.u8(), let code = attributesReader.u8() else {
                return .failure(BGPDecodeError(3, 1, "path attribute header cut short"))
            }
            let extended = flags & BGPPathAttribute.flagExtendedLength != 0
            guard let length = extended ? attributesReader.u16().map(Int.init) : attributesReader.u8().map(Int.init),
                let value = attributesReader.take(length)
            else { return .failure(BGPDecodeError(3, 1, "path attribute \(code) overruns the attribute list")) }
            guard !seen[Int(code)] else { return .failure(BGPDecodeError(3, 1, "path attribute \(code) appears twice")) }
            seen[Int(code)] = true
            let raw = Array(attributesReader.bytes[start..<attributesReader.position])
            switch BGPPathAttribute.decode(flags: flags, code: code, value: value, fourOctetAS: fourOctetAS) {
            case .success(let a): attributes.append(a)
            case .failure(let e):
                var e = e
                e.notification.data = raw
                return .failure(e)
            }
        }
        let update = BGPUpdate(withdrawn: withdrawn, attributes: attributes, nlri: nlri)
        let mpReach = attributes.contains { if case .mpReach(let m) = $0 { !m.prefixes.isEmpty } else { false } }
        if !nlri.isEmpty || mpReach {
            var required = [BGPPathAttribute.codeOrigin, BGPPathAttribute.codeASPath]
            if !nlri.isEmpty { required.append(BGPPathAttribute.codeNextHop) }
            for code in required where !seen[Int(code)] {
                return .failure(BGPDecodeError(3, 3, data: [code], "well-known attribute \(code) missing"))
            }
        }
        return .success(update)
    }
}

extension BGPCapability {
    /// A capability from its code and value; a known code with an unexpected length stays raw.
    init(code: UInt8, value: [UInt8]) {
        var r = BGPReader(value)
        switch (code, value.count) {
        case (1, 4):
            let afi = r.u16() ?? 0
            _ = r.u8()
            self = .multiprotocol(afi: afi, safi: r.u8() ?? 0)
        case (2, 0): self = .routeRefresh
        case (65, 4): self = .fourOctetAS(r.u32() ?? 0)
        default: self = .other(code: code, value: value)
        }
    }
}

extension BGPPathAttribute {
    /// One attribute from its header fields and value (errors carry no data yet: the caller
    /// adds the whole attribute).
    static func decode(flags: UInt8, code: UInt8, value: [UInt8], fourOctetAS: Bool) -> Result<BGPPathAttribute, BGPDecodeError> {
        if let required = requiredFlags(code: code) {
            // Well-known and optional non-transitive attributes never carry the partial bit.
            let checked: UInt8 = required == flagOptional | flagTransitive ? 0xC0 : 0xE0
            guard flags & checked == required else {
                return .failure(BGPDecodeError(3, 4, "attribute \(code) has flags 0x\(String(flags, radix: 16))"))
            }
        } else if flags & flagOptional == 0 {
            return .failure(BGPDecodeError(3, 2, "unrecognized well-known attribute \(code)"))
        }
        var r = BGPReader(value)
        func fixed(_ n: Int) -> BGPDecodeError? {
            value.count == n ? nil : BGPDecodeError(3, 5, "attribute \(code) of \(value.count) bytes (expected \(n))")
        }
        switch code {
        case codeOrigin:
            if let e = fixed(1) { return .failure(e) }
            guard let origin = BGPOrigin(rawValue: value[0]) else {
                return .failure(BGPDecodeError(3, 6, "ORIGIN \(value[0])"))
            }
            return .success(.origin(origin))
        case codeASPath:
            guard let segments = readSegments(&r, fourOctet: fourOctetAS) else {
                return .failure(BGPDecodeError(3, 11, "malformed AS_PATH"))
            }
            return .success(.asPath(BGPASPath(segments: segments, fourOctet: fourOctetAS)))
        case codeNextHop:
            if let e = fixed(4) { return .failure(e) }
            return .success(.nextHop(IPAddress(networkBytes: value)))
        case codeMultiExitDisc, codeLocalPref:
            if let e = fixed(4) { return .failure(e) }
            let v = r.u32() ?? 0
            return .success(code == codeLocalPref ? .localPref(v) : .multiExitDisc(v))
        case codeAtomicAggregate:
            if let e = fixed(0) { return .failure(e) }
        case codeMPReach:
            guard let afi = r.u16(), let safi = r.u8(), let hopsLength = r.u8(), let hops = r.take(Int(hopsLength)), r.u8() != nil
            else { return .failure(BGPDecodeError(3, 9, "MP_REACH_NLRI cut short")) }
            guard (afi == BGP.afiIPv4 || afi == BGP.afiIPv6) && safi == BGP.safiUnicast else { break }
            let nextHops: [IPAddress]
            switch hops.count {
            case 4: nextHops = [IPAddress(networkBytes: hops)]
            case 16: nextHops = [IPAddress(networkBytes: hops)]
            case 32: nextHops = [IPAddress(networkBytes: Array(hops[0..<16])), IPAddress(networkBytes: Array(hops[16..<32]))]
            default: return .failure(BGPDecodeError(3, 9, "MP_REACH_NLRI next hop of \(hops.count) bytes"))
            }
            guard let prefixes = BGPPrefix.readAll(from: &r, ipv6: afi == BGP.afiIPv6) else {
                return .failure(BGPDecodeError(3, 9, "malformed prefix in MP_REACH_NLRI"))
            }
            return .success(.mpReach(BGPMPReach(afi: afi, safi: safi, nextHops: nextHops, prefixes: prefixes)))
        case codeMPUnreach:
            guard let afi = r.u16(), let safi = r.u8() else {
                return .failure(BGPDecodeError(3, 9, "MP_UNREACH_NLRI cut short"))
            }
            guard (afi == BGP.afiIPv4 || afi == BGP.afiIPv6) && safi == BGP.safiUnicast else { break }
            guard let prefixes = BGPPrefix.readAll(from: &r, ipv6: afi == BGP.afiIPv6) else {
                return .failure(BGPDecodeError(3, 9, "malformed prefix in MP_UNREACH_NLRI"))
            }
            return .success(.mpUnreach(BGPMPUnreach(afi: afi, safi: safi, prefixes: prefixes)))
        case codeAS4Path:
            if let segments = readSegments(&r, fourOctet: true) { return .success(.as4Path(segments)) }
        default: break
        }
        return .success(.other(flags: flags & ~flagExtendedLength, code: code, value: value))
    }

    /// AS_PATH segments: type 1...4, 1...255 AS numbers each, filling the value exactly.
    static func readSegments(_ r: inout BGPReader, fourOctet: Bool) -> [BGPASPathSegment]? {
        var segments: [BGPASPathSegment] = []
        while r.remaining > 0 {
            guard let type = r.u8(), (1...4).contains(type), let count = r.u8(), count > 0 else { return nil }
            var asns: [UInt32] = []
            asns.reserveCapacity(Int(count))
            for _ in 0..<count {
                guard let asn = fourOctet ? r.u32() : r.u16().map(UInt32.init) else { return nil }
                asns.append(asn)
            }
            segments.append(BGPASPathSegment(type: type, asns: asns))
        }
        return segments
    }
}
