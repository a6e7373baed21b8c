import MaglevCore
import MaglevLinux
import Synchronization

/// What every worker loop (io_uring, mmsg) shares between batches: installing a published
/// snapshot and publishing its statistics. Never called per packet.
protocol WorkerControl: AnyObject {
    var link: WorkerLink { get }
    var mailbox: SnapshotMailbox { get }
    var cpu: Int? { get }
    var packetSocket: PacketSocket { get }
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
            try packetSocket.attach(filter: published.filter)
            filterMode = published.filterMode
        } catch {
            io.filterUpdateErrors &+= 1
        }
    }

    /// Hands the control side a copy of this worker's counters when it asked for one.
    func publishStatistics() {
        let requested = link.statisticsRequested.load(ordering: .relaxed)
        if let kernel = try? packetSocket.takeStatistics() { io.kernelDrops &+= kernel.drops }
        let s = WorkerStatistics(
            worker: link.id, cpu: cpu, ringMode: ioModeName, filterMode: filterMode.rawValue,
            dataplane: dataplane.statistics, io: io, connections: dataplane.connections.statistics)
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
