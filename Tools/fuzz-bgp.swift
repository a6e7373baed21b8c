// libFuzzer harness for the BGP protocol core (Sources/MaglevControl/BGP): the bytes a peer
// sends. `Tools/fuzz bgp SECONDS` compiles the core's and the BGP sources with this file into
// one module (swiftc -sanitize=fuzzer,address) and runs it; `.build-fuzz/bgp-fuzz crash-...`
// replays a crash.
//
// Each input goes three ways:
// 1. BGPMessage.decode of the whole input, and of the input behind a valid header (type from
//    the first byte), with both AS widths; whatever decodes must encode to no more bytes and
//    decode again to the same message;
// 2. BGPFramer over the input cut into reads at the positions its first byte picks;
// 3. an established BGPSession (both widths) fed both as received bytes, then a timer:
//    every action it returns must be encodable.

let fuzzConfig = BGPSessionConfig(
    localAS: 65001, remoteAS: 65000, routerID: 0xC612_010B, holdTime: 9,
    nextHopIPv4: IPAddress(ipv4: 0xC612_010B), nextHopIPv6: IPAddress(high: 0x2001_0db8_0018_0001, low: 0x11, isIPv6: true),
    retryJitterPercent: 0)

func establishedSession(fourOctet: Bool) -> BGPSession {
    var s = BGPSession(config: fuzzConfig)
    _ = s.setRoutes([BGPPrefix(host: IPAddress(ipv4: 0xC613_000A)), BGPPrefix(host: IPAddress(high: 0x2001_0db8_0019_0000, low: 0x10, isIPv6: true))])
    _ = s.handle(.start, nowMs: 0)
    _ = s.handle(.tcpConnected, nowMs: 0)
    var caps: [BGPCapability] = [.multiprotocol(afi: 1, safi: 1), .multiprotocol(afi: 2, safi: 1), .routeRefresh]
    if fourOctet { caps.append(.fourOctetAS(65000)) }
    _ = s.handle(.messageReceived(.open(BGPOpen(myAS: 65000, holdTime: 90, routerID: 1, capabilities: caps))), nowMs: 0)
    _ = s.handle(.messageReceived(.keepalive), nowMs: 0)
    precondition(s.isEstablished)
    return s
}

let sessions = [establishedSession(fourOctet: true), establishedSession(fourOctet: false)]

func checkActions(_ actions: [BGPAction]) {
    for case .send(let m) in actions { precondition(m.encode().count <= BGP.maxMessageLength) }
}

func fuzzBGP(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: min(size, 3 * BGP.maxMessageLength)))
    // Random bytes rarely start with 16 x 0xff and a matching length: also read the input as a
    // body behind a valid header whose type is picked by the first byte.
    var framed = bytes
    if let first = bytes.first, bytes.count + 18 <= BGP.maxMessageLength {
        let n = bytes.count + 18
        framed = [UInt8](repeating: 0xFF, count: 16) + [UInt8(n >> 8), UInt8(n & 0xFF), first % 5 + 1] + bytes[1...]
    }
    for input in [bytes, framed] {
        for fourOctet in [true, false] {
            if case .success(let m) = BGPMessage.decode(input, fourOctetAS: fourOctet) {
                let again = m.encode()
                precondition(again.count <= input.count, "re-encoding grew: \(m)")
                precondition(BGPMessage.decode(again, fourOctetAS: fourOctet) == .success(m), "round trip differs: \(m)")
            }
        }
    }
    var framer = BGPFramer()
    let step = bytes.isEmpty ? 1 : Int(bytes[0]) % 64 + 1
    var position = 0
    outer: while position < bytes.count {
        framer.append(bytes[position..<min(position + step, bytes.count)])
        position += step
        while let r = framer.next() {
            if case .failure = r { break outer }
        }
    }
    for var s in sessions {
        checkActions(s.handle(.bytesReceived(framed + bytes), nowMs: 1_000))
        checkActions(s.handle(.timer, nowMs: 20_000))
        checkActions(s.setRoutes([BGPPrefix(host: IPAddress(ipv4: 0xC613_000B))]))
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzBGP(data ?? UnsafePointer(bitPattern: 1)!, size)
}
