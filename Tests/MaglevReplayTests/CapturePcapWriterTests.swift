import Glibc
import MaglevCore
import Testing

@testable import MaglevReplay

/// Runs a shell command and returns its standard output, or nil when it could not run or
/// failed.
func shellOutput(_ command: String) -> String? {
    guard let pipe = popen(command, "r") else { return nil }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, 4096, pipe) }
        if n == 0 { break }
        out += chunk[0..<n]
    }
    let status = pclose(pipe)
    return status == 0 ? String(decoding: out, as: UTF8.self) : nil
}

/// tshark's path; tests that run it carry `.tsharkInstalled`.
func tsharkExecutable() throws -> String { try #require(tsharkPath, "tshark is not installed") }

@Suite("Pcap writer")
struct CapturePcapWriterTests {
    /// Raw IPv4/UDP packets of several lengths, with nanosecond timestamps.
    static let lengths = [28, 29, 100, 1500, 9000, 60]
    static let times: [UInt64] = [
        1_700_000_000_123_456_789, 1_700_000_000_123_456_790, 1_700_000_001_000_000_000,
        1_700_000_001_999_999_999, 1_700_000_002_000_000_001, 1_700_000_002_000_000_001,
    ]

    func writeSample(_ path: String) throws -> [[UInt8]] {
        let writer = try PcapWriter(path: path)
        var written: [[UInt8]] = []
        for (length, time) in zip(Self.lengths, Self.times) {
            let packet = ipv4UDP(payload: length - 28)
            packet.withUnsafeBytes { writer.write($0, timestampNs: time) }
            written.append(packet)
        }
        try writer.finish()
        writer.close()  // idempotent
        return written
    }

    @Test("packets written read back the same, with nanosecond timestamps, as raw IP")
    func roundTrip() throws {
        let path = temporaryPath("writer.pcap")
        defer { removeFile(path) }
        let written = try writeSample(path)
        let file = try #require(readFile(path))
        // LINKTYPE_RAW (101) in the header of a nanosecond pcap.
        #expect(Array(file.prefix(4)) == [0x4D, 0x3C, 0xB2, 0xA1])
        #expect(file[20] == 101)
        let reader = try CaptureReader(paths: [path])
        #expect(reader.dataLinkTypes == [12])
        let (packets, error) = readAll(reader)
        #expect(error == nil)
        #expect(packets.map(\.bytes) == written)
        #expect(packets.map(\.timestampNs) == Self.times)
        #expect(packets.allSatisfy { $0.linkType == .rawIP && $0.originalLength == $0.bytes.count })
        for p in packets {
            guard case .parsed(let parsed) = p.parse() else {
                Issue.record("packet \(p.packetNumber) does not parse")
                continue
            }
            #expect(parsed.key.destinationPort == 53)
        }
    }

    @Test("tshark reads the file and agrees on every frame's length", .tsharkInstalled)
    func tsharkAgrees() throws {
        let tshark = try tsharkExecutable()
        let path = temporaryPath("writer-tshark.pcap")
        defer { removeFile(path) }
        _ = try writeSample(path)
        let output = try #require(shellOutput("\(tshark) -r \(path) -T fields -e frame.len -e frame.time_epoch 2>/dev/null"))
        let rows = output.split(separator: "\n").map { $0.split(separator: "\t") }
        #expect(rows.map { Int($0[0]) } == Self.lengths.map { Optional($0) })
        // Nanoseconds survive: 1700000000.123456789.
        #expect(rows.first.map { String($0[1]) }?.hasSuffix(".123456789") == true)
    }

    @Test("Ethernet dumps: a generated trace is read by tshark, frame for frame", .tsharkInstalled)
    func tsharkReadsGeneratedTrace() throws {
        let tshark = try tsharkExecutable()
        let path = temporaryPath("generated-tshark.pcap")
        defer { removeFile(path) }
        var options = mixedOptions()
        options.packets = 2000
        options.flows = 100
        _ = try TraceGenerator.generate(options, to: path)
        let (packets, _) = readAll(try CaptureReader(paths: [path]))
        let command =
            "\(tshark) -r \(path) -T fields -e frame.len 2>/dev/null"
        let output = try #require(shellOutput(command))
        let rows = output.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(rows.count == packets.count)
        #expect(rows.map { Int($0.split(separator: "\t").first ?? "") } == packets.map { Optional($0.bytes.count) })
        // No bad checksum in any frame's own headers (a TCP header quoted by an ICMP error is
        // cut short, so its checksum cannot be checked: left out).
        let bad =
            "ip.checksum.status == 0 || udp.checksum.status == 0 || icmp.checksum.status == 0 "
            + "|| icmpv6.checksum.status == 0 || (tcp.checksum.status == 0 && !icmp && !icmpv6)"
        let badFrames = try #require(
            shellOutput(
                "\(tshark) -r \(path) -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE "
                    + "-o udp.check_checksum:TRUE -Y '\(bad)' -T fields -e frame.number 2>/dev/null"))
        #expect(badFrames.isEmpty, "frames with bad checksums: \(badFrames)")
        let goodTCP = try #require(
            shellOutput(
                "\(tshark) -r \(path) -o tcp.check_checksum:TRUE -Y 'tcp.checksum.status == 1 && !icmp && !icmpv6' "
                    + "-T fields -e frame.number 2>/dev/null"))
        #expect(goodTCP.split(separator: "\n").count > 500)
    }

    @Test("a file that cannot be created is named in the error")
    func cannotCreate() {
        let path = "/nonexistent-directory/out.pcap"
        #expect {
            _ = try PcapWriter(path: path)
        } throws: { error in
            guard let e = error as? CaptureError else { return false }
            return e.file == path && e.description.hasPrefix(path + ": cannot create") && e.packetNumber == nil
        }
    }

    @Test("an original length longer than the bytes is kept")
    func snapLength() throws {
        let path = temporaryPath("writer-snap.pcap")
        defer { removeFile(path) }
        let writer = try PcapWriter(path: path)
        let packet = ipv4UDP(payload: 40)
        packet.withUnsafeBytes { writer.write(UnsafeRawBufferPointer(rebasing: $0[0..<40]), timestampNs: 5, originalLength: 68) }
        writer.close()
        let (packets, _) = readAll(try CaptureReader(paths: [path]))
        #expect(packets.first?.bytes.count == 40)
        #expect(packets.first?.originalLength == 68)
    }
}
