// `fragments: redirect` (docs/maglev.md, "Fragments"): every fragment meets on the group
// member that owns its 3-tuple (redirected once, GRE recursion control 1, from the group only),
// the first fragment follows its 5-tuple there, and later fragments that come first are held,
// bounded in count and time. The oracle for "which backend" is the snapshot's own table fed with
// the 5-tuple the test builds.

import Testing

@testable import MaglevCore

private typealias H = DataplaneHarness

@Suite struct FragmentRedirectTests {
    static let members = [
        ForwarderMember(name: "fwd1", address: FrameBuilder.address("198.18.1.11")),
        ForwarderMember(name: "fwd2", address: FrameBuilder.address("198.18.1.12")),
        ForwarderMember(name: "fwd3", address: FrameBuilder.address("198.18.1.13")),
    ]

    static func config(holdPackets: Int = 64, holdTimeoutMs: UInt32 = 1000) -> DataplaneConfig {
        DataplaneConfig(
            vips: [
                VIPConfig(
                    name: "dns4", address: FrameBuilder.address(H.vip4), proto: IPProtocol.udp, port: 53,
                    backends: H.backends(10)),
                VIPConfig(
                    name: "dns6", address: FrameBuilder.address(H.vip6), proto: IPProtocol.udp, port: 53,
                    backends: H.backends(10, ipv6: true, first: 20)),
            ],
            hashSeed: 0xF4A9, encapSourceIPv4: H.encapSource4, encapSourceIPv6: H.encapSource6,
            fragmentPolicy: .redirect, forwarders: members,
            fragmentHold: FragmentHoldSettings(packets: holdPackets, timeoutMs: holdTimeoutMs))
    }

    /// One data plane per member, named.
    static func group(_ snapshot: ForwardingSnapshot) -> [Dataplane] {
        members.map {
            let d = Dataplane(snapshot: snapshot)
            d.memberName = $0.name
            return d
        }
    }

    static func datagram(_ i: Int, ipv6: Bool) -> FrameBuilder {
        let d = FrameBuilder.udp(H.client(i, ipv6: ipv6), H.clientPort(i), ipv6 ? H.vip6 : H.vip4, 53).payload(100)
        return ipv6 ? d : d.ipv4 { $0.identification = UInt16(1000 + i) }
    }

    static func fragments(_ i: Int, ipv6: Bool) -> [[UInt8]] {
        let d = datagram(i, ipv6: ipv6)
        return ipv6
            ? d.ipv6Fragments(payloadPerFragment: 24, identification: UInt32(7000 + i))
            : d.ipv4Fragments(payloadPerFragment: 24)
    }

    static func owner(_ snapshot: ForwardingSnapshot, _ i: Int, ipv6: Bool) -> Int {
        snapshot.fragmentOwner(
            source: FrameBuilder.address(H.client(i, ipv6: ipv6)), destination: FrameBuilder.address(ipv6 ? H.vip6 : H.vip4),
            proto: IPProtocol.udp)!
    }

    /// A packet arriving at `forwarder`: processed there, and a redirect delivered (as its bytes,
    /// a raw IP packet) to the owner. Returns the final verdict and which member gave it.
    static func deliver(_ group: [Dataplane], at forwarder: Int, _ frame: [UInt8]) -> (Verdict, Int, [UInt8]) {
        let first = H.run(group[forwarder], frame)
        guard first.verdict.action == .redirect else { return (first.verdict, forwarder, first.bytes) }
        let owner = Int(first.verdict.member)
        let second = H.run(group[owner], first.bytes, linkType: .rawIP)
        return (second.verdict, owner, second.bytes)
    }

    @Test func ownersAreSpreadOverTheGroupAndDoNotDependOnListOrder() throws {
        let snapshot = try ForwardingSnapshot(config: Self.config())
        var reversed = Self.config()
        reversed.forwarders.reverse()
        let other = try ForwardingSnapshot(config: reversed)
        var perMember = [0, 0, 0]
        for i in 0..<3000 {
            let o = Self.owner(snapshot, i, ipv6: false)
            perMember[o] += 1
            let name = Self.members[o].name
            #expect(reversed.forwarders[Self.owner(other, i, ipv6: false)].name == name)
        }
        for n in perMember { #expect(n > 800 && n < 1200, "\(perMember)") }
    }

    @Test(arguments: [false, true])
    func everyFragmentReachesTheBackendOfItsFiveTupleWhicheverForwarderGetsIt(ipv6: Bool) throws {
        let snapshot = try ForwardingSnapshot(config: Self.config())
        let group = Self.group(snapshot)
        let vip = ipv6 ? 1 : 0
        var redirects = 0
        for i in 0..<60 {
            let expected = H.choice(snapshot, H.key(i, ipv6: ipv6, proto: IPProtocol.udp, port: 53), vip: vip)
            let owner = Self.owner(snapshot, i, ipv6: ipv6)
            // The unfragmented datagram, at any forwarder: the 5-tuple's backend.
            let whole = Self.deliver(group, at: i % 3, Self.datagram(i, ipv6: ipv6).bytes)
            #expect(whole.0.action == .forward && whole.0.backend == expected)
            // Fragments in order, each at a forwarder of its own (as a router that splits them).
            for (k, f) in Self.fragments(i, ipv6: ipv6).enumerated() {
                let at = (i + k) % 3
                let (v, decidedBy, bytes) = Self.deliver(group, at: at, f)
                #expect(v.action == .forward && v.backend == expected, "datagram \(i) fragment \(k): \(v)")
                #expect(decidedBy == owner)
                if at != owner { redirects += 1 }
                // The inner packet is the fragment, byte for byte.
                let overhead = ipv6 ? 40 : 20
                #expect(Array(bytes[(overhead + 4)...]) == Array(f[14...]))
            }
        }
        #expect(redirects > 100)
        let sent = group.map(\.statistics.fragmentsRedirected).reduce(0, +)
        let received = group.map(\.statistics.redirectsReceived).reduce(0, +)
        #expect(sent == UInt64(redirects) && received == sent)
    }

    @Test func aRedirectIsGREWithRecursionControlOneFromThisMemberToTheOwner() throws {
        let snapshot = try ForwardingSnapshot(config: Self.config())
        let group = Self.group(snapshot)
        let i = (0..<100).first { Self.owner(snapshot, $0, ipv6: false) != 0 }!
        let owner = Self.owner(snapshot, i, ipv6: false)
        let f = Self.fragments(i, ipv6: false)[1]
        let out = H.run(group[0], f)
        #expect(out.verdict.action == .redirect && out.verdict.member == Int32(owner))
        #expect(out.verdict.selection == .fragmentRedirect)
        let b = out.bytes
        #expect(b[9] == IPProtocol.gre)
        #expect(H.be32(b, 12) == Int(Self.members[0].address.ipv4Value))
        #expect(H.be32(b, 16) == Int(Self.members[owner].address.ipv4Value))
        #expect(Array(b[20..<24]) == [0x01, 0x00, 0x08, 0x00])
        #expect(internetChecksum(b, count: 20) == 0)
        #expect(b.count == 24 + f.count - 14)
    }

    @Test(arguments: [false, true])
    func laterFragmentsThatComeFirstAreHeldUntilTheFirstArrives(ipv6: Bool) throws {
        let snapshot = try ForwardingSnapshot(config: Self.config())
        let group = Self.group(snapshot)
        let vip = ipv6 ? 1 : 0
        for i in 0..<20 {
            let expected = H.choice(snapshot, H.key(i, ipv6: ipv6, proto: IPProtocol.udp, port: 53), vip: vip)
            let owner = Self.owner(snapshot, i, ipv6: ipv6)
            let frags = Self.fragments(i, ipv6: ipv6)
            for f in frags[1...].reversed() {
                let (v, decidedBy, _) = Self.deliver(group, at: (owner + 1) % 3, f)
                #expect(v.action == .held && v.selection == .fragmentHeld && decidedBy == owner, "\(v)")
            }
            #expect(group[owner].hasHeld)
            // Nothing is released before the first fragment.
            var released: [Verdict] = []
            group[owner].releaseHeld(now: H.start) { released.append($0.verdict) }
            #expect(released.isEmpty)
            let first = Self.deliver(group, at: owner, frags[0])
            #expect(first.0.backend == expected)
            var bytes: [[UInt8]] = []
            group[owner].releaseHeld(now: H.start) { held in
                released.append(held.verdict)
                bytes.append(
                    Array(UnsafeRawBufferPointer(start: held.base + held.verdict.outputOffset, count: held.verdict.outputLength)))
            }
            #expect(released.count == frags.count - 1)
            #expect(released.allSatisfy { $0.action == .forward && $0.backend == expected && $0.selection == .fragmentHeld })
            // Each went out whole: the fragments themselves, inside GRE to the backend.
            let overhead = ipv6 ? 44 : 24
            let inner = Set(bytes.map { Array($0[overhead...]) })
            #expect(inner == Set(frags[1...].map { Array($0[14...]) }))
            #expect(!group[owner].hasHeld)
        }
        let s = group.map(\.statistics).reduce(into: (held: UInt64(0), released: UInt64(0))) {
            $0.held += $1.fragmentsHeld
            $0.released += $1.heldReleased
        }
        #expect(s.held == 20 * 4 && s.released == s.held)
    }

    @Test func heldFragmentsExpireAndTheHoldIsBounded() throws {
        let snapshot = try ForwardingSnapshot(config: Self.config(holdPackets: 3, holdTimeoutMs: 200))
        let dp = Dataplane(snapshot: snapshot)
        dp.memberName = nil  // Not in the group: keeps (and holds) every fragment itself.
        let frags = Self.fragments(1, ipv6: false)
        for f in frags[1...3] { #expect(H.run(dp, f).verdict.action == .held) }
        let full = H.run(dp, frags[4]).verdict
        #expect(full.action == .drop && full.reason == .fragmentHoldFull)
        var outcomes: [Verdict] = []
        dp.releaseHeld(now: H.start + 199_000_000) { outcomes.append($0.verdict) }
        #expect(outcomes.isEmpty)
        dp.releaseHeld(now: H.start + 200_000_000) { outcomes.append($0.verdict) }
        #expect(outcomes.count == 3 && outcomes.allSatisfy { $0.action == .drop && $0.reason == .fragmentHoldExpired })
        #expect(!dp.hasHeld)
        #expect(dp.statistics.count(.fragmentHoldExpired) == 3 && dp.statistics.count(.fragmentHoldFull) == 1)
        // The first fragment after expiry goes its way; later ones follow it.
        #expect(H.run(dp, frags[0]).verdict.action == .forward)
        #expect(H.run(dp, frags[4]).verdict.action == .forward)
    }

    /// GRE with recursion control 1 carrying `inner` (an IP packet), from `source` to `destination`.
    static func redirectFrame(source: String, destination: String, inner: [UInt8]) -> [UInt8] {
        FrameBuilder.ip(source, destination, proto: IPProtocol.gre).payload([0x01, 0x00, 0x08, 0x00] + inner).bytes
    }

    @Test func redirectsAreTakenFromTheGroupOnlyAndOnlyOnce() throws {
        let snapshot = try ForwardingSnapshot(config: Self.config())
        let group = Self.group(snapshot)
        let fragment = Array(Self.fragments(2, ipv6: false)[1][14...])
        // From outside the group: dropped and counted.
        let stranger = H.run(group[0], Self.redirectFrame(source: "198.18.9.9", destination: "198.18.1.11", inner: fragment))
        #expect(stranger.verdict.action == .drop && stranger.verdict.reason == .redirectNotFromGroup)
        // From a member, but not to this member's address: not ours.
        let elsewhere = H.run(group[0], Self.redirectFrame(source: "198.18.1.12", destination: "198.18.1.99", inner: fragment))
        #expect(elsewhere.verdict.action == .pass)
        // A redirect inside a redirect: a loop, dropped.
        let nested = Array(
            FrameBuilder.ip("198.18.1.13", "198.18.1.11", proto: IPProtocol.gre).payload([0x01, 0x00, 0x08, 0x00] + fragment)
                .bytes[14...])
        let loop = H.run(group[0], Self.redirectFrame(source: "198.18.1.12", destination: "198.18.1.11", inner: nested))
        #expect(loop.verdict.action == .drop && loop.verdict.reason == .redirectLoop)
        // Plain GRE (recursion 0) to the member's address is someone else's tunnel: passed.
        let plain = H.run(
            group[0],
            FrameBuilder.ip("198.18.1.12", "198.18.1.11", proto: IPProtocol.gre).payload([0, 0, 0x08, 0x00] + fragment).bytes)
        #expect(plain.verdict.action == .pass)
        // A redirected fragment is never redirected again, even when this member does not own it.
        let i = (0..<100).first { Self.owner(snapshot, $0, ipv6: false) == 2 }!
        let theirs = Array(Self.fragments(i, ipv6: false)[0][14...])
        let kept = H.run(group[0], Self.redirectFrame(source: "198.18.1.12", destination: "198.18.1.11", inner: theirs))
        #expect(kept.verdict.action == .forward)
    }

    @Test func withoutRedirectPoliciesNothingChangesForGRE() throws {
        var config = Self.config()
        config.fragmentPolicy = .fragmentTable
        let dp = Dataplane(snapshot: try ForwardingSnapshot(config: config))
        dp.memberName = "fwd1"
        let fragment = Array(Self.fragments(2, ipv6: false)[1][14...])
        let v = H.run(dp, Self.redirectFrame(source: "198.18.1.12", destination: "198.18.1.11", inner: fragment)).verdict
        #expect(v.action == .pass && v.reason == .unknownVIP)
        #expect(H.run(dp, Self.fragments(2, ipv6: false)[1]).verdict.action == .forward)
    }

    @Test func theGroupIsChecked() {
        var noGroup = Self.config()
        noGroup.forwarders = []
        #expect(throws: SnapshotError.self) { try ForwardingSnapshot(config: noGroup) }
        var twice = Self.config()
        twice.forwarders.append(ForwarderMember(name: "fwd1", address: FrameBuilder.address("198.18.1.14")))
        #expect(throws: SnapshotError.self) { try ForwardingSnapshot(config: twice) }
        var mixed = Self.config()
        mixed.forwarders.append(ForwarderMember(name: "fwd4", address: FrameBuilder.address("2001:db8:1::14")))
        #expect(throws: SnapshotError.self) { try ForwardingSnapshot(config: mixed) }
    }
}
