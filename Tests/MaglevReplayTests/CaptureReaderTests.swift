import Glibc
import MaglevCore
import Testing

@testable import MaglevReplay

// MARK: - Support shared by the capture and generator tests

/// The repository's root, found from this file's place in it.
let repositoryRoot: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)  // Tests/MaglevReplayTests/<file>
    return parts.joined(separator: "/")
}()

/// The shared real captures: `../shared/captures` from the repository root.
let sharedCapturesDirectory = repositoryRoot + "/../shared/captures"

/// The path of the shared capture `name`; tests that read it carry `.sharedCaptures(name)`.
func sharedCapture(_ name: String) -> String { sharedCapturesDirectory + "/" + name }

/// Why tests that need these shared captures cannot run here, or nil when they all are there.
func sharedCapturesMissing(_ names: [String]) -> String? {
    guard access(sharedCapturesDirectory, R_OK) == 0 else {
        return "\(sharedCapturesDirectory) is not there (the shared captures are not checked out)"
    }
    let missing = names.filter { access(sharedCapture($0), R_OK) != 0 }
    return missing.isEmpty ? nil : "not in \(sharedCapturesDirectory): \(missing.joined(separator: ", "))"
}

/// tshark's path, or nil when it is not installed.
let tsharkPath: String? = ["/usr/bin/tshark", "/usr/local/bin/tshark"].first { access($0, X_OK) == 0 }

extension Trait where Self == ConditionTrait {
    /// Runs the test only where the shared captures `names` (or, with none named, the
    /// directory) are there; elsewhere it is reported as skipped, saying which are missing.
    static func sharedCaptures(_ names: String...) -> Self {
        let missing = sharedCapturesMissing(names)
        return .enabled(if: missing == nil, Comment(rawValue: missing ?? ""))
    }

    /// Runs the test only where tshark is installed; elsewhere it is reported as skipped.
    static var tsharkInstalled: Self {
        .enabled(if: tsharkPath != nil, "tshark is not installed (apt-get install -y tshark)")
    }
}

/// A per-process temporary file name; the file is removed by `removeFile`.
func temporaryPath(_ name: String) -> String { "/tmp/maglev-capture-tests-\(getpid())-\(name)" }

func removeFile(_ path: String) { unlink(path) }

func readFile(_ path: String) -> [UInt8]? {
    guard let file = fopen(path, "rb") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, 65536, file) }
        if n == 0 { break }
        bytes += chunk[0..<n]
    }
    return bytes
}

func writeFile(_ path: String, _ bytes: [UInt8]) {
    guard let file = fopen(path, "wb") else { Issue.record("cannot create \(path)"); return }
    _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
    fclose(file)
}

/// A packet copied out of the reader's buffers.
struct ReadPacket {
    var timestampNs: UInt64
    var bytes: [UInt8]
    var linkType: LinkType
    var originalLength: Int
    var fileIndex: Int
    var packetNumber: Int

    func parse() -> ParseResult {
        bytes.withUnsafeBytes { PacketParser.parse($0, linkType: linkType) }
    }
}

/// Everything the reader returns, then the error that stopped it (nil at a clean end).
func readAll(_ reader: CaptureReader) -> (packets: [ReadPacket], error: CaptureError?) {
    var packets: [ReadPacket] = []
    do {
        while let p = try reader.next() {
            packets.append(
                ReadPacket(
                    timestampNs: p.timestampNs, bytes: Array(p.bytes), linkType: p.linkType,
                    originalLength: p.originalLength, fileIndex: p.fileIndex, packetNumber: p.packetNumber))
        }
        return (packets, nil)
    } catch {
        return (packets, error)
    }
}

/// Bytes of a classic pcap file (little-endian, microseconds) with one link type.
func pcapFile(linkType: UInt32, records: [[UInt8]]) -> [UInt8] {
    func le32(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)] }
    var out = le32(0xA1B2_C3D4) + [2, 0, 4, 0] + le32(0) + le32(0) + le32(65535) + le32(linkType)
    for (i, r) in records.enumerated() {
        out += le32(UInt32(1000 + i)) + le32(0) + le32(UInt32(r.count)) + le32(UInt32(r.count)) + r
    }
    return out
}

/// A minimal IPv4/UDP packet (checksums not needed by the reader).
func ipv4UDP(payload: Int = 4) -> [UInt8] {
    let total = 28 + payload
    var p: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 1, 0, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 19, 0, 11]
    p += [0x9C, 0x40, 0, 53, UInt8((8 + payload) >> 8), UInt8((8 + payload) & 0xFF), 0, 0]
    p += [UInt8](repeating: 0xAB, count: payload)
    return p
}

// MARK: - The shared real captures

@Suite("Capture reader: real captures")
struct CaptureReaderSharedTests {
    struct Expectation: Sendable, CustomStringConvertible {
        var name: String
        var packets: Int
        var linkType: LinkType
        /// Packets that come out IPv6 (the rest IPv4).
        var ipv6: Int = 0
        var skipped: [String: Int] = [:]
        /// Packets the parser rejects on purpose (what the capture was made to exercise).
        var malformed: [DropReason] = []
        var description: String { name }
    }

    static let expectations: [Expectation] = [
        Expectation(name: "LINKTYPE_IPV6.pcap", packets: 1, linkType: .rawIP, ipv6: 1),
        Expectation(name: "LINKTYPE_RAW_ipv4.pcap", packets: 1, linkType: .rawIP),
        // A TCP SYN in three 8-byte fragments: the first holds the ports but not the whole TCP
        // header, which the parser rejects (FACTS §5: first fragments too short for L4).
        Expectation(
            name: "frag-eth-vlan-ip-tcp-syn.pcap", packets: 3, linkType: .ethernet,
            malformed: [.firstFragmentTooShort]),
        Expectation(
            name: "frag-ppp-ip-tcp-syn.pcap", packets: 3, linkType: .rawIP, malformed: [.firstFragmentTooShort]),
        Expectation(name: "fragmented-1.pcap", packets: 3, linkType: .ethernet),
        Expectation(name: "http-qinq-0.pcap", packets: 14, linkType: .ethernet),
        Expectation(name: "icmp-destunreach-udp.pcap", packets: 1, linkType: .ethernet),
        Expectation(name: "icmp6-toobig.pcap", packets: 1, linkType: .ethernet, ipv6: 1),
        Expectation(
            name: "ip6-ext-trunc.pcap", packets: 1, linkType: .ethernet, ipv6: 1,
            malformed: [.truncatedIPv6ExtensionHeader]),
        Expectation(name: "ipv6-fragmented-dns.pcap", packets: 8, linkType: .ethernet, ipv6: 8),
        // Four IP packets; an ARP and a RARP packet behind the SLL2 header are skipped.
        Expectation(
            name: "linux_dlt_sll2.pcap", packets: 4, linkType: .rawIP, ipv6: 2, skipped: ["sll2 non-ip": 2]),
        Expectation(name: "pcapng-multi-interface.pcapng", packets: 6, linkType: .ethernet),
        Expectation(name: "pptp.pcap", packets: 23, linkType: .ethernet),
        Expectation(name: "sv_http-range-multiflows_input.pcap", packets: 614, linkType: .rawIP),
        Expectation(name: "tcp-handshake-nano.pcap", packets: 3, linkType: .rawIP),
    ]

    @Test(
        "each capture reads to the end with the expected link-type handling",
        .enabled(if: sharedCapturesMissing(expectations.map(\.name)) == nil,
            Comment(rawValue: sharedCapturesMissing(expectations.map(\.name)) ?? "")),
        arguments: expectations)
    func readsToEnd(_ e: Expectation) throws {
        let path = sharedCapture(e.name)
        let reader = try CaptureReader(paths: [path])
        let (packets, error) = readAll(reader)
        #expect(error == nil, "\(e.name): \(String(describing: error))")
        #expect(packets.count == e.packets, "\(e.name)")
        var ipv6 = 0
        var malformed: [DropReason] = []
        var previous: UInt64 = 0
        for p in packets {
            #expect(p.linkType == e.linkType, "\(e.name) packet \(p.packetNumber)")
            #expect(p.fileIndex == 0)
            #expect(p.timestampNs >= previous, "\(e.name) packet \(p.packetNumber) goes back in time")
            previous = p.timestampNs
            #expect(p.originalLength >= p.bytes.count)
            switch p.parse() {
            case .parsed(let parsed):
                if parsed.isIPv6 { ipv6 += 1 }
            case .notIP:
                Issue.record("\(e.name) packet \(p.packetNumber) parses as not IP")
            case .malformed(let reason):
                malformed.append(reason)
                if p.bytes.count > 14 && p.bytes[12] == 0x86 && p.bytes[13] == 0xDD { ipv6 += 1 }
            }
        }
        #expect(malformed == e.malformed, "\(e.name)")
        #expect(ipv6 == e.ipv6, "\(e.name): IPv6 packets")
        let skipped = Dictionary(uniqueKeysWithValues: reader.skipped.map { ($0.reason, $0.count) })
        #expect(skipped == e.skipped, "\(e.name)")
    }

    @Test("every file in the shared directory opens and reads without a crash", .sharedCaptures())
    func everyFileInDirectory() throws {
        let dir = try #require(opendir(sharedCapturesDirectory), "cannot open \(sharedCapturesDirectory)")
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasPrefix(".") || name == "README.md" { continue }
            names.append(name)
        }
        closedir(dir)
        #expect(names.count >= Self.expectations.count)
        for name in names.sorted() {
            let path = sharedCapturesDirectory + "/" + name
            do {
                let reader = try CaptureReader(paths: [path])
                let (packets, error) = readAll(reader)
                #expect(error == nil, "\(name): \(String(describing: error))")
                #expect(!packets.isEmpty, "\(name)")
            } catch {
                Issue.record("\(name) does not open: \(error)")
            }
        }
    }

    @Test("BSD NULL: every packet comes out raw IPv4", .sharedCaptures("sv_http-range-multiflows_input.pcap"))
    func bsdNull() throws {
        let path = sharedCapture("sv_http-range-multiflows_input.pcap")
        let reader = try CaptureReader(paths: [path])
        #expect(reader.dataLinkTypes == [0])
        let (packets, _) = readAll(reader)
        for p in packets {
            #expect(p.linkType == .rawIP)
            #expect(p.bytes.first.map { $0 >> 4 } == 4)
        }
        // 41 TCP connections to one server port.
        var connections = Set<FlowKey>()
        for p in packets {
            if case .parsed(let parsed) = p.parse(), parsed.tcpFlags & TCPFlags.syn != 0,
                parsed.tcpFlags & TCPFlags.ack == 0
            {
                connections.insert(parsed.key)
            }
        }
        #expect(connections.count == 41)
    }

    @Test("Linux cooked SLL with nanosecond timestamps keeps the nanoseconds", .sharedCaptures("tcp-handshake-nano.pcap"))
    func sllNanoseconds() throws {
        let path = sharedCapture("tcp-handshake-nano.pcap")
        let reader = try CaptureReader(paths: [path])
        #expect(reader.dataLinkTypes == [113])
        let (packets, _) = readAll(reader)
        #expect(packets.count == 3)
        #expect(packets.contains { $0.timestampNs % 1000 != 0 })
        #expect(packets.first?.timestampNs == 1_418_145_369_924_505_488)
        // The handshake: SYN, SYN-ACK, ACK.
        let flags = packets.map { p -> UInt8 in
            if case .parsed(let parsed) = p.parse() { return parsed.tcpFlags }
            return 0xFF
        }
        #expect(flags == [TCPFlags.syn, TCPFlags.syn | TCPFlags.ack, TCPFlags.ack])
    }

    @Test("big-endian pcap: timestamps and lengths read right", .sharedCaptures("pptp.pcap"))
    func bigEndian() throws {
        let path = sharedCapture("pptp.pcap")
        let file = try #require(readFile(path))
        #expect(Array(file.prefix(4)) == [0xA1, 0xB2, 0xC3, 0xD4])  // the big-endian magic
        let reader = try CaptureReader(paths: [path])
        let (packets, _) = readAll(reader)
        #expect(packets.first?.timestampNs == 954_147_395_148_077_000)
        for p in packets {
            #expect(p.bytes.count <= 1514)
            #expect(p.bytes[12] == 0x08 && p.bytes[13] == 0x00)  // every frame is IPv4
        }
    }

    @Test(
        "pcapng with two interfaces: one link type, per-interface timestamp resolution",
        .sharedCaptures("pcapng-multi-interface.pcapng"))
    func pcapngMultiInterface() throws {
        let path = sharedCapture("pcapng-multi-interface.pcapng")
        let reader = try CaptureReader(paths: [path])
        #expect(reader.dataLinkTypes == [1])
        let (packets, error) = readAll(reader)
        #expect(error == nil)
        #expect(packets.count == 6)
        // Interface 0 records nanoseconds, interface 1 microseconds, scaled to nanoseconds.
        #expect(packets.first?.timestampNs == 1_767_663_089_500_330_493)
        #expect(packets.dropFirst(2).allSatisfy { $0.timestampNs % 1000 == 0 })
    }

    @Test("raw IPv6 link type (229)", .sharedCaptures("LINKTYPE_IPV6.pcap"))
    func rawIPv6() throws {
        let path = sharedCapture("LINKTYPE_IPV6.pcap")
        let reader = try CaptureReader(paths: [path])
        let (packets, _) = readAll(reader)
        #expect(packets.count == 1)
        #expect(packets.first?.linkType == .rawIP)
        #expect(packets.first?.bytes.first.map { $0 >> 4 } == 6)
    }

    @Test("PPP with a compressed protocol field: the PPP header is stepped over", .sharedCaptures("frag-ppp-ip-tcp-syn.pcap"))
    func ppp() throws {
        let path = sharedCapture("frag-ppp-ip-tcp-syn.pcap")
        let reader = try CaptureReader(paths: [path])
        #expect(reader.dataLinkTypes == [9])
        let (packets, _) = readAll(reader)
        // One protocol byte (0x21) before each IPv4 header: 29-byte records, 28-byte packets.
        #expect(packets.map(\.bytes.count) == [28, 28, 28])
        #expect(packets.allSatisfy { $0.bytes[0] == 0x45 && $0.originalLength == 28 })
        var kinds: [FragmentKind] = []
        for p in packets {
            if case .parsed(let parsed) = p.parse() { kinds.append(parsed.fragment) }
        }
        #expect(kinds == [.nonFirst, .nonFirst])
    }
}

// MARK: - Errors, merging, link types made by hand

@Suite("Capture reader: errors and merging")
struct CaptureReaderErrorTests {
    @Test(
        "a truncated capture returns the packets before the cut, then names the file and packet",
        .sharedCaptures("sv_http-range-multiflows_input.pcap"))
    func truncated() throws {
        let path = sharedCapture("sv_http-range-multiflows_input.pcap")
        let whole = try #require(readFile(path))
        let full = readAll(try CaptureReader(paths: [path])).packets
        for cut in [24 + 16 + 10, 50_000, whole.count - 7] {
            let copy = temporaryPath("truncated-\(cut).pcap")
            defer { removeFile(copy) }
            writeFile(copy, Array(whole.prefix(cut)))
            let reader = try CaptureReader(paths: [copy])
            let (packets, error) = readAll(reader)
            let e = try #require(error, "cut at \(cut)")
            #expect(e.file == copy)
            #expect(e.packetNumber == packets.count + 1)
            #expect(e.description.contains(copy) && e.description.contains("packet \(packets.count + 1)"))
            #expect(packets.count < full.count)
            // What came before the cut is exactly the start of the whole capture.
            for (a, b) in zip(packets, full) {
                #expect(a.bytes == b.bytes && a.timestampNs == b.timestampNs)
            }
            // The error is sticky: the read stays stopped.
            #expect(throws: CaptureError.self) { _ = try reader.next() }
        }
    }

    @Test("a cut inside a record header after complete records is an error too, or a clean end at a record boundary")
    func cutAtBoundary() throws {
        let file = pcapFile(linkType: 101, records: [ipv4UDP(), ipv4UDP(), ipv4UDP()])
        let path = temporaryPath("boundary.pcap")
        defer { removeFile(path) }
        // At a record boundary: a clean end with two packets.
        writeFile(path, Array(file.prefix(24 + 2 * (16 + 32))))
        var (packets, error) = readAll(try CaptureReader(paths: [path]))
        #expect(packets.count == 2 && error == nil)
        // Inside the third record's header: an error naming packet 3.
        writeFile(path, Array(file.prefix(24 + 2 * (16 + 32) + 5)))
        (packets, error) = readAll(try CaptureReader(paths: [path]))
        #expect(packets.count == 2)
        #expect(error?.packetNumber == 3)
    }

    @Test("a file that is not a capture fails to open with a clear error")
    func garbage() throws {
        let path = temporaryPath("garbage.pcap")
        defer { removeFile(path) }
        writeFile(path, Array("this is not a capture file, whatever its name says\n".utf8))
        #expect {
            _ = try CaptureReader(paths: [path])
        } throws: { error in
            guard let e = error as? CaptureError else { return false }
            return e.file == path && e.packetNumber == nil && e.description.hasPrefix(path + ": cannot open")
        }
        let missing = temporaryPath("missing.pcap")
        #expect {
            _ = try CaptureReader(paths: [missing])
        } throws: { error in
            guard let e = error as? CaptureError else { return false }
            // libpcap's "path: No such file..." without the path said twice.
            return e.file == missing && e.message.contains("No such file") && !e.message.contains(missing)
        }
    }

    @Test("two files merge in time order; ties keep file order")
    func merge() throws {
        let a = temporaryPath("merge-a.pcap")
        let b = temporaryPath("merge-b.pcap")
        defer {
            removeFile(a)
            removeFile(b)
        }
        let packet = ipv4UDP()
        for (path, times) in [(a, [10, 30, 30, 50]), (b, [5, 30, 40, 60, 70])] {
            let writer = try PcapWriter(path: path)
            for t in times { packet.withUnsafeBytes { writer.write($0, timestampNs: UInt64(t)) } }
            try writer.finish()
        }
        let (packets, error) = readAll(try CaptureReader(paths: [a, b]))
        #expect(error == nil)
        let order = packets.map { "\($0.timestampNs)/\($0.fileIndex)/\($0.packetNumber)" }
        #expect(order == ["5/1/1", "10/0/1", "30/0/2", "30/0/3", "30/1/2", "40/1/3", "50/0/4", "60/1/4", "70/1/5"])
    }

    @Test("a real capture merged with itself: every packet twice, the first file's copy first", .sharedCaptures("http-qinq-0.pcap"))
    func mergeWithItself() throws {
        let path = sharedCapture("http-qinq-0.pcap")
        let (packets, error) = readAll(try CaptureReader(paths: [path, path]))
        #expect(error == nil)
        #expect(packets.count == 28)
        for pair in stride(from: 0, to: packets.count, by: 2) {
            #expect(packets[pair].fileIndex == 0 && packets[pair + 1].fileIndex == 1)
            #expect(packets[pair].bytes == packets[pair + 1].bytes)
        }
    }

    @Test("a truncated file in a merge stops the whole read after the packets before it")
    func mergeWithTruncated() throws {
        let good = temporaryPath("merge-good.pcap")
        let bad = temporaryPath("merge-bad.pcap")
        defer {
            removeFile(good)
            removeFile(bad)
        }
        writeFile(good, pcapFile(linkType: 101, records: Array(repeating: ipv4UDP(), count: 5)))
        let badFile = pcapFile(linkType: 101, records: Array(repeating: ipv4UDP(), count: 5))
        writeFile(bad, Array(badFile.prefix(badFile.count - 48 - 20)))
        let (packets, error) = readAll(try CaptureReader(paths: [good, bad]))
        #expect(error?.file == bad)
        #expect(error?.packetNumber == 4)
        // Times 1000...1004 s in both: good 1, bad 1, good 2, bad 2, good 3, bad 3, then bad 4 fails.
        #expect(packets.count == 6)
    }

    @Test("an unsupported link type is skipped whole and counted under its name")
    func unsupportedLinkType() throws {
        let path = temporaryPath("wifi.pcap")
        defer { removeFile(path) }
        writeFile(path, pcapFile(linkType: 105, records: [[1, 2, 3], [4, 5, 6, 7]]))
        let reader = try CaptureReader(paths: [path])
        #expect(reader.linkTypeSupported == [false])
        let (packets, error) = readAll(reader)
        #expect(packets.isEmpty && error == nil)
        #expect(reader.skipped.map { "\($0.reason)=\($0.count)" } == ["ieee802_11=2"])
    }

    @Test("pcapng whose interfaces have different link types: packets or a clear error, never a crash")
    func pcapngMixedLinkTypes() throws {
        func le32(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)] }
        func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }
        func block(_ type: UInt32, _ body: [UInt8]) -> [UInt8] {
            let length = UInt32(12 + body.count)
            return le32(type) + le32(length) + body + le32(length)
        }
        func packet(interface: UInt32, _ data: [UInt8]) -> [UInt8] {
            let padded = data + [UInt8](repeating: 0, count: (4 - data.count % 4) % 4)
            return block(6, le32(interface) + le32(0) + le32(1000) + le32(UInt32(data.count)) + le32(UInt32(data.count)) + padded)
        }
        let ethernet = [UInt8](repeating: 0, count: 12) + [0x08, 0x00] + ipv4UDP()
        var file = block(0x0A0D_0D0A, le32(0x1A2B_3C4D) + le16(1) + le16(0) + [UInt8](repeating: 0xFF, count: 8))
        file += block(1, le16(1) + le16(0) + le32(65535))  // interface 0: Ethernet
        file += packet(interface: 0, ethernet)
        file += block(1, le16(101) + le16(0) + le32(65535))  // interface 1: raw IP
        file += packet(interface: 1, ipv4UDP())
        file += packet(interface: 0, ethernet)
        let path = temporaryPath("mixed-links.pcapng")
        defer { removeFile(path) }
        writeFile(path, file)
        let reader = try CaptureReader(paths: [path])
        let (packets, error) = readAll(reader)
        // libpcap 1.10 supports one link type per file: it stops at the second interface's
        // description, after the first packet.
        #expect(packets.count >= 1)
        #expect(packets.allSatisfy { $0.linkType == .ethernet })
        if let error {
            #expect(error.file == path && error.packetNumber == packets.count + 1)
            print("pcapng with two link types: \(error)")
        } else {
            #expect(packets.count == 3)
        }
    }

    @Test("no files: nothing to read")
    func noFiles() throws {
        let reader = try CaptureReader(paths: [])
        #expect(try reader.next() == nil)
    }
}

@Suite("Capture reader: link-type normalisation")
struct CaptureLinkLayerTests {
    func decode(_ dlt: Int32, _ bytes: [UInt8]) -> LinkDecodeResult {
        bytes.withUnsafeBytes { LinkDecoder(dataLinkType: dlt).decode($0) }
    }

    @Test("link types map to decoders")
    func mapping() {
        #expect(LinkDecoder(dataLinkType: 1) == .ethernet)
        for dlt: Int32 in [12, 14, 101, 228, 229] { #expect(LinkDecoder(dataLinkType: dlt) == .rawIP) }
        #expect(LinkDecoder(dataLinkType: 113) == .linuxSLL)
        #expect(LinkDecoder(dataLinkType: 276) == .linuxSLL2)
        #expect(LinkDecoder(dataLinkType: 0) == .null)
        #expect(LinkDecoder(dataLinkType: 108) == .loop)
        #expect(LinkDecoder(dataLinkType: 9) == .ppp)
        #expect(LinkDecoder(dataLinkType: 50) == .ppp)
        #expect(LinkDecoder(dataLinkType: 105) == .unsupported)
    }

    @Test("NULL: the family in either byte order; LOOP: network order only")
    func nullAndLoop() {
        let ip = ipv4UDP()
        for family: UInt8 in [2, 10, 24, 28, 30] {
            #expect(decode(0, [family, 0, 0, 0] + ip) == .frame(offset: 4, linkType: .rawIP))
            #expect(decode(0, [0, 0, 0, family] + ip) == .frame(offset: 4, linkType: .rawIP))
            #expect(decode(108, [0, 0, 0, family] + ip) == .frame(offset: 4, linkType: .rawIP))
        }
        #expect(decode(108, [2, 0, 0, 0] + ip) == .skip(.loopNonIP))
        #expect(decode(0, [7, 0, 0, 0] + ip) == .skip(.nullNonIP))
        #expect(decode(0, [2, 0, 0]) == .skip(.truncatedLinkHeader))
    }

    @Test("Linux cooked: IP after the header, tags get an Ethernet header back, the rest skipped")
    func cooked() {
        var sll = [UInt8](repeating: 0, count: 16)
        sll[14] = 0x08
        #expect(decode(113, sll + ipv4UDP()) == .frame(offset: 16, linkType: .rawIP))
        sll[14] = 0x86
        sll[15] = 0xDD
        #expect(decode(113, sll) == .frame(offset: 16, linkType: .rawIP))
        sll[14] = 0x81
        sll[15] = 0x00
        #expect(decode(113, sll) == .ethernet(after: 16, etherType: 0x8100))
        sll[14] = 0x08
        sll[15] = 0x06
        #expect(decode(113, sll) == .skip(.sllNonIP))
        #expect(decode(113, Array(sll.prefix(15))) == .skip(.truncatedLinkHeader))
        var sll2 = [UInt8](repeating: 0, count: 20)
        sll2[0] = 0x86
        sll2[1] = 0xDD
        #expect(decode(276, sll2) == .frame(offset: 20, linkType: .rawIP))
        sll2[1] = 0x00
        #expect(decode(276, sll2) == .skip(.sll2NonIP))
    }

    @Test("a cooked capture of a VLAN-tagged packet comes out as an Ethernet frame that parses")
    func cookedVLANThroughTheReader() throws {
        // SLL header with protocol 0x8100, then TCI (VLAN 42), inner ethertype 0x0800, packet.
        var record = [UInt8](repeating: 0, count: 14) + [0x81, 0x00]
        record += [0x00, 42, 0x08, 0x00] + ipv4UDP()
        var arp = [UInt8](repeating: 0, count: 14) + [0x08, 0x06]
        arp += [UInt8](repeating: 0, count: 28)
        let path = temporaryPath("sll-vlan.pcap")
        defer { removeFile(path) }
        writeFile(path, pcapFile(linkType: 113, records: [record, arp, record]))
        let reader = try CaptureReader(paths: [path])
        let (packets, error) = readAll(reader)
        #expect(error == nil)
        #expect(packets.count == 2)
        #expect(packets.map(\.packetNumber) == [1, 3])
        for p in packets {
            #expect(p.linkType == .ethernet)
            #expect(p.bytes.count == 14 + 4 + 32)
            #expect(p.originalLength == p.bytes.count)
            guard case .parsed(let parsed) = p.parse() else {
                Issue.record("not parsed")
                continue
            }
            #expect(parsed.l3Offset == 18)
            #expect(parsed.key.destinationPort == 53)
        }
        #expect(reader.skipped.map { "\($0.reason)=\($0.count)" } == ["sll non-ip=1"])
    }

    @Test("PPP: with and without address/control, compressed protocol field, non-IP skipped")
    func ppp() {
        let ip = ipv4UDP()
        #expect(decode(9, [0xFF, 0x03, 0x00, 0x21] + ip) == .frame(offset: 4, linkType: .rawIP))
        #expect(decode(9, [0x00, 0x57] + ip) == .frame(offset: 2, linkType: .rawIP))
        #expect(decode(50, [0xFF, 0x03, 0x21] + ip) == .frame(offset: 3, linkType: .rawIP))
        #expect(decode(9, [0xFF, 0x03, 0xC0, 0x21, 1, 2]) == .skip(.pppNonIP))
        #expect(decode(9, [0xFF, 0x03]) == .skip(.truncatedLinkHeader))
    }
}
