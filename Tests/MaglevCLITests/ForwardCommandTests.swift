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
        ] {
            #expect(throws: (any Error).self) {
                _ = try ForwardCommand.parse(["--config", "lb.yaml", "--interface", "eth0"] + args)
            }
        }
    }

    @Test func unreadableConfigNamesTheFile() throws {
        let command = try ForwardCommand.parse(["--config", "/nonexistent/maglev-lb.yaml", "--interface", "eth0"])
        do {
            try command.run()
            Issue.record("ran without a config")
        } catch {
            let text = String(describing: error)
            #expect(text.contains("invalid config /nonexistent/maglev-lb.yaml"))
            #expect(text.contains("maglev config check"))
        }
    }
}
