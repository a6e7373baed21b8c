public import MaglevCore
internal import CLibPcap

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
/// to `next()` (a caller must not count on longer, whatever the reader happens to point into).
public struct CapturedPacket {
    public var timestampNs: UInt64
    /// The frame as the parser sees it: an Ethernet frame, or an IP packet (`.rawIP`), with any
    /// pseudo link-layer header (Linux cooked, NULL/LOOP, PPP) already stepped over.
    public var bytes: UnsafeRawBufferPointer
    public var linkType: LinkType
    /// Length on the wire (may exceed the captured bytes), of what `bytes` holds: a pseudo
    /// header stepped over is not counted, so `originalLength - bytes.count` is what the
    /// snapshot length cut off.
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
///
/// Files are opened with libpcap (`pcap_open_offline_with_tstamp_precision`, nanosecond
/// precision), which recognises the format by its magic number, whatever the file is called.
/// Link types are normalised as `LinkLayer.swift` describes; packets of unsupported link types,
/// and non-IP packets behind pseudo headers, are counted in `skipped`, never silently lost.
///
/// **Merge order.** Each input keeps its own order (a file whose timestamps go backwards is not
/// reordered); among inputs, the packet with the smallest timestamp comes first, and a tie goes
/// to the input given first.
///
/// **Errors.** A corrupt or truncated file makes `next()` throw a `CaptureError` with the file
/// and the 1-based number of the packet that could not be read. The error ends the whole read,
/// in every file of the merge: the merged order past that point cannot be known, so `next()`
/// throws the same error again on every later call. Packets returned before remain valid
/// results, so the caller can report what it has along with the error.
///
/// **Memory.** `bytes` points into the file's mapping (classic pcap files, see
/// `CaptureInput`), into libpcap's buffer, or, for Linux cooked captures of tagged traffic,
/// into one buffer the reader owns and reuses. Nothing is allocated per packet.
public final class CaptureReader {
    /// The files, in the order given.
    public let paths: [String]
    private var inputs: [CaptureInput]
    /// Packets skipped for reasons that do not depend on the link type's name.
    private var skipCounts = [Int](repeating: 0, count: CaptureSkipReason.allCases.count)
    /// Where Ethernet headers are put back in front of cooked-capture data.
    private var scratch: UnsafeMutableRawBufferPointer
    /// The input whose head was returned last: it is read again on the next call.
    private var returned: Int?
    private var failure: CaptureError?

    /// Opens every file; throws for the first that cannot be opened (closing those opened).
    public init(paths: [String]) throws(CaptureError) {
        self.paths = paths
        var opened: [CaptureInput] = []
        opened.reserveCapacity(paths.count)
        for (index, path) in paths.enumerated() {
            do {
                opened.append(try CaptureInput(path: path, index: index))
            } catch {
                for input in opened {
                    pcap_close(input.handle)
                    if let m = input.mapped { maglev_pcap_unmap(m, input.mappedSize) }
                }
                throw error
            }
        }
        inputs = opened
        scratch = .allocate(byteCount: 14 + 262_144, alignment: 16)
    }

    deinit {
        for input in inputs {
            pcap_close(input.handle)
            if let m = input.mapped { maglev_pcap_unmap(m, input.mappedSize) }
        }
        scratch.deallocate()
    }

    /// The libpcap link type (DLT) of each input, in the order of `paths`.
    public var dataLinkTypes: [Int32] { inputs.map { pcap_datalink($0.handle) } }

    /// Whether each input's link type is one the reader hands packets over for.
    public var linkTypeSupported: [Bool] { inputs.map { $0.decoder != .unsupported } }

    /// The next packet in time order, or nil at the end. A corrupt or truncated file stops
    /// with an error naming the file and packet; packets returned before stay valid results.
    public func next() throws(CaptureError) -> CapturedPacket? {
        if let failure { throw failure }
        if let r = returned {
            inputs[r].state = .needsRead
            returned = nil
        }
        var best = -1
        var bestTime: UInt64 = 0
        for i in inputs.indices {
            if inputs[i].state == .needsRead {
                do {
                    try inputs[i].readHead(skipCounts: &skipCounts)
                } catch {
                    failure = error
                    throw error
                }
            }
            if inputs[i].state == .ready && (best < 0 || inputs[i].headTime < bestTime) {
                best = i
                bestTime = inputs[i].headTime
            }
        }
        guard best >= 0 else { return nil }
        returned = best
        return packet(from: best)
    }

    /// Builds the packet from input `i`'s head (read and decoded already).
    @inline(__always)
    private func packet(from i: Int) -> CapturedPacket {
        // The head's fields, read in place: copying the whole input would retain and release
        // its strings on every packet.
        let headOriginal = inputs[i].headOriginal
        let frame = UnsafeRawBufferPointer(start: inputs[i].headData, count: inputs[i].headCaptured)
        var bytes: UnsafeRawBufferPointer
        var linkType: LinkType
        var originalLength: Int
        switch inputs[i].headDecode {
        case .frame(let offset, let type):
            bytes = UnsafeRawBufferPointer(rebasing: frame[offset...])
            linkType = type
            originalLength = max(0, headOriginal - offset)
        case .ethernet(let offset, let etherType):
            let count = 14 + frame.count - offset
            if count > scratch.count {
                // Only for a file whose records exceed the usual 256 KiB snapshot length.
                scratch.deallocate()
                scratch = .allocate(byteCount: count, alignment: 16)
            }
            let out = scratch.baseAddress!
            out.initializeMemory(as: UInt8.self, repeating: 0, count: 12)
            out.storeBytes(of: etherType.bigEndian, toByteOffset: 12, as: UInt16.self)
            if frame.count > offset {
                (out + 14).copyMemory(from: frame.baseAddress! + offset, byteCount: frame.count - offset)
            }
            bytes = UnsafeRawBufferPointer(start: out, count: count)
            linkType = .ethernet
            originalLength = max(0, headOriginal - offset + 14)
        case .skip:
            preconditionFailure("a skipped packet never becomes a head")
        }
        return CapturedPacket(
            timestampNs: inputs[i].headTime, bytes: bytes, linkType: linkType, originalLength: originalLength,
            fileIndex: i, packetNumber: inputs[i].packetsRead)
    }

    /// The earliest and latest timestamps of the packets counted in `skipped`, or nil when
    /// none was skipped: a capture's time span covers them too.
    public var skippedTimeRange: (first: UInt64, last: UInt64)? {
        var first = UInt64.max
        var last: UInt64 = 0
        var any = false
        for input in inputs where input.skippedFirstNs != .max {
            any = true
            first = min(first, input.skippedFirstNs)
            last = max(last, input.skippedLastNs)
        }
        return any ? (first, last) : nil
    }

    /// Packets not returned because their link type is not supported, by link-type name.
    /// Also counts non-IP packets behind pseudo headers ("sll non-ip", ...) and packets too
    /// short for their pseudo header ("truncated link header"). Sorted by reason.
    public var skipped: [(reason: String, count: Int)] {
        var rows: [(reason: String, count: Int)] = []
        for reason in CaptureSkipReason.allCases where reason != .unsupportedLinkType {
            if skipCounts[reason.rawValue] > 0 { rows.append((reason.name, skipCounts[reason.rawValue])) }
        }
        for input in inputs where input.unsupportedSkipped > 0 {
            if let row = rows.firstIndex(where: { $0.reason == input.linkTypeName }) {
                rows[row].count += input.unsupportedSkipped
            } else {
                rows.append((input.linkTypeName, input.unsupportedSkipped))
            }
        }
        return rows.sorted { $0.reason.utf8.lexicographicallyPrecedes($1.reason.utf8) }
    }
}
