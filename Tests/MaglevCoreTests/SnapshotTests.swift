// ForwardingSnapshot: the config errors it names, and backend ids that stay stable by name
// across reloads (connection-table entries store ids).

import Testing

@testable import MaglevCore

private typealias H = DataplaneHarness

@Suite struct SnapshotTests {
    private func error(_ config: DataplaneConfig) -> SnapshotError? {
        do {
            _ = try ForwardingSnapshot(config: config)
            return nil
        } catch {
            return error
        }
    }

    private func vip(_ name: String, _ address: String, prefix: Int? = nil, _ backends: [BackendConfig]) -> VIPConfig {
        VIPConfig(name: name, address: FrameBuilder.address(address), prefixLength: prefix, backends: backends)
    }

    private func config(_ vips: [VIPConfig], edit: (inout DataplaneConfig) -> Void = { _ in }) -> DataplaneConfig {
        var c = DataplaneConfig(vips: vips, encapSourceIPv4: H.encapSource4, encapSourceIPv6: H.encapSource6)
        edit(&c)
        return c
    }

    /// Each error, and a word its description must contain to name the problem.
    private var cases: [(String, DataplaneConfig, SnapshotError, [String])] {
        let b4 = H.backends(3)
        let b6 = H.backends(3, ipv6: true, first: 10)
        var clash = H.backends(1)
        clash[0].address = FrameBuilder.address("198.19.9.9")
        return [
            ("no VIPs", config([]), .noVIPs, ["no VIPs"]),
            (
                "duplicate VIP", config([vip("web", H.vip4, b4), vip("web", "198.18.0.11", b4)]),
                .duplicateVIP("web"), ["web", "twice"]
            ),
            (
                "conflicting backend", config([vip("a", H.vip4, b4), vip("b", "198.18.0.11", clash)]),
                .conflictingBackend(
                    name: "be-00", first: FrameBuilder.address("198.19.0.1"), second: FrameBuilder.address("198.19.9.9")),
                ["be-00", "198.19.0.1", "198.19.9.9"]
            ),
            (
                "no IPv6 encap source", config([vip("web6", H.vip6, b6)]) { $0.encapSourceIPv6 = nil },
                .missingEncapSource(backend: "be-10", ipv6: true), ["be-10", "IPv6"]
            ),
            (
                "no IPv4 encap source", config([vip("web", H.vip4, b4)]) { $0.encapSourceIPv4 = nil },
                .missingEncapSource(backend: "be-00", ipv6: false), ["be-00", "IPv4"]
            ),
            (
                "IPv4 prefix 33", config([vip("wide", H.vip4, prefix: 33, b4)]),
                .badPrefix(vip: "wide", prefixLength: 33), ["wide", "33"]
            ),
            (
                "IPv6 prefix 129", config([vip("wide6", H.vip6, prefix: 129, b6)]),
                .badPrefix(vip: "wide6", prefixLength: 129), ["wide6", "129"]
            ),
            (
                "negative prefix", config([vip("neg", H.vip4, prefix: -1, b4)]),
                .badPrefix(vip: "neg", prefixLength: -1), ["neg", "-1"]
            ),
            (
                "path MTU 619", config([vip("web", H.vip4, b4)]) { $0.pathMTU = 619 },
                .pathMTUTooSmall(619), ["619", "MTU"]
            ),
            (
                "table size not prime", config([vip("web", H.vip4, b4)]) { $0.tableSize = 65536 },
                .table(vip: "web", .sizeNotPrime(65536)), ["web", "65536", "prime"]
            ),
            (
                "table smaller than the pool", config([vip("web", H.vip4, H.backends(10))]) { $0.tableSize = 7 },
                .table(vip: "web", .sizeTooSmall(size: 7, backends: 10)), ["web", "7", "10"]
            ),
            (
                "backend twice in a pool", config([vip("web", H.vip4, b4 + [b4[1]])]),
                .table(vip: "web", .duplicateBackend("be-01")), ["web", "be-01"]
            ),
            (
                "empty backend name",
                config([vip("web", H.vip4, [BackendConfig(name: "", address: FrameBuilder.address("198.19.0.1"))])]),
                .table(vip: "web", .emptyBackendName), ["web"]
            ),
        ]
    }

    @Test func everyConfigErrorIsNamedOnOneLine() {
        for (label, config, expected, words) in cases {
            let e = error(config)
            #expect(e == expected, "\(label)")
            guard let e else { continue }
            let text = e.description
            #expect(!text.isEmpty && !text.contains("\n"), "\(label): \(text)")
            for w in words {
                #expect(text.contains(w), "\(label): \"\(text)\" does not mention \(w)")
            }
        }
    }

    @Test func smallestAcceptedPathMTUIs620() throws {
        _ = try ForwardingSnapshot(config: config([vip("web", H.vip4, H.backends(3))]) { $0.pathMTU = 620 })
        #expect(error(config([vip("web", H.vip4, H.backends(3))]) { $0.pathMTU = 620 }) == nil)
    }

    @Test func prefixesAtTheFamilyLimitsAreAccepted() {
        for (address, prefix) in [(H.vip4, 0), (H.vip4, 32), (H.vip6, 0), (H.vip6, 128)] {
            let b = H.backends(2, ipv6: address.contains(":"))
            #expect(error(config([vip("v", address, prefix: prefix, b)])) == nil, "\(address)/\(prefix)")
        }
    }

    @Test func backendIDsAreStableAcrossReloadsAddRemoveReadd() throws {
        let names = { (s: ForwardingSnapshot) in s.backendNames }
        let s0 = try ForwardingSnapshot(config: H.config(backends: H.backends(3)))
        #expect(names(s0) == ["be-00", "be-01", "be-02"])
        #expect(s0.backendPresent == [true, true, true])

        // Add be-03, listed first: it still gets the next id, the others keep theirs.
        let s1 = try ForwardingSnapshot(
            config: H.config(backends: [H.backend(3)] + H.backends(3).reversed()), previous: s0)
        #expect(names(s1) == ["be-00", "be-01", "be-02", "be-03"])
        #expect(s1.backendPresent == [true, true, true, true])

        // Remove be-01: its id stays taken (absent), with its address.
        let s2 = try ForwardingSnapshot(
            config: H.config(backends: [H.backend(0), H.backend(2), H.backend(3)]), previous: s1)
        #expect(names(s2) == ["be-00", "be-01", "be-02", "be-03"])
        #expect(s2.backendPresent == [true, false, true, true])
        #expect(s2.address(ofBackend: 1) == FrameBuilder.address("198.19.0.2"))
        #expect(!s2.tableBackendIDs[0].contains(1))

        // Re-add be-01 and add be-04: be-01 gets its old id back, be-04 the next one.
        let s3 = try ForwardingSnapshot(config: H.config(backends: H.backends(5)), previous: s2)
        #expect(names(s3) == ["be-00", "be-01", "be-02", "be-03", "be-04"])
        #expect(s3.backendPresent == [true, true, true, true, true])
        for id in 0..<5 {
            #expect(s3.address(ofBackend: id) == H.backend(id).address)
        }
        // Table ids name the same backends as the table's own names.
        for (v, table) in s3.tables.enumerated() {
            let table = try #require(table)
            #expect(table.backends.map(\.name) == s3.tableBackendIDs[v].map { s3.backendNames[Int($0)] })
        }
        // The same config with the same previous gives the same table (ids do not leak into
        // the Maglev permutation, which depends on names only).
        let fresh = try ForwardingSnapshot(config: H.config(backends: H.backends(5)))
        for n in UInt64(0)..<4099 {
            let h = n &* 0x9E37_79B9_7F4A_7C15
            #expect(fresh.backendID(vip: 0, hash: h).map { fresh.backendNames[$0] }
                == s3.backendID(vip: 0, hash: h).map { s3.backendNames[$0] })
        }
    }

    @Test func aConnectionKeepsItsBackendIDAcrossAReload() throws {
        // Connection entries store ids: after a reload that adds a backend the id still names it.
        let s0 = try ForwardingSnapshot(config: H.config(backends: H.backends(4)))
        let dp = Dataplane(snapshot: s0)
        let flow = (0..<100).first { H.choice(s0, H.key($0)) == 2 }!
        #expect(H.run(dp, H.tcp(flow, flags: TCPFlags.syn).bytes).verdict.backend == 2)
        let s1 = try ForwardingSnapshot(
            config: H.config(backends: H.backends(4) + [H.backend(7)]), previous: s0)
        dp.install(s1)
        let ack = H.run(dp, H.tcp(flow, flags: TCPFlags.ack).bytes)
        #expect(ack.verdict.backend == 2)
        #expect(H.be32(ack.bytes, 16) == Int(H.backend(2).address.ipv4Value))
    }
}
