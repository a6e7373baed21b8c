internal import CLibPcap

/// One open capture file and its next packet (the head of the merge).
///
/// libpcap opens every file and knows every format. A classic pcap file (version 2.4, 16-byte
/// record headers) of a link type that libpcap hands over unchanged (Ethernet, raw IP, NULL,
/// LOOP, PPP) is also mapped, and its records are taken in place from the mapping: no `fread`
/// of the header and the data, no copy. Only records that need nothing of libpcap's
/// judgement are taken so: a record that is cut short, longer than the snapshot length,
/// longer on the capture than on the wire, or with a timestamp past 2^31 seconds ends the fast
/// path, and libpcap reads on from that record (its stream is moved there), with its
/// messages and its rules. So the packets, times and errors are libpcap's either way.
struct CaptureInput {
    enum State { case needsRead, ready, finished }

    let path: String
    let index: Int
    let handle: OpaquePointer
    let decoder: LinkDecoder
    /// libpcap's name for the link type, lower-case ("linux_sll"), or "linktype N".
    let linkTypeName: String
    var state = State.needsRead
    /// Records read so far, skipped ones included: the head's 1-based packet number.
    var packetsRead = 0
    var unsupportedSkipped = 0
    /// Earliest and latest timestamps of the skipped records (max and 0 while none).
    var skippedFirstNs = UInt64.max
    var skippedLastNs: UInt64 = 0
    var headTime: UInt64 = 0
    var headData: UnsafePointer<UInt8>?
    var headCaptured = 0
    var headOriginal = 0
    var headDecode = LinkDecodeResult.skip(.unsupportedLinkType)
    /// The mapped file (`maglev_pcap_map`), or nil; unmapped by the reader when it goes.
    var mapped: UnsafeRawPointer?
    var mappedSize = 0
    /// Where the next record starts while the records are taken from the mapping (`mapActive`).
    var mapOffset = 24
    var mapActive = false
    var mapSwapped = false
    var mapMicroseconds = false
    /// The largest captured length taken in place: libpcap's snapshot length, at most 256 KiB.
    var mapLimit = 0

    init(path: String, index: Int) throws(CaptureError) {
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        let opened = errorBuffer.withUnsafeMutableBufferPointer {
            pcap_open_offline_with_tstamp_precision(path, UInt32(PCAP_TSTAMP_PRECISION_NANO), $0.baseAddress)
        }
        guard let opened else {
            var message = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            // libpcap's message for a missing file already begins with the path.
            if message.hasPrefix(path + ": ") { message.removeFirst(path.count + 2) }
            throw CaptureError(
                file: path, packetNumber: nil,
                message: "cannot open as a pcap or pcapng capture: \(message)")
        }
        self.path = path
        self.index = index
        handle = opened
        let dlt = pcap_datalink(opened)
        decoder = LinkDecoder(dataLinkType: dlt)
        if let name = pcap_datalink_val_to_name(dlt) {
            linkTypeName = String(cString: name).lowercased()
        } else {
            linkTypeName = "linktype \(dlt)"
        }
        switch decoder {
        case .ethernet, .rawIP, .null, .loop, .ppp: mapIfClassic()
        case .linuxSLL, .linuxSLL2, .unsupported: break  // libpcap may rewrite their headers
        }
    }

    /// Maps the file when it is a classic pcap file, version 2.4, and takes its records from
    /// the mapping from the first on (libpcap has read only the file header).
    private mutating func mapIfClassic() {
        var size = 0
        guard let p = maglev_pcap_map(path, &size) else { return }
        let base = UnsafeRawPointer(p)
        guard size >= 24 else {
            maglev_pcap_unmap(p, size)
            return
        }
        let magic = base.loadUnaligned(as: UInt32.self)
        let swapped: Bool
        let microseconds: Bool
        switch magic {
        case 0xA1B2_C3D4: (swapped, microseconds) = (false, true)
        case 0xA1B2_3C4D: (swapped, microseconds) = (false, false)
        case 0xD4C3_B2A1: (swapped, microseconds) = (true, true)
        case 0x4D3C_B2A1: (swapped, microseconds) = (true, false)
        default:
            maglev_pcap_unmap(p, size)
            return
        }
        var major = base.loadUnaligned(fromByteOffset: 4, as: UInt16.self)
        var minor = base.loadUnaligned(fromByteOffset: 6, as: UInt16.self)
        if swapped {
            major = major.byteSwapped
            minor = minor.byteSwapped
        }
        let snapshot = Int(pcap_snapshot(handle))
        guard major == 2, minor == 4, snapshot > 0 else {
            maglev_pcap_unmap(p, size)
            return
        }
        mapped = base
        mappedSize = size
        mapOffset = 24
        mapActive = true
        mapSwapped = swapped
        mapMicroseconds = microseconds
        mapLimit = min(snapshot, 262_144)
    }

    /// The next record from the mapping: true with `headData` set when one was taken, false
    /// when the fast path ends here (the end of the file, or a record for libpcap to judge:
    /// its stream is moved to that record).
    private mutating func nextMapped() throws(CaptureError) -> (time: UInt64, captured: Int, original: Int)? {
        guard let m = mapped else { return nil }
        let off = mapOffset
        if off == mappedSize {
            return nil
        }
        if mappedSize - off >= 16 {
            var sec = m.loadUnaligned(fromByteOffset: off, as: UInt32.self)
            var sub = m.loadUnaligned(fromByteOffset: off + 4, as: UInt32.self)
            var caplen = m.loadUnaligned(fromByteOffset: off + 8, as: UInt32.self)
            var len = m.loadUnaligned(fromByteOffset: off + 12, as: UInt32.self)
            if mapSwapped {
                sec = sec.byteSwapped
                sub = sub.byteSwapped
                caplen = caplen.byteSwapped
                len = len.byteSwapped
            }
            let captured = Int(caplen)
            if sec < 0x8000_0000 && sub < 0x8000_0000 && caplen <= len && captured <= mapLimit
                && mappedSize - off - 16 >= captured
            {
                mapOffset = off + 16 + captured
                headData = (m + off + 16).assumingMemoryBound(to: UInt8.self)
                let ns = mapMicroseconds ? UInt64(sub) &* 1000 : UInt64(sub)
                return (UInt64(sec) &* 1_000_000_000 &+ ns, captured, Int(len))
            }
        }
        // libpcap reads on from this record.
        mapActive = false
        if fseek(pcap_file(handle), off, SEEK_SET) != 0 {
            state = .finished
            throw CaptureError(
                file: path, packetNumber: packetsRead + 1,
                message: "cannot read it: cannot move to byte \(off); reading stopped after \(packetsRead) packets")
        }
        return nil
    }

    /// Reads records until one can be handed over (skipping and counting the others), the
    /// end, or an error.
    mutating func readHead(skipCounts: inout [Int]) throws(CaptureError) {
        while mapActive {
            guard let r = try nextMapped() else {
                if mapActive {
                    // The end of the file, at a record boundary: libpcap's end too.
                    mapActive = false
                    state = .finished
                    headData = nil
                    return
                }
                break
            }
            packetsRead += 1
            if accept(time: r.time, captured: r.captured, original: r.original, skipCounts: &skipCounts) { return }
        }
        while true {
            var header: UnsafeMutablePointer<pcap_pkthdr>?
            var data: UnsafePointer<UInt8>?
            let rc = pcap_next_ex(handle, &header, &data)
            if rc == 1, let header, let data {
                packetsRead += 1
                let h = header.pointee
                // Opened with nanosecond precision: tv_usec carries nanoseconds.
                let time = UInt64(max(0, h.ts.tv_sec)) &* 1_000_000_000 &+ UInt64(max(0, h.ts.tv_usec))
                headData = data
                if accept(time: time, captured: Int(h.caplen), original: Int(h.len), skipCounts: &skipCounts) { return }
                continue
            }
            if rc == PCAP_ERROR_BREAK {  // -2: end of file
                state = .finished
                headData = nil
                return
            }
            state = .finished
            let detail = rc == PCAP_ERROR ? String(cString: pcap_geterr(handle)) : "pcap_next_ex returned \(rc)"
            let before = packetsRead == 1 ? "1 packet" : "\(packetsRead) packets"
            throw CaptureError(
                file: path, packetNumber: packetsRead + 1,
                message: "cannot read it (corrupt, truncated or unsupported file): \(detail); reading stopped after \(before)")
        }
    }

    /// The record at `headData` becomes the head (true), or is skipped and counted (false).
    @inline(__always)
    private mutating func accept(time: UInt64, captured: Int, original: Int, skipCounts: inout [Int]) -> Bool {
        let decode = decoder.decode(UnsafeRawBufferPointer(start: headData, count: captured))
        if case .skip(let reason) = decode {
            skippedFirstNs = min(skippedFirstNs, time)
            skippedLastNs = max(skippedLastNs, time)
            if reason == .unsupportedLinkType {
                unsupportedSkipped += 1
            } else {
                skipCounts[reason.rawValue] += 1
            }
            return false
        }
        headTime = time
        headCaptured = captured
        headOriginal = original
        headDecode = decode
        state = .ready
        return true
    }
}
