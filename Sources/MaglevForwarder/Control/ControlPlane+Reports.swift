import MaglevConfig
public import MaglevControl
import MaglevCore
import MaglevLinux

// What the admin API serves: `/status` (JSON) and `/metrics` (Prometheus text).
extension ControlPlane {
    /// Current counters, with live connections per backend (one table scan per worker).
    func freshStatistics() async -> ForwarderStatistics {
        let stats = await forwarder.statisticsAsync(countConnections: true)
        updateConnections(stats)
        return stats
    }

    /// Health of a backend over every check target at its address: "up", "down" or "unchecked".
    func health(of name: String, address: IPAddress) -> String {
        if state.failed.contains(name) { return "down" }
        let targets = state.healthTargets.filter { $0.address == address }
        if targets.isEmpty { return "unchecked" }
        return targets.contains { state.healthDown.contains($0) } ? "down" : "up"
    }

    func holdLabel(_ hold: OperatorHold?, name: String) -> String? {
        switch hold {
        case nil: nil
        case .draining?: drained.contains(name) ? "drained" : "draining"
        case .drainExpired?: "drain-expired"
        }
    }

    /// Slots per backend name in VIP `v`'s running table.
    func slots(vip v: Int) -> [String: Int] {
        let snapshot = forwarder.snapshot
        guard v < snapshot.tables.count, let table = snapshot.tables[v] else { return [:] }
        var result: [String: Int] = [:]
        for (i, n) in table.slotCounts().enumerated() { result[table.backends[i].name] = n }
        return result
    }

    /// `GET /status`.
    public func status() async -> JSONValue {
        let stats = await freshStatistics()
        let vips = state.vips
        var backendStates: [String: BackendState] = [:]
        var vipItems: [JSONValue] = []
        for (v, vip) in vips.enumerated() {
            let slotCounts = slots(vip: v)
            let config = state.file.dataplane.vips[v]
            for b in vip.backends {
                let rank: (BackendState) -> Int = { $0 == .active ? 2 : $0 == .draining ? 1 : 0 }
                if rank(b.state) >= rank(backendStates[b.name] ?? .down) { backendStates[b.name] = b.state }
            }
            let pools: [JSONValue] = vip.pools.map { pool in
                .object([
                    ("name", .string(pool.name)), ("check", JSONValue(pool.check?.summary)),
                    ("min_healthy", .string(pool.minHealthy.description)), ("required", JSONValue(pool.required)),
                    ("available", JSONValue(pool.available)), ("qualifies", .bool(pool.qualifies)),
                    ("serving", .bool(vip.serving == pool.name)),
                    (
                        "backends",
                        .array(
                            pool.members.map { m in
                                .object([
                                    ("name", .string(m.name)), ("address", .string(m.address.description)),
                                    ("weight", .uint(UInt64(m.weight))), ("state", .string(m.state.description)),
                                    ("health", .string(m.healthy.map { $0 ? "up" : "down" } ?? "unchecked")),
                                    ("hold", JSONValue(holdLabel(m.hold, name: m.name))),
                                    ("slots", JSONValue(vip.serving == pool.name ? slotCounts[m.name] ?? 0 : 0)),
                                ])
                            })
                    ),
                ])
            }
            vipItems.append(
                .object([
                    ("name", .string(vip.name)), ("address", .string(config.address.description)),
                    ("prefix_length", JSONValue(config.prefixLength)),
                    ("protocol", config.proto.map { .int(Int64($0)) } ?? .null),
                    ("port", config.port.map { .int(Int64($0)) } ?? .null),
                    ("usable", .bool(vip.usable)), ("serving_pool", JSONValue(vip.serving)),
                    ("fail_open", .bool(vip.failingOpen)), ("when_all_down", .string(vip.whenAllDown.rawValue)),
                    ("pools", .array(pools)),
                ]))
        }
        var addressByName: [String: IPAddress] = [:]
        for p in state.file.pools { for b in p.backends { addressByName[b.name] = b.address } }
        for b in state.added { addressByName[b.name] = b.address }
        let backendItems: [JSONValue] = state.backendNames.map { name in
            let address = addressByName[name]!
            let checks: [JSONValue] = state.healthTargets.filter { $0.address == address }.map { t in
                let record = dampeners[t]?.record
                return .object([
                    ("check", .string(t.checkLabel)), ("up", .bool(!state.healthDown.contains(t))),
                    ("successes", .uint(record?.successes ?? 0)), ("failures", .uint(record?.failures ?? 0)),
                    ("last_error", JSONValue(record?.lastError)),
                    ("last_change_ms", record?.lastChangeMs.map { .uint($0) } ?? .null),
                ])
            }
            return .object([
                ("name", .string(name)), ("address", .string(address.description)),
                ("health", .string(health(of: name, address: address))),
                ("state", .string(state.removed.contains(name) ? "removed" : (backendStates[name] ?? .down).description)),
                ("hold", JSONValue(holdLabel(state.holds[name], name: name))),
                ("connections", .uint(connections[name] ?? 0)), ("checks", .array(checks)),
            ])
        }
        let workers: [JSONValue] = zip(forwarder.links, stats.workers).map { link, w in
            .object([
                ("id", JSONValue(w.worker)), ("state", .string("\(link.currentState)")),
                ("cpu", w.cpu.map { JSONValue($0) } ?? .null), ("io", .string(w.ringMode)),
                ("received", .uint(w.io.received)), ("forwarded", .uint(w.dataplane.forwarded)),
                ("kernel_drops", .uint(w.io.kernelDrops)), ("connections", JSONValue(w.liveConnections)),
                ("connection_capacity", JSONValue(w.connectionCapacity)),
            ])
        }
        return .object([
            ("generation", .uint(state.generation)), ("config", JSONValue(configPath)),
            ("uptime_seconds", .double(stats.elapsedSeconds)), ("send_path", .string(stats.sendPath)),
            ("vips", .array(vipItems)), ("backends", .array(backendItems)), ("workers", .array(workers)),
            ("bgp", bgpStatus()),
            (
                "reloads",
                .object(["applied", "rejected", "refused"].map { ($0, .uint(reloadCounts[$0] ?? 0)) })
            ),
        ])
    }

    /// `GET /metrics`: every family of `MaglevMetrics`.
    public func metrics() async -> String {
        let stats = await freshStatistics()
        var m = MetricsExposition()
        let vips = state.vips
        let total = stats.totalDataplane
        // Per VIP (counters by stable VIP id, labelled by name).
        for (v, name) in stats.vipNames.enumerated() where v < total.vips.count {
            m.add(MaglevMetrics.vipPackets, [name], total.vips[v].packets)
        }
        for (v, name) in stats.vipNames.enumerated() where v < total.vips.count {
            m.add(MaglevMetrics.vipBytes, [name], total.vips[v].bytes)
        }
        for vip in vips { m.add(MaglevMetrics.vipUsable, [vip.name], vip.usable) }
        for vip in vips { m.add(MaglevMetrics.vipFailOpen, [vip.name], vip.failingOpen) }
        // Per VIP and backend.
        m.add(MaglevMetrics.pairCountersEnabled, [], total.pairsCounted)
        for load in stats.vipBackendLoads {
            m.add(MaglevMetrics.backendPackets, [load.vip, load.backend], load.load.packets)
        }
        for load in stats.vipBackendLoads {
            m.add(MaglevMetrics.backendBytes, [load.vip, load.backend], load.load.bytes)
        }
        for vip in vips {
            for pool in vip.pools {
                for member in pool.members {
                    m.add(MaglevMetrics.backendUp, [vip.name, pool.name, member.name], member.healthy ?? true)
                }
            }
        }
        for vip in vips {
            for b in vip.backends {
                m.add(MaglevMetrics.backendTakesNew, [vip.name, b.name], b.state == .active && b.weight > 0)
            }
        }
        for name in state.backendNames { m.add(MaglevMetrics.backendConnections, [name], connections[name] ?? 0) }
        for reason in DropReason.allCases { m.add(MaglevMetrics.drops, [reason.description], total.count(reason)) }
        for w in stats.workers { m.add(MaglevMetrics.connectionEntries, ["\(w.worker)"], UInt64(w.liveConnections)) }
        for w in stats.workers { m.add(MaglevMetrics.connectionCapacity, ["\(w.worker)"], UInt64(w.connectionCapacity)) }
        for w in stats.workers {
            let c = w.connections
            for (label, n) in [
                ("half_open", c.evictedHalfOpen), ("established", c.evictedEstablished), ("closing", c.evictedClosing),
                ("datagram", c.evictedDatagram), ("fragment", c.evictedFragment),
            ] {
                m.add(MaglevMetrics.connectionEvictions, ["\(w.worker)", label], n)
            }
        }
        for w in stats.workers { m.add(MaglevMetrics.connectionInsertsRefused, ["\(w.worker)"], w.connections.insertsRefused) }
        let targets = state.healthTargets
        for t in targets {
            let name = backendNames(at: t.address).joined(separator: ",")
            let counts = probeCounts[t] ?? (0, 0)
            m.add(MaglevMetrics.healthChecks, [name, t.checkLabel, "success"], counts.ok)
            m.add(MaglevMetrics.healthChecks, [name, t.checkLabel, "failure"], counts.failed)
        }
        for t in targets {
            let name = backendNames(at: t.address).joined(separator: ",")
            let counts = transitionCounts[t] ?? (0, 0)
            m.add(MaglevMetrics.healthTransitions, [name, t.checkLabel, "up"], counts.up)
            m.add(MaglevMetrics.healthTransitions, [name, t.checkLabel, "down"], counts.down)
        }
        for result in ["applied", "rejected", "refused"] {
            m.add(MaglevMetrics.configReloads, [result], reloadCounts[result] ?? 0)
        }
        m.add(MaglevMetrics.configGeneration, [], state.generation)
        for w in stats.workers { m.add(MaglevMetrics.kernelDrops, ["\(w.worker)"], w.io.kernelDrops) }
        for w in stats.workers { m.add(MaglevMetrics.workerPackets, ["\(w.worker)"], w.io.received) }
        for w in stats.workers { m.add(MaglevMetrics.sendErrors, ["\(w.worker)"], w.io.sendErrors) }
        m.add(MaglevMetrics.tracedPackets, [], total.traced)
        if state.file.dataplane.fragmentPolicy == .redirect {
            m.add(MaglevMetrics.fragments, ["redirected"], total.fragmentsRedirected)
            m.add(MaglevMetrics.fragments, ["redirect_received"], total.redirectsReceived)
            m.add(MaglevMetrics.fragments, ["held"], total.fragmentsHeld)
            m.add(MaglevMetrics.fragments, ["held_released"], total.heldReleased)
        }
        if let t = traceCounters {
            m.add(MaglevMetrics.traceReports, ["sent"], t.reportsSent)
            m.add(MaglevMetrics.traceReports, ["rate_limited"], t.reportsRateLimited)
            m.add(MaglevMetrics.traceReports, ["send_error"], t.reportSendErrors)
            m.add(MaglevMetrics.traceReports, ["queue_dropped"], t.recordsDroppedInQueues + total.tracesOverflowed)
        }
        for link in forwarder.links { m.add(MaglevMetrics.workerUp, ["\(link.id)"], link.currentState == .running) }
        if state.file.bgp != nil {
            m.add(MaglevMetrics.bgpAnnouncing, [], withdrawReason == nil)
            let peers = bgpPeers.keys.sorted()
            for p in peers { m.add(MaglevMetrics.bgpSessionUp, [p], bgpPeers[p]!.established) }
            for p in peers { m.add(MaglevMetrics.bgpAnnouncedRoutes, [p], UInt64(bgpPeers[p]!.announced.count)) }
            for p in peers { m.add(MaglevMetrics.bgpUpdatesSent, [p], bgpPeers[p]!.updatesSent) }
        }
        return m.text
    }
}

extension ControlPlane {
    func bgpStatus() -> JSONValue {
        guard let bgp = state.file.bgp else { return .null }
        let sessions: [JSONValue] = bgpPeers.keys.sorted().map { key in
            let p = bgpPeers[key]!
            return .object([
                ("peer", .string(p.peer)), ("remote_as", .uint(UInt64(p.remoteAS))), ("state", .string(p.state)),
                ("established", .bool(p.established)), ("announced", .array(p.announced.map { .string($0) })),
                ("updates_sent", .uint(p.updatesSent)), ("last_error", JSONValue(p.lastError)),
                ("state_seconds", p.sinceMs == 0 ? .null : .fixed(Double(MonotonicClock.now() / 1_000_000 &- p.sinceMs) / 1000, digits: 1)),
            ])
        }
        return .object([
            ("local_as", .uint(UInt64(bgp.localAS))), ("router_id", .string(bgp.routerID.description)),
            ("announcing", .bool(withdrawReason == nil)), ("withdraw_reason", JSONValue(withdrawReason)),
            ("vips", .array(announcedVIPs().map { .string($0.description) })), ("sessions", .array(sessions)),
        ])
    }
}
