/// The only place a forwarding decision is made. One instance per worker (live) or per
/// simulated forwarder (replay); never shared between threads.
///
/// Contract of `process`: no allocation, no lock, no throw, no clock read (time comes in as
/// `now`, nanoseconds on any monotonic or capture clock), no I/O. It parses the frame, matches a
/// VIP, picks a backend (connection table first, lookup table on a miss), and writes the GRE
/// headers (or an ICMP reply) in place into the buffer, in front of the packet.
///
/// Headroom: the caller leaves at least `Dataplane.requiredHeadroom` bytes before the IP header
/// (link-layer header bytes count), or the packet is dropped as `noHeadroom`.
///
/// Checksums: a packet the driver marks `checksumPending` (sent with `CHECKSUM_PARTIAL`, its
/// TCP/UDP checksum left to a NIC) has that checksum completed in place before it is
/// encapsulated (`ChecksumCompletion`), so the backend does not drop it; counted in
/// `checksumsCompleted` or, when it cannot be done, `checksumsNotCompletable`.
public final class Dataplane {
    /// Bytes needed in front of an IP header: the larger of outer IPv6 + GRE (44) and an ICMPv6
    /// reply's headers (48).
    public static let requiredHeadroom = 48

    public private(set) var snapshot: ForwardingSnapshot
    /// `snapshot.view`, copied here so the per-packet path reads it without retaining anything.
    var view: SnapshotView
    public let connections: ConnectionTable
    public let fragments: ConnectionTable
    var counters: CounterBlock
    // Token bucket for ICMP replies, in thousandths of a token.
    var icmpTokens: Int
    var icmpLastRefill: UInt64
    // Per-batch scratch, allocated once: each packet is parsed into its slot and decided from
    // there, never copied (`scratchStatus`: nil when parsed, else why not).
    let scratchPackets: UnsafeMutablePointer<ParsedPacket>
    let scratchStatus: UnsafeMutablePointer<DropReason?>
    let scratchHashes: UnsafeMutablePointer<UInt64>
    /// `FlowHash.Multipliers.standard`, kept here so that the batch loops read the multipliers
    /// from memory (see `FlowHash.Multipliers`): 12 instructions per packet fewer (callgrind).
    /// A `var`, never written: the optimizer folds a `let` with a constant value back into
    /// literals.
    var hashMultipliers = FlowHash.Multipliers.standard
    // Tracer probes' records since the last `takeTraces`, allocated once.
    let traceRecords: UnsafeMutablePointer<TraceRecord>
    var traceCount = 0
    /// Later fragments waiting for their first fragment (`fragments: redirect`).
    var hold: FragmentHold
    /// This forwarder's index in the snapshot's forwarder group (`memberName`), or -1.
    public private(set) var member = -1
    /// This forwarder's name in the forwarder group (`fragments: redirect`): live, `--name`;
    /// replay, each simulated forwarder's. nil, or a name not in the group: this data plane
    /// redirects nothing (it keeps every fragment it gets).
    public var memberName: String? {
        didSet { member = Dataplane.member(named: memberName, in: snapshot) }
    }
    /// What the driver tags the fragments held by the next `process` call with; handed back by
    /// `releaseHeld` (replay: the packet number).
    public var holdTag: UInt64 = 0
    // Between `selectFragment` and `fragmentVerdict`: the owner to redirect to, the datagram
    // to hold; whether `releaseHeld` is deciding (held fragments are never held again).
    var pendingOwner = 0
    var pendingFragmentHash: UInt64 = 0
    var releasing = false

    /// A data plane with its own connection and fragment tables; `memory` backs both (pass
    /// huge-page memory from the driver where it is available).
    public init(
        snapshot: ForwardingSnapshot, connectionCapacity: Int = 1 << 16, fragmentCapacity: Int = 1 << 12,
        memory: TableMemory = .heap
    ) {
        self.snapshot = snapshot
        self.view = snapshot.view
        self.connections = ConnectionTable(capacity: connectionCapacity, timeouts: snapshot.config.timeouts, memory: memory)
        self.fragments = ConnectionTable(capacity: fragmentCapacity, timeouts: snapshot.config.timeouts, memory: memory)
        self.counters = CounterBlock(vips: snapshot.vipIDCount, backends: snapshot.backendCount)
        self.icmpTokens = snapshot.config.icmpBurst * 1000
        self.icmpLastRefill = 0
        self.scratchPackets = .allocate(capacity: Dataplane.batchChunk)
        self.scratchPackets.initialize(repeating: .zero, count: Dataplane.batchChunk)
        self.scratchStatus = .allocate(capacity: Dataplane.batchChunk)
        self.scratchStatus.initialize(repeating: .notIP, count: Dataplane.batchChunk)
        self.scratchHashes = .allocate(capacity: Dataplane.batchChunk)
        self.scratchHashes.initialize(repeating: 0, count: Dataplane.batchChunk)
        self.traceRecords = .allocate(capacity: Dataplane.traceCapacity)
        self.hold = Dataplane.makeHold(snapshot.config)
    }

    /// The hold a config asks for: none unless `fragments: redirect`.
    static func makeHold(_ config: DataplaneConfig) -> FragmentHold {
        let size = holdSize(config)
        return FragmentHold(capacity: size.capacity, packetBytes: size.packetBytes)
    }

    static func holdSize(_ config: DataplaneConfig) -> (capacity: Int, packetBytes: Int) {
        (config.fragmentPolicy == .redirect ? max(0, config.fragmentHold.packets) : 0, config.pathMTU)
    }

    /// The index of the group member named `name` in `snapshot`'s forwarder group, or -1.
    static func member(named name: String?, in snapshot: ForwardingSnapshot) -> Int {
        name.flatMap { snapshot.memberIndex(named: $0) } ?? -1
    }

    deinit {
        counters.deallocate()
        scratchPackets.deallocate()
        scratchStatus.deallocate()
        scratchHashes.deallocate()
        traceRecords.deallocate()
    }

    /// Swaps in a new snapshot between batches. Connection entries stay; entries whose backend
    /// is gone or down are reselected when their flow next shows up.
    ///
    /// Precondition: `new` descends from the installed snapshot (`new.descends(from: snapshot)`:
    /// built from it through `previous:`, directly or not), since connection entries and
    /// counters hold backend and VIP ids that only mean the same thing within one lineage, and
    /// installing an older generation would undo a reload. Installing the installed snapshot
    /// again changes nothing (a worker may see a mailbox's generation move after it already
    /// took the snapshot that move announced).
    public func install(_ new: ForwardingSnapshot) {
        if new === snapshot { return }
        precondition(
            new.descends(from: snapshot),
            "Dataplane.install: the snapshot (lineage \(new.lineage), generation \(new.generation)) does not descend "
                + "from the installed one (lineage \(snapshot.lineage), generation \(snapshot.generation)): "
                + "build it with ForwardingSnapshot(config:previous:) from the installed snapshot or a later one")
        if new.vipIDCount > counters.vipCapacity || new.backendCount > counters.backendCapacity {
            let bigger = counters.resized(vips: new.vipIDCount, backends: new.backendCount)
            counters.deallocate()
            counters = bigger
        }
        connections.timeouts = new.config.timeouts
        fragments.timeouts = new.config.timeouts
        snapshot = new
        view = new.view
        member = Dataplane.member(named: memberName, in: new)
        // A hold of another size, once the current one is empty (its fragments keep their slots).
        let wanted = Dataplane.holdSize(new.config)
        if hold.count == 0 && (wanted.capacity != hold.capacity || wanted.packetBytes != hold.packetBytes) {
            hold = Dataplane.makeHold(new.config)
        }
    }

    /// Where the next packet of an established flow `key` (not a SYN, not a fragment, not an
    /// ICMP error) would go now, changing nothing: the connection table first (an entry whose
    /// backend keeps its connections), the lookup table otherwise, as `process` decides.
    /// Returns the VIP's stable id and the backend id (-1: no backend), or nil when no VIP
    /// matches. Control side (replay's what-if figures), not the packet path.
    public func peek(_ key: FlowKey, now: UInt64) -> (vipID: Int, backend: Int32)? {
        let vip = view.findVIP(key, hasPorts: true)
        guard vip >= 0 else { return nil }
        let hash = FlowHash.hash(key, seed: view.seed)
        if view.connectionTracking {
            let i = connections.find(hash: hash, now: UInt32(truncatingIfNeeded: now / 1_000_000))
            if i >= 0 {
                let b = connections.backend(at: i)
                if view.backends[Int(b)].keepsConnections { return (view.id(ofVIP: vip), Int32(b)) }
            }
        }
        let b = view.select(vip: vip, hash: hash)
        return (view.id(ofVIP: vip), b == ForwardingSnapshot.noBackend ? -1 : Int32(b))
    }

    /// A copy of the counters (control side).
    public var statistics: DataplaneStatistics {
        counters.statistics(vipNames: snapshot.vipNames, backends: snapshot.backendCount)
    }

    /// Packets a batch is processed in at once: parsed and hashed first, each packet's
    /// connection-table bucket prefetched as soon as it is hashed (the misses overlap with each
    /// other and with the parsing of the rest of the chunk), then decided.
    public static let batchChunk = 32

    /// Processes a batch in order; each slot's verdict is filled in.
    public func process(batch: UnsafeMutableBufferPointer<PacketSlot>, linkType: LinkType, now: UInt64) {
        var start = 0
        let seed = view.seed
        let zeroHighLane = FlowHash.zeroHighLane(seed: seed)
        let multipliers = hashMultipliers
        // The scratch arrays as locals: read through `self`, each would be loaded again after
        // every store the loops make (a store could alias the object).
        let scratchPackets = self.scratchPackets
        let scratchStatus = self.scratchStatus
        let scratchHashes = self.scratchHashes
        while start < batch.count {
            let n = min(Dataplane.batchChunk, batch.count &- start)
            var bytes = 0
            for i in 0..<n {
                let s = batch[start &+ i]
                bytes &+= s.length
                let frame = s.base + s.offset
                if linkType == .ethernet
                    && PacketParser.parseCommonEthernetIPv4(frame, count: s.length, into: &scratchPackets[i])
                {
                    // Hashed in this branch, before any other store, so that the key comes from
                    // the registers the parse just stored rather than being loaded back.
                    let hash = FlowHash.hash(
                        scratchPackets[i].key, seed: seed, zeroHighLane: zeroHighLane, multipliers: multipliers)
                    scratchHashes[i] = hash
                    connections.prefetchBucket(hash: hash)
                    scratchStatus[i] = nil
                    continue
                }
                let status = PacketParser.parse(
                    UnsafeRawBufferPointer(start: frame, count: s.length), linkType: linkType, into: &scratchPackets[i])
                scratchStatus[i] = status
                if status == nil {
                    let hash = FlowHash.hash(
                        scratchPackets[i].key, seed: seed, zeroHighLane: zeroHighLane, multipliers: multipliers)
                    scratchHashes[i] = hash
                    connections.prefetchBucket(hash: hash)
                }
            }
            counters.add(CounterBlock.packets, UInt64(truncatingIfNeeded: n))
            counters.add(CounterBlock.bytes, UInt64(truncatingIfNeeded: bytes))
            for i in 0..<n {
                let s = batch[start &+ i]
                decide(
                    scratchStatus[i], &scratchPackets[i], flowHash: scratchHashes[i], base: s.base, offset: s.offset,
                    length: s.length, checksumPending: s.checksumPending, now: now, into: &batch[start &+ i].verdict)
            }
            start &+= n
        }
    }

    /// `process(batch:linkType:now:)` for frames the caller has parsed already, each decided at
    /// its own time (replay: one forwarder's packets between two events, each at its capture
    /// time). `packets[i]` and `statuses[i]` are `PacketParser.parse(_:linkType:into:)`'s packet
    /// (started as `ParsedPacket.zero`) and answer for slot `i`'s frame, and `nows[i]` its time.
    /// Every slot gets the verdict, counters and output that
    /// `process(parsed:_:base:offset:length:now:checksumPending:)` would give it called slot by
    /// slot in order with the same times, with the batch's bucket prefetch. The packets are
    /// read in place, never written.
    ///
    /// `hashes`, when given: `hashes[i]` is `flowHashAndBucket(packets[i]).hash` for each parsed
    /// packet (any value for the others), from a caller that prefetched the packet's bucket as
    /// it batched the packet, with no `install` since; without it the batch hashes them.
    public func process(
        parsedBatch batch: UnsafeMutableBufferPointer<PacketSlot>, packets: UnsafeMutablePointer<ParsedPacket>,
        statuses: UnsafePointer<DropReason?>, nows: UnsafePointer<UInt64>, hashes: UnsafePointer<UInt64>? = nil
    ) {
        var start = 0
        let seed = view.seed
        let zeroHighLane = FlowHash.zeroHighLane(seed: seed)
        let multipliers = hashMultipliers
        while start < batch.count {
            let n = min(Dataplane.batchChunk, batch.count &- start)
            var bytes = 0
            for i in 0..<n {
                let j = start &+ i
                bytes &+= batch[j].length
                if statuses[j] != nil {
                    scratchHashes[i] = 0
                } else if let hashes {
                    // The caller prefetched this bucket as it batched the packet.
                    scratchHashes[i] = hashes[j]
                } else {
                    let hash = FlowHash.hash(
                        packets[j].key, seed: seed, zeroHighLane: zeroHighLane, multipliers: multipliers)
                    scratchHashes[i] = hash
                    connections.prefetchBucket(hash: hash)
                }
            }
            counters.add(CounterBlock.packets, UInt64(truncatingIfNeeded: n))
            counters.add(CounterBlock.bytes, UInt64(truncatingIfNeeded: bytes))
            for i in 0..<n {
                let j = start &+ i
                let s = batch[j]
                decide(
                    statuses[j], &packets[j], flowHash: scratchHashes[i], base: s.base, offset: s.offset,
                    length: s.length, checksumPending: s.checksumPending, now: nows[j], into: &batch[j].verdict)
            }
            start &+= n
        }
    }

    /// The flow hash `process(parsedBatch:...)` computes for a parsed packet (under the
    /// installed snapshot's seed), and where that flow's connection-table bucket begins (128
    /// bytes, two cache lines), for a driver to prefetch: nothing is read through it. One call
    /// for both, as a driver asks per packet.
    public func flowHashAndBucket(_ packet: inout ParsedPacket) -> (hash: UInt64, bucket: UnsafeRawPointer) {
        let hash = FlowHash.hash(
            packet.key, seed: view.seed, zeroHighLane: FlowHash.zeroHighLane(seed: view.seed),
            multipliers: hashMultipliers)
        return (hash, connections.bucketAddress(hash: hash))
    }

    /// Processes one frame at `base + offset` of `length` bytes (`checksumPending`: see
    /// `PacketSlot.checksumPending`).
    public func process(
        base: UnsafeMutableRawPointer, offset: Int, length: Int, linkType: LinkType, now: UInt64,
        checksumPending: Bool = false
    ) -> Verdict {
        var packet = ParsedPacket.zero
        let status = PacketParser.parse(
            UnsafeRawBufferPointer(start: base + offset, count: length), linkType: linkType, into: &packet)
        return process(
            parsed: status, &packet, base: base, offset: offset, length: length, now: now,
            checksumPending: checksumPending)
    }

    /// `process(base:offset:length:linkType:now:checksumPending:)` for a frame the caller has
    /// parsed already (replay parses each frame once, for its analysis and for this):
    /// `status` and `packet` are `PacketParser.parse(_:linkType:into:)`'s answer and packet for
    /// the frame at `base + offset` of `length` bytes, into a packet that started as
    /// `ParsedPacket.zero`. The same verdict, counters and output as parsing here; `packet` is
    /// read in place, never written.
    public func process(
        parsed status: DropReason?, _ packet: inout ParsedPacket, base: UnsafeMutableRawPointer, offset: Int,
        length: Int, now: UInt64, checksumPending: Bool = false
    ) -> Verdict {
        counters.add(CounterBlock.packets)
        counters.add(CounterBlock.bytes, UInt64(truncatingIfNeeded: length))
        var hash: UInt64 = 0
        if status == nil { hash = FlowHash.hash(packet.key, seed: view.seed) }
        return decide(
            status, &packet, flowHash: hash, base: base, offset: offset, length: length,
            checksumPending: checksumPending, now: now)
    }

    /// Everything after parsing and counting the packet; `status` is the parser's answer (nil:
    /// `packet` parsed) and `flowHash` the hash of the parsed key. The packet is passed `inout` only so that it is
    /// read where it lies (the batch's scratch slot), never copied; nothing here writes to it.
    @inline(__always)
    func decide(
        _ status: DropReason?, _ packet: inout ParsedPacket, flowHash: UInt64, base: UnsafeMutableRawPointer,
        offset: Int, length: Int, checksumPending: Bool, now: UInt64
    ) -> Verdict {
        var verdict = Verdict(action: .drop)
        decide(
            status, &packet, flowHash: flowHash, base: base, offset: offset, length: length,
            checksumPending: checksumPending, now: now, into: &verdict)
        return verdict
    }

    /// `decide`, its verdict written to `verdict` on the path that makes it. The batch loops
    /// pass their slot's verdict: a forward then stores its fields where it computes them,
    /// instead of every path meeting in one store of a verdict assembled from a dozen merged
    /// values (which kept them all in registers, and spilled the loop's own).
    @inline(__always)
    func decide(
        _ status: DropReason?, _ packet: inout ParsedPacket, flowHash: UInt64, base: UnsafeMutableRawPointer,
        offset: Int, length: Int, checksumPending: Bool, now: UInt64, into verdict: inout Verdict
    ) {
        if let status {
            verdict = notForwarded(status)
            return
        }
        // The tracer's one branch for unmarked packets.
        if packet.traceMarked {
            verdict = decideMarked(
                &packet, flowHash: flowHash, base: base, offset: offset, length: length,
                checksumPending: checksumPending, now: now)
            return
        }
        decideParsed(
            &packet, flowHash: flowHash, base: base, offset: offset, length: length,
            checksumPending: checksumPending, now: now, into: &verdict)
    }

    /// Everything after parsing, for a parsed packet (`inout`: read in place, never written).
    @inline(__always)
    func decideParsed(
        _ packet: inout ParsedPacket, flowHash: UInt64, base: UnsafeMutableRawPointer, offset: Int, length: Int,
        checksumPending: Bool, now: UInt64
    ) -> Verdict {
        var verdict = Verdict(action: .drop)
        decideParsed(
            &packet, flowHash: flowHash, base: base, offset: offset, length: length,
            checksumPending: checksumPending, now: now, into: &verdict)
        return verdict
    }

    /// `decideParsed`, its verdict written to `verdict` where it is made (see `decide(into:)`).
    @inline(__always)
    func decideParsed(
        _ packet: inout ParsedPacket, flowHash: UInt64, base: UnsafeMutableRawPointer, offset: Int, length: Int,
        checksumPending: Bool, now: UInt64, into verdict: inout Verdict
    ) {
        if packet.isTruncated && !view.acceptTruncated {
            verdict = notForwarded(.truncatedPacket)
            return
        }

        // A fragment redirected here by a group member (checked before the VIPs: a VIP prefix
        // may cover the group's addresses).
        if packet.key.proto == IPProtocol.gre && view.redirect,
            let v = decideRedirected(&packet, base: base, offset: offset, length: length, now: now)
        {
            verdict = v
            return
        }
        let hasPorts = packet.fragment != .nonFirst
        let vip = view.findVIP(packet.key, hasPorts: hasPorts)
        if vip < 0 {
            verdict = notForwarded(.unknownVIP)
            return
        }
        let vipID = view.id(ofVIP: vip)
        counters.vip(vipID, bytes: packet.l3Length)

        let nowMs = UInt32(truncatingIfNeeded: now / 1_000_000)
        var newFlow = false
        var selection = SelectionReason.none
        let backend = selectBackend(
            &packet, flowHash: flowHash, vip: vip, nowMs: nowMs, newFlow: &newFlow, selection: &selection)
        if backend >= ForwardingSnapshot.holdFull {
            // No backend, or a fragment to redirect or hold.
            verdict = fragmentVerdict(
                backend, &packet, vipID: vipID, selection: selection, base: base, offset: offset, now: now)
            return
        }
        // A selection is a new flow whatever becomes of this packet (too big, no headroom).
        if newFlow { counters.newFlow(Int(backend)) }
        encapsulate(
            &packet, backend: backend, vipID: vipID, selection: selection, flowHash: flowHash, base: base,
            offset: offset, checksumPending: checksumPending, now: now, into: &verdict)
    }

    /// The end of a decision: the packet to `backend` (its checksum completed when pending), or
    /// an ICMP "too big" reply, or a drop for want of headroom.
    @inline(__always)
    func encapsulate(
        _ packet: inout ParsedPacket, backend: UInt32, vipID: Int, selection: SelectionReason, flowHash: UInt64,
        base: UnsafeMutableRawPointer, offset: Int, checksumPending: Bool, now: UInt64
    ) -> Verdict {
        var verdict = Verdict(action: .drop)
        encapsulate(
            &packet, backend: backend, vipID: vipID, selection: selection, flowHash: flowHash, base: base,
            offset: offset, checksumPending: checksumPending, now: now, into: &verdict)
        return verdict
    }

    /// `encapsulate`, its verdict written to `verdict` where it is made (see `decide(into:)`).
    @inline(__always)
    func encapsulate(
        _ packet: inout ParsedPacket, backend: UInt32, vipID: Int, selection: SelectionReason, flowHash: UInt64,
        base: UnsafeMutableRawPointer, offset: Int, checksumPending: Bool, now: UInt64, into verdict: inout Verdict
    ) {
        let record = view.backends[Int(backend)]
        let outerIPv6 = record.address.isIPv6
        let overhead = GREEncapsulator.overhead(outerIPv6: outerIPv6)
        let innerStart = offset &+ packet.l3Offset
        if packet.l3ClaimedLength &+ overhead > view.pathMTU {
            verdict = tooBig(&packet, base: base, innerStart: innerStart, vip: vipID, overhead: overhead, now: now)
            verdict.selection = selection
            return
        }
        if innerStart < overhead {
            verdict = notForwarded(.noHeadroom, vip: vipID)
            verdict.selection = selection
            return
        }
        if checksumPending {
            let completed = ChecksumCompletion.complete(base + offset, packet)
            counters.add(completed ? CounterBlock.checksumsCompleted : CounterBlock.checksumsNotCompletable)
        }

        // One branch on the family, each with only the fields it reads (choosing the source
        // address first cost a select of two 17-byte values).
        let start =
            outerIPv6
            ? GREEncapsulator.encapsulateIPv6(
                base, innerStart: innerStart, innerLength: packet.l3Length, innerIPv6: packet.isIPv6,
                trafficClass: packet.trafficClass, source: view.encapSourceIPv6, destination: record.address,
                flowHash: flowHash)
            : GREEncapsulator.encapsulateIPv4(
                base, innerStart: innerStart, innerLength: packet.l3Length, innerIPv6: packet.isIPv6,
                trafficClass: packet.trafficClass, source: view.encapSourceIPv4.ipv4Value,
                destination: record.address.ipv4Value, partialSum: record.ipv4HeaderSum)
        // The block's base and strides loaded once for the three counts (through `self`, each
        // store to the counters could alias them and would reload them).
        let c = counters
        c.add(CounterBlock.forwarded)
        c.backend(Int(backend), bytes: packet.l3Length)
        c.pair(vipID, Int(backend), bytes: packet.l3Length)
        verdict = Verdict(
            action: .forward, vip: Int32(truncatingIfNeeded: vipID), backend: Int32(bitPattern: backend),
            outputOffset: start,
            outputLength: packet.l3Length &+ overhead, outputIsIPv6: outerIPv6, selection: selection)
    }

    @inline(__always)
    func notForwarded(_ reason: DropReason, vip: Int = -1) -> Verdict {
        counters.reason(reason)
        return .notForwarded(reason, vip: Int32(vip))
    }

    /// Connection table first, lookup table on a miss; see docs/maglev.md for the policy.
    @inline(__always)
    func selectBackend(
        _ packet: inout ParsedPacket, flowHash: UInt64, vip: Int, nowMs: UInt32,
        newFlow: inout Bool, selection: inout SelectionReason
    ) -> UInt32 {
        if packet.fragment != .none {
            // Through locals of this branch: `selectFragment` is a call, and handing it the
            // caller's flags would keep those in memory on every packet's path.
            var fragmentNewFlow = false
            var fragmentSelection = SelectionReason.none
            let b = selectFragment(
                &packet, flowHash: flowHash, vip: vip, nowMs: nowMs, newFlow: &fragmentNewFlow,
                selection: &fragmentSelection)
            newFlow = fragmentNewFlow
            selection = fragmentSelection
            return b
        }
        return selectConnection(
            &packet, hash: flowHash, vip: vip, nowMs: nowMs, newFlow: &newFlow, selection: &selection)
    }

    @inline(__always)
    func selectConnection(
        _ packet: inout ParsedPacket, hash: UInt64, vip: Int, nowMs: UInt32,
        newFlow: inout Bool, selection: inout SelectionReason
    ) -> UInt32 {
        let snapshot = view
        let key = packet.key
        guard snapshot.connectionTracking else {
            selection = packet.isICMPError ? .icmpQuote : .tableLookup
            return snapshot.select(vip: vip, hash: hash)
        }

        let flags = packet.tcpFlags
        let isTCP = key.proto == IPProtocol.tcp
        let isSYN = isTCP && flags & (TCPFlags.syn | TCPFlags.ack) == TCPFlags.syn
        let found = connections.findEntry(hash: hash, now: nowMs)
        if packet.isICMPError {
            selection = .icmpQuote
            // An error about a flow: follow the flow, never create or refresh its entry.
            if let entry = found {
                let b = entry.pointee.backend
                if snapshot.backends[Int(b)].keepsConnections { return b }
            }
            return snapshot.select(vip: vip, hash: hash)
        }
        if let entry = found {
            // The entry read once: backend and state from one word, refreshed in place.
            let (b, old) = ConnectionTable.backendAndStateRaw(of: entry)
            let reopened = isSYN && old == ConnectionState.tcpClosing.rawValue
            if snapshot.backends[Int(b)].keepsConnections && !reopened {
                selection = .connectionHit
                ConnectionTable.refresh(
                    entry, backend: b, stateRaw: nextState(old, isTCP: isTCP, flags: flags), now: nowMs)
                return b
            }
            // Backend gone or down, or a new connection on a closed 5-tuple: select again.
            selection = reopened ? .tableLookup : .reselected
            let fresh = snapshot.select(vip: vip, hash: hash)
            if fresh != ForwardingSnapshot.noBackend {
                ConnectionTable.reassign(entry, backend: fresh, state: initialState(isTCP: isTCP, flags: flags), now: nowMs)
                if !reopened { counters.add(CounterBlock.reselected) }
                newFlow = true
            } else {
                ConnectionTable.remove(entry)
            }
            return fresh
        }
        selection = .tableLookup
        let b = snapshot.select(vip: vip, hash: hash)
        if b != ForwardingSnapshot.noBackend {
            _ = connections.insert(hash: hash, backend: b, state: initialState(isTCP: isTCP, flags: flags), now: nowMs)
            newFlow = true
        }
        return b
    }

    @inline(__always)
    func initialState(isTCP: Bool, flags: UInt8) -> ConnectionState {
        guard isTCP else { return .datagram }
        if flags & (TCPFlags.fin | TCPFlags.rst) != 0 { return .tcpClosing }
        if flags & (TCPFlags.syn | TCPFlags.ack) == TCPFlags.syn { return .tcpHalfOpen }
        return .tcpEstablished  // mid-stream: the connection predates us
    }

    /// The state after a packet with `flags`, as raw values (`ConnectionTable.backendAndStateRaw`).
    @inline(__always)
    func nextState(_ old: UInt8, isTCP: Bool, flags: UInt8) -> UInt8 {
        guard isTCP else { return old }
        if flags & (TCPFlags.fin | TCPFlags.rst) != 0 { return ConnectionState.tcpClosing.rawValue }
        if old == ConnectionState.tcpHalfOpen.rawValue && flags & TCPFlags.ack != 0 {
            return ConnectionState.tcpEstablished.rawValue
        }
        return old
    }

    /// A packet that would exceed the path MTU once encapsulated (`vip`: the VIP's id).
    func tooBig(
        _ packet: inout ParsedPacket, base: UnsafeMutableRawPointer, innerStart: Int, vip: Int, overhead: Int, now: UInt64
    ) -> Verdict {
        if !packet.dontFragment { return notForwarded(.packetTooBigNoDF, vip: vip) }
        // Never answer an ICMP error with another, nor a fragment that is not the first.
        if packet.isICMPError || packet.fragment == .nonFirst { return notForwarded(.tooBigForICMP, vip: vip) }
        let room = packet.isIPv6 ? ICMPTooBig.ipv6HeaderRoom : ICMPTooBig.ipv4HeaderRoom
        if innerStart < room { return notForwarded(.noHeadroom, vip: vip) }
        if !takeICMPToken(now: now) { return notForwarded(.icmpRateLimited, vip: vip) }
        let reply = ICMPTooBig.write(
            base, packetStart: innerStart, packetLength: packet.l3Length, ipv6: packet.isIPv6,
            client: packet.key.source, vip: packet.key.destination, mtu: view.pathMTU &- overhead)
        counters.add(CounterBlock.icmpReplies)
        return Verdict(
            action: .icmpReply, vip: Int32(vip), outputOffset: reply.start, outputLength: reply.length,
            outputIsIPv6: packet.isIPv6)
    }

    /// Token bucket: `icmpRatePerSecond` sustained, `icmpBurst` at once.
    @inline(__always)
    func takeICMPToken(now: UInt64) -> Bool {
        let capacity = view.icmpBurst &* 1000
        if now > icmpLastRefill {
            // Whole milliseconds only; the remainder stays on the clock for the next refill.
            let elapsedMs = (now &- icmpLastRefill) / 1_000_000
            if elapsedMs > 0 {
                let add = Int(min(elapsedMs, 1_000_000)) &* view.icmpRatePerSecond
                icmpTokens = min(capacity, icmpTokens &+ add)
                icmpLastRefill = elapsedMs >= 1_000_000 ? now : icmpLastRefill &+ elapsedMs &* 1_000_000
            }
        }
        if icmpTokens < 1000 { return false }
        icmpTokens &-= 1000
        return true
    }
}
