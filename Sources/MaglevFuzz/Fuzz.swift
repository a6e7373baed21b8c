// libFuzzer harness for everything that reads untrusted packet bytes: the parser and
// Dataplane.process, for both link types, with a catch-all IPv4 and IPv6 VIP so every parsed
// packet goes the whole way (table, connection table, checksum completion, encapsulation, ICMP
// replies).
//
//   Tools/fuzz 60          # compile with -sanitize=fuzzer,address and run for 60 seconds
//
// Tools/fuzz compiles the core's sources and this harness into one module with swiftc (SwiftPM
// gives every executable its own `main`, which collides with libFuzzer's). Built by SwiftPM
// without FUZZING, the executable replays the files it is given through the same harness, so a
// crash found once stays a regression test: `.build/debug/MaglevFuzz crash-*`.
#if canImport(MaglevCore)
    import MaglevCore  // the SwiftPM build; Tools/fuzz compiles the core into this module
#endif

nonisolated(unsafe) let dataplane: Dataplane = {
    let backends = (0..<5).map { i in
        BackendConfig(name: "backend-\(i)", address: i % 2 == 0 ? IPAddress(ipv4: 0xC612_8000 | UInt32(i)) : IPAddress("2001:db8:2::\(i)")!)
    }
    let config = DataplaneConfig(
        vips: [
            VIPConfig(name: "all4", address: IPAddress("0.0.0.0")!, prefixLength: 0, backends: backends),
            VIPConfig(name: "all6", address: IPAddress("::")!, prefixLength: 0, backends: backends),
        ],
        tableSize: 251, pathMTU: 1400, encapSourceIPv4: IPAddress("198.18.0.2")!,
        encapSourceIPv6: IPAddress("2001:db8::2")!, fragmentPolicy: .fragmentTable, acceptTruncated: true)
    return Dataplane(snapshot: try! ForwardingSnapshot(config: config), connectionCapacity: 64, fragmentCapacity: 16)
}()

nonisolated(unsafe) let buffer = UnsafeMutableRawPointer.allocate(byteCount: 128 + 65_536, alignment: 64)
nonisolated(unsafe) var clock: UInt64 = 0

func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let count = min(size, 65_536)
    for linkType in [LinkType.ethernet, .rawIP] {
        buffer.copyMemory(from: data, byteCount: count)
        _ = PacketParser.parse(UnsafeRawBufferPointer(start: buffer, count: count), linkType: linkType)
        (buffer + 128).copyMemory(from: data, byteCount: count)
        clock &+= 1_000_000
        // Half the inputs (by their last byte) as CHECKSUM_PARTIAL frames: the checksum
        // completion reads and writes inside whatever the parser accepted.
        let pending = count > 0 && data[count - 1] & 1 == 1
        let v = dataplane.process(
            base: buffer, offset: 128, length: count, linkType: linkType, now: clock, checksumPending: pending)
        if v.action == .forward || v.action == .icmpReply {
            precondition(v.outputOffset >= 0 && v.outputOffset + v.outputLength <= 128 + count, "output out of bounds")
        }
    }
    return 0
}

#if FUZZING
    // Built by Tools/fuzz with swiftc -sanitize=fuzzer: libFuzzer owns main and calls this.
    @_cdecl("LLVMFuzzerTestOneInput")
    public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
        fuzzOne(data ?? UnsafePointer(bitPattern: 1)!, size)
    }
#else
    /// The plain build replays inputs (crash files, a corpus) through the same harness.
    @main struct FuzzReplay {
        static func main() {
            let args = CommandLine.arguments.dropFirst()
            if args.isEmpty {
                print("usage: MaglevFuzz FILE...   (replays inputs; Tools/fuzz SECONDS fuzzes)")
                return
            }
            for path in args {
                guard let bytes = readFile(path) else {
                    print("cannot read \(path)")
                    continue
                }
                _ = bytes.withUnsafeBufferPointer { fuzzOne($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, $0.count) }
                print("ok \(path)")
            }
        }
    }
#endif
