import Foundation
import Testing

@testable import MaglevCLI

/// `maglev --version` prints the one version string (MaglevVersion) and exits 0.
@Suite struct VersionTests {
    @Test func theVersionIsMajorMinorPatch() {
        let parts = MaglevVersion.string.split(separator: ".", omittingEmptySubsequences: false)
        #expect(parts.count == 3 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) }, "\(MaglevVersion.string)")
    }

    @Test func binaryPrintsTheVersionAndExitsZero() throws {
        let result = try ConfigCommandTests.runBinary(["--version"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == MaglevVersion.string + "\n")
        #expect(result.stderr.isEmpty)
    }

    @Test func helpListsVersion() {
        #expect(MaglevCommand.helpMessage().contains("--version"))
    }
}
