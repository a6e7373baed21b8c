import Foundation
import MaglevControl
import MaglevCore
import Testing

@testable import MaglevCLI

/// `maglev probe`: arguments, output lines, and (as root) the unanswered path over loopback.
/// The whole tracer, live, is `LiveProbeTraceTests`.
@Suite struct ProbeCommandTests {
    @Test func helpHasExamples() {
        let help = ProbeCommand.helpMessage()
        #expect(help.contains("maglev probe --vip 198.19.0.10:80 --count 16 --collector 198.18.0.10:9999"))
        #expect(help.contains("--format") && help.contains("--pcap") && help.contains("--timeout") && help.contains("--source"))
    }

    @Test func endpointsAreParsed() {
        #expect(ProbeCommand.endpoint("198.19.0.10:80").map { "\($0.address) \($0.port)" } == "198.19.0.10 80")
        #expect(ProbeCommand.endpoint("[2001:db8::10]:9999").map { "\($0.address) \($0.port)" } == "2001:db8::10 9999")
        for bad in ["198.19.0.10", "2001:db8::10:80", "[2001:db8::10]", "x:80", "198.19.0.10:0", "198.19.0.10:70000"] {
            #expect(ProbeCommand.endpoint(bad) == nil, "\(bad)")
        }
    }

    @Test func badOptionsAreRefused() {
        let base = ["--vip", "198.19.0.10:80", "--collector", "198.18.0.10:9999"]
        #expect(throws: Never.self) { try ProbeCommand.parse(base) }
        for extra in [
            ["--protocol", "sctp"], ["--count", "0"], ["--timeout", "0"], ["--format", "yaml"], ["--source", "nope"],
            ["--first-port", "65530", "--count", "16"], ["--rate", "0"],
        ] {
            #expect(throws: (any Error).self, "\(extra)") { try ProbeCommand.parse(base + extra) }
        }
        #expect(throws: (any Error).self) { try ProbeCommand.parse(["--vip", "198.19.0.10", "--collector", "198.18.0.10:9999"]) }
    }

    @Test func linesSayForwarderBackendAndReason() {
        let key = FlowKey(
            source: IPAddress("198.18.0.10")!, destination: IPAddress("198.19.0.10")!, sourcePort: 40001, destinationPort: 80,
            proto: IPProtocol.tcp)
        let sent = ProbeCommand.Sent(index: 3, id: 0xAB00_0002, key: key)
        let report = TraceReport(
            probeID: 0xAB00_0002, forwarder: "fwd1", worker: 0, vip: "web4", vipAddress: "198.19.0.10", proto: "tcp",
            source: "198.18.0.10", sourcePort: 40001, destination: "198.19.0.10", destinationPort: 80, fragment: "none",
            action: "forward", backend: "backend-2", backendAddress: "198.18.1.102", reason: "connection-hit")
        #expect(
            ProbeCommand.lines(sent, [report], json: false)
                == "probe 3  tcp 198.18.0.10:40001 -> 198.19.0.10:80  forwarder fwd1  backend backend-2 (198.18.1.102)  reason connection-hit\n")
        #expect(ProbeCommand.lines(sent, [], json: false) == "probe 3  tcp 198.18.0.10:40001 -> 198.19.0.10:80  unanswered\n")
        let json = ProbeCommand.lines(sent, [report], json: true)
        #expect(json.hasPrefix(#"{"probe":3,"probe_id":2868903938,"answered":true,"protocol":"tcp""#))
        #expect(json.contains(#""forwarder":"fwd1""#) && json.contains(#""reason":"connection-hit""#))
        #expect(ProbeCommand.lines(sent, [], json: true).contains(#""answered":false"#))
    }

    /// Probes to a loopback address no forwarder serves: every probe unanswered, exit 1, and the
    /// pcap holds them, marked.
    @Test(.enabled(if: getuid() == 0, "needs root (raw socket)"))
    func unansweredProbesAreListedAndFail() throws {
        let pcap = "/tmp/maglev-probe-test-\(getpid()).pcap"
        defer { try? FileManager.default.removeItem(atPath: pcap) }
        let r = try ConfigCommandTests.runBinary([
            "probe", "--vip", "127.0.0.1:9", "--protocol", "udp", "--count", "3", "--collector", "127.0.0.1:39999",
            "--timeout", "0.2", "--pcap", pcap,
        ])
        #expect(r.status == 1, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.components(separatedBy: "  unanswered\n").count == 4, "\(r.stdout)")
        #expect(r.stdout.contains("3 probes: 0 answered, 3 unanswered"))
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: pcap)))
        #expect(bytes.count == 24 + 3 * (16 + 20 + 8 + 40))
        #expect(Array(bytes[(24 + 16 + 20 + 8 + 0)..<(24 + 16 + 20 + 8 + 8)]) == Array("MGTRACE1".utf8))
        #expect(bytes[24 + 16 + 6] & 0x80 != 0, "the IPv4 reserved flag")
    }
}
