#if canImport(MaglevCore)
    public import MaglevCore  // Tools/fuzz bgp compiles the core into the same module
#endif

/// The UPDATEs an announce-only speaker sends. Each builder returns as many UPDATEs as it takes
/// for every one to fit in 4096 bytes, prefixes in the order given, IPv4 before IPv6.
extension BGPUpdate {
    /// Announcements of `prefixes` (any length; host routes are what we send) with next hop self.
    ///
    /// Attributes (RFC 4271 §5, RFC 6793 §4.2.2, RFC 7606 §5.1 for the order):
    /// - MP_REACH_NLRI first for IPv6 (AFI 2, SAFI 1, the 16-byte global `nextHopIPv6`);
    /// - ORIGIN IGP;
    /// - AS_PATH: empty for iBGP; otherwise one AS_SEQUENCE [localAS], 4-octet when both sides
    ///   announced the 4-octet AS capability (`fourOctetAS`), else 2-octet with AS_TRANS standing
    ///   in for a `localAS` over 65535;
    /// - NEXT_HOP `nextHopIPv4` for IPv4 (in the classic NLRI field);
    /// - LOCAL_PREF 100 for iBGP;
    /// - AS4_PATH [localAS] for eBGP when AS_TRANS stood in (2-octet peer, `localAS` > 65535).
    ///
    /// Prefixes of a family whose next hop is nil are left out (the session logs them).
    public static func announce(
        prefixes: [BGPPrefix], localAS: UInt32, nextHopIPv4: IPAddress?, nextHopIPv6: IPAddress?, fourOctetAS: Bool,
        ibgp: Bool
    ) -> [BGPUpdate] {
        var common: [BGPPathAttribute] = [.origin(.igp)]
        let path: [BGPASPathSegment] = ibgp ? [] : [.sequence([localAS])]
        let twoOctetPath: [BGPASPathSegment] = ibgp ? [] : [.sequence([localAS <= 0xFFFF ? localAS : BGP.asTrans])]
        common.append(.asPath(BGPASPath(segments: fourOctetAS ? path : twoOctetPath, fourOctet: fourOctetAS)))
        var tail: [BGPPathAttribute] = []
        if ibgp { tail.append(.localPref(100)) }
        if !ibgp && !fourOctetAS && localAS > 0xFFFF { tail.append(.as4Path(path)) }

        var out: [BGPUpdate] = []
        if let hop = nextHopIPv4 {
            let attributes = common + [.nextHop(hop)] + tail
            let budget = BGP.maxMessageLength - 23 - encodedLength(attributes)
            for chunk in chunks(prefixes.filter { !$0.isIPv6 }, budget: budget) {
                out.append(BGPUpdate(attributes: attributes, nlri: chunk))
            }
        }
        if let hop = nextHopIPv6 {
            let others = common + tail
            // MP_REACH: 4-byte header (extended length), AFI, SAFI, next hop length, hop, reserved.
            let budget = BGP.maxMessageLength - 23 - encodedLength(others) - 4 - 5 - hop.networkBytes.count
            for chunk in chunks(prefixes.filter(\.isIPv6), budget: budget) {
                let reach = BGPMPReach(afi: BGP.afiIPv6, nextHops: [hop], prefixes: chunk)
                out.append(BGPUpdate(attributes: [.mpReach(reach)] + others))
            }
        }
        return out
    }

    /// Withdrawals of `prefixes`: IPv4 in the withdrawn routes field, IPv6 in MP_UNREACH_NLRI.
    public static func withdraw(prefixes: [BGPPrefix]) -> [BGPUpdate] {
        var out: [BGPUpdate] = []
        for chunk in chunks(prefixes.filter { !$0.isIPv6 }, budget: BGP.maxMessageLength - 23) {
            out.append(BGPUpdate(withdrawn: chunk))
        }
        for chunk in chunks(prefixes.filter(\.isIPv6), budget: BGP.maxMessageLength - 23 - 4 - 3) {
            out.append(BGPUpdate(attributes: [.mpUnreach(BGPMPUnreach(afi: BGP.afiIPv6, prefixes: chunk))]))
        }
        return out
    }

    static func encodedLength(_ attributes: [BGPPathAttribute]) -> Int {
        var w = BGPWriter()
        for a in attributes { a.write(to: &w) }
        return w.bytes.count
    }

    /// Consecutive runs of prefixes whose wire forms add up to at most `budget` bytes.
    static func chunks(_ prefixes: [BGPPrefix], budget: Int) -> [[BGPPrefix]] {
        var out: [[BGPPrefix]] = []
        var current: [BGPPrefix] = []
        var used = 0
        for p in prefixes {
            if used + p.encodedLength > budget && !current.isEmpty {
                out.append(current)
                current = []
                used = 0
            }
            current.append(p)
            used += p.encodedLength
        }
        if !current.isEmpty { out.append(current) }
        return out
    }
}
