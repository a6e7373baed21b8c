// swift-tools-version:6.2
// swift-maglev: a software L4 load balancer after Google's Maglev (NSDI 2016).
// Arrows point one way: MaglevCore <- (drivers) <- MaglevCLI <- maglev. See docs/architecture.md.
import PackageDescription

let strict: [SwiftSetting] = [
    .treatAllWarnings(as: .error),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "swift-maglev",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "maglev", targets: ["maglev"]),
        .library(name: "MaglevCore", targets: ["MaglevCore"]),
        // The malloc counter as a library to preload: `maglev bench` runs itself again with
        // LD_PRELOAD of the one beside it to count allocations. Never linked into `maglev`.
        .library(name: "MaglevAllocationCounter", type: .dynamic, targets: ["CAllocationCounter"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
    ],
    targets: [
        // The pure data plane: no I/O, no clock, no Foundation, no C modules.
        // `BuiltinModule`: LLVM's prefetch intrinsic for the batch loops (ConnTrack/Prefetch.swift).
        .target(name: "MaglevCore", swiftSettings: strict + [.enableExperimentalFeature("BuiltinModule")]),

        // System libraries and the tiny C shim for macros Swift cannot import.
        .systemLibrary(
            name: "CLibURing", pkgConfig: "liburing",
            providers: [.apt(["liburing-dev"])]),
        .systemLibrary(
            name: "CLibPcap", pkgConfig: "libpcap",
            providers: [.apt(["libpcap-dev"])]),
        .target(name: "CMaglevShim", dependencies: ["CLibURing"]),
        // AF_XDP (`--io xdp`): the hand-assembled XDP program, loaded through libbpf, and the
        // workers' UMEM and rings through libxdp's xsk API.
        .target(
            name: "CMaglevXDP",
            linkerSettings: [.linkedLibrary("xdp"), .linkedLibrary("bpf")]),
        // Counts mallocs process-wide (interposes glibc's allocator): linked into the tests, and
        // preloaded by `maglev bench` (libMaglevAllocationCounter.so); never into `maglev`.
        .target(name: "CAllocationCounter"),

        // The only home of syscalls.
        .target(
            name: "MaglevLinux", dependencies: ["CLibURing", "CMaglevShim", "CMaglevXDP"],
            swiftSettings: strict),

        // The config file (YAML): schema, validation with file/line/field errors, snapshot input.
        .target(
            name: "MaglevConfig",
            dependencies: ["MaglevCore", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict),

        // The pure control side: desired state (config file + health overlay + operator
        // overlay), the backend edits live control and replay share, the health dampener, pool
        // selection, reload checks, the metric registry, the one JSON writer. No I/O, no clock.
        .target(
            name: "MaglevControl", dependencies: ["MaglevCore", "MaglevConfig"], swiftSettings: strict),

        // Offline replay of captures through the same Dataplane: capture I/O (libpcap),
        // scenarios, analysis, reports, synthetic traces.
        .target(
            name: "MaglevReplay", dependencies: ["MaglevCore", "MaglevConfig", "MaglevControl", "CLibPcap"],
            // Release builds skip the dynamic exclusivity checks on the analysis objects (15% of
            // replay time); debug builds, and so the tests, keep them.
            swiftSettings: strict + [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]),

        // Live forwarding: workers (one per core, io_uring batches), snapshot mailbox, signals,
        // statistics; and the backend-side GRE decapsulator.
        .target(
            name: "MaglevForwarder",
            dependencies: [
                "MaglevCore", "MaglevConfig", "MaglevControl", "MaglevLinux",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),

        // Argument parsing and printing only.
        .target(
            name: "MaglevCLI",
            dependencies: [
                "MaglevCore", "MaglevConfig", "MaglevControl", "MaglevReplay", "MaglevForwarder", "MaglevLinux",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict),
        // The Swift runtime and Foundation (which Yams and the config loader bring in) linked in
        // statically: resolving their symbols across ~20 shared libraries at every start took
        // ~10 ms of each command (`maglev replay` of a 1,000-packet capture: 20 ms). The static
        // Foundation libraries are named because nothing autolinks `_FoundationICU`;
        // CoreFoundation must come before it. System libraries (libc, libpcap, libxdp) stay shared,
        // so `maglev bench` still preloads its allocation counter over glibc's malloc.
        .executableTarget(
            name: "maglev", dependencies: ["MaglevCLI"], swiftSettings: strict,
            linkerSettings: [
                .unsafeFlags(["-static-stdlib"], .when(platforms: [.linux])),
                .linkedLibrary("Foundation", .when(platforms: [.linux])),
                .linkedLibrary("FoundationInternationalization", .when(platforms: [.linux])),
                .linkedLibrary("CoreFoundation", .when(platforms: [.linux])),
                .linkedLibrary("_FoundationICU", .when(platforms: [.linux])),
                .linkedLibrary("FoundationEssentials", .when(platforms: [.linux])),
                .linkedLibrary("_FoundationCShims", .when(platforms: [.linux])),
                .linkedLibrary("_FoundationCollections", .when(platforms: [.linux])),
            ]),

        // libFuzzer harness: `Tools/fuzz SECONDS` (builds with -sanitize=fuzzer -DFUZZING).
        .executableTarget(
            name: "MaglevFuzz", dependencies: ["MaglevCore"],
            swiftSettings: strict + [.unsafeFlags(["-parse-as-library"])]),

        .testTarget(
            name: "MaglevCoreTests", dependencies: ["MaglevCore", "CAllocationCounter"],
            swiftSettings: strict),
        .testTarget(
            name: "MaglevControlTests", dependencies: ["MaglevControl", "MaglevConfig", "MaglevCore"],
            swiftSettings: strict),
        .testTarget(
            name: "MaglevConfigTests", dependencies: ["MaglevConfig"], swiftSettings: strict),
        .testTarget(
            name: "MaglevReplayTests", dependencies: ["MaglevReplay", "MaglevConfig"], swiftSettings: strict),
        // The backend-side GRE decapsulator: header validation, and a live test in network
        // namespaces (root only).
        .testTarget(
            name: "MaglevDecapTests", dependencies: ["MaglevForwarder", "MaglevLinux", "MaglevCore"],
            swiftSettings: strict),
        .testTarget(
            name: "MaglevForwarderTests",
            dependencies: [
                "MaglevForwarder", "MaglevLinux", "MaglevCore", "MaglevConfig", "MaglevControl", "CAllocationCounter",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "MaglevCLITests", dependencies: ["MaglevCLI", "MaglevLinux", "MaglevForwarder"],
            swiftSettings: strict),
    ]
)
