import MaglevControl
import MaglevCore

/// `maglev bench snapshots`: what a config of many VIPs costs the control side. Builds `vips`
/// VIPs (`vip-N`) of `backends` backends each (`be-N-K`) at table size `tableSize` from
/// scratch, then reloads it with one VIP's backends changed (built with `previous:`, so only
/// that VIP's table is rebuilt), and reports the table storage the snapshot holds.
struct SnapshotBench {
    let vips: Int
    let backends: Int
    let tableSize: Int
    /// Reloads timed (the median is reported).
    let reloads: Int

    struct Results {
        var vips = 0
        var backends = 0
        var tableSize = 0
        var fullBuildMs = 0.0
        var reloadMs = 0.0
        var reloadRuns = 0
        var tablesRebuilt = 0
        var tableBytes = 0

        var tableBytesPerVIP: Int { tableBytes / max(1, vips) }

        var json: JSONValue {
            .object([
                ("snapshot_vips", JSONValue(vips)),
                ("snapshot_backends_per_vip", JSONValue(backends)),
                ("snapshot_table_size", JSONValue(tableSize)),
                ("snapshot_full_build_ms", .fixed(fullBuildMs, digits: 1)),
                ("snapshot_one_vip_reload_ms", .fixed(reloadMs, digits: 3)),
                ("snapshot_reload_tables_rebuilt", JSONValue(tablesRebuilt)),
                ("snapshot_table_bytes_per_vip", JSONValue(tableBytesPerVIP)),
                ("snapshot_table_bytes_total", JSONValue(tableBytes)),
                ("build", .string(DataplaneBench.buildKind)),
            ])
        }

        var text: String {
            func f(_ v: Double, _ d: Int) -> String { JSONValue.number(v, digits: d) }
            func mib(_ bytes: Int) -> String { f(Double(bytes) / 1_048_576, 1) + " MiB" }
            var lines = [
                "maglev bench snapshots (\(DataplaneBench.buildKind) build, one thread)",
                "  config             \(vips) VIPs x \(backends) backends, M = \(tableSize)",
                "  full build         \(f(fullBuildMs, 1)) ms",
                "  one-VIP reload     \(f(reloadMs, 3)) ms (median of \(reloadRuns); \(tablesRebuilt) table rebuilt, the others shared)",
                "  table storage      \(tableBytesPerVIP) bytes per VIP (\(tableSize) slots x 4 B per-packet ids + 4 B lookup-table entries), \(mib(tableBytes)) in all",
            ]
            if DataplaneBench.buildKind == "debug" {
                lines.append("  note: debug build; run `swift build -c release` and .build/release/maglev bench snapshots for real figures")
            }
            return lines.joined(separator: "\n")
        }
    }

    func config(changing changed: Int? = nil, variant: Int = 0) -> DataplaneConfig {
        var list: [VIPConfig] = []
        list.reserveCapacity(vips)
        for n in 0..<vips {
            var pool: [BackendConfig] = []
            for k in 0..<backends {
                pool.append(
                    BackendConfig(name: "be-\(n)-\(k)", address: IPAddress(ipv4: 0x0A00_0000 | UInt32(n * backends + k))))
            }
            if n == changed {
                // A reload of this VIP: one backend out (which one varies per run), one new one in.
                pool.remove(at: variant % backends)
                pool.append(BackendConfig(name: "be-\(n)-new", address: IPAddress(ipv4: 0x0B00_0000 | UInt32(n))))
            }
            list.append(
                VIPConfig(
                    name: "vip-\(n)", address: IPAddress(ipv4: 0xC613_0000 | UInt32(n)), proto: IPProtocol.tcp,
                    port: 80, backends: pool))
        }
        return DataplaneConfig(vips: list, tableSize: tableSize, encapSourceIPv4: IPAddress("198.18.0.2")!)
    }

    func run() throws -> Results {
        var r = Results()
        r.vips = vips
        r.backends = backends
        r.tableSize = tableSize
        let clock = ContinuousClock()

        let base = config()
        let start = clock.now
        let first = try ForwardingSnapshot(config: base)
        r.fullBuildMs = (clock.now - start).seconds * 1000
        r.tableBytes = first.vipTables.reduce(0) { $0 + $1.tableBytes }

        // Each reload changes VIP vips/2 from the base config (configs built outside the timing).
        var times: [Double] = []
        var previous = first
        for run in 0..<reloads {
            let next = config(changing: vips / 2, variant: run)
            let t0 = clock.now
            let snapshot = try ForwardingSnapshot(config: next, previous: previous)
            times.append((clock.now - t0).seconds * 1000)
            r.tablesRebuilt = zip(snapshot.vipTables, previous.vipTables).filter { $0 !== $1 }.count
            previous = snapshot
        }
        r.reloadRuns = times.count
        r.reloadMs = times.sorted()[times.count / 2]
        return r
    }
}
