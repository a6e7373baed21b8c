public import MaglevCore
import MaglevConfig
import MaglevLinux
import Synchronization

/// A start-up or reload problem, worded for the person running the forwarder: what is wrong
/// and what to do.
public struct ForwarderError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    static func opening(_ e: SystemError, interface: String) -> ForwarderError {
        if e.call.hasPrefix("if_nametoindex") {
            return ForwarderError(
                "no such interface '\(interface)' in this network namespace; list them with `ip link` "
                    + "(or run under `ip netns exec NAME`)")
        }
        if e.isPermissionDenied && e.call.hasPrefix("socket") {
            return ForwarderError(
                "\(e.call) was refused (\(e.reason)): the forwarder needs CAP_NET_RAW (and CAP_NET_ADMIN for "
                    + "buffer sizes); run it as root or grant them: `setcap cap_net_raw,cap_net_admin+ep $(which maglev)`")
        }
        if e.call.hasPrefix("io_uring") {
            if case .unavailable(_, let hint) = IORingProbe.check() {
                return ForwarderError("io_uring is not available: \(hint) (sysctl kernel.io_uring_disabled)")
            }
            if e.errno == 12 {  // ENOMEM
                return ForwarderError(
                    "\(e): not enough locked memory for the ring and its buffers; raise `ulimit -l` or use fewer buffers")
            }
        }
        return ForwarderError("cannot open the forwarder's sockets on '\(interface)': \(e)")
    }
}

/// The live forwarder: N pinned workers sharing an interface through a fanout group, a
/// snapshot mailbox they read between batches, reload and graceful stop.
public final class Forwarder: @unchecked Sendable {
    // @unchecked: mutable state (`current`, `threads`, `started`) is touched only by the one
    // control thread that owns the forwarder; workers see only the mailbox and their links.

    public let options: ForwarderOptions
    public let configPath: String?
    let mailbox: SnapshotMailbox
    let nextHops = NextHopMailbox()
    let links: [WorkerLink]
    /// Next-hop lookups for `--send packet` (opened in the workers' namespace by `start`).
    var resolver: NextHopResolver?
    /// The next-hop headers workers have (or will have after their next batch).
    var linkHeaders = LinkHeaders.empty
    var threads: [OSThread] = []
    /// `--io xdp`: the XDP program on the interface (attached by `start`, detached when the
    /// forwarder goes).
    var xdp: XDPProgram?
    /// Start-up findings the operator should see (logged as warnings by `maglev forward`).
    public private(set) var warnings: [String] = []
    /// The prefixes the XDP program steers: the VIPs (and the group address for redirects).
    var xdpPrefixes: [XDPProgram.Prefix]
    /// Stopping may be asked by the workers' service and by the runtime's final `stop()`.
    let joinLock = Mutex<Void>(())
    var current: ForwardingSnapshot
    let startTime: UInt64
    let startCPU: ProcessCPUTime

    /// Validates the config (builds its snapshot) without opening anything.
    public init(config: DataplaneConfig, configPath: String? = nil, options: ForwarderOptions) throws(ForwarderError) {
        guard options.workers >= 1 && options.workers <= 1024 else {
            throw ForwarderError("--workers must be between 1 and 1024 (got \(options.workers))")
        }
        guard options.bufferCount > 0 && options.bufferCount & (options.bufferCount - 1) == 0
            && options.bufferCount <= 32768
        else { throw ForwarderError("the buffer count must be a power of two up to 32768") }
        let snapshot: ForwardingSnapshot
        do {
            snapshot = try ForwardingSnapshot(config: config)
        } catch {
            throw ForwarderError("invalid config\(configPath.map { " \($0)" } ?? ""): \(error)")
        }
        self.options = options
        self.configPath = configPath
        self.current = snapshot
        let filter = VIPFilter.program(
            for: config.vips, mode: options.filterMode, redirects: Forwarder.redirectAddress(config, options))
        self.mailbox = SnapshotMailbox(.init(snapshot: snapshot, filter: filter.program, filterMode: filter.mode))
        self.xdpPrefixes = VIPFilter.xdpPrefixes(for: config.vips, redirects: Forwarder.redirectAddress(config, options))
        self.links = (0..<options.workers).map { WorkerLink(id: $0, zero: DataplaneStatistics()) }
        self.startTime = MonotonicClock.now()
        self.startCPU = ProcessCPUTime.now()
    }

    /// This forwarder's address in its forwarder group, where `fragments: redirect` sends it
    /// fragments (nil: no redirect, or `memberName` is not in the group).
    static func redirectAddress(_ config: DataplaneConfig, _ options: ForwarderOptions) -> IPAddress? {
        guard config.fragmentPolicy == .redirect, let name = options.memberName else { return nil }
        return config.forwarders.first { $0.name == name }?.address
    }

    /// The snapshot workers run (or will run after their next batch).
    public var snapshot: ForwardingSnapshot { current }

    /// How GRE leaves the workers (either loop).
    public var sendPath: ForwarderSend { options.send }

    /// Per backend id, where its packets go on the `packet` send path (next-hop MAC and
    /// interface, or why they take the raw socket); empty on the `raw` path.
    public var nextHopDescriptions: [String] { linkHeaders.descriptions }

    /// Looks up every backend's next hop again and publishes the Ethernet headers to the
    /// workers if anything changed (`packet` send path only; control side, about once a
    /// second and after each reload). Lookups mark missing or stale neighbours in use, so the
    /// kernel resolves them.
    public func refreshNextHops() { refreshNextHops(for: current) }

    func refreshNextHops(for snapshot: ForwardingSnapshot) {
        guard let resolver else { return }
        let addresses = (0..<snapshot.backendNames.count).map { snapshot.address(ofBackend: $0) }
        let outcomes = resolver.resolve(addresses.map(\.networkBytes))
        let headers = LinkHeaders(outcomes: outcomes, addresses: addresses)
        if headers != linkHeaders {
            linkHeaders = headers
            nextHops.publish(headers)
        }
    }

    /// Runs `body` on a thread of its own in the workers' network namespace (when they have
    /// one), as the workers open their sockets there, and returns its outcome. `what` names the
    /// work in errors about the thread itself.
    func inWorkersNamespace<T: Sendable>(
        _ what: String, _ body: @escaping @Sendable () throws(SystemError) -> T
    ) throws(ForwarderError) -> Result<T, SystemError> {
        let box = Mutex<Result<T, SystemError>?>(nil)
        let namespace = options.networkNamespace
        let run: @Sendable () -> Void = {
            do throws(SystemError) {
                if let namespace { try ThreadContext.enterNetworkNamespace(path: namespace) }
                let value = try body()
                box.withLock { $0 = .success(value) }
            } catch {
                box.withLock { $0 = .failure(error) }
            }
        }
        do {
            try OSThread(run).join()
        } catch {
            throw ForwarderError("cannot start the \(what): \(error)")
        }
        guard let outcome = box.withLock({ $0 }) else { throw ForwarderError("the \(what) did not finish") }
        return outcome
    }

    /// Opens the next-hop resolver in the workers' network namespace.
    func openResolver() throws(ForwarderError) {
        switch try inWorkersNamespace("next-hop resolver", { () throws(SystemError) in try NextHopResolver() }) {
        case .success(let r): resolver = r
        case .failure(let e): throw ForwarderError("cannot open the next-hop resolver (netlink): \(e); `--send raw` works without it")
        }
    }

    /// Starts the workers and waits until every one has its sockets and ring, or one failed
    /// (then the others are stopped and the first failure is thrown).
    public func start() throws(ForwarderError) {
        precondition(threads.isEmpty, "start() once")
        if sendPath == .packet {
            try openResolver()
            refreshNextHops()
        }
        if options.io == .xdp { try attachXDP() }
        let cpus = options.cpus ?? ThreadContext.allowedCPUs()
        for link in links {
            let cpu: Int? = cpus.isEmpty ? nil : cpus[link.id % cpus.count]
            let mailbox = self.mailbox
            let nextHops = self.nextHops
            let options = self.options
            let xdp = self.xdp
            do {
                threads.append(
                    try OSThread {
                        Forwarder.workerMain(
                            link: link, mailbox: mailbox, nextHops: nextHops, options: options, cpu: cpu, xdp: xdp)
                    })
            } catch {
                link.failure.withLock { $0 = ForwarderError("cannot start worker \(link.id): \(error)") }
                link.state.store(WorkerLink.State.failed.rawValue, ordering: .releasing)
            }
        }
        // Wait for every worker to report (control side: polling with sleeps is fine here).
        let deadline = MonotonicClock.now() + 30_000_000_000
        while links.contains(where: { $0.currentState == .starting }) && MonotonicClock.now() < deadline {
            sleepMilliseconds(2)
        }
        if let failed = links.first(where: { $0.currentState != .running }) {
            let error =
                failed.failure.withLock { $0 } ?? ForwarderError("worker \(failed.id) did not start within 30 s")
            _ = stop()
            throw error
        }
    }

    static func workerMain(
        link: WorkerLink, mailbox: SnapshotMailbox, nextHops: NextHopMailbox, options: ForwarderOptions, cpu: Int?,
        xdp: XDPProgram?
    ) {
        do throws(ForwarderError) {
            if let path = options.networkNamespace {
                do {
                    try ThreadContext.enterNetworkNamespace(path: path)
                } catch {
                    throw ForwarderError("cannot enter network namespace \(path): \(error)")
                }
            }
            switch options.io {
            case .ioUring:
                let worker = try Worker(link: link, mailbox: mailbox, nextHops: nextHops, options: options, cpu: cpu)
                link.state.store(WorkerLink.State.running.rawValue, ordering: .releasing)
                worker.run()
            case .mmsg:
                let worker = try MmsgWorker(link: link, mailbox: mailbox, nextHops: nextHops, options: options, cpu: cpu)
                link.state.store(WorkerLink.State.running.rawValue, ordering: .releasing)
                worker.run()
            case .ring, .ringFrames:
                let worker = try RingWorker(link: link, mailbox: mailbox, nextHops: nextHops, options: options, cpu: cpu)
                link.state.store(WorkerLink.State.running.rawValue, ordering: .releasing)
                worker.run()
            case .xdp:
                guard let xdp else { throw ForwarderError("--io xdp: the XDP program is not attached") }
                let worker = try XDPWorker(
                    link: link, mailbox: mailbox, nextHops: nextHops, options: options, cpu: cpu, program: xdp)
                link.state.store(WorkerLink.State.running.rawValue, ordering: .releasing)
                worker.run()
            }
        } catch {
            link.failure.withLock { $0 = error }
            link.state.store(WorkerLink.State.failed.rawValue, ordering: .releasing)
            return
        }
        link.state.store(WorkerLink.State.finished.rawValue, ordering: .releasing)
    }

    /// Builds a snapshot for `config` (backend ids kept stable from the running one) and
    /// publishes it; workers install it between batches. Throws (and keeps the running
    /// snapshot) when the config is invalid.
    public func publish(_ config: DataplaneConfig) throws(ForwarderError) {
        let snapshot: ForwardingSnapshot
        do {
            snapshot = try ForwardingSnapshot(config: config, previous: current)
        } catch {
            throw ForwarderError("invalid config: \(error)")
        }
        current = snapshot
        // Next hops for new backends first, so their first packets can take the frame path.
        refreshNextHops(for: snapshot)
        let filter = VIPFilter.program(
            for: config.vips, mode: options.filterMode, redirects: Forwarder.redirectAddress(config, options))
        mailbox.publish(.init(snapshot: snapshot, filter: filter.program, filterMode: filter.mode))
        xdpPrefixes = VIPFilter.xdpPrefixes(for: config.vips, redirects: Forwarder.redirectAddress(config, options))
        if let xdp {
            do {
                try xdp.setPrefixes(xdpPrefixes)
            } catch {
                throw ForwarderError("the XDP program's VIP prefixes could not be updated: \(error)")
            }
        }
    }

    /// Loads the XDP program and attaches it to the interface (in the workers' namespace), with
    /// the config's VIP prefixes.
    func attachXDP() throws(ForwarderError) {
        let prefixes = xdpPrefixes
        guard prefixes.count <= XDPProgram.maximumPrefixes else {
            throw ForwarderError(
                "--io xdp steers at most \(XDPProgram.maximumPrefixes) VIP prefixes (this config has \(prefixes.count))")
        }
        let interface = options.interface
        let queues = max(64, options.workers)
        let mode = options.xdpMode
        let loaded = try inWorkersNamespace("XDP loader") { () throws(SystemError) in
            let rx = try XDPProgram.receiveQueues(interface: interface)
            let p = try XDPProgram(interface: interface, maximumQueues: queues, mode: mode)
            try p.setPrefixes(prefixes)
            return (p, rx, XDPProgram.mergesReceivedFrames(interface: interface) ?? false)
        }
        switch loaded {
        case .success(let (p, rx, gro)):
            // A queue without a socket would pass its VIP packets to the kernel (lost).
            guard rx == options.workers else {
                throw ForwarderError(
                    "--io xdp runs one worker per receive queue, and '\(interface)' has \(rx) (--workers is "
                        + "\(options.workers)): use --workers \(rx), or set the queue count with "
                        + "`ethtool -L \(interface) combined \(options.workers)`")
            }
            xdp = p
            if !p.isNative && gro {
                warnings.append(
                    "--io xdp runs in generic mode on '\(interface)', which merges received frames (GRO): a merged "
                        + "frame over 1,792 bytes does not fit a UMEM frame and is dropped (kernel_drops); turn GRO "
                        + "off (`ethtool -K \(interface) gro off`) or use a driver with native XDP")
            }
        case .failure(let e): throw XDPWorker.attachError(e, interface: interface)
        }
    }

    /// Asks every worker for its counters and waits (up to `timeoutMilliseconds`) for them.
    /// `countConnections`: each worker also counts its live connections per backend (one scan of
    /// its connection table, between batches).
    public func statistics(timeoutMilliseconds: Int = 1000, countConnections: Bool = false) -> ForwarderStatistics {
        let targets = requestStatistics(countConnections: countConnections)
        _ = waitServed(targets, timeoutMilliseconds: timeoutMilliseconds)
        return collect()
    }

    /// The same, with the wait on a thread of its own: the caller's (Swift concurrency) thread
    /// is not blocked while the workers finish their batches.
    public func statisticsAsync(timeoutMilliseconds: Int = 1000, countConnections: Bool = false) async -> ForwarderStatistics {
        let targets = requestStatistics(countConnections: countConnections)
        let links = self.links
        _ = await offThread { Forwarder.waitServed(links, targets, timeoutMilliseconds: timeoutMilliseconds) }
        return collect()
    }

    /// Asks every worker for its counters; returns the request numbers to wait for.
    func requestStatistics(countConnections: Bool) -> [UInt64] {
        links.map { link in
            link.connectionCountsRequested.store(countConnections, ordering: .relaxed)
            return link.statisticsRequested.add(1, ordering: .relaxed).newValue
        }
    }

    func waitServed(_ targets: [UInt64], timeoutMilliseconds: Int) -> Bool {
        Forwarder.waitServed(links, targets, timeoutMilliseconds: timeoutMilliseconds)
    }

    /// Waits (polling every millisecond, up to the timeout) until every running worker served
    /// its request; true when all did. Reads atomics only.
    static func waitServed(_ links: [WorkerLink], _ targets: [UInt64], timeoutMilliseconds: Int) -> Bool {
        let deadline = MonotonicClock.now() + UInt64(timeoutMilliseconds) * 1_000_000
        var all = true
        for (link, target) in zip(links, targets) {
            while link.statisticsServed.load(ordering: .acquiring) < target {
                if link.currentState != .running || MonotonicClock.now() >= deadline {
                    all = false
                    break
                }
                sleepMilliseconds(1)
            }
        }
        return all
    }

    func collect() -> ForwarderStatistics {
        let snapshot = current
        let names = snapshot.backendNames
        let addresses = (0..<names.count).map { snapshot.address(ofBackend: $0).description }
        return ForwarderStatistics(
            elapsedSeconds: Double(MonotonicClock.now() - startTime) / 1e9,
            workers: links.map { l in l.statistics.withLock { $0 } },
            vipNames: snapshot.vipNames, backendNames: names, backendAddresses: addresses,
            cpuNanoseconds: ProcessCPUTime.now().totalNanoseconds - startCPU.totalNanoseconds,
            sendPath: sendPath.rawValue, nextHops: linkHeaders.descriptions)
    }

    /// Whether every worker runs and answers a statistics request within `timeoutMilliseconds`
    /// (a stalled loop does not: it only serves requests between batches). Waits on a thread of
    /// its own. Never asks for a connection-table scan.
    public func workersProgressing(timeoutMilliseconds: Int = 500) async -> Bool {
        guard stoppedWorker == nil else { return false }
        let targets = requestStatistics(countConnections: false)
        let links = self.links
        return await offThread { Forwarder.waitServed(links, targets, timeoutMilliseconds: timeoutMilliseconds) }
    }

    /// Why a worker is no longer running (nil while every one runs). Safe from any thread.
    public var stoppedWorker: String? {
        guard let link = links.first(where: { $0.currentState != .running }) else { return nil }
        let failure = link.failure.withLock { $0 }
        return "worker \(link.id) \(link.currentState == .finished ? "stopped" : "failed")"
            + (failure.map { ": \($0.message)" } ?? "")
    }

    /// Stops and joins the workers (the workers' service, at the end of a graceful stop).
    func stopWorkers() {
        for link in links { link.stopRequested.store(true, ordering: .relaxed) }
        joinLock.withLock { _ in
            for t in threads { t.join() }
            threads.removeAll()
        }
    }

    /// Stops the workers (each finishes its in-flight sends), joins them and returns the final
    /// counters.
    @discardableResult
    public func stop() -> ForwarderStatistics {
        stopWorkers()
        xdp = nil  // detaches the XDP program (its link closes)
        return collect()
    }

}

func sleepMilliseconds(_ ms: Int) { ThreadContext.sleep(milliseconds: ms) }

/// Runs a blocking `body` on a new thread and returns its result, so that no Swift concurrency
/// thread waits (the control side's few blocking waits: workers finishing a batch).
func offThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
        do {
            try OSThread { continuation.resume(returning: body()) }.detach()
        } catch {
            continuation.resume(returning: body())  // no thread: wait here rather than fail
        }
    }
}
