// Trace reports: built from a data plane's record with the snapshot's names, written as one
// compact JSON object, read back by `maglev probe`; and the token bucket that limits them.
import MaglevCore
import Testing

@testable import MaglevControl

@Suite struct TraceReportTests {
    static func snapshot() throws -> ForwardingSnapshot {
        let backends = [
            BackendConfig(name: "backend-1", address: IPAddress("198.18.1.101")!),
            BackendConfig(name: "backend-2", address: IPAddress("2001:db8:1::102")!),
        ]
        return try ForwardingSnapshot(
            config: DataplaneConfig(
                vips: [VIPConfig(name: "web4", address: IPAddress("198.19.0.10")!, proto: IPProtocol.tcp, port: 80, backends: backends)],
                encapSourceIPv4: IPAddress("198.18.1.11")!, encapSourceIPv6: IPAddress("2001:db8:1::11")!))
    }

    @Test func aReportNamesEverythingAndReadsBack() throws {
        let record = TraceRecord(
            probe: TraceProbe(collector: IPAddress("198.18.0.10")!, collectorPort: 9999, id: 0xFFFF_FFFF_FFFF_FFF0),
            key: FlowKey(source: IPAddress("198.18.0.10")!, destination: IPAddress("198.19.0.10")!, sourcePort: 40001, destinationPort: 80, proto: IPProtocol.tcp),
            vip: 0, backend: 1, action: .forward, dropReason: nil, reason: .tableLookup, fragment: .none)
        let report = TraceReport(record: record, forwarder: "lab/fwd1", worker: 0, snapshot: try Self.snapshot())
        let text = report.json.rendered()
        #expect(
            text
                == #"{"type":"maglev-trace","probe_id":18446744073709551600,"forwarder":"lab/fwd1","worker":0,"vip":"web4","vip_address":"198.19.0.10","protocol":"tcp","source":"198.18.0.10","source_port":40001,"destination":"198.19.0.10","destination_port":80,"fragment":"none","action":"forward","backend":"backend-2","backend_address":"2001:db8:1::102","reason":"table-lookup"}"#)
        #expect(TraceReport(datagram: Array(text.utf8)) == report)
        #expect(TraceReport(datagram: Array(report.json.rendered(pretty: true).utf8)) == report)
    }

    @Test func aReportWithNoVIPOrBackendHasNulls() throws {
        let record = TraceRecord(
            probe: TraceProbe(collector: IPAddress("2001:db8::10")!, collectorPort: 1, id: 3),
            key: FlowKey(source: IPAddress("2001:db8::10")!, destination: IPAddress("2001:db8:100::99")!, sourcePort: 1, destinationPort: 2, proto: IPProtocol.udp),
            vip: -1, backend: -1, action: .pass, dropReason: .unknownVIP, reason: .none, fragment: .nonFirst)
        let report = TraceReport(record: record, forwarder: "a \"quoted\" name", worker: 3, snapshot: try Self.snapshot())
        #expect(report.vip == nil && report.backend == nil && report.action == "pass")
        #expect(report.json.rendered().contains(#""vip":null"#))
        #expect(TraceReport(datagram: Array(report.json.rendered().utf8)) == report)
    }

    @Test func otherDatagramsAreNotReports() {
        for text in ["", "{}", "[1]", #"{"type":"other","probe_id":1}"#, #"{"type":"maglev-trace","probe_id":"x"}"#, "{\"type\":\"maglev-trace\"", "garbage"] {
            #expect(TraceReport(datagram: Array(text.utf8)) == nil, "\(text)")
        }
    }

    @Test func theTokenBucketAllowsItsBurstThenItsRate() {
        var bucket = TokenBucket(ratePerSecond: 100, burst: 100)
        var taken = 0
        for _ in 0..<250 where bucket.take(nowMs: 1000) { taken += 1 }
        #expect(taken == 100)
        // One second later: 100 more, not 250.
        taken = 0
        for _ in 0..<250 where bucket.take(nowMs: 2000) { taken += 1 }
        #expect(taken == 100)
        // 10 ms: one token.
        taken = 0
        for _ in 0..<5 where bucket.take(nowMs: 2010) { taken += 1 }
        #expect(taken == 1)
        #expect(IPAddress("2001:db8::1")!.networkBytes == [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1])
        #expect(IPAddress("198.19.0.10")!.networkBytes == [198, 19, 0, 10])
    }
}
