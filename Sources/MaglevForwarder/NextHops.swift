import MaglevCore
import MaglevLinux
import Synchronization

/// How workers send the GRE packets.
public enum ForwarderSend: String, Sendable, CaseIterable {
    /// Whole Ethernet frames through an `AF_PACKET` socket with `PACKET_QDISC_BYPASS`: the
    /// worker writes the backend's next-hop Ethernet header in front of the outer IP header
    /// (resolved by the control side from the kernel's route and neighbour tables). A backend
    /// whose next hop is not resolved yet, or not on an Ethernet interface, is sent through
    /// the raw IP socket meanwhile (counted as `next_hop_fallbacks`).
    case packet
    /// Outer IP packets through raw IP sockets (`IP_HDRINCL`): the kernel routes them, builds
    /// the Ethernet header and resolves neighbours itself, per packet.
    case raw
}

/// Per backend id, the Ethernet header a worker writes in front of a GRE packet for that
/// backend, and the interface to send it out of: `stride` bytes each, 14 header bytes, a flag
/// (1: usable), a pad byte, then the `sockaddr_ll` naming the interface.
struct LinkHeaders: Sendable, Equatable {
    static let stride = 48
    static let validFlag = 14
    static let addressOffset = 16
    static let addressLength = 20

    var bytes: [UInt8]
    /// Per backend id: where its packets go ("02:00:.. on eth0 via 198.18.1.1") or why they
    /// take the raw socket.
    var descriptions: [String]

    static let empty = LinkHeaders(bytes: [], descriptions: [])

    var count: Int { bytes.count / LinkHeaders.stride }

    /// Whether every backend has a usable next hop.
    var allResolved: Bool {
        (0..<count).allSatisfy { bytes[$0 * LinkHeaders.stride + LinkHeaders.validFlag] != 0 }
    }

    /// The table for `snapshot`'s backends from `outcomes` (one per backend id, in order).
    init(outcomes: [NextHopResolver.Outcome], addresses: [IPAddress]) {
        var bytes = [UInt8](repeating: 0, count: outcomes.count * LinkHeaders.stride)
        var descriptions: [String] = []
        for (id, outcome) in outcomes.enumerated() {
            switch outcome {
            case .resolved(let hop):
                let entry = id * LinkHeaders.stride
                let header = hop.ethernetHeader(ipv6: addresses[id].isIPv6)
                for i in 0..<14 { bytes[entry + i] = header[i] }
                bytes[entry + LinkHeaders.validFlag] = 1
                let address = hop.linkAddress(ipv6: addresses[id].isIPv6)
                precondition(address.count == LinkHeaders.addressLength)
                for i in 0..<address.count { bytes[entry + LinkHeaders.addressOffset + i] = address[i] }
                let mac = hop.destinationMAC.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
                descriptions.append("\(mac) on \(hop.interfaceName)" + (hop.gateway == nil ? "" : " via gateway"))
            case .unresolved(let why):
                descriptions.append("raw socket: \(why)")
            }
        }
        self.bytes = bytes
        self.descriptions = descriptions
    }

    init(bytes: [UInt8], descriptions: [String]) {
        self.bytes = bytes
        self.descriptions = descriptions
    }
}

/// The control side's next-hop tables, published to workers like snapshots: a generation
/// counter (one relaxed load per loop turn) and the current table.
final class NextHopMailbox: Sendable {
    let generation = Atomic<UInt64>(0)
    private let slot = Mutex<LinkHeaders>(.empty)

    func publish(_ headers: LinkHeaders) {
        slot.withLock { $0 = headers }
        generation.add(1, ordering: .releasing)
    }

    var current: LinkHeaders { slot.withLock { $0 } }
}

/// A worker's own copy of the published headers, read per packet without locks: 16 bytes per
/// backend id in one buffer that only changes between batches.
struct WorkerLinkHeaders: ~Copyable {
    private(set) var base: UnsafeMutableRawPointer
    private(set) var count: Int
    private var capacity: Int

    init() {
        capacity = 64
        count = 0
        base = .allocate(byteCount: capacity * LinkHeaders.stride, alignment: 16)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: capacity * LinkHeaders.stride)
    }

    deinit { base.deallocate() }

    /// Between batches.
    mutating func install(_ headers: LinkHeaders) {
        if headers.count > capacity {
            base.deallocate()
            capacity = headers.count
            base = .allocate(byteCount: capacity * LinkHeaders.stride, alignment: 16)
        }
        headers.bytes.withUnsafeBytes { base.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        count = headers.count
    }

    /// Writes backend `id`'s Ethernet header into the 14 bytes at `destination` and returns
    /// the `sockaddr_ll` to send the frame to; nil (and nothing written) when it has none.
    @inline(__always)
    func write(backend id: Int, to destination: UnsafeMutableRawPointer) -> UnsafeRawPointer? {
        guard id >= 0 && id < count else { return nil }
        let entry = base + id &* LinkHeaders.stride
        guard entry.load(fromByteOffset: LinkHeaders.validFlag, as: UInt8.self) != 0 else { return nil }
        destination.copyMemory(from: entry, byteCount: 14)
        return UnsafeRawPointer(entry + LinkHeaders.addressOffset)
    }
}


/// A worker's side of the `packet` send path (both loops): its unbound AF_PACKET socket and its
/// own copy of the published next-hop table, refreshed between batches.
final class WorkerFrames {
    let socket: PacketSender?
    /// The socket's descriptor, or -1 on the `raw` send path.
    let descriptor: Int32
    let mailbox: NextHopMailbox
    var installed: UInt64 = 0
    var headers = WorkerLinkHeaders()

    /// Opens the socket on the calling (worker) thread when `options.send` is `packet`.
    init(options: ForwarderOptions, mailbox: NextHopMailbox) throws(ForwarderError) {
        self.mailbox = mailbox
        guard options.send == .packet else {
            socket = nil
            descriptor = -1
            isOn = false
            return
        }
        isOn = true
        do {
            let sender = try PacketSender(unboundWithSendBufferBytes: 8 << 20, qdiscBypass: true)
            descriptor = sender.fd
            socket = consume sender
        } catch {
            throw ForwarderError.opening(error, interface: options.interface)
        }
    }

    /// Frames are built (`--send packet`).
    let isOn: Bool

    /// No socket: the in-memory engine's frames (`on`: whether it builds them).
    init(inMemory mailbox: NextHopMailbox, on: Bool) {
        self.mailbox = mailbox
        socket = nil
        descriptor = -1
        isOn = on
    }

    /// Between batches: takes a newly published table (one relaxed load when there is none).
    func installIfPublished() {
        let generation = mailbox.generation.load(ordering: .acquiring)
        if generation != installed {
            installed = generation
            headers.install(mailbox.current)
        }
    }

    /// Writes backend `id`'s Ethernet header in front of the outer IP header at `ipHeader` and
    /// returns the `sockaddr_ll` to send the frame (starting 14 bytes before it) to; nil when the
    /// backend has no usable next hop (the caller falls back to the raw socket).
    @inline(__always)
    func prepareFrame(backend id: Int32, ipHeader: UnsafeMutableRawPointer) -> UnsafeRawPointer? {
        headers.write(backend: Int(id), to: ipHeader - 14)
    }
}
