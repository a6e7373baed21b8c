public import MaglevCore
internal import CLibPcap
internal import Glibc

/// Writes IP packets (no link layer: LINKTYPE_RAW) to a pcap file with nanosecond timestamps,
/// so tshark and Wireshark read it. `init(path:linkType: .ethernet)` writes Ethernet frames
/// instead (LINKTYPE_ETHERNET).
///
/// libpcap creates the file and writes its header (so its errors and its header are the
/// library's own); the records, byte for byte what `pcap_dump` writes (a 16-byte header in host
/// order: seconds and nanoseconds as 32 bits, captured length, original length; then the bytes),
/// are gathered in a 1 MiB buffer and written with write(2) when it fills: no stdio call and no
/// stream lock per packet, and a few hundred system calls per GiB instead of stdio's one per 4 KiB.
public final class PcapWriter {
    /// The file written ("-" is standard output, as libpcap treats it).
    public let path: String
    public let linkType: LinkType
    /// Frames longer than this are cut to it in the file; their original length is kept.
    public static let snapshotLength = 262_144
    /// Bytes of records gathered before a write(2); more than the largest record.
    static let bufferCapacity = 1 << 20
    private var dead: OpaquePointer?
    private var dumper: OpaquePointer?
    /// The dump's file descriptor (the stream's, which holds nothing once its header is flushed).
    private var fd: Int32 = -1
    private let buffer: UnsafeMutableRawPointer
    private var buffered = 0
    private var packetsBuffered = 0
    /// Packets and captured bytes written so far (handed to the file, or gathered for it).
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
        self.buffer = .allocate(byteCount: Self.bufferCapacity, alignment: 16)
        // The file header goes out now, through the stream; records follow through the descriptor.
        let file = pcap_dump_file(dumper)
        if fflush(file) != 0 || ferror(file) != 0 { writeErrno = errno == 0 ? EIO : errno }
        fd = fileno(file)
    }

    deinit {
        close()
        buffer.deallocate()
    }

    /// Appends one packet, whole (up to `snapshotLength`). Ignored after `close()`.
    @inline(__always)
    public func write(_ packet: UnsafeRawBufferPointer, timestampNs: UInt64) {
        write(packet, timestampNs: timestampNs, originalLength: packet.count)
    }

    /// Appends one packet that was `originalLength` bytes on the wire (at least
    /// `packet.count`), such as a snaplen-truncated one.
    public func write(_ packet: UnsafeRawBufferPointer, timestampNs: UInt64, originalLength: Int) {
        guard dumper != nil, writeErrno == 0 else { return }
        let captured = min(packet.count, Self.snapshotLength)
        if Self.bufferCapacity - buffered < 16 + captured {
            flush()
            if writeErrno != 0 { return }
        }
        // pcap_dump's record header: 32-bit seconds (truncated, as libpcap does), nanoseconds
        // in the microseconds field of a nanosecond dump, captured and original length.
        let header = buffer + buffered
        header.storeBytes(of: UInt32(truncatingIfNeeded: timestampNs / 1_000_000_000), toByteOffset: 0, as: UInt32.self)
        header.storeBytes(of: UInt32(truncatingIfNeeded: timestampNs % 1_000_000_000), toByteOffset: 4, as: UInt32.self)
        header.storeBytes(of: UInt32(captured), toByteOffset: 8, as: UInt32.self)
        header.storeBytes(of: UInt32(clamping: max(originalLength, packet.count)), toByteOffset: 12, as: UInt32.self)
        if captured > 0, let base = packet.baseAddress { (header + 16).copyMemory(from: base, byteCount: captured) }
        buffered += 16 + captured
        packetsBuffered += 1
        packetsWritten += 1
        bytesWritten += captured
    }

    /// Writes the gathered records out; on failure keeps errno and stops writing (the packets
    /// that were in the buffer no longer count as written).
    private func flush() {
        var done = 0
        while done < buffered {
            let n = Glibc.write(fd, buffer + done, buffered - done)
            if n < 0 {
                if errno == EINTR { continue }
                writeErrno = errno == 0 ? EIO : errno
                break
            }
            if n == 0 {
                writeErrno = EIO
                break
            }
            done += n
        }
        if writeErrno != 0 { packetsWritten -= packetsBuffered }
        buffered = 0
        packetsBuffered = 0
    }

    /// Flushes and closes the file, throwing if anything could not be written (disk full, ...).
    /// Closed afterwards either way.
    public func finish() throws(CaptureError) {
        guard let dumper else { return }
        if writeErrno == 0 { flush() }
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
        if let dumper {
            if writeErrno == 0 { flush() }
            pcap_dump_close(dumper)
        }
        if let dead { pcap_close(dead) }
        dumper = nil
        dead = nil
        buffered = 0
    }
}
