internal import CLibPcap

/// One open capture file and its next packet (the head of the merge).
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
    }

    /// Reads records until one can be handed over (skipping and counting the others), the
    /// end, or an error.
    mutating func readHead(skipCounts: inout [Int]) throws(CaptureError) {
        while true {
            var header: UnsafeMutablePointer<pcap_pkthdr>?
            var data: UnsafePointer<UInt8>?
            let rc = pcap_next_ex(handle, &header, &data)
            if rc == 1, let header, let data {
                packetsRead += 1
                let h = header.pointee
                let captured = Int(h.caplen)
                let decode = decoder.decode(UnsafeRawBufferPointer(start: data, count: captured))
                // Opened with nanosecond precision: tv_usec carries nanoseconds.
                let time = UInt64(max(0, h.ts.tv_sec)) &* 1_000_000_000 &+ UInt64(max(0, h.ts.tv_usec))
                if case .skip(let reason) = decode {
                    skippedFirstNs = min(skippedFirstNs, time)
                    skippedLastNs = max(skippedLastNs, time)
                    if reason == .unsupportedLinkType {
                        unsupportedSkipped += 1
                    } else {
                        skipCounts[reason.rawValue] += 1
                    }
                    continue
                }
                headTime = time
                headData = data
                headCaptured = captured
                headOriginal = Int(h.len)
                headDecode = decode
                state = .ready
                return
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
}
