// DataplaneHarness: runs [UInt8] frames through a `Dataplane` the way a driver would (the frame
// copied into a buffer behind `headroom` bytes), and returns the verdict with the bytes to send.
// Also builds the configs, flows and oracles the behaviour tests share. Addresses are from
// 198.18.0.0/15 and 2001:db8::/32 only.
//
//     let dp = Dataplane(snapshot: try DataplaneHarness.snapshot(backends: 10))
//     let out = DataplaneHarness.run(dp, frame)            // out.verdict, out.bytes
//     let outs = DataplaneHarness.runBatch(dp, frames)     // one process(batch:) call

@testable import MaglevCore

struct DataplaneHarness {
    /// What one frame became.
    struct Output: Equatable {
        var verdict: Verdict
        /// `verdict.outputLength` bytes from `verdict.outputOffset` (empty for pass and drop).
        var bytes: [UInt8]
    }

    static let headroom = 64
    /// A time well away from 0, in nanoseconds.
    static let start: UInt64 = 1_000_000_000_000

    static let vip4 = "198.18.0.10"
    static let vip6 = "2001:db8::10"
    static let encapSource4 = FrameBuilder.address("198.18.255.1")
    static let encapSource6 = FrameBuilder.address("2001:db8:ffff::1")
    static let router4 = "198.19.200.1"
    static let router6 = "2001:db8:200::1"

    // MARK: Running frames

    /// Copies `frame` behind `headroom` bytes, processes it with the single-packet entry point,
    /// and returns the verdict and output bytes. `checksumPending`: as a live driver marks a
    /// `CHECKSUM_PARTIAL` frame.
    static func run(
        _ dataplane: Dataplane, _ frame: [UInt8], linkType: LinkType = .ethernet,
        now: UInt64 = start, headroom: Int = headroom, checksumPending: Bool = false
    ) -> Output {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: headroom + frame.count + 1, alignment: 16)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0xEE, count: headroom + frame.count + 1)
        frame.withUnsafeBytes { (buffer + headroom).copyMemory(from: $0.baseAddress!, byteCount: frame.count) }
        let verdict = dataplane.process(
            base: buffer, offset: headroom, length: frame.count, linkType: linkType, now: now,
            checksumPending: checksumPending)
        return Output(verdict: verdict, bytes: output(of: verdict, in: buffer))
    }

    /// The same frames through one `process(batch:)` call (chunks of `Dataplane.batchChunk`
    /// happen inside).
    static func runBatch(
        _ dataplane: Dataplane, _ frames: [[UInt8]], linkType: LinkType = .ethernet,
        now: UInt64 = start, headroom: Int = headroom, checksumPending: Bool = false
    ) -> [Output] {
        let buffers = frames.map { frame -> UnsafeMutableRawPointer in
            let b = UnsafeMutableRawPointer.allocate(byteCount: headroom + frame.count + 1, alignment: 16)
            b.initializeMemory(as: UInt8.self, repeating: 0xEE, count: headroom + frame.count + 1)
            frame.withUnsafeBytes { (b + headroom).copyMemory(from: $0.baseAddress!, byteCount: frame.count) }
            return b
        }
        defer { for b in buffers { b.deallocate() } }
        let slots = UnsafeMutableBufferPointer<PacketSlot>.allocate(capacity: frames.count)
        defer { slots.deallocate() }
        for (i, frame) in frames.enumerated() {
            slots[i] = PacketSlot(base: buffers[i], offset: headroom, length: frame.count, checksumPending: checksumPending)
        }
        dataplane.process(batch: slots, linkType: linkType, now: now)
        return (0..<frames.count).map { Output(verdict: slots[$0].verdict, bytes: output(of: slots[$0].verdict, in: buffers[$0])) }
    }

    /// The same frames parsed here (as replay parses them) and decided in one
    /// `process(parsedBatch:packets:statuses:nows:hashes:)` call, frame `i` at `nows[i]`;
    /// `withHashes`: the parsed packets' hashes taken from `flowHashAndBucket` and handed in, as
    /// replay does.
    static func runParsedBatch(
        _ dataplane: Dataplane, _ frames: [[UInt8]], nows: [UInt64], linkType: LinkType = .ethernet,
        headroom: Int = headroom, withHashes: Bool = false
    ) -> [Output] {
        let buffers = frames.map { frame -> UnsafeMutableRawPointer in
            let b = UnsafeMutableRawPointer.allocate(byteCount: headroom + frame.count + 1, alignment: 16)
            b.initializeMemory(as: UInt8.self, repeating: 0xEE, count: headroom + frame.count + 1)
            frame.withUnsafeBytes { (b + headroom).copyMemory(from: $0.baseAddress!, byteCount: frame.count) }
            return b
        }
        defer { for b in buffers { b.deallocate() } }
        let n = frames.count
        let slots = UnsafeMutableBufferPointer<PacketSlot>.allocate(capacity: n)
        let packets = UnsafeMutablePointer<ParsedPacket>.allocate(capacity: n)
        let statuses = UnsafeMutablePointer<DropReason?>.allocate(capacity: n)
        defer {
            slots.deallocate()
            packets.deallocate()
            statuses.deallocate()
        }
        for (i, frame) in frames.enumerated() {
            slots[i] = PacketSlot(base: buffers[i], offset: headroom, length: frame.count)
            (packets + i).initialize(to: .zero)
            (statuses + i).initialize(
                to: PacketParser.parse(
                    UnsafeRawBufferPointer(start: buffers[i] + headroom, count: frame.count), linkType: linkType,
                    into: &packets[i]))
        }
        // Any value for packets not parsed: they must be ignored.
        var hashes = [UInt64](repeating: 0xDEAD_BEEF, count: n)
        for i in 0..<n where statuses[i] == nil { hashes[i] = dataplane.flowHashAndBucket(&packets[i]).hash }
        nows.withUnsafeBufferPointer { nows in
            hashes.withUnsafeBufferPointer { hashes in
                dataplane.process(
                    parsedBatch: slots, packets: packets, statuses: statuses, nows: nows.baseAddress!,
                    hashes: withHashes ? hashes.baseAddress! : nil)
            }
        }
        return (0..<n).map { Output(verdict: slots[$0].verdict, bytes: output(of: slots[$0].verdict, in: buffers[$0])) }
    }

    private static func output(of verdict: Verdict, in buffer: UnsafeMutableRawPointer) -> [UInt8] {
        guard verdict.action == .forward || verdict.action == .icmpReply || verdict.action == .redirect else { return [] }
        return Array(UnsafeRawBufferPointer(start: buffer + verdict.outputOffset, count: verdict.outputLength))
    }

    // MARK: Configs

    /// Backends `be-00`, `be-01`, ... at 198.19.0.1, .2, ... (or 2001:db8:b::1, ::2, ...).
    static func backends(_ count: Int, ipv6: Bool = false, first: Int = 0) -> [BackendConfig] {
        (first..<(first + count)).map { backend($0, ipv6: ipv6) }
    }

    static func backend(_ i: Int, ipv6: Bool = false, state: BackendState = .active) -> BackendConfig {
        let name = i < 10 ? "be-0\(i)" : "be-\(i)"
        let address = ipv6 ? "2001:db8:b::\(String(i + 1, radix: 16))" : "198.19.0.\(i + 1)"
        return BackendConfig(name: name, address: FrameBuilder.address(address), state: state)
    }

    /// One TCP VIP on port 80 (198.18.0.10, or 2001:db8::10) over `backends`.
    static func config(
        backends: [BackendConfig], ipv6VIP: Bool = false, hashSeed: UInt64 = 0x5EED_0F_F00D,
        edit: (inout DataplaneConfig) -> Void = { _ in }
    ) -> DataplaneConfig {
        var c = DataplaneConfig(
            vips: [
                VIPConfig(
                    name: "web", address: FrameBuilder.address(ipv6VIP ? vip6 : vip4), proto: IPProtocol.tcp,
                    port: 80, backends: backends)
            ],
            hashSeed: hashSeed, encapSourceIPv4: encapSource4, encapSourceIPv6: encapSource6)
        edit(&c)
        return c
    }

    // MARK: Flows

    /// Client `i` of a family: distinct addresses in 198.18.1.1... or 2001:db8:c::1..., and a
    /// port that also varies.
    static func client(_ i: Int, ipv6: Bool = false) -> String {
        ipv6 ? "2001:db8:c::\(String(i + 1, radix: 16))" : "198.18.\(1 + i / 250).\(1 + i % 250)"
    }

    static func clientPort(_ i: Int) -> UInt16 { UInt16(1024 + (i * 7919) % 60000) }

    /// A TCP segment of flow `i` to the VIP's port 80.
    static func tcp(_ i: Int, flags: UInt8, ipv6: Bool = false, vip: String? = nil) -> FrameBuilder {
        FrameBuilder.tcp(client(i, ipv6: ipv6), clientPort(i), vip ?? (ipv6 ? vip6 : vip4), 80, flags: flags)
    }

    /// The key the data plane hashes for flow `i` (built from the test's own values).
    static func key(_ i: Int, ipv6: Bool = false, proto: UInt8 = IPProtocol.tcp, port: UInt16 = 80) -> FlowKey {
        FlowKey(
            source: FrameBuilder.address(client(i, ipv6: ipv6)),
            destination: FrameBuilder.address(ipv6 ? vip6 : vip4), sourcePort: clientPort(i),
            destinationPort: port, proto: proto)
    }

    /// What the snapshot's table picks for `key` in VIP `vip`: the oracle.
    static func choice(_ snapshot: ForwardingSnapshot, _ key: FlowKey, vip: Int = 0) -> Int32 {
        let id = snapshot.backendID(vip: vip, hash: FlowHash.hash(key, seed: snapshot.config.hashSeed))
        return id.map { Int32($0) } ?? -1
    }

    /// The id of the backend named `name` in `snapshot`.
    static func id(_ snapshot: ForwardingSnapshot, _ name: String) -> Int32 {
        Int32(snapshot.backendNames.firstIndex(of: name)!)
    }

    // MARK: Checksums

    /// RFC 1071 one's-complement sum over `bytes`, folded (not inverted): 0xFFFF when the bytes
    /// include a correct checksum.
    static func onesComplementSum(_ bytes: some Collection<UInt8>, initial: UInt32 = 0) -> UInt16 {
        var sum = UInt64(initial)
        var high = true
        for b in bytes {
            sum += high ? UInt64(b) << 8 : UInt64(b)
            high.toggle()
        }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        return UInt16(sum)
    }

    static func be16(_ b: [UInt8], _ i: Int) -> Int { Int(b[i]) << 8 | Int(b[i + 1]) }
    static func be32(_ b: [UInt8], _ i: Int) -> Int { be16(b, i) << 16 | be16(b, i + 2) }
}
