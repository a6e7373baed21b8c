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

    @Test func outOfRangeOptionsAreRefused() {
        for args in [
            ["--workers", "0"], ["--stats-interval", "0"], ["--duration", "-1"], ["--filter", "everything"],
            ["--io", "epoll"],
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
