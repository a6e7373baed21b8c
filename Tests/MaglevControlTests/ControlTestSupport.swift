import MaglevConfig
import MaglevControl
import MaglevCore
import Testing

/// The repository root, found from this file's path.
let repositoryRoot: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)  // Tests/MaglevControlTests/ControlTestSupport.swift
    return parts.joined(separator: "/")
}()

func address(_ text: String) -> IPAddress { IPAddress(text)! }

/// Parses a config that must be valid (the test fails with every problem otherwise).
func config(_ yaml: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> MaglevConfigFile {
    do {
        return try MaglevConfigFile.parse(yaml: yaml, path: "t.yaml")
    } catch {
        Issue.record("config does not load:\n\(error)", sourceLocation: sourceLocation)
        throw error
    }
}

/// Two pools behind one VIP: `main` (a-d, tcp check, 50% must be healthy) preferred, then
/// `backup` (x, y, http check, 1 must be healthy). `extra` is inserted at the VIP's end
/// (e.g. `, when_all_down: drop`).
func twoPoolYAML(
    main: String = """
              - { name: a, address: 198.18.1.1 }
              - { name: b, address: 198.18.1.2 }
              - { name: c, address: 198.18.1.3 }
              - { name: d, address: 198.18.1.4 }
        """,
    minHealthy: String = "50%", mainCheck: String = "{ type: tcp }", hashSeed: Int = 0, extra: String = ""
) -> String {
    """
    encap: { source_ipv4: 198.18.0.2 }
    table_size: 251
    hash_seed: \(hashSeed)
    pools:
      main:
        backends:
    \(main)
        health_check: \(mainCheck)
        min_healthy: \(minHealthy)
      backup:
        backends:
          - { name: x, address: 198.18.2.1 }
          - { name: y, address: 198.18.2.2 }
        health_check: { type: http, path: /healthz }
    vips:
      - { name: web, address: 198.19.0.10, protocol: tcp, port: 80, pools: [main, backup]\(extra) }

    """
}

extension DesiredState {
    /// The health target of backend `name` in pool `pool` (the pool's check at its address).
    func target(_ name: String, pool: String) -> HealthTarget {
        let p = file.pool(named: pool)!
        let b = (p.backends + added).first { $0.name == name }!
        return HealthTarget(address: b.address, check: p.healthCheck!)
    }

    /// Marks backends down (or up) by their pool's check, as the dampener would.
    mutating func health(_ names: [String], pool: String, up: Bool) {
        for n in names { setHealth(target(n, pool: pool), up: up) }
    }

    /// The only VIP's backends as "name:state" strings (compare with ==).
    var summary: [String] { vips[0].backends.map { "\($0.name):\($0.state)" } }

    /// Member `name` of pool `pool` of the first VIP.
    func member(_ name: String, pool: String) -> Member? {
        vips[0].pools.first { $0.name == pool }?.members.first { $0.name == name }
    }
}
