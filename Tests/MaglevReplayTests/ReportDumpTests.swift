import Glibc
import MaglevReplay
import Testing

/// `$REPORT_DUMP_DIR`, when set: where ReportDumpTests writes the fixtures' reports.
let reportDumpDirectory: String? = getenv("REPORT_DUMP_DIR").map { String(cString: $0) }

/// Writes every format of the fixtures to `$REPORT_DUMP_DIR` for a person (or a headless
/// browser) to look at. Without the variable it is reported as skipped, not passed.
@Suite struct ReportDumpTests {
    @Test(.enabled(if: reportDumpDirectory != nil, "REPORT_DUMP_DIR is not set (a directory to write the reports to)"))
    func dumpWhenAsked() throws {
        let dir = try #require(reportDumpDirectory)
        let cases: [(String, ReplayReport)] = [
            ("realistic", ReportFixture.realistic()), ("many", ReportFixture.many(1000)),
            ("hostile", ReportFixture.hostileNames()), ("empty", ReplayReport()),
        ]
        for (name, report) in cases {
            for (format, ext) in [(ReportFormat.json, "json"), (.text, "txt"), (.markdown, "md"), (.html, "html")] {
                let path = "\(dir)/\(name).\(ext)"
                let rendered = ReportRenderer.render(report, as: format)
                #expect(!rendered.isEmpty, "\(path)")
                let f = try #require(fopen(path, "w"), "cannot create \(path): \(String(cString: strerror(errno)))")
                #expect(fputs(rendered, f) >= 0, "\(path): write failed")
                #expect(fclose(f) == 0, "\(path): close failed")
                // What a person opens is what was rendered.
                #expect(readFile(path) == Array(rendered.utf8), "\(path)")
            }
        }
    }
}
