// Fragments: the three policies (docs/maglev.md, "Fragments"), the fragment redirect between
// forwarders and the hold for later fragments that arrive before their first one. All of it
// is off the common path: `decideParsed` reaches it only for fragments (through
// `selectBackend`), for the special backend values below, and for GRE to a non-VIP address.

extension ForwardingSnapshot {
    /// `selectBackend`'s answers besides a backend id: send the fragment to its owner
    /// (`Dataplane.pendingOwner`), hold it (`Dataplane.pendingFragmentHash`), or drop it because
    /// the hold is full. `noBackend` (UInt32.max) sits above them: one comparison with
    /// `holdFull` tells every special value from a backend id.
    static let redirectToOwner = UInt32.max - 1
    static let holdFragment = UInt32.max - 2
    static let holdFull = UInt32.max - 3
}

extension Dataplane {
    /// Hash of a fragment's datagram: (src, dst, IP id, protocol), under a seed of its own.
    @inline(__always)
    func datagramHash(_ packet: inout ParsedPacket) -> UInt64 {
        let key = packet.key
        return FlowHash.hash(
            FlowKey(
                source: key.source, destination: key.destination,
                sourcePort: UInt16(truncatingIfNeeded: packet.fragmentID >> 16),
                destinationPort: UInt16(truncatingIfNeeded: packet.fragmentID), proto: key.proto),
            seed: view.seed ^ 0x4652_4147)  // "FRAG"
    }

    /// `selectBackend` for a fragment (kept out of line: rare).
    @inline(never)
    func selectFragment(
        _ packet: inout ParsedPacket, flowHash: UInt64, vip: Int, nowMs: UInt32,
        newFlow: inout Bool, selection: inout SelectionReason
    ) -> UInt32 {
        let snapshot = view
        var key = packet.key
        key.sourcePort = 0
        key.destinationPort = 0
        let redirect = snapshot.redirect
        if redirect && member >= 0 && !packet.redirected {
            // Requirement (1): every fragment of a datagram meets on the member that owns its
            // 3-tuple, whichever forwarder the routers sent it to.
            let owner = snapshot.owner(ofFragmentHash: FlowHash.hash(key, seed: snapshot.seed))
            if owner != member {
                pendingOwner = owner
                selection = .fragmentRedirect
                return ForwardingSnapshot.redirectToOwner
            }
        }
        if redirect || snapshot.fragmentPolicy == .fragmentTable {
            // Requirement (2): the first fragment follows its 5-tuple, and later ones follow it.
            let fragmentHash = datagramHash(&packet)
            if packet.fragment == .first {
                let b = selectConnection(
                    &packet, hash: flowHash, vip: vip, nowMs: nowMs, newFlow: &newFlow, selection: &selection)
                if b != ForwardingSnapshot.noBackend {
                    let i = fragments.find(hash: fragmentHash, now: nowMs)
                    if i >= 0 {
                        fragments.reassign(at: i, backend: b, state: .fragment, now: nowMs)
                    } else {
                        _ = fragments.insert(hash: fragmentHash, backend: b, state: .fragment, now: nowMs)
                    }
                    if hold.count > 0 { hold.markReady(fragmentHash) }
                }
                return b
            }
            let i = fragments.find(hash: fragmentHash, now: nowMs)
            if i >= 0 {
                let b = fragments.backend(at: i)
                if snapshot.backends[Int(b)].keepsConnections {
                    selection = releasing ? .fragmentHeld : .fragmentTableHit
                    return b
                }
            }
            if redirect && !releasing {
                // Before its first fragment: wait for it.
                pendingFragmentHash = fragmentHash
                return hold.hasRoom(for: packet.l3Length) ? ForwardingSnapshot.holdFragment : ForwardingSnapshot.holdFull
            }
        }
        selection = .threeTupleFragment
        return snapshot.select(vip: vip, hash: FlowHash.hash(key, seed: snapshot.seed))
    }

    /// The verdict for `selectBackend`'s special answers (`backend >= ForwardingSnapshot.holdFull`).
    @inline(never)
    func fragmentVerdict(
        _ backend: UInt32, _ packet: inout ParsedPacket, vipID: Int, selection: SelectionReason,
        base: UnsafeMutableRawPointer, offset: Int, now: UInt64
    ) -> Verdict {
        switch backend {
        case ForwardingSnapshot.redirectToOwner:
            return redirect(&packet, to: pendingOwner, vipID: vipID, base: base, offset: offset, now: now)
        case ForwardingSnapshot.holdFragment:
            hold.hold(
                UnsafeRawPointer(base + offset + packet.l3Offset), length: packet.l3Length, key: pendingFragmentHash,
                nowMs: UInt32(truncatingIfNeeded: now / 1_000_000), tag: holdTag)
            counters.add(CounterBlock.fragmentsHeld)
            return Verdict(action: .held, vip: Int32(vipID), selection: .fragmentHeld)
        case ForwardingSnapshot.holdFull:
            return notForwarded(.fragmentHoldFull, vip: vipID)
        default:
            return notForwarded(.noBackend, vip: vipID)
        }
    }

    /// Wraps the fragment in outer IP + GRE with recursion control 1 (redirected once) for
    /// group member `owner`, in place.
    func redirect(
        _ packet: inout ParsedPacket, to owner: Int, vipID: Int, base: UnsafeMutableRawPointer, offset: Int, now: UInt64
    ) -> Verdict {
        let target = view.members[owner].address
        let outerIPv6 = target.isIPv6
        let overhead = GREEncapsulator.overhead(outerIPv6: outerIPv6)
        let innerStart = offset &+ packet.l3Offset
        if packet.l3ClaimedLength &+ overhead > view.pathMTU {
            return tooBig(&packet, base: base, innerStart: innerStart, vip: vipID, overhead: overhead, now: now)
        }
        if innerStart < overhead { return notForwarded(.noHeadroom, vip: vipID) }
        let source = view.members[member].address
        let start = GREEncapsulator.encapsulate(
            base, innerStart: innerStart, innerLength: packet.l3Length, innerIPv6: packet.isIPv6,
            trafficClass: packet.trafficClass, source: source, destination: target, flowHash: 0,
            ipv4PartialSum: outerIPv6 ? 0 : GREEncapsulator.ipv4HeaderPartialSum(source: source, destination: target))
        (base + (innerStart &- 4)).storeBE8(Dataplane.greRecursionOne, 0)
        counters.add(CounterBlock.fragmentsRedirected)
        return Verdict(
            action: .redirect, vip: Int32(vipID), outputOffset: start, outputLength: packet.l3Length &+ overhead,
            outputIsIPv6: outerIPv6, selection: .fragmentRedirect, member: Int32(owner))
    }

    /// The first GRE byte of a redirect: C, R, K, S, s clear, recursion control 1 (RFC 1701).
    static let greRecursionOne: UInt8 = 0x01

    /// A GRE packet while `fragments: redirect` is on: the verdict for a fragment redirected to
    /// this forwarder by a group member (GRE recursion control 1, to this member's address), or
    /// nil when it is not one (it is then decided like any packet). A redirect from outside the
    /// group is dropped; one inside another is a loop (dropped).
    @inline(never)
    func decideRedirected(
        _ packet: inout ParsedPacket, base: UnsafeMutableRawPointer, offset: Int, length: Int, now: UInt64
    ) -> Verdict? {
        let gre = packet.l4Offset
        let end = packet.l3Offset &+ packet.l3Length
        guard member >= 0, gre >= 0, end &- gre >= 4, packet.key.destination == view.members[member].address else {
            return nil
        }
        let p = UnsafeRawPointer(base + offset)
        let flags = p.loadBE16(gre)
        let proto = p.loadBE16(gre &+ 2)
        guard flags == UInt16(Dataplane.greRecursionOne) << 8, proto == 0x0800 || proto == 0x86DD else { return nil }
        if packet.redirected { return notForwarded(.redirectLoop) }
        var fromGroup = false
        for i in 0..<view.members.count where i != member && view.members[i].address == packet.key.source {
            fromGroup = true
        }
        guard fromGroup else { return notForwarded(.redirectNotFromGroup) }
        if let reason = PacketParser.parseIP(p, at: gre &+ 4, end: end, into: &packet) {
            return notForwarded(reason)
        }
        packet.redirected = true
        counters.add(CounterBlock.redirectsReceived)
        return decide(
            nil, &packet, flowHash: FlowHash.hash(packet.key, seed: view.seed), base: base, offset: offset,
            length: length, checksumPending: false, now: now)
    }

    /// Whether fragments wait in the hold (`releaseHeld` has work). One load: drivers check it
    /// between batches.
    public var hasHeld: Bool { hold.count > 0 }

    /// Between batches: sends held fragments whose first fragment has arrived, and drops those
    /// that waited past the hold timeout. `body` gets each (`HeldFragment`); a forward's bytes
    /// must be sent (or copied) before `body` returns.
    public func releaseHeld(now: UInt64, _ body: (HeldFragment) -> Void) {
        guard hold.count > 0 else { return }
        let nowMs = UInt32(truncatingIfNeeded: now / 1_000_000)
        let timeout = view.holdTimeoutMs
        for i in 0..<hold.capacity where hold.lengths[i] != 0 {
            let verdict: Verdict
            if hold.ready[i] {
                verdict = decideHeld(i, now: now)
                if verdict.action == .forward { counters.add(CounterBlock.heldReleased) }
            } else if hold.expired(i, nowMs: nowMs, timeoutMs: timeout) {
                verdict = notForwarded(.fragmentHoldExpired)
            } else {
                continue
            }
            body(
                HeldFragment(
                    base: hold.slot(i), packetOffset: FragmentHold.headroom, packetLength: hold.lengths[i],
                    verdict: verdict, tag: hold.tags[i]))
            hold.free(i)
        }
    }

    /// A held fragment whose first fragment arrived: decided again from its slot, as a later
    /// fragment of a known datagram (it was counted as a packet when it arrived).
    func decideHeld(_ i: Int, now: UInt64) -> Verdict {
        let base = hold.slot(i)
        var packet = ParsedPacket.zero
        if let reason = PacketParser.parse(
            UnsafeRawBufferPointer(start: base + FragmentHold.headroom, count: hold.lengths[i]), linkType: .rawIP,
            into: &packet)
        {
            return notForwarded(reason)
        }
        let vip = view.findVIP(packet.key, hasPorts: packet.fragment != .nonFirst)
        if vip < 0 { return notForwarded(.unknownVIP) }
        let vipID = view.id(ofVIP: vip)
        // Held here as its owner: never redirected afterwards (even if a reload moved owners).
        packet.redirected = true
        releasing = true
        defer { releasing = false }
        var newFlow = false
        var selection = SelectionReason.none
        let backend = selectBackend(
            &packet, flowHash: FlowHash.hash(packet.key, seed: view.seed), vip: vip,
            nowMs: UInt32(truncatingIfNeeded: now / 1_000_000), newFlow: &newFlow, selection: &selection)
        if backend >= ForwardingSnapshot.holdFull { return notForwarded(.noBackend, vip: vipID) }
        return encapsulate(
            &packet, backend: backend, vipID: vipID, selection: selection, flowHash: 0, base: base,
            offset: FragmentHold.headroom, checksumPending: false, now: now)
    }
}

/// A held fragment's outcome, from `Dataplane.releaseHeld`.
public struct HeldFragment {
    /// The hold slot's buffer: the fragment (an IP packet) lies at `packetOffset`, and a
    /// forward's GRE packet at `verdict.outputOffset`.
    public var base: UnsafeMutableRawPointer
    public var packetOffset: Int
    public var packetLength: Int
    /// `forward` (sent now), or a drop (`fragment_hold_expired`, or what changed since).
    public var verdict: Verdict
    /// `Dataplane.holdTag` when it was held.
    public var tag: UInt64
}
