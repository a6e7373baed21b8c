public import MaglevCore

// PLACEHOLDER: the capture engineer replaces this file with the real libpcap reader (same API).

/// A capture could not be read: which file, which packet, what happened.
public struct CaptureError: Error, Sendable, CustomStringConvertible {
    public var file: String
    /// 1-based packet number in that file where reading stopped, or nil when opening failed.
    public var packetNumber: Int?
    public var message: String
    public var description: String {
        if let n = packetNumber { return "\(file): packet \(n): \(message)" }
        return "\(file): \(message)"
    }
    public init(file: String, packetNumber: Int?, message: String) {
        self.file = file
        self.packetNumber = packetNumber
        self.message = message
    }
}

/// One packet of a capture, ready for the data plane. `bytes` stays valid until the next call
/// to `next()`.
public struct CapturedPacket {
    public var timestampNs: UInt64
    /// The frame as the parser sees it: an Ethernet frame, or an IP packet (`.rawIP`), with any
    /// pseudo link-layer header (Linux cooked, NULL/LOOP, PPP) already stepped over.
    public var bytes: UnsafeRawBufferPointer
    public var linkType: LinkType
    /// Length on the wire (may exceed the captured bytes).
    public var originalLength: Int
    /// Which input (index into the paths given) and its 1-based packet number there.
    public var fileIndex: Int
    public var packetNumber: Int
    public init(
        timestampNs: UInt64, bytes: UnsafeRawBufferPointer, linkType: LinkType, originalLength: Int, fileIndex: Int,
        packetNumber: Int
    ) {
        self.timestampNs = timestampNs
        self.bytes = bytes
        self.linkType = linkType
        self.originalLength = originalLength
        self.fileIndex = fileIndex
        self.packetNumber = packetNumber
    }
}

/// Reads several captures (pcap or pcapng, any byte order, micro- or nanosecond timestamps)
/// merged in timestamp order.
public final class CaptureReader {
    /// Opens every file; throws for the first that cannot be opened.
    public init(paths: [String]) throws(CaptureError) {
        throw CaptureError(file: paths.first ?? "", packetNumber: nil, message: "not implemented")
    }

    /// The next packet in time order, or nil at the end. A corrupt or truncated file stops
    /// with an error naming the file and packet; packets returned before stay valid results.
    public func next() throws(CaptureError) -> CapturedPacket? { nil }

    /// Packets not returned because their link type is not supported, by link-type name.
    public var skipped: [(reason: String, count: Int)] { [] }
}

/// Writes IP packets (no link layer: LINKTYPE_RAW) to a pcap file with nanosecond timestamps,
/// through libpcap, so tshark and Wireshark read it.
public final class PcapWriter {
    public init(path: String) throws(CaptureError) {
        throw CaptureError(file: path, packetNumber: nil, message: "not implemented")
    }
    public func write(_ packet: UnsafeRawBufferPointer, timestampNs: UInt64) {}
    public func close() {}
}
