import MaglevCore
import Synchronization

/// A worker's tracer records on their way to the control side: a fixed ring, filled by the
/// worker between batches (only when a batch held probes: a lock, no allocation) and emptied by
/// the trace reporter. When full, records are dropped and counted (`dropped`), never grown.
final class TraceQueue: Sendable {
    struct Ring {
        var records: [TraceRecord]
        var head = 0
        var count = 0
        var dropped: UInt64 = 0
    }

    static let capacity = 256
    private let ring: Mutex<Ring>

    init() {
        let blank = TraceRecord(
            probe: TraceProbe(collector: IPAddress(ipv4: 0), collectorPort: 0, id: 0),
            key: FlowKey(source: IPAddress(ipv4: 0), destination: IPAddress(ipv4: 0), sourcePort: 0, destinationPort: 0, proto: 0),
            vip: -1, backend: -1, action: .drop, dropReason: nil, reason: .none, fragment: .none)
        ring = Mutex(Ring(records: Array(repeating: blank, count: TraceQueue.capacity)))
    }

    /// Worker side, between batches. The ring's array is never shared, so writing an element
    /// does not copy it.
    func push(_ records: UnsafeBufferPointer<TraceRecord>) {
        ring.withLock { r in
            for record in records {
                if r.count == TraceQueue.capacity {
                    r.dropped &+= 1
                    continue
                }
                r.records[(r.head &+ r.count) % TraceQueue.capacity] = record
                r.count &+= 1
            }
        }
    }

    /// Control side: every waiting record, oldest first, and the drop count so far.
    func take() -> (records: [TraceRecord], dropped: UInt64) {
        ring.withLock { r in
            var out: [TraceRecord] = []
            out.reserveCapacity(r.count)
            for i in 0..<r.count { out.append(r.records[(r.head + i) % TraceQueue.capacity]) }
            r.head = (r.head + r.count) % TraceQueue.capacity
            r.count = 0
            return (out, r.dropped)
        }
    }
}
