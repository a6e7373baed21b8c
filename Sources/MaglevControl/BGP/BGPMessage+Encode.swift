#if canImport(MaglevCore)
    import MaglevCore  // Tools/fuzz bgp compiles the core into the same module
#endif

extension BGPMessage {
    /// The message on the wire, header included.
    ///
    /// Messages over 4096 bytes are a programming error (a precondition): the builders in
    /// `BGPUpdate+Builders.swift` split what we announce so that every UPDATE fits.
    public func encode() -> [UInt8] {
        var w = BGPWriter()
        w.append(repeatElement(UInt8(0xFF), count: 16))
        w.u16(0)  // length, patched below
        w.u8(type)
        switch self {
        case .open(let o): o.write(to: &w)
        case .update(let u): u.write(to: &w)
        case .notification(let n):
            w.u8(n.code)
            w.u8(n.subcode)
            w.append(n.data)
        case .keepalive: break
        case .routeRefresh(let afi, let safi):
            w.u16(afi)
            w.u8(0)
            w.u8(safi)
        }
        precondition(w.bytes.count <= BGP.maxMessageLength, "BGP \(name) of \(w.bytes.count) bytes exceeds 4096")
        w.patch16(at: 16, w.bytes.count)
        return w.bytes
    }
}

extension BGPOpen {
    func write(to w: inout BGPWriter) {
        w.u8(version)
        w.u16(twoOctetAS)
        w.u16(holdTime)
        w.u32(routerID)
        guard !capabilities.isEmpty else {
            w.u8(0)
            return
        }
        // One Capabilities parameter (type 2) per up to 255 bytes of capabilities.
        var params: [[UInt8]] = [[]]
        for c in capabilities {
            var cw = BGPWriter()
            c.write(to: &cw)
            if params[params.count - 1].count + cw.bytes.count > 255 { params.append([]) }
            params[params.count - 1] += cw.bytes
        }
        var pw = BGPWriter()
        for p in params {
            pw.u8(2)
            pw.u8(UInt8(truncatingIfNeeded: p.count))
            pw.append(p)
        }
        precondition(pw.bytes.count <= 255, "OPEN optional parameters exceed 255 bytes")
        w.u8(UInt8(pw.bytes.count))
        w.append(pw.bytes)
    }
}

extension BGPCapability {
    func write(to w: inout BGPWriter) {
        w.u8(code)
        switch self {
        case .multiprotocol(let afi, let safi):
            w.u8(4)
            w.u16(afi)
            w.u8(0)
            w.u8(safi)
        case .routeRefresh:
            w.u8(0)
        case .fourOctetAS(let asn):
            w.u8(4)
            w.u32(asn)
        case .other(_, let value):
            precondition(value.count <= 253, "capability value exceeds 253 bytes")
            w.u8(UInt8(value.count))
            w.append(value)
        }
    }
}

extension BGPUpdate {
    func write(to w: inout BGPWriter) {
        let withdrawnAt = w.bytes.count
        w.u16(0)
        for p in withdrawn { p.write(to: &w) }
        w.patch16(at: withdrawnAt, w.bytes.count - withdrawnAt - 2)
        let attributesAt = w.bytes.count
        w.u16(0)
        for a in attributes { a.write(to: &w) }
        w.patch16(at: attributesAt, w.bytes.count - attributesAt - 2)
        for p in nlri { p.write(to: &w) }
    }
}

extension BGPPathAttribute {
    /// Flags as written: the type's own (or those kept by `other`), extended length when the
    /// value exceeds 255 bytes.
    func write(to w: inout BGPWriter) {
        var v = BGPWriter()
        var flags = BGPPathAttribute.requiredFlags(code: code) ?? 0
        switch self {
        case .origin(let o): v.u8(o.rawValue)
        case .asPath(let p): BGPPathAttribute.writeSegments(p.segments, fourOctet: p.fourOctet, to: &v)
        case .nextHop(let a): v.append(a.networkBytes)
        case .multiExitDisc(let x), .localPref(let x): v.u32(x)
        case .mpReach(let r):
            v.u16(r.afi)
            v.u8(r.safi)
            let hops = r.nextHops.flatMap(\.networkBytes)
            v.u8(UInt8(truncatingIfNeeded: hops.count))
            v.append(hops)
            v.u8(0)  // reserved (was the SNPA count)
            for p in r.prefixes { p.write(to: &v) }
        case .mpUnreach(let u):
            v.u16(u.afi)
            v.u8(u.safi)
            for p in u.prefixes { p.write(to: &v) }
        case .as4Path(let segments): BGPPathAttribute.writeSegments(segments, fourOctet: true, to: &v)
        case .other(let f, _, let value):
            flags = f & ~BGPPathAttribute.flagExtendedLength
            v.append(value)
        }
        let extended = v.bytes.count > 255
        w.u8(extended ? flags | BGPPathAttribute.flagExtendedLength : flags)
        w.u8(code)
        if extended { w.u16(UInt16(truncatingIfNeeded: v.bytes.count)) } else { w.u8(UInt8(v.bytes.count)) }
        w.append(v.bytes)
    }

    static func writeSegments(_ segments: [BGPASPathSegment], fourOctet: Bool, to w: inout BGPWriter) {
        for s in segments {
            w.u8(s.type)
            w.u8(UInt8(truncatingIfNeeded: s.asns.count))
            for asn in s.asns {
                if fourOctet { w.u32(asn) } else { w.u16(asn <= 0xFFFF ? UInt16(asn) : UInt16(BGP.asTrans)) }
            }
        }
    }
}
