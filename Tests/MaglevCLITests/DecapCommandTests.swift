import Testing

@testable import MaglevCLI

/// `maglev decap`: argument checks and the help text (the command itself is tested live in
/// MaglevDecapTests and by Tools/lab).
@Suite struct DecapCommandTests {
    @Test func parsesOptions() throws {
        let c = try DecapCommand.parse(["--tun", "mgdecap", "--stats-interval", "5", "--duration", "2.5", "--only-from", "198.18.1.11", "--only-from", "2001:db8:1::11"])
        #expect(c.tun == "mgdecap")
        #expect(c.statsInterval == 5)
        #expect(c.duration == 2.5)
        #expect(c.onlyFrom == ["198.18.1.11", "2001:db8:1::11"])
    }

    @Test func rejectsBadArguments() {
        #expect(throws: (any Error).self) { try DecapCommand.parse([]) }
        #expect(throws: (any Error).self) { try DecapCommand.parse(["--tun", "a-name-longer-than-15"]) }
        #expect(throws: (any Error).self) { try DecapCommand.parse(["--tun", "a/b"]) }
        #expect(throws: (any Error).self) { try DecapCommand.parse(["--tun", "t", "--only-from", "not-an-address"]) }
        #expect(throws: (any Error).self) { try DecapCommand.parse(["--tun", "t", "--duration", "-1"]) }
    }

    @Test func helpHasExamplesAndTheKernelAlternative() {
        let help = DecapCommand.helpMessage()
        #expect(help.contains("maglev decap --tun mgdecap"))
        #expect(help.contains("ip tunnel add gre1 mode gre"))
        #expect(help.contains("type ip6gre"))
        #expect(help.contains("rp_filter"))
        #expect(help.contains("CAP_NET_ADMIN"))
    }
}
