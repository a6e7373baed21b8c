import Foundation
import Testing

/// Fragments across forwarders (issue 9 §3), live: the lab's router splits datagrams by policy
/// routing (whole datagrams and first fragments through fwd1, later fragments through fwd2), and
/// `Tools/lab fragments` sends 240 UDP datagrams on 8 5-tuples from 4 client addresses, over
/// IPv4 and then IPv6 (a
/// quarter whole, the rest in 2 or 3 fragments, some in reverse order) to UDP sinks on the
/// backends. With `fragments: redirect` every datagram must be reassembled at exactly one
/// backend, every 5-tuple's at the backend `maglev which` names, and `maglev replay
/// --forwarders 2` of the client's capture must predict every packet. The same run must fail
/// with `three-tuple` (a 5-tuple's whole and fragmented datagrams reach different backends) and
/// with `fragment-table` (no redirect: datagrams are split between backends and lost), so the
/// test can tell the redirect from its absence.
@Suite(.serialized, .enabled(if: liveBGPRouterMissing("bird") == nil, Comment(rawValue: liveBGPRouterMissing("bird") ?? "")))
struct LiveFragmentTests {
    @Test func everyDatagramMeetsOnOneBackendOnlyWithTheRedirect() throws {
        let lab = LabSession(tag: "fr")
        defer { _ = try? lab.lab(["down"], quiet: true) }
        let up = try lab.lab(["up", "--backends", "3", "--forwarders", "2", "--ipv6"], quiet: true)
        try #require(up.status == 0, "Tools/lab up failed:\n\(up.output)")
        let forward = try lab.lab(["forward"])
        try #require(forward.status == 0, "Tools/lab forward failed:\n\(forward.output)")

        let redirect = try lab.lab(["fragments", "--policy", "redirect"])
        #expect(redirect.status == 0, "fragments: redirect must pass:\n\(redirect.output)")
        #expect(redirect.output.contains("reassembled at exactly one backend: 240; at none: 0; at two or more: 0"))
        #expect(redirect.output.contains("maglev replay --forwarders of the client's 540 packets: 540 as live"))
        // Both forwarders redirected, and held later fragments that came first.
        for k in [1, 2] {
            let metrics = try lab.admin(k, "/metrics") ?? ""
            // Labels read `{event="NAME"}`.
            let events = Dictionary(
                LiveControlTests.samples(metrics, "maglev_fragments_total").map {
                    ($0.labels.replacingOccurrences(of: "{event=\"", with: "").replacingOccurrences(of: "\"}", with: ""), $0.value)
                }, uniquingKeysWith: +)
            #expect((events["redirected"] ?? 0) > 0 && (events["redirect_received"] ?? 0) > 0, "fwd\(k): \(events)")
            #expect(events["held"] == events["held_released"], "fwd\(k): a held fragment was not released: \(events)")
        }

        // IPv6 fragments (fragment headers, inner IPv6 in the group's IPv4 GRE), the same way.
        let v6 = try lab.lab(["fragments", "--ipv6", "--policy", "redirect"])
        #expect(v6.status == 0, "fragments --ipv6: redirect must pass:\n\(v6.output)")
        #expect(v6.output.contains("reassembled at exactly one backend: 240; at none: 0; at two or more: 0"))

        let threeTuple = try lab.lab(["fragments", "--policy", "three-tuple"])
        #expect(threeTuple.status != 0, "three-tuple must fail the 5-tuple rule:\n\(threeTuple.output)")
        #expect(threeTuple.output.contains("SPLIT 5-tuple"), "three-tuple: \(threeTuple.output)")

        let table = try lab.lab(["fragments", "--policy", "fragment-table"])
        #expect(table.status != 0, "fragment-table (no redirect) must fail reassembly:\n\(table.output)")
        #expect(table.output.contains("MISSING datagram"), "fragment-table: \(table.output)")
    }
}
