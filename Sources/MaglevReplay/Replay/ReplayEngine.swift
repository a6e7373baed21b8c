public import MaglevConfig
import MaglevControl
public import MaglevCore
internal import CLibPcap

/// How routers in front of the forwarders spread packets (ECMP).
public enum ECMPHash: String, Sendable, CaseIterable {
    /// 5-tuple (src, dst, protocol, ports; ports 0 for fragments): Linux
    /// `fib_multipath_hash_policy=1`, most hardware routers.
    case fiveTuple = "l4"
    /// Source and destination address only: the Linux default (`fib_multipath_hash_policy=0`).
    case threeTuple = "l3"
}

/// What to replay and how.
public struct ReplayOptions: Sendable {
    public var inputs: [String]
    public var config: MaglevConfigFile
    public var events: [ScenarioEvent] = []
    /// The files of `config=FILE` events, by path as written (`ScenarioEvent.loadConfigs`),
    /// with the same command-line overrides as `config` (algorithm, connection tracking).
    public var eventConfigs: [String: MaglevConfigFile] = [:]
    /// Simulated forwarders behind ECMP.
    public var forwarders = 1
    public var ecmpHash: ECMPHash = .fiveTuple
    /// Seed of the routers' ECMP hash (any value; routers do not share ours).
    public var ecmpSeed: UInt64 = ReplayOptions.defaultECMPSeed
    public static let defaultECMPSeed: UInt64 = 0xEC3F_0001
    /// Pcap of what the forwarders send (GRE packets and ICMP replies).
    public var outputPcap: String?
    /// CSV, one row per packet.
    public var decisionsCSV: String?
    /// Called every 65536 packets with (packets done, packets in all, or nil when unknown).
    public var progress: (@Sendable (Int, Int?) -> Void)?
    /// Where each simulated forwarder's connection and fragment tables live (`maglev replay`
    /// passes huge pages, as `maglev forward` does: a 1M-entry table is 16 MiB). Placement
    /// only: the decisions do not depend on it.
    public var tableMemory: TableMemory = .heap

    public init(inputs: [String], config: MaglevConfigFile) {
        self.inputs = inputs
        self.config = config
    }
}

/// Replays captures through the very `Dataplane` the live forwarder runs: one per simulated
/// forwarder, each with its own connection table, with the capture's timestamps as the clock.
public final class ReplayEngine {
    let options: ReplayOptions
    /// The desired state the scenario's events edit: the same `DesiredState` and backend
    /// edits the live forwarder's control plane applies (pools, health, drains, weights).
    var state: DesiredState
    /// `state.dataplaneConfig`, as the running snapshot was built from it.
    var config: DataplaneConfig
    var snapshot: ForwardingSnapshot
    var dataplanes: [Dataplane] = []
    let analysis: ReplayAnalysis
    let buffer: UnsafeMutableRawPointer
    /// Packets whose timestamp was older than the replay clock (replayed at the clock's time),
    /// and the largest step back.
    var timeWentBackwards = 0
    /// The first packet's capture time (the replay's time 0).
    var firstNs: UInt64 = 0
    /// Packets waiting to be decided, per simulated forwarder (`flushBatches`): `batched` of
    /// them, from packet number `batchFirstIndex`, and with several forwarders where each is
    /// (forwarder << 6 | position in its batch), in packet order. One forwarder needs no
    /// order: its batch holds the packets in packet order.
    var batches: [ForwarderBatch] = []
    var batched = 0
    var batchOrder: [Int32] = []
    var batchFirstIndex = 0
    var maxBackwardsNs: UInt64 = 0
    static let headroom = 128
    static let bufferSize = 128 + 262_144

    public init(options: ReplayOptions) throws(SnapshotError) {
        self.options = options
        self.state = DesiredState(file: options.config)
        self.config = state.dataplaneConfig
        self.snapshot = try ForwardingSnapshot(config: config)
        self.analysis = ReplayAnalysis(timeouts: config.timeouts)
        self.buffer = .allocate(byteCount: ReplayEngine.bufferSize, alignment: 64)
        for _ in 0..<max(1, options.forwarders) { dataplanes.append(newDataplane()) }
        for _ in dataplanes.indices { batches.append(ForwarderBatch()) }
        batchOrder.reserveCapacity(ForwarderBatch.capacity * 8)
    }

    deinit {
        buffer.deallocate()
        for b in batches { b.deallocate() }
    }

    /// The next simulated forwarder: forwarder i is member i of the forwarder group
    /// (`fragments: redirect`), if the group has that many.
    func newDataplane() -> Dataplane {
        let d = Dataplane(
            snapshot: snapshot, connectionCapacity: options.config.connectionCapacity, fragmentCapacity: 1 << 14,
            memory: options.tableMemory)
        let i = dataplanes.count
        if i < config.forwarders.count { d.memberName = config.forwarders[i].name }
        return d
    }

    /// Runs the whole replay. A capture that breaks off midway ends the run early: the report
    /// covers everything before, and the error is returned alongside it. An output (`--out`,
    /// `--decisions`) that cannot be created, written or closed throws an `OutputError` naming
    /// it; one that failed after the start carries the report.
    public func run() throws -> (report: ReplayReport, captureError: CaptureError?) {
        // Events at N% need the number of packets: count them first.
        var total: Int?
        if options.events.contains(where: { if case .fraction = $0.at { true } else { false } }) || options.progress != nil {
            total = try? ReplayEngine.countPackets(options.inputs)
        }
        var pending = options.events.enumerated().map { ($0.offset, $0.element) }
        let reader = try CaptureReader(paths: options.inputs)
        let writer: PcapWriter?
        do {
            writer = try options.outputPcap.map { path throws(CaptureError) in try PcapWriter(path: path) }
        } catch {
            throw OutputError(file: error.file, message: error.message)
        }
        let csv = try options.decisionsCSV.map { path throws(OutputError) in try OutputFile(path: path) }
        csv?.write("packet,time,src,dst,proto,sport,dport,vip,forwarder,backend,verdict\n")

        var index = 0
        // The replay clock: the capture's timestamps, except that it never goes backwards. A
        // packet older than one before it (merged interfaces, NIC timestamping) keeps the
        // latest time seen, and is counted.
        var clockNs: UInt64 = 0
        var captureError: CaptureError?
        var parsedPacket = ParsedPacket.zero
        // Whether any data plane holds fragments (`fragments: redirect`): then every packet is
        // replayed on its own, followed by `releaseHeld`, as a held fragment may come out after
        // any packet.
        var anyHeld = false
        while true {
            let packet: CapturedPacket
            do {
                guard let p = try reader.next() else { break }
                packet = p
            } catch {
                captureError = error
                break
            }
            index += 1
            if index == 1 {
                firstNs = packet.timestampNs
                clockNs = packet.timestampNs
            }
            if packet.timestampNs < clockNs {
                timeWentBackwards += 1
                maxBackwardsNs = max(maxBackwardsNs, clockNs - packet.timestampNs)
            } else {
                clockNs = packet.timestampNs
            }
            let now = clockNs
            let elapsed = now - firstNs

            // Events due before this packet, in the order given (the packets before it decided
            // first).
            if !pending.isEmpty,
                pending.contains(where: { isDue($0.1, index: index, elapsedNs: elapsed, total: total) })
            {
                flushBatches(writer: writer, csv: csv, total: total)
                while let due = pending.firstIndex(where: { isDue($0.1, index: index, elapsedNs: elapsed, total: total) }) {
                    let event = pending.remove(at: due).1
                    apply(event, packet: index, timeNs: now)
                }
                anyHeld = dataplanes.contains(where: \.hasHeld)
                while batches.count < dataplanes.count { batches.append(ForwarderBatch()) }
            }

            let length = min(packet.bytes.count, ReplayEngine.bufferSize - ReplayEngine.headroom)
            // Parsed once, here, where libpcap read it: the analysis, ECMP and the data plane
            // read the same packet.
            let frame = UnsafeRawBufferPointer(start: packet.bytes.baseAddress, count: length)
            let forwarder: Int
            let status: DropReason?
            let batchable: Bool
            if !anyHeld && length <= ForwarderBatch.frameCapacity {
                // Straight into the batch of its forwarder when it can go there: a packet
                // that cannot be redirected, held or release held fragments.
                let next = batches[0].packets + batches[0].count
                next.pointee = .zero
                let s = PacketParser.parse(frame, linkType: packet.linkType, into: &next.pointee)
                let f = dataplanes.count > 1 ? pickForwarder(s == nil ? next.pointee : nil, frame: frame) : 0
                batchable =
                    s != nil
                    || (next.pointee.fragment == .none && next.pointee.key.proto != IPProtocol.gre
                        && !(next.pointee.isTruncated
                            && next.pointee.l3Offset + next.pointee.l3ClaimedLength > packet.originalLength))
                if batchable {
                    if f != 0 { batches[f].packets[batches[f].count] = next.pointee }
                    if batched == 0 { batchFirstIndex = index }
                    batched += 1
                    if dataplanes.count > 1 { batchOrder.append(Int32(truncatingIfNeeded: f << 6 | batches[f].count)) }
                    let i = batches[f].count
                    batches[f].add(frame, status: s, now: now)
                    if s == nil {
                        // Its data plane's connection bucket and the analysis's slot for its
                        // flow, fetched while the batch fills.
                        let d = dataplanes[f].flowHashAndBucket(&batches[f].packets[i])
                        batches[f].dataplaneHashes[i] = d.hash
                        maglev_prefetch(d.bucket)
                        maglev_prefetch(d.bucket + 64)
                        let h = FlowTable.hash(batches[f].packets[i].key)
                        batches[f].flowHashes[i] = h
                        analysis.flows.prefetchSlot(hash: h)
                    }
                    if batches[f].count == ForwarderBatch.capacity { flushBatches(writer: writer, csv: csv, total: total) }
                    continue
                }
                parsedPacket = next.pointee
                forwarder = f
                status = s
            } else {
                parsedPacket = .zero
                status = PacketParser.parse(frame, linkType: packet.linkType, into: &parsedPacket)
                forwarder = dataplanes.count > 1 ? pickForwarder(status == nil ? parsedPacket : nil, frame: frame) : 0
                batchable = false
            }
            // On its own: the packets before it decided first.
            flushBatches(writer: writer, csv: csv, total: total)
            (buffer + ReplayEngine.headroom).copyMemory(from: packet.bytes.baseAddress!, byteCount: length)
            let isParsed = status == nil
            let verdict: Verdict
            if isParsed, parsedPacket.isTruncated,
                parsedPacket.l3Offset + parsedPacket.l3ClaimedLength > packet.originalLength
            {
                // The packet's own header claims more than was on the wire: a truncated packet,
                // which the live forwarder drops as such, not a snapshot-length cut (those are
                // replayed). Sizing it by its claim would call it "too big" instead.
                verdict = Verdict(action: .drop, reason: .truncatedPacket)
            } else {
                dataplanes[forwarder].holdTag = UInt64(index)
                verdict = deliver(
                    dataplanes[forwarder].process(
                        parsed: status, &parsedPacket, base: buffer, offset: ReplayEngine.headroom, length: length,
                        now: now), index: index, now: now)
            }
            finish(
                index: index, now: now, elapsed: elapsed, packet: &parsedPacket, parsed: isParsed, forwarder: forwarder,
                verdict: verdict, base: buffer, writer: writer, csv: csv, total: total)
            releaseHeld(now: now, elapsed: elapsed, writer: writer, csv: csv)
            anyHeld = dataplanes.contains(where: \.hasHeld)
        }
        flushBatches(writer: writer, csv: csv, total: total)
        // Fragments still held when the capture ends never saw their first fragment: they
        // expire, as they would live.
        if dataplanes.contains(where: \.hasHeld), index > 0 {
            let first = firstNs
            let end = clockNs &+ UInt64(config.fragmentHold.timeoutMs) &* 1_000_000
            releaseHeld(now: end, elapsed: end - first, writer: writer, csv: csv)
        }
        // Events still pending: one at N% (100% is "after the last packet") takes effect at the
        // end; one past the end of the capture (a time or packet it never reached, or a capture
        // that stopped early) never took effect: it is listed as not reached, with a warning.
        var unreached: [ScenarioEvent] = []
        for (_, event) in pending {
            if case .fraction = event.at, captureError == nil {
                apply(event, packet: index + 1, timeNs: analysis.lastNs)
            } else {
                analysis.notReached(event)
                unreached.append(event)
            }
        }
        // Outputs are checked to the end: a failed write or close fails the replay, naming the
        // file (the report is kept in the error).
        var outputError: OutputError?
        do { try writer?.finish() } catch { outputError = OutputError(file: error.file, message: error.message) }
        do { try csv?.finish() } catch { outputError = outputError ?? error }
        options.progress?(index, total)

        var report = analysis.report(
            names: snapshot.backendNames, addresses: backendAddresses(), states: backendStates(),
            balanced: backendOwnsSlots(), skipped: reader.skipped, vipNames: snapshot.vipNames)
        report.inputs = options.inputs
        if let skipped = reader.skippedTimeRange {
            // The capture's span covers the packets it skipped (unsupported link types) too.
            let first = min(analysis.firstNs ?? skipped.first, skipped.first)
            let last = max(analysis.firstNs == nil ? skipped.last : analysis.lastNs, skipped.last)
            report.durationSeconds = Double(last - first) / 1e9
        }
        report.algorithm = config.algorithm.rawValue
        report.tableSize = config.tableSize
        report.forwarders = dataplanes.count
        report.connectionTracking = config.connectionTracking
        report.timeWentBackwards = .init(packets: timeWentBackwards, maxSeconds: Double(maxBackwardsNs) / 1e9)
        if timeWentBackwards > 0 {
            let n = timeWentBackwards == 1 ? "1 packet was" : "\(timeWentBackwards) packets were"
            report.warnings.append(
                "\(n) older than a packet before \(timeWentBackwards == 1 ? "it" : "them") (by up to "
                    + "\(ReportFormatting.fixed(Double(maxBackwardsNs) / 1e9, 6)) s): the replay clock never goes"
                    + " backwards, so \(timeWentBackwards == 1 ? "it was" : "they were") replayed at the latest time seen")
        }
        let end = "the capture ends at \(ReportFormatting.fixed(report.durationSeconds, 3)) s, packet \(index)"
        for event in unreached {
            report.warnings.append("event '\(event.text)' was never reached (\(end)): it did not take effect")
        }
        for e in report.events where !e.disruptive.isEmpty {
            report.warnings.append(TextReport.disruptiveNote(e))
        }
        if config.fragmentPolicy == .redirect && dataplanes.count > config.forwarders.count {
            report.warnings.append(
                "fragments: redirect: \(dataplanes.count) forwarders replayed but the group lists "
                    + "\(config.forwarders.count); the forwarders beyond it are in no group and redirect nothing "
                    + "(live, such a forwarder refuses to start)")
        }
        if let captureError { report.warnings.append("stopped early: \(captureError)") }
        if var outputError {
            outputError.report = report
            throw outputError
        }
        return (report, captureError)
    }

    /// What follows a packet's verdict, in packet order: the analysis, `--out`, `--decisions`,
    /// progress. `base`: the buffer the verdict's output offset points into.
    @inline(__always)
    func finish(
        index: Int, now: UInt64, elapsed: UInt64, packet: inout ParsedPacket, parsed isParsed: Bool, forwarder: Int,
        verdict: Verdict, base: UnsafeMutableRawPointer, writer: PcapWriter?, csv: OutputFile?, total: Int?
    ) {
        analysis.observe(timeNs: now, packet: &packet, parsed: isParsed, verdict: verdict)
        output(
            index: index, now: now, elapsed: elapsed, packet: &packet, parsed: isParsed, forwarder: forwarder,
            verdict: verdict, base: base, writer: writer, csv: csv, total: total)
    }

    /// `finish` after the analysis.
    @inline(__always)
    func output(
        index: Int, now: UInt64, elapsed: UInt64, packet: inout ParsedPacket, parsed isParsed: Bool, forwarder: Int,
        verdict: Verdict, base: UnsafeMutableRawPointer, writer: PcapWriter?, csv: OutputFile?, total: Int?
    ) {
        if let writer, verdict.action == .forward || verdict.action == .icmpReply {
            // A packet cut by the capture's snapshot length is forwarded as captured; its
            // GRE record says what was really sent: the outer header's length and the
            // record's original length cover the whole inner packet (caplen stays what we
            // have), so tshark reads the output as cleanly as the input.
            var original = verdict.outputLength
            if verdict.action == .forward, isParsed, packet.isTruncated {
                original += packet.l3ClaimedLength - packet.l3Length
                GREEncapsulator.setOuterLength(base + verdict.outputOffset, outerIPv6: verdict.outputIsIPv6, total: original)
            }
            writer.write(
                UnsafeRawBufferPointer(start: base + verdict.outputOffset, count: verdict.outputLength),
                timestampNs: now, originalLength: original)
        }
        if let csv { csv.write(decisionRow(index, elapsed, isParsed ? packet : nil, forwarder, verdict)) }
        if index & 0xFFFF == 0 { options.progress?(index, total) }
    }

    /// Decides the packets waiting in the forwarders' batches (each forwarder's in one
    /// `Dataplane.process(parsedBatch:...)` call, at each packet's own time; forwarders share
    /// no state, so the order among them does not matter), then finishes them in packet order.
    /// Called before anything that must see them decided: an event, a packet replayed on its
    /// own, the end.
    func flushBatches(writer: PcapWriter?, csv: OutputFile?, total: Int?) {
        let n = batched
        guard n > 0 else { return }
        // The analysis's flows of the parsed packets (their slots were prefetched as the
        // packets were batched) start coming while the data planes decide.
        for f in 0..<dataplanes.count where batches[f].count > 0 {
            let b = batches[f]
            for i in 0..<b.count where b.statuses[i] == nil { analysis.flows.prefetchFlow(hash: b.flowHashes[i]) }
        }
        for f in 0..<dataplanes.count where batches[f].count > 0 {
            let b = batches[f]
            dataplanes[f].process(
                parsedBatch: UnsafeMutableBufferPointer(start: b.slots, count: b.count), packets: b.packets,
                statuses: b.statuses, nows: b.nows, hashes: b.dataplaneHashes)
        }
        let first = batchFirstIndex
        let analysis = self.analysis
        let one = dataplanes.count == 1
        for k in 0..<n {
            let f = one ? 0 : Int(batchOrder[k] >> 6)
            let i = one ? k : Int(batchOrder[k] & 63)
            let b = batches[f]
            let now = b.nows[i]
            let verdict = b.slots[i].verdict
            let parsed = b.statuses[i] == nil
            analysis.observe(
                timeNs: now, packet: &b.packets[i], parsed: parsed, verdict: verdict,
                flowHash: verdict.action == .forward && parsed ? b.flowHashes[i] : nil)
            output(
                index: first + k, now: now, elapsed: now - firstNs, packet: &b.packets[i], parsed: parsed, forwarder: f,
                verdict: verdict, base: b.slots[i].base, writer: writer, csv: csv, total: total)
        }
        for f in 0..<dataplanes.count { batches[f].count = 0 }
        batched = 0
        batchOrder.removeAll(keepingCapacity: true)
    }

    /// A redirect (`fragments: redirect`) goes on to its owner, as the GRE packet the live
    /// forwarder sends: the owner's verdict is the packet's. An owner that is not running in
    /// the scenario loses it (`redirect_owner_absent`).
    func deliver(_ verdict: Verdict, index: Int, now: UInt64) -> Verdict {
        guard verdict.action == .redirect else { return verdict }
        let owner = Int(verdict.member)
        guard owner >= 0, owner < dataplanes.count, dataplanes[owner].member == owner else {
            return Verdict(action: .drop, reason: .redirectOwnerAbsent, vip: verdict.vip)
        }
        dataplanes[owner].holdTag = UInt64(index)
        return dataplanes[owner].process(
            base: buffer, offset: verdict.outputOffset, length: verdict.outputLength, linkType: .rawIP, now: now)
    }

    /// Held fragments whose first fragment came (forwarded now) or whose time ran out: each
    /// reported as the packet it was (`tag`: its number), at this time.
    func releaseHeld(now: UInt64, elapsed: UInt64, writer: PcapWriter?, csv: OutputFile?) {
        for (f, d) in dataplanes.enumerated() where d.hasHeld {
            d.releaseHeld(now: now) { held in
                var packet = ParsedPacket.zero
                let parsed =
                    PacketParser.parse(
                        UnsafeRawBufferPointer(start: held.base + held.packetOffset, count: held.packetLength),
                        linkType: .rawIP, into: &packet) == nil
                let v = held.verdict
                analysis.released(timeNs: now, packet: &packet, parsed: parsed, verdict: v)
                if let writer, v.action == .forward {
                    writer.write(
                        UnsafeRawBufferPointer(start: held.base + v.outputOffset, count: v.outputLength), timestampNs: now,
                        originalLength: v.outputLength)
                }
                if let csv { csv.write(decisionRow(Int(held.tag), elapsed, parsed ? packet : nil, f, v)) }
            }
        }
    }

    func isDue(_ e: ScenarioEvent, index: Int, elapsedNs: UInt64, total: Int?) -> Bool {
        switch e.at {
        case .packet(let n): return index >= n
        case .seconds(let s): return Double(elapsedNs) / 1e9 >= s
        case .fraction(let f):
            guard let total else { return false }
            return index >= max(1, Int((f * Double(total)).rounded(.down)) + 1)
        }
    }

    /// The forwarder ECMP picks: hash-threshold (RFC 2992) over the router's hash of the outer
    /// header, as Linux multipath routes do.
    func pickForwarder(_ parsed: ParsedPacket?, frame: UnsafeRawBufferPointer) -> Int {
        let k = dataplanes.count
        guard k > 1, let p = parsed else { return 0 }
        var key = p.key
        if p.isICMPError {
            // Routers hash the error's own header: from the router to the VIP, no ports.
            let src: IPAddress =
                p.isIPv6
                ? IPAddress(high: load64(frame, p.l3Offset + 8), low: load64(frame, p.l3Offset + 16), isIPv6: true)
                : IPAddress(ipv4: load32(frame, p.l3Offset + 12))
            key = FlowKey(source: src, destination: p.key.destination, sourcePort: 0, destinationPort: 0, proto: p.isIPv6 ? IPProtocol.icmpv6 : IPProtocol.icmp)
        }
        return Self.forwarder(
            of: key, fragment: p.fragment != .none, forwarders: k, hash: options.ecmpHash, seed: options.ecmpSeed)
    }

    /// The documented ECMP model: which of `forwarders` forwarders the routers send a packet
    /// with outer header `key` to (hash-threshold, RFC 2992, over the 5-tuple for `l4` or the
    /// addresses for `l3`; fragments without ports). `maglev which --forwarders K` uses it too.
    public static func forwarder(
        of key: FlowKey, fragment: Bool = false, forwarders k: Int, hash: ECMPHash = .fiveTuple,
        seed: UInt64 = ReplayOptions.defaultECMPSeed
    ) -> Int {
        guard k > 1 else { return 0 }
        var key = key
        if hash == .threeTuple || fragment {
            key.sourcePort = 0
            key.destinationPort = 0
            if hash == .threeTuple { key.proto = 0 }
        }
        return FlowHash.slot(FlowHash.hash(key, seed: seed), size: k)
    }

    func load32(_ b: UnsafeRawBufferPointer, _ o: Int) -> UInt32 {
        UInt32(b[o]) << 24 | UInt32(b[o + 1]) << 16 | UInt32(b[o + 2]) << 8 | UInt32(b[o + 3])
    }
    func load64(_ b: UnsafeRawBufferPointer, _ o: Int) -> UInt64 {
        UInt64(load32(b, o)) << 32 | UInt64(load32(b, o + 4))
    }

    // MARK: Events

    func apply(_ event: ScenarioEvent, packet: Int, timeNs: UInt64) {
        analysis.beginEvent(event, packet: packet, timeNs: timeNs)
        let before = snapshot
        func reject(_ why: String) {
            analysis.events[analysis.events.count - 1].action += " (rejected: \(why))"
            analysis.endEvent(slotsChangedAll: 0, slotsChangedExtra: 0, unusable: analysis.unusable)
        }
        switch event.action {
        case .forwarders(let k):
            if k > dataplanes.count {
                for _ in dataplanes.count..<k { dataplanes.append(newDataplane()) }
            } else {
                dataplanes.removeLast(dataplanes.count - k)
            }
            recordImpact(before: before, timeNs: timeNs)
            analysis.endEvent(slotsChangedAll: 0, slotsChangedExtra: 0, unusable: analysis.unusable)
            return
        case .config:
            // A live reload's path (ControlPlane.reloadFile): DesiredState.reload, then the
            // snapshot built with `previous:` below. Disruptive changes are applied (a live
            // forwarder refuses them without --allow-disruptive-reload) and flagged.
            guard let file = options.eventConfigs[event.target] else { return reject("\(event.target) was not loaded") }
            guard case .applied(let check, _) = state.reload(file, allowDisruptive: true) else { return reject("refused") }
            analysis.events[analysis.events.count - 1].disruptive = check.disruptive
            analysis.events[analysis.events.count - 1].notices = check.notices
        case .remove, .add, .drain, .fail, .recover, .weight:
            do {
                try state.apply(Self.edit(event), nowMs: timeNs / 1_000_000)
            } catch {
                return reject("\(error)")
            }
        }
        let edited = state.dataplaneConfig
        do {
            snapshot = try ForwardingSnapshot(config: edited, previous: before)
            config = edited
        } catch {
            // The change leaves a pool unusable (e.g. every weight 0): keep the tables that were.
            return reject("\(error)")
        }
        for d in dataplanes { d.install(snapshot) }
        analysis.timeouts = edited.timeouts
        var all = 0.0
        var extra = 0.0
        var n = 0
        var vipSlots: [(id: Int32, all: Double?, extra: Double?)] = []
        // VIPs matched by name; one whose table object was reused under the same seed did not
        // change at all.
        var oldByName: [String: Int] = [:]
        for (v, vip) in before.config.vips.enumerated() { oldByName[vip.name] = v }
        for (v, vip) in snapshot.config.vips.enumerated() {
            let id = Int32(snapshot.vipIDs[v])
            guard let o = oldByName[vip.name], let old = before.tables[o], let new = snapshot.tables[v] else {
                vipSlots.append((id, nil, nil))
                continue
            }
            if before.vipTables[o] === snapshot.vipTables[v] && before.config.hashSeed == snapshot.config.hashSeed {
                n += 1
                vipSlots.append((id, 0, 0))
                continue
            }
            let diff = TableDiff(old: old, oldSeed: before.config.hashSeed, new: new, newSeed: snapshot.config.hashSeed)
            all += diff.changedAll
            extra += diff.changedExtra
            vipSlots.append((id, diff.changedAll, diff.changedExtra))
            n += 1
        }
        recordImpact(before: before, timeNs: timeNs, vipSlots: vipSlots)
        var lost: Set<Int32> = []
        for id in snapshot.backendNames.indices where !backendKeepsConnections(id) { lost.insert(Int32(id)) }
        analysis.endEvent(
            slotsChangedAll: n > 0 ? all / Double(n) : 0, slotsChangedExtra: n > 0 ? extra / Double(n) : 0,
            unusable: lost)
    }

    /// The event's what-if figure: every connection alive now whose next packet would reach
    /// another backend (or none), asking the forwarder ECMP sends it to, as the data plane will
    /// decide it (`Dataplane.peek`: its connection table, then the new tables).
    func recordImpact(
        before: ForwardingSnapshot, timeNs: UInt64, vipSlots: [(id: Int32, all: Double?, extra: Double?)]? = nil
    ) {
        var atRisk: [(backend: Int32, vip: Int32)] = []
        var aliveByVIP: [Int32: Int] = [:]
        for c in analysis.aliveConnections(now: timeNs) {
            aliveByVIP[c.vip, default: 0] += 1
            let f = Self.forwarder(
                of: c.key, forwarders: dataplanes.count, hash: options.ecmpHash, seed: options.ecmpSeed)
            let next = dataplanes[f].peek(c.key, now: timeNs)
            if next?.backend != c.backend { atRisk.append((c.backend, c.vip)) }
        }
        let slots = vipSlots ?? snapshot.config.vips.indices.map { (Int32(snapshot.vipIDs[$0]), 0.0, 0.0) }
        analysis.recordImpact(atRisk: atRisk, aliveByVIP: aliveByVIP, vipSlots: slots)
    }

    /// The backend edit a scenario event makes (not for `forwarders=`).
    static func edit(_ event: ScenarioEvent) -> BackendEdit {
        switch event.action {
        case .remove: .remove(event.target)
        case .add: .add(event.target)
        case .drain: .drain(event.target)
        case .fail: .fail(event.target)
        case .recover: .recover(event.target)
        case .weight(let w): .weight(event.target, w)
        case .forwarders, .config: preconditionFailure("\(event.action.name) is not a backend edit")
        }
    }

    func backendConfigs() -> [String: BackendConfig] {
        var out: [String: BackendConfig] = [:]
        for vip in config.vips { for b in vip.backends { out[b.name] = b } }
        return out
    }

    func backendKeepsConnections(_ id: Int) -> Bool {
        guard snapshot.backendPresent[id], let b = backendConfigs()[snapshot.backendNames[id]] else { return false }
        return b.state != .down
    }

    func backendAddresses() -> [String] { snapshot.backendNames.indices.map { snapshot.address(ofBackend: $0).description } }

    func backendStates() -> [String] {
        let configs = backendConfigs()
        return snapshot.backendNames.map { configs[$0]?.state.description ?? "removed" }
    }

    /// Which backends the balance figures cover: those that own slots at the end in a VIP that
    /// saw traffic (an idle VIP's backends would only say the trace did not use that VIP).
    func backendOwnsSlots() -> [Bool] {
        var owns = Set<String>()
        for (v, vip) in config.vips.enumerated() where analysis.vipsWithTraffic.contains(Int32(snapshot.vipIDs[v])) {
            for b in vip.backends where b.state == .active && b.weight > 0 { owns.insert(b.name) }
        }
        return snapshot.backendNames.map { owns.contains($0) }
    }

    // MARK: Decisions CSV

    func decisionRow(_ index: Int, _ elapsedNs: UInt64, _ p: ParsedPacket?, _ forwarder: Int, _ v: Verdict) -> String {
        let time = "\(elapsedNs / 1_000_000_000).\(String(1_000_000_000 + elapsedNs % 1_000_000_000).dropFirst())"
        var fields = "\(index),\(time),"
        if let p {
            fields += "\(p.key.source),\(p.key.destination),\(p.key.proto),\(p.key.sourcePort),\(p.key.destinationPort),"
        } else {
            fields += ",,,,,"
        }
        let vip = v.vip >= 0 && Int(v.vip) < snapshot.vipNames.count ? snapshot.vipNames[Int(v.vip)] : ""
        let backend = v.backend >= 0 ? snapshot.backendNames[Int(v.backend)] : ""
        // Names are the only free text: quoted as RFC 4180 asks when they need it.
        return fields + "\(CSV.field(vip)),\(forwarder),\(CSV.field(backend)),\(v.label)\n"
    }

    /// Counts the packets of all inputs (a first pass, for events at N%).
    public static func countPackets(_ paths: [String]) throws(CaptureError) -> Int {
        let reader = try CaptureReader(paths: paths)
        var n = 0
        do {
            while try reader.next() != nil { n += 1 }
        } catch {
            return n
        }
        return n
    }
}

extension ReplayEngine {
    /// Runs the replay; with `compareAlgorithms`, runs it again for each table algorithm on the
    /// same trace and events (no outputs) and adds the comparison to the report.
    public static func replay(_ options: ReplayOptions, compareAlgorithms: Bool) throws -> (
        report: ReplayReport, captureError: CaptureError?
    ) {
        try ScenarioEvent.check(options.events, config: options.config, eventConfigs: options.eventConfigs)
        var report: ReplayReport
        var error: CaptureError?
        var outputError: OutputError?
        do {
            (report, error) = try ReplayEngine(options: options).run()
        } catch let e as OutputError {
            // An output failed after the start: finish the comparison, then throw with it all.
            guard let r = e.report else { throw e }
            report = r
            outputError = e
        }
        guard compareAlgorithms else {
            if var outputError {
                outputError.report = report
                throw outputError
            }
            return (report, error)
        }
        for algorithm in TableAlgorithm.allCases {
            var o = options
            o.config.dataplane.algorithm = algorithm
            for path in o.eventConfigs.keys { o.eventConfigs[path]?.dataplane.algorithm = algorithm }
            o.outputPcap = nil
            o.decisionsCSV = nil
            o.progress = nil
            let (r, _) = try ReplayEngine(options: o).run()
            report.comparison.append(.init(algorithm: algorithm.rawValue, balance: r.balance, events: r.events))
        }
        if var outputError {
            outputError.report = report
            throw outputError
        }
        return (report, error)
    }
}

/// One simulated forwarder's packets between two flushes: each frame copied into its own
/// buffer behind `ReplayEngine.headroom` bytes of headroom, parsed, with its time. Allocated
/// once per forwarder (`deallocate` when the engine goes); a struct of pointers, so reading
/// it per packet retains nothing.
struct ForwarderBatch {
    /// Packets per `Dataplane.process(parsedBatch:...)` call (its chunk: the bucket prefetch
    /// covers all of them).
    static let capacity = Dataplane.batchChunk
    /// The largest frame a batch takes; larger ones are replayed on their own.
    static let frameCapacity = stride - ReplayEngine.headroom
    static let stride = 2048
    let frames: UnsafeMutableRawPointer
    let slots: UnsafeMutablePointer<PacketSlot>
    let packets: UnsafeMutablePointer<ParsedPacket>
    let statuses: UnsafeMutablePointer<DropReason?>
    let nows: UnsafeMutablePointer<UInt64>
    /// Each parsed packet's `FlowTable.hash` for the analysis, computed as the packet is
    /// batched (when its flow's slot is prefetched); read for forwarded packets.
    let flowHashes: UnsafeMutablePointer<UInt64>
    /// Each parsed packet's `Dataplane.flowHashAndBucket` hash, computed as the packet is
    /// batched (when its connection-table bucket is prefetched) and handed to
    /// `process(parsedBatch:...)`.
    let dataplaneHashes: UnsafeMutablePointer<UInt64>
    /// Packets in the batch, behind a pointer so that appending through `batches[f]` is not a
    /// mutation of the array (no uniqueness check per packet).
    let counter: UnsafeMutablePointer<Int>
    var count: Int {
        get { counter.pointee }
        nonmutating set { counter.pointee = newValue }
    }

    init() {
        let n = ForwarderBatch.capacity
        frames = .allocate(byteCount: n * ForwarderBatch.stride, alignment: 64)
        slots = .allocate(capacity: n)
        packets = .allocate(capacity: n)
        packets.initialize(repeating: .zero, count: n)
        statuses = .allocate(capacity: n)
        statuses.initialize(repeating: nil, count: n)
        nows = .allocate(capacity: n)
        nows.initialize(repeating: 0, count: n)
        flowHashes = .allocate(capacity: n)
        flowHashes.initialize(repeating: 0, count: n)
        dataplaneHashes = .allocate(capacity: n)
        dataplaneHashes.initialize(repeating: 0, count: n)
        counter = .allocate(capacity: 1)
        counter.initialize(to: 0)
        for i in 0..<n {
            (slots + i).initialize(
                to: PacketSlot(base: frames + i * ForwarderBatch.stride, offset: ReplayEngine.headroom, length: 0))
        }
    }

    func deallocate() {
        frames.deallocate()
        slots.deallocate()
        packets.deallocate()
        statuses.deallocate()
        nows.deallocate()
        flowHashes.deallocate()
        dataplaneHashes.deallocate()
        counter.deallocate()
    }

    /// Appends `frame` (at most `frameCapacity` bytes), whose packet is `packets[count]` already.
    @inline(__always)
    func add(_ frame: UnsafeRawBufferPointer, status: DropReason?, now: UInt64) {
        let i = count
        (slots[i].base + ReplayEngine.headroom).copyMemory(from: frame.baseAddress!, byteCount: frame.count)
        slots[i].length = frame.count
        statuses[i] = status
        nows[i] = now
        count = i &+ 1
    }
}
