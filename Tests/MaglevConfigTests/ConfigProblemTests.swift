import MaglevConfig
import MaglevCore
import Testing

/// The problems of `yaml` (parsed as "t.yaml"); none if it loads.
func problems(_ yaml: String) -> [ConfigProblem] {
    do {
        _ = try MaglevConfigFile.parse(yaml: yaml, path: "t.yaml")
        return []
    } catch {
        return error.problems
    }
}

/// Expects exactly one problem, at `line`:`column` on `field`, whose message contains `message`.
func expectOne(
    _ yaml: String, _ line: Int, _ column: Int, _ field: String, _ message: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let found = problems(yaml)
    #expect(found.count == 1, "\(found)", sourceLocation: sourceLocation)
    guard let p = found.first else { return }
    #expect(p.file == "t.yaml", sourceLocation: sourceLocation)
    #expect((p.line, p.column) == (line, column), "\(p)", sourceLocation: sourceLocation)
    #expect(p.field == field, "\(p)", sourceLocation: sourceLocation)
    #expect(p.message.contains(message), "\(p)", sourceLocation: sourceLocation)
}

/// A valid file to break one line of: line 1 is `encap`, VIPs start at line 6.
let header = """
    encap: { source_ipv4: 198.18.0.2, source_ipv6: "2001:db8::2" }
    pools:
      web:
        - { name: web-1, address: 198.18.1.1 }
        - { name: web-2, address: 198.18.1.2 }
    vips:

    """

@Suite struct ConfigProblemTests {
    @Test func baseIsValid() {
        #expect(problems(header + "  - { name: v, address: 198.19.0.10, pool: web }\n").isEmpty)
    }

    @Test func descriptionFormat() {
        let p = ConfigProblem(file: "a.yaml", line: 3, column: 5, field: "vips[0].port", message: "bad")
        #expect(p.description == "a.yaml:3:5: vips[0].port: bad")
        let whole = ConfigProblem(file: "a.yaml", line: 0, column: 0, field: "", message: "cannot read")
        #expect(whole.description == "a.yaml:0:0: cannot read")
    }

    @Test func unknownKeysSuggestTheKnownOne() {
        expectOne(header + "  - { name: v, address: 198.19.0.10, pool: web }\nvip: []\n", 8, 1, "vip", "unknown key 'vip' (did you mean 'vips'?)")
        expectOne("tabel_size: 7\n" + header + "  - { name: v, address: 198.19.0.10, pool: web }\n", 1, 1, "tabel_size",
            "did you mean 'table_size'?")
        expectOne(header + "  - { name: v, adress: 198.19.0.10, address: 198.19.0.1, pool: web }\n", 7, 16,
            "vips[0].adress", "unknown key 'adress' in vips[0] (did you mean 'address'?)")
        expectOne(header + "  - { name: v, address: 198.19.0.10, pool: web, colour: red }\n", 7, 49, "vips[0].colour",
            "known keys: 'name', 'address'")
    }

    @Test func wrongTypesNameTheExpectedType() {
        expectOne("table_size: big\n" + header + "  - { name: v, address: 198.19.0.10, pool: web }\n", 1, 13,
            "table_size", "expected a prime table size, got 'big'")
        expectOne("path_mtu: \"1500\"\n" + header + "  - { name: v, address: 198.19.0.10, pool: web }\n", 1, 11,
            "path_mtu", "expected an integer, got the string \"1500\"")
        expectOne("icmp: 5\n" + header + "  - { name: v, address: 198.19.0.10, pool: web }\n", 1, 7, "icmp",
            "expected a mapping, got '5'")
        expectOne(header + "  - { name: v, address: 198.19.0.10, backends: web }\n", 7, 48, "vips[0].backends",
            "expected a list, got 'web'")
        expectOne("connection_tracking: { enabled: 2 }\n" + header + "  - { name: v, address: 198.19.0.10, pool: web }\n",
            1, 33, "connection_tracking.enabled", "expected true or false, got '2'")
        expectOne("vips: { name: v }\n", 1, 7, "vips", "expected a list, got a mapping")
        expectOne("- a\n", 1, 1, "", "must be a mapping")
    }

    @Test func duplicateVIPNames() {
        let yaml = header + """
              - { name: v, address: 198.19.0.10, pool: web }
              - { name: v, address: 198.19.0.11, pool: web }

            """
        expectOne(yaml, 8, 13, "vips[1].name", "VIP name 'v' is used twice (first at line 7)")
    }

    @Test func duplicateBackendNamesInAPool() {
        let yaml = """
            encap: { source_ipv4: 198.18.0.2 }
            vips:
              - name: v
                address: 198.19.0.10
                backends:
                  - { name: a, address: 198.18.1.1 }
                  - { name: a, address: 198.18.1.1 }
            """
        expectOne(yaml, 7, 17, "vips[0].backends[1].name", "backend name 'a' is used twice in VIP 'v'")
    }

    @Test func backendNameWithTwoAddresses() {
        let yaml = header + "  - { name: v, address: 198.19.0.10, backends: [{ name: web-1, address: 198.18.1.9 }] }\n"
        expectOne(yaml, 7, 73, "vips[0].backends[0].address",
            "backend 'web-1' has address 198.18.1.9 here but 198.18.1.1 at pools.web[0] (line 4)")
    }

    @Test func neitherOrBothPoolAndBackends() {
        expectOne(header + "  - { name: v, address: 198.19.0.10 }\n", 7, 5, "vips[0]",
            "needs its backends: pool: NAME, pools: [NAME, ...] or backends: [...]")
        expectOne(header + "  - { name: v, address: 198.19.0.10, pool: web, backends: [] }\n", 7, 49, "vips[0]",
            "has both pool and backends")
    }

    @Test func unknownPool() {
        expectOne(header + "  - { name: v, address: 198.19.0.10, pool: wbe }\n", 7, 44, "vips[0].pool",
            "unknown pool 'wbe' (did you mean 'web'?)")
        expectOne(header + "  - { name: v, address: 198.19.0.10, pool: images }\n", 7, 44, "vips[0].pool",
            "unknown pool 'images'; defined pools: web")
    }

    @Test func portNeedsAProtocolWithPorts() {
        expectOne(header + "  - { name: v, address: 198.19.0.10, port: 80, pool: web }\n", 7, 44, "vips[0].port",
            "a port needs a protocol")
        expectOne(header + "  - { name: v, address: 198.19.0.10, protocol: icmp, port: 80, pool: web }\n", 7, 60,
            "vips[0].port", "protocol icmp has no ports")
        expectOne(header + "  - { name: v, address: 198.19.0.10, protocol: tcp, port: 0, pool: web }\n", 7, 59,
            "vips[0].port", "must be at least 1")
        expectOne(header + "  - { name: v, address: 198.19.0.10, protocol: tcp, port: 65536, pool: web }\n", 7, 59,
            "vips[0].port", "must be at most 65535")
        expectOne(header + "  - { name: v, address: 198.19.0.10, protocol: 256, pool: web }\n", 7, 48,
            "vips[0].protocol", "must be at most 255")
        expectOne(header + "  - { name: v, address: 198.19.0.10, protocol: tpc, pool: web }\n", 7, 48,
            "vips[0].protocol", "got 'tpc' (did you mean 'tcp'?)")
    }

    @Test(arguments: [
        ("-1", "negative values are not allowed"), ("1.5", "got '1.5'"), ("4294967296", "must be at most 4294967295"),
        ("heavy", "expected a non-negative integer below 2^32, got 'heavy'"),
    ])
    func badWeights(weight: String, message: String) {
        let yaml = """
            encap: { source_ipv4: 198.18.0.2 }
            vips:
              - name: v
                address: 198.19.0.10
                backends:
                  - { name: a, address: 198.18.1.1 }
                  - { name: b, address: 198.18.1.2, weight: \(weight) }
            """
        expectOne(yaml, 7, 49, "vips[0].backends[1].weight", message)
    }

    @Test func badState() {
        let yaml = header.replacingFirst("198.18.1.2 }", with: "198.18.1.2, state: drainig }")
            + "  - { name: v, address: 198.19.0.10, pool: web }\n"
        expectOne(yaml, 5, 50, "pools.web[1].state", "expected one of active, draining, down, got 'drainig' (did you mean 'draining'?)")
    }

    @Test func badAddressesAndPrefixes() {
        expectOne(header + "  - { name: v, address: 198.19.0.256, pool: web }\n", 7, 25, "vips[0].address",
            "'198.19.0.256' is not an IPv4 or IPv6 address")
        expectOne(header + "  - { name: v, address: 198.19.0.0/33, pool: web }\n", 7, 25, "vips[0].address",
            "prefix length '33' is out of range: an IPv4 prefix length is 0-32")
        expectOne(header + "  - { name: v, address: \"2001:db8::/129\", pool: web }\n", 7, 25, "vips[0].address",
            "an IPv6 prefix length is 0-128")
        expectOne(header + "  - { name: v, address: 198.19.0.1/24, pool: web }\n", 7, 25, "vips[0].address",
            "has host bits set: did you mean '198.19.0.0/24'?")
        expectOne(header + "  - { name: v, address: 198.19.0.1, backends: [{ name: x, address: 10.0.0.0/8 }] }\n", 7, 68,
            "vips[0].backends[0].address", "expected an IP address, got the prefix '10.0.0.0/8'")
        expectOne(header.replacingFirst("198.18.0.2,", with: "2001:db8::3,") + "  - { name: v, address: 198.19.0.1, pool: web }\n",
            1, 23, "encap.source_ipv4", "expected an IPv4 address")
    }

    @Test func tableSize() {
        expectOne("table_size: 65536\n" + header + "  - { name: v, address: 198.19.0.10, pool: web }\n", 1, 13,
            "table_size", "table size 65536 is not prime; Maglev needs a prime size, e.g. 65537")
        expectOne("table_size: 1\n" + header + "  - { name: v, address: 198.19.0.10, pool: web }\n", 1, 13,
            "table_size", "not prime")
        expectOne("table_size: 67108879\n" + header + "  - { name: v, address: 198.19.0.10, pool: web }\n", 1, 13,
            "table_size", "exceeds the limit")
        // Fewer slots than backends: reported at table_size.
        let tiny = "table_size: 2\n" + header.replacingFirst("198.18.1.2 }", with: "198.18.1.2 }\n    - { name: web-3, address: 198.18.1.3 }")
            + "  - { name: v, address: 198.19.0.10, pool: web }\n"
        expectOne(tiny, 1, 13, "table_size", "smaller than the number of backends (3)")
    }

    @Test func perVIPTableSize() {
        // Columns: "  - { name: v, address: 198.19.0.10, pool: web, table_size: " is 60 characters.
        let vip = { (size: String) in header + "  - { name: v, address: 198.19.0.10, pool: web, table_size: \(size) }\n" }
        #expect(problems(vip("7")).isEmpty)
        expectOne(vip("65536"), 7, 61, "vips[0].table_size", "table size 65536 is not prime; Maglev needs a prime size")
        expectOne(vip("1"), 7, 61, "vips[0].table_size", "not prime")
        expectOne(vip("67108879"), 7, 61, "vips[0].table_size", "exceeds the limit")
        expectOne(vip("big"), 7, 61, "vips[0].table_size", "expected a prime table size, got 'big'")
        // Fewer slots than the VIP's pool: at the VIP's table_size, naming the pool.
        let three = header.replacingFirst("198.18.1.2 }", with: "198.18.1.2 }\n    - { name: web-3, address: 198.18.1.3 }")
        expectOne(
            three + "  - { name: v, address: 198.19.0.10, pool: web, table_size: 2 }\n", 8, 61, "vips[0].table_size",
            "smaller than the number of backends (3); use a prime of at least 100 x backends for 1% balance, e.g. 307 (pool 'web')")
        // The VIP's own size, not the root one, is checked against its pool...
        let tiny = "table_size: 2\n" + three
        #expect(problems(tiny + "  - { name: v, address: 198.19.0.10, pool: web, table_size: 3 }\n").isEmpty)
        // ...and a VIP without one still gets the root's.
        expectOne(
            tiny + "  - { name: v, address: 198.19.0.10, pool: web, table_size: 3 }\n"
                + "  - { name: w, address: 198.19.0.11, pool: web }\n", 1, 13, "table_size",
            "smaller than the number of backends (3)")
    }

    @Test func perVIPTableSizeReachesTheSnapshot() throws {
        let yaml = "table_size: 11\n" + header + "  - { name: v, address: 198.19.0.10, pool: web, table_size: 7 }\n"
            + "  - { name: w, address: 198.19.0.11, pool: web }\n"
        let file = try MaglevConfigFile.parse(yaml: yaml, path: "t.yaml")
        #expect(file.dataplane.vips.map(\.tableSize) == [7, nil])
        let snapshot = try ForwardingSnapshot(config: file.dataplane)
        #expect(snapshot.tables.map { $0?.size } == [7, 11])
    }

    @Test func allZeroWeights() {
        let yaml = """
            encap: { source_ipv4: 198.18.0.2 }
            pools:
              idle:
                - { name: a, address: 198.18.1.1, weight: 0 }
                - { name: b, address: 198.18.1.2, weight: 0 }
            vips: [{ name: v, address: 198.19.0.10, pool: idle }]
            """
        expectOne(yaml, 4, 5, "pools.idle", "every backend of pool 'idle' has weight 0")
    }

    @Test func missingEncapSourceIsReportedOncePerFamily() {
        let yaml = """
            encap: { source_ipv4: 198.18.0.2 }
            vips:
              - name: v
                address: 198.19.0.10
                backends:
                  - { name: a, address: "2001:db8:1::1" }
                  - { name: b, address: "2001:db8:1::2" }
            """
        expectOne(yaml, 1, 8, "encap.source_ipv6", "backend 'a' (line 6) is IPv6")
        expectOne("vips: [{ name: v, address: 198.19.0.10, backends: [{ name: a, address: 10.0.0.1 }] }]", 1, 72,
            "encap.source_ipv4", "is IPv4")
    }

    @Test func durationsAndRanges() {
        let base = header + "  - { name: v, address: 198.19.0.10, pool: web }\n"
        expectOne("connection_tracking: { timeouts: { udp: 30 seconds } }\n" + base, 1, 41,
            "connection_tracking.timeouts.udp", "expected a duration")
        expectOne("connection_tracking: { timeouts: { udp: 0 } }\n" + base, 1, 41,
            "connection_tracking.timeouts.udp", "must be longer than 0")
        expectOne("connection_tracking: { timeouts: { udp: 30d } }\n" + base, 1, 41,
            "connection_tracking.timeouts.udp", "expected a duration")
        expectOne("connection_tracking: { timeouts: { tcp: 30s } }\n" + base, 1, 36,
            "connection_tracking.timeouts.tcp", "unknown key 'tcp'")
        expectOne("connection_tracking: { timeouts: { udp: 25d } }\n" + base, 1, 41,
            "connection_tracking.timeouts.udp", "expected a duration")
        expectOne("connection_tracking: { timeouts: { udp: 2147484s } }\n" + base, 1, 41,
            "connection_tracking.timeouts.udp", "must be at most 2147483647ms")
        expectOne("connection_tracking: { capacity: 7 }\n" + base, 1, 34, "connection_tracking.capacity", "at least 8")
        expectOne("path_mtu: 619\n" + base, 1, 11, "path_mtu", "must be at least 620, got 619")
        expectOne("hash_seed: 18446744073709551616\n" + base, 1, 12, "hash_seed", "must be at most 18446744073709551615")
        expectOne("algorithm: maglve\n" + base, 1, 12, "algorithm", "did you mean 'maglev'?")
        expectOne("fragments: 3-tuple\n" + base, 1, 12, "fragments", "expected one of three-tuple, fragment-table")
    }

    @Test func missingAndEmpty() {
        expectOne("table_size: 7\n", 1, 1, "vips", "missing: a list of VIPs is required")
        expectOne("vips: []\n", 1, 7, "vips", "at least one VIP is required")
        expectOne(header + "  - { address: 198.19.0.10, pool: web }\n", 7, 5, "vips[0].name", "missing")
        expectOne(header + "  - { name: v, pool: web }\n", 7, 5, "vips[0].address", "missing")
        expectOne(header + "  - { name: v, address: 198.19.0.10, backends: [] }\n", 7, 48, "vips[0].backends", "VIP 'v' has no backends")
        expectOne("", 0, 0, "", "empty")
        expectOne("# only a comment\n", 0, 0, "", "empty")
    }

    @Test func yamlSyntaxErrors() {
        expectOne("vips: [\n", 2, 1, "", "invalid YAML")
        expectOne("table_size: 7\ntable_size: 11\nvips: []\n", 1, 1, "", "duplicate key 'table_size'")
        let tab = problems("vips:\n\t- x\n")
        #expect(tab.count == 1 && tab[0].line == 2 && tab[0].message.contains("invalid YAML"), "\(tab)")
    }

    @Test func everyProblemInOneFileIsReportedInFileOrder() {
        let yaml = """
            table_size: 100
            algoritm: ring
            encap: { source_ipv4: 198.18.0.2 }
            vips:
              - name: a
                address: 198.19.0.10
                port: 80
                pool: missing
              - name: a
                address: 198.19.0.300
                backends:
                  - { name: x, address: 198.18.1.1, weight: -2 }
                  - { name: x, address: 198.18.1.2, state: gone }
            """
        let found = problems(yaml)
        let summary = found.map { "\($0.line):\($0.column) \($0.field)" }
        #expect(
            summary == [
                "1:13 table_size", "2:1 algoritm", "7:11 vips[0].port", "8:11 vips[0].pool", "9:11 vips[1].name",
                "10:14 vips[1].address", "12:49 vips[1].backends[0].weight", "13:17 vips[1].backends[1].name",
                "13:48 vips[1].backends[1].state",
            ], "\(found.map(\.description).joined(separator: "\n"))")
    }

    @Test func snapshotProblemsMapToFields() {
        // Everything the schema checks passes, but the snapshot finds the backend list too large
        // for the table only after pools resolve: sizes are checked against each used pool.
        let names = (0..<12).map { "    - { name: b\($0), address: 198.18.1.\($0 + 1) }" }.joined(separator: "\n")
        let yaml = "table_size: 11\nencap: { source_ipv4: 198.18.0.2 }\npools:\n  big:\n\(names)\n"
            + "vips: [{ name: v, address: 198.19.0.10, pool: big }]\n"
        expectOne(yaml, 1, 13, "table_size", "smaller than the number of backends (12)")
    }

    @Test func unreadableFiles() {
        #expect(throws: ConfigError.self) { try MaglevConfigFile.load(path: "/nonexistent/maglev.yaml") }
        do {
            _ = try MaglevConfigFile.load(path: "/nonexistent/maglev.yaml")
        } catch {
            #expect(error.problems.count == 1)
            #expect(
                error.problems.first?.description
                    == "/nonexistent/maglev.yaml:0:0: cannot read the config file: No such file or directory")
        }
        do {
            _ = try MaglevConfigFile.load(path: "/")
        } catch {
            #expect(error.problems.first?.message.contains("Is a directory") == true, "\(error)")
        }
    }
}

extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let r = range(of: target) else { return self }
        return replacingCharacters(in: r, with: replacement)
    }
}
