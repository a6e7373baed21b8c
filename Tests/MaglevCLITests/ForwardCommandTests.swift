import MaglevForwarder
import Testing

@testable import MaglevCLI

/// `maglev forward` argument checks and start-up errors that need no privileges. The live
/// behaviour is tested in MaglevForwarderTests (network namespaces).
@Suite struct ForwardCommandTests {
    @Test func helpHasExamples() {
        let help = ForwardCommand.helpMessage()
        #expect(help.contains("maglev forward --config /etc/maglev.yaml --interface eth0"))
        #expect(help.contains("--stats-interval"))
        #expect(help.contains("--json-stats"))
        #expect(help.contains("--duration"))
        #expect(help.contains("--io"))
    }

    @Test func ioModeIsParsed() throws {
        #expect(try ForwardCommand.parse(["--config", "lb.yaml", "--interface", "eth0"]).io == "io_uring")
        #expect(try ForwardCommand.parse(["--config", "lb.yaml", "--interface", "eth0", "--io", "mmsg"]).io == "mmsg")
        for io in ["io_uring", "ring", "ring-frames", "xdp", "mmsg"] {
            #expect(try ForwardCommand.parse(["--config", "lb.yaml", "--interface", "eth0", "--io", io]).io == io)
        }
        let xdp = try ForwardCommand.parse(["--config", "lb.yaml", "--interface", "eth0", "--io", "xdp", "--xdp-mode", "generic"])
        #expect(xdp.xdpMode == "generic")
        #expect(ForwardCommand.helpMessage().contains("--xdp-mode"))
    }

    @Test func sendPathAndBusyPollAreParsed() throws {
        let base = ["--config", "lb.yaml", "--interface", "eth0"]
        #expect(try ForwardCommand.parse(base).send == nil, "default: packet")
        #expect(try ForwardCommand.parse(base + ["--send", "packet", "--io", "mmsg"]).send == "packet")
        #expect(try ForwardCommand.parse(base + ["--send", "raw"]).send == "raw")
        #expect(try ForwardCommand.parse(base + ["--send", "raw", "--io", "mmsg"]).io == "mmsg")
        #expect(try ForwardCommand.parse(base + ["--busy-poll"]).busyPoll)
        let help = ForwardCommand.helpMessage()
        #expect(help.contains("--send") && help.contains("--busy-poll") && help.contains("--send raw"))
    }

    @Test func outOfRangeOptionsAreRefused() {
        for args in [
            ["--workers", "0"], ["--stats-interval", "0"], ["--duration", "-1"], ["--filter", "everything"],
            ["--io", "epoll"], ["--send", "xdp"], ["--busy-poll", "--io", "mmsg"],
            ["--admin", "0.0.0.0:9100"], ["--admin", "10.1.2.3:9100"], ["--admin", "127.0.0.1:0"],
            ["--admin", "localhost"], ["--log-format", "yaml"], ["--log-level", "loud"],
            ["--io", "xdp", "--xdp-mode", "offload"], ["--io", "xdp", "--filter", "ethertype"],
        ] {
            #expect(throws: (any Error).self) {
                _ = try ForwardCommand.parse(["--config", "lb.yaml", "--interface", "eth0"] + args)
            }
        }
    }

    @Test func unreadableConfigNamesTheFile() async throws {
        let command = try ForwardCommand.parse(["--config", "/nonexistent/maglev-lb.yaml", "--interface", "eth0"])
        do {
            try await command.run()
            Issue.record("ran without a config")
        } catch {
            let text = String(describing: error)
            #expect(text.contains("invalid config /nonexistent/maglev-lb.yaml"))
            #expect(text.contains("maglev config check"))
        }
    }
}

@Suite struct AdminOptionTests {
    @Test func adminAddressesParse() throws {
        let base = ["--config", "lb.yaml", "--interface", "eth0"]
        #expect(try ForwardCommand.parse(base + ["--admin", "127.0.0.1:9100"]).admin == "127.0.0.1:9100")
        #expect(try ForwardCommand.parse(base + ["--admin", "9100"]).admin == "9100")
        #expect(try ForwardCommand.parse(base + ["--admin", "[::1]:9100"]).admin == "[::1]:9100")
        #expect(try ForwardCommand.parse(base + ["--admin", "0.0.0.0:9100", "--admin-allow-remote"]).adminAllowRemote)
        #expect(AdminAddress("9100") == AdminAddress("127.0.0.1:9100"))
        #expect(AdminAddress("[2001:db8::1]:80")?.host == "2001:db8::1")
        #expect(AdminAddress("2001:db8::1:80") == nil, "an IPv6 address needs brackets")
        #expect(AdminAddress("host:99999") == nil)
    }

    @Test func ctlValidatesItsArguments() throws {
        #expect(try CtlCommand.parse(["status"]).action == "status")
        #expect(try CtlCommand.parse(["drain", "backend-1", "--timeout", "30s"]).name == "backend-1")
        #expect(try CtlCommand.parse(["weight", "backend-2", "--value", "3"]).value == 3)
        #expect(try CtlCommand.parse(["fail", "backend-2"]).action == "fail")
        #expect(try CtlCommand.parse(["recover", "backend-2"]).action == "recover")
        for args in [
            ["drain"], ["status", "x"], ["explode"], ["undrain", "b", "--timeout", "1s"], ["--admin", "x", "status"],
            ["weight", "b"], ["weight", "b", "--value", "-1"], ["fail", "b", "--value", "2"], ["fail"],
        ] {
            #expect(throws: (any Error).self, "\(args)") { _ = try CtlCommand.parse(args) }
        }
        #expect(CtlCommand.percentEncoded("be 1/ü") == "be%201%2F%C3%BC")
    }
}
