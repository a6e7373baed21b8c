import MaglevCore
import MaglevForwarder
import MaglevLinux
import Testing

/// Runs the generated classic BPF programs in a small interpreter (the opcodes VIPFilter
/// emits), so the filter's logic is tested without root; the live tests attach it for real.
@Suite struct VIPFilterTests {
    static let host: UInt32 = 0
    static let outgoing: UInt32 = BPFInstruction.packetOutgoing

    /// Returns the program's verdict: bytes to keep (0 = drop).
    static func run(_ program: [BPFInstruction], _ frame: [UInt8], packetType: UInt32 = host) -> UInt32 {
        var a: UInt32 = 0
        var pc = 0
        func load(_ k: UInt32, _ size: Int) -> UInt32? {
            if k == BPFInstruction.packetTypeOffset { return packetType }
            let o = Int(k)
            guard o + size <= frame.count else { return nil }
            return (0..<size).reduce(UInt32(0)) { $0 << 8 | UInt32(frame[o + $1]) }
        }
        while pc < program.count {
            let i = program[pc]
            pc += 1
            switch i.code {
            case 0x20: guard let v = load(i.k, 4) else { return 0 }; a = v
            case 0x28: guard let v = load(i.k, 2) else { return 0 }; a = v
            case 0x30: guard let v = load(i.k, 1) else { return 0 }; a = v
            case 0x54: a &= i.k
            case 0x15: pc += a == i.k ? Int(i.jt) : Int(i.jf)
            case 0x05: pc += Int(i.k)
            case 0x06: return i.k
            default:
                Issue.record("unexpected opcode \(i.code)")
                return 0
            }
        }
        Issue.record("fell off the end")
        return 0
    }

    static func v4(_ dst: String) -> [UInt8] {
        Packets.frame(Packets.ipv4(source: "198.18.0.2", destination: dst, proto: IPProtocol.udp, sourcePort: 1, destinationPort: 2))
    }
    static func v6(_ dst: String) -> [UInt8] {
        Packets.frame(Packets.ipv6(source: "2001:db8::2", destination: dst, proto: IPProtocol.udp, sourcePort: 1, destinationPort: 2))
    }

    static func vip(_ address: String, _ prefix: Int? = nil) -> VIPConfig {
        VIPConfig(name: address, address: IPAddress(address)!, prefixLength: prefix, backends: [])
    }

    @Test func acceptsOnlyVIPDestinations() {
        let (p, mode) = VIPFilter.program(for: [
            Self.vip("198.18.100.10"), Self.vip("198.18.200.0", 24), Self.vip("2001:db8:100::10"),
            Self.vip("2001:db8:200::", 48),
        ])
        #expect(mode == .vips)
        #expect(Self.run(p, Self.v4("198.18.100.10")) > 0)
        #expect(Self.run(p, Self.v4("198.18.100.11")) == 0)
        #expect(Self.run(p, Self.v4("198.18.200.77")) > 0)
        #expect(Self.run(p, Self.v4("198.18.201.77")) == 0)
        #expect(Self.run(p, Self.v6("2001:db8:100::10")) > 0)
        #expect(Self.run(p, Self.v6("2001:db8:100::11")) == 0)
        #expect(Self.run(p, Self.v6("2001:db8:200:ffff::1")) > 0)
        #expect(Self.run(p, Self.v6("2001:db8:201::1")) == 0)
        // What the host sends itself, ARP and short frames: never.
        #expect(Self.run(p, Self.v4("198.18.100.10"), packetType: Self.outgoing) == 0)
        var arp = Self.v4("198.18.100.10")
        arp[12] = 0x08
        arp[13] = 0x06
        #expect(Self.run(p, arp) == 0)
        #expect(Self.run(p, Array(Self.v4("198.18.100.10")[0..<20])) == 0)
        // Tagged frames go to the data plane, which parses tags itself.
        var tagged = Self.v4("198.18.1.1")
        tagged[12] = 0x81
        tagged[13] = 0x00
        #expect(Self.run(p, tagged) > 0)
    }

    @Test func catchAllPrefixesAndFamiliesWithoutVIPs() {
        let (p, _) = VIPFilter.program(for: [Self.vip("0.0.0.0", 0)])
        #expect(Self.run(p, Self.v4("198.19.1.9")) > 0)
        #expect(Self.run(p, Self.v6("2001:db8::1")) == 0, "no IPv6 VIP: no IPv6")
        let (p6, _) = VIPFilter.program(for: [Self.vip("::", 0)])
        #expect(Self.run(p6, Self.v6("2001:db8::1")) > 0)
        #expect(Self.run(p6, Self.v4("198.18.0.1")) == 0)
    }

    @Test func ethertypeModeAndFallbackForHugeVIPLists() {
        let (e, mode) = VIPFilter.program(for: [Self.vip("198.18.100.10")], mode: .ethertype)
        #expect(mode == .ethertype)
        #expect(Self.run(e, Self.v4("198.18.7.7")) > 0)
        #expect(Self.run(e, Self.v6("2001:db8::7")) > 0)
        let many = (0..<400).map { Self.vip("2001:db8:100::\(String($0, radix: 16))") }
        let (p, m) = VIPFilter.program(for: many)
        #expect(m == .ethertype && p.count <= BPFInstruction.maximumCount)
        let some = (0..<200).map { Self.vip("2001:db8:100::\(String($0, radix: 16))") }
        let (q, n) = VIPFilter.program(for: some)
        #expect(n == .vips && q.count <= BPFInstruction.maximumCount)
        #expect(Self.run(q, Self.v6("2001:db8:100::c7")) > 0)
        #expect(Self.run(q, Self.v6("2001:db8:100::c8")) == 0)
    }
}

/// Statistics renderings.
@Suite struct StatisticsFormatTests {
    @Test func jsonIsOneLineWithFixedKeys() throws {
        let snapshot = try ForwardingSnapshot(config: LiveForwardingTests.config())
        let zero = Dataplane(snapshot: snapshot, connectionCapacity: 8, fragmentCapacity: 8).statistics
        var io = IOCounters()
        io.received = 10
        io.sent = 9
        let s = ForwarderStatistics(
            elapsedSeconds: 1.5,
            workers: [
                WorkerStatistics(worker: 0, cpu: 0, ringMode: "plain", filterMode: "vips", dataplane: zero, io: io),
                WorkerStatistics(worker: 1, cpu: nil, ringMode: "plain", filterMode: "vips", dataplane: zero, io: io),
            ],
            vipNames: ["vip4", "vip6"], backendNames: snapshot.backendNames,
            backendAddresses: snapshot.backendNames.indices.map { snapshot.address(ofBackend: $0).description },
            cpuNanoseconds: 2000)
        let json = StatisticsFormat.json(s)
        #expect(!json.contains("\n"))
        #expect(json.hasPrefix("{\"elapsed_s\":1.500,\"cpu_ns\":2000,\"cpu_ns_per_packet\":100.0,\"total\":{\"packets\":0,"))
        #expect(json.contains("\"received\":20"))
        #expect(json.contains("\"cpu\":null"))
        #expect(json.contains("{\"id\":0,\"name\":\"web-1\",\"address\":\"198.18.1.1\""))
        // VIPs by stable id, with their names.
        #expect(json.contains("\"vips\":[{\"id\":0,\"name\":\"vip4\",\"packets\":0,\"bytes\":0},{\"id\":1,"))
        let text = StatisticsFormat.text(s)
        #expect(text.contains("worker 1 (unpinned, ring plain, filter vips)"))
    }
}

extension VIPFilterTests {
    /// `fragments: redirect`: GRE to this forwarder's group address is accepted too (IPv4 and
    /// IPv6), other protocols to it and GRE elsewhere are not.
    @Test func acceptsGREToTheGroupAddress() {
        for (address, other, gre, udp) in [
            ("198.18.1.11", "198.18.1.12",
             Self.raw4(destination: "198.18.1.11", proto: IPProtocol.gre), Self.v4("198.18.1.11")),
            ("2001:db8:1::11", "2001:db8:1::12",
             Self.raw6(destination: "2001:db8:1::11", proto: IPProtocol.gre), Self.v6("2001:db8:1::11")),
        ] {
            let (p, mode) = VIPFilter.program(for: [Self.vip("198.18.100.10")], redirects: IPAddress(address)!)
            #expect(mode == .vips)
            #expect(Self.run(p, gre) > 0, "\(address)")
            #expect(Self.run(p, udp) == 0, "\(address)")
            #expect(Self.run(p, Self.v4("198.18.100.10")) > 0)
            let (q, _) = VIPFilter.program(for: [Self.vip("198.18.100.10")], redirects: IPAddress(other)!)
            #expect(Self.run(q, gre) == 0, "\(other)")
        }
    }

    static func raw4(destination: String, proto: UInt8) -> [UInt8] {
        var p = Packets.ipv4(source: "198.18.1.12", destination: destination, proto: IPProtocol.udp, sourcePort: 1, destinationPort: 2)
        p[9] = proto
        return Packets.frame(p)
    }

    static func raw6(destination: String, proto: UInt8) -> [UInt8] {
        var p = Packets.ipv6(source: "2001:db8:1::12", destination: destination, proto: IPProtocol.udp, sourcePort: 1, destinationPort: 2)
        p[6] = proto
        return Packets.frame(p)
    }

    /// `--io xdp`'s prefixes: each VIP's prefix masked to its length, once; the group address
    /// for GRE only, or as both when a VIP prefix covers it.
    @Test func xdpPrefixesAreTheVIPsAndTheGroupAddress() {
        let vips = [
            VIPConfig(name: "a", address: IPAddress("198.18.100.10")!, backends: []),
            VIPConfig(name: "b", address: IPAddress("198.18.100.10")!, proto: IPProtocol.udp, port: 53, backends: []),
            VIPConfig(name: "net", address: IPAddress("198.18.101.77")!, prefixLength: 24, backends: []),
            VIPConfig(name: "v6", address: IPAddress("2001:db8:100::10")!, backends: []),
        ]
        let alone = VIPFilter.xdpPrefixes(for: vips, redirects: IPAddress("198.18.0.1")!)
        #expect(alone.count == 4)
        #expect(alone.contains(XDPProgram.Prefix(address: [198, 18, 100, 10], length: 32, kind: .vip)))
        #expect(alone.contains(XDPProgram.Prefix(address: [198, 18, 101, 0], length: 24, kind: .vip)))
        #expect(alone.contains(XDPProgram.Prefix(address: [198, 18, 0, 1], length: 32, kind: .gre)))
        #expect(alone.contains { $0.address.count == 16 && $0.length == 128 && $0.kind == .vip })
        let covered = VIPFilter.xdpPrefixes(for: vips, redirects: IPAddress("198.18.101.5")!)
        #expect(covered.contains(XDPProgram.Prefix(address: [198, 18, 101, 5], length: 32, kind: .vipAndGRE)))
        #expect(VIPFilter.xdpPrefixes(for: vips).count == 3)
    }
}
