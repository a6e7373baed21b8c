// libFuzzer harness for everything that reads untrusted packet bytes: the parser and
// Dataplane.process, for both link types, with a catch-all IPv4 and IPv6 VIP so every parsed
// packet goes the whole way (table, connection table, encapsulation, ICMP replies).
//
//   Tools/fuzz 60          # build with -sanitize=fuzzer and run for 60 seconds
//
// Built without FUZZING (plain `swift build`), the executable replays the files it is given
// through the same harness, so a crash found once stays a regression test.
import MaglevCore

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

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let count = min(size, 65_536)
    for linkType in [LinkType.ethernet, .rawIP] {
        buffer.copyMemory(from: data, byteCount: count)
        _ = PacketParser.parse(UnsafeRawBufferPointer(start: buffer, count: count), linkType: linkType)
        (buffer + 128).copyMemory(from: data, byteCount: count)
        clock &+= 1_000_000
        let v = dataplane.process(base: buffer, offset: 128, length: count, linkType: linkType, now: clock)
        if v.action == .forward || v.action == .icmpReply {
            precondition(v.outputOffset >= 0 && v.outputOffset + v.outputLength <= 128 + count, "output out of bounds")
        }
    }
    return 0
}

#if !FUZZING
    @main struct FuzzReplay {
        static func main() {
            let args = CommandLine.arguments.dropFirst()
            if args.isEmpty {
                print("usage: maglev-fuzz FILE...   (replays inputs; build with Tools/fuzz to fuzz)")
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
