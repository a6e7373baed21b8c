import MaglevCore
import MaglevLinux
import Synchronization

/// What every worker loop (io_uring, mmsg) shares between batches: installing a published
/// snapshot and publishing its statistics. Never called per packet.
protocol WorkerControl: AnyObject {
    var link: WorkerLink { get }
    var mailbox: SnapshotMailbox { get }
    var cpu: Int? { get }
    var sockets: WorkerSockets { get }
    var dataplane: Dataplane { get }
    var installedGeneration: UInt64 { get set }
    var filterMode: VIPFilter.Mode { get set }
    var io: IOCounters { get set }
    /// How packets move: the io_uring mode, or "mmsg".
    var ioModeName: String { get }
}

extension WorkerControl {
    /// Installs the mailbox's snapshot (and its socket filter) between batches.
    func install(_ generation: UInt64) {
        let published = mailbox.current
        installedGeneration = generation
        dataplane.install(published.snapshot)
        io.snapshotsInstalled &+= 1
        do {
            try sockets.packet.attach(filter: published.filter)
            filterMode = published.filterMode
        } catch {
            io.filterUpdateErrors &+= 1
        }
    }

    /// Hands the batch's tracer records, if it held probes, to the trace reporter (one check of
    /// a count when it held none; a short lock and a copy when it did).
    @inline(__always)
    func handOffTraces() {
        dataplane.takeTraces { link.traces.push($0) }
    }

    /// Hands the control side a copy of this worker's counters when it asked for one.
    func publishStatistics() {
        let requested = link.statisticsRequested.load(ordering: .relaxed)
        if let kernel = try? sockets.packet.takeStatistics() { io.kernelDrops &+= kernel.drops }
        var s = WorkerStatistics(
            worker: link.id, cpu: cpu, ringMode: ioModeName, filterMode: filterMode.rawValue,
            dataplane: dataplane.statistics, io: io, connections: dataplane.connections.statistics)
        if link.connectionCountsRequested.load(ordering: .relaxed) {
            let nowMs = UInt32(truncatingIfNeeded: MonotonicClock.now() / 1_000_000)
            s.liveConnections = dataplane.connections.addLiveCounts(now: nowMs, into: &s.connectionsByBackend)
        }
        s.connectionCapacity = dataplane.connections.capacity
        link.statistics.withLock { $0 = s }
        link.statisticsServed.store(requested, ordering: .releasing)
    }
}

/// Pins the calling (worker) thread to `cpu` when one is asked for; returns the CPU it is pinned
/// to, or nil. A failure is not fatal: the worker is reported as unpinned in the statistics.
func pinCallingThread(to cpu: Int?) -> Int? {
    guard let cpu else { return nil }
    do throws(SystemError) {
        try ThreadContext.pin(toCPU: cpu)
        return cpu
    } catch {
        return nil
    }
}

/// The sockets every worker loop opens on its own thread: its packet socket in the fanout group
/// (filtered for the published VIPs) and the raw IP sockets for ICMP replies and `--send raw`
/// (no IPv6 one where the host has no IPv6).
final class WorkerSockets {
    let packet: PacketSocket
    let raw4: RawIPSocket
    let raw6: RawIPSocket
    let hasIPv6: Bool

    init(options: ForwarderOptions, filter: [BPFInstruction]) throws(ForwarderError) {
        let group = options.fanoutGroup ?? UInt16(truncatingIfNeeded: currentProcessID)
        do {
            packet = try PacketSocket(interface: options.interface, fanoutGroup: group, filter: filter)
            raw4 = try RawIPSocket(ipv6: false)
        } catch {
            throw ForwarderError.opening(error, interface: options.interface)
        }
        do {
            raw6 = try RawIPSocket(ipv6: true)
        } catch {
            raw6 = RawIPSocket.unavailable(ipv6: true)
        }
        hasIPv6 = raw6.isOpen
    }
}

/// A worker's own data plane for `snapshot`: its connection table backed by transparent huge
/// pages when the options ask for them.
func makeWorkerDataplane(snapshot: ForwardingSnapshot, options: ForwarderOptions) -> Dataplane {
    let memory =
        options.hugePages
        ? TableMemory(allocate: HugePageMemory.allocate, deallocate: HugePageMemory.deallocate) : .heap
    return Dataplane(snapshot: snapshot, connectionCapacity: options.connectionCapacity, memory: memory)
}
