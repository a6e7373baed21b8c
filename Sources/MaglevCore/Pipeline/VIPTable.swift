/// One VIP's lookup table, in the two forms its readers want, as one immutable, reference-counted
/// object that snapshots share: a reload that leaves a VIP's inputs alone hands the very same
/// object to the new snapshot (no rebuild, no copy), so a thousand VIPs cost one table build
/// when one of them changes, and two snapshots alive at once (a worker still on the old one)
/// hold one copy of each unchanged table.
///
/// - `slots`: slot -> stable backend id (`ForwardingSnapshot.noBackend` when no backend takes new
///   connections). What the per-packet path reads, through a raw pointer in `VIPMatch`: the
///   snapshot that points at it retains this object, so the pointer is valid while that
///   snapshot lives, and reading it costs no reference counting.
/// - `table` (slot -> index into `table.backends`) and `backendIDs` (index -> backend id): what
///   the control side reads (table diffs, reports). The same `LookupTable` value, and so the
///   same `entries` buffer, is handed on with the object.
///
/// Memory: 4 bytes per slot in `slots` plus 4 in `table.entries`: 512 KiB at M = 65537.
public final class VIPTable: @unchecked Sendable {
    // @unchecked: written once in init, only read afterwards; `slots` is never written after
    // init and is freed only in deinit.

    /// Everything the table is a function of. Two VIPs (or one VIP in two snapshots) with equal
    /// inputs have identical tables.
    struct Inputs: Equatable {
        /// Backends that take new connections (active, weight > 0), in config order.
        var backends: [BackendSpec]
        /// Their stable backend ids, in the same order.
        var backendIDs: [UInt32]
        var size: Int
        var algorithm: TableAlgorithm
        var options: TableOptions
    }

    let inputs: Inputs
    /// The lookup table over the eligible backends, or nil when none takes new connections.
    public let table: LookupTable?
    /// The backend id of each index of `table.backends`.
    public let backendIDs: [UInt32]
    let slots: UnsafeMutableBufferPointer<UInt32>

    /// Builds the table of `inputs`; a VIP without eligible backends gets one slot that says
    /// `noBackend`.
    init(_ inputs: Inputs) throws(TableError) {
        self.inputs = inputs
        guard !inputs.backends.isEmpty else {
            table = nil
            backendIDs = []
            slots = .allocate(capacity: 1)
            slots.initialize(repeating: ForwardingSnapshot.noBackend)
            return
        }
        let built = try LookupTableBuilder.build(
            inputs.algorithm, backends: inputs.backends, size: inputs.size, options: inputs.options)
        var idByName: [String: UInt32] = [:]
        for (b, id) in zip(inputs.backends, inputs.backendIDs) { idByName[b.name] = id }
        let ids = built.backends.map { idByName[$0.name]! }
        let slots = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: built.entries.count)
        built.entries.withUnsafeBufferPointer { entries in
            for s in 0..<entries.count {
                let e = entries[s]
                slots.initializeElement(at: s, to: e < 0 ? ForwardingSnapshot.noBackend : ids[Int(e)])
            }
        }
        self.table = built
        self.backendIDs = ids
        self.slots = slots
    }

    deinit { slots.deallocate() }

    /// Slots of the per-packet table (1 for a VIP without eligible backends).
    public var slotCount: Int { slots.count }

    /// Bytes of table storage this object holds: the per-packet slots and the lookup table's
    /// entries (backend lists and the object itself not counted).
    public var tableBytes: Int {
        slots.count * MemoryLayout<UInt32>.stride + (table?.entries.count ?? 0) * MemoryLayout<Int32>.stride
    }
}
