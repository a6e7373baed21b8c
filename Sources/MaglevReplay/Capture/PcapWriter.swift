public import MaglevCore
internal import CLibPcap
internal import Glibc

/// Writes IP packets (no link layer: LINKTYPE_RAW) to a pcap file with nanosecond timestamps,
/// through libpcap, so tshark and Wireshark read it. `init(path:linkType: .ethernet)` writes
/// Ethernet frames instead (LINKTYPE_ETHERNET).
public final class PcapWriter {
    /// The file written ("-" is standard output, as libpcap treats it).
    public let path: String
    public let linkType: LinkType
    /// Frames longer than this are cut to it in the file; their original length is kept.
    public static let snapshotLength = 262_144
    private var dead: OpaquePointer?
    private var dumper: OpaquePointer?
    /// Packets and captured bytes written so far.
    public private(set) var packetsWritten = 0
    public private(set) var bytesWritten = 0
    /// errno of the first failed write (0: none yet); later packets are not written.
    private var writeErrno: Int32 = 0

    /// Creates (or truncates) `path`; throws naming it, with libpcap's reason, when it cannot.
    public init(path: String, linkType: LinkType = .rawIP) throws(CaptureError) {
        self.path = path
        self.linkType = linkType
        let dlt: Int32 = linkType == .ethernet ? DLT_EN10MB : DLT_RAW
        guard
            let dead = pcap_open_dead_with_tstamp_precision(
                dlt, Int32(Self.snapshotLength), UInt32(PCAP_TSTAMP_PRECISION_NANO))
        else {
            throw CaptureError(file: path, packetNumber: nil, message: "libpcap could not make a handle to write with")
        }
        guard let dumper = pcap_dump_open(dead, path) else {
            var message = String(cString: pcap_geterr(dead))
            if message.hasPrefix(path + ": ") { message.removeFirst(path.count + 2) }
            pcap_close(dead)
            throw CaptureError(file: path, packetNumber: nil, message: "cannot create capture file: \(message)")
        }
        self.dead = dead
        self.dumper = dumper
    }

    deinit { close() }

    /// Appends one packet, whole (up to `snapshotLength`). Ignored after `close()`.
    @inline(__always)
    public func write(_ packet: UnsafeRawBufferPointer, timestampNs: UInt64) {
        write(packet, timestampNs: timestampNs, originalLength: packet.count)
    }

    /// Appends one packet that was `originalLength` bytes on the wire (at least
    /// `packet.count`), such as a snaplen-truncated one.
    public func write(_ packet: UnsafeRawBufferPointer, timestampNs: UInt64, originalLength: Int) {
        guard let dumper, writeErrno == 0 else { return }
        let captured = min(packet.count, Self.snapshotLength)
        var header = pcap_pkthdr()
        header.ts.tv_sec = Int(timestampNs / 1_000_000_000)
        // A nanosecond-precision dump: tv_usec carries nanoseconds.
        header.ts.tv_usec = Int(timestampNs % 1_000_000_000)
        header.caplen = UInt32(captured)
        header.len = UInt32(clamping: max(originalLength, packet.count))
        if let base = packet.baseAddress {
            pcap_dump(UnsafeMutablePointer<UInt8>(dumper), &header, base.assumingMemoryBound(to: UInt8.self))
        } else {
            var none: UInt8 = 0
            pcap_dump(UnsafeMutablePointer<UInt8>(dumper), &header, &none)
        }
        // stdio keeps the error flag; errno still says why right after the failed write.
        if ferror(pcap_dump_file(dumper)) != 0 {
            writeErrno = errno == 0 ? EIO : errno
            return
        }
        packetsWritten += 1
        bytesWritten += captured
    }

    /// Flushes and closes the file, throwing if anything could not be written (disk full, ...).
    /// Closed afterwards either way.
    public func finish() throws(CaptureError) {
        guard let dumper else { return }
        var code = writeErrno
        var doing = "write"
        let file = pcap_dump_file(dumper)
        if code == 0 && (fflush(file) != 0 || ferror(file) != 0) { code = errno == 0 ? EIO : errno }
        // libpcap's dumper is the stdio stream itself (pcap_dump_close only fcloses it): close
        // it here, so that the close's own failure is seen too.
        if fclose(file) != 0 && code == 0 {
            code = errno == 0 ? EIO : errno
            doing = "close"
        }
        self.dumper = nil
        close()
        if code != 0 {
            throw CaptureError(
                file: path, packetNumber: nil,
                message: "could not \(doing) the capture after \(packetsWritten) packets: "
                    + "\(String(cString: strerror(code))) (errno \(code))")
        }
    }

    /// Flushes and closes the file; idempotent. Use `finish()` to learn of write errors.
    public func close() {
        if let dumper { pcap_dump_close(dumper) }
        if let dead { pcap_close(dead) }
        dumper = nil
        dead = nil
    }
}
