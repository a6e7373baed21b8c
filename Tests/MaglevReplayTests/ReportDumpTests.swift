#if canImport(Glibc)
    import Glibc
#endif
import Testing
import MaglevReplay

/// Writes every format of the fixtures to `$REPORT_DUMP_DIR` for a person (or a headless
/// browser) to look at; does nothing when the variable is unset.
@Suite struct ReportDumpTests {
    @Test func dumpWhenAsked() {
        #if canImport(Glibc)
            guard let dir = getenv("REPORT_DUMP_DIR").map({ String(cString: $0) }) else { return }
            let cases: [(String, ReplayReport)] = [
                ("realistic", ReportFixture.realistic()), ("many", ReportFixture.many(1000)),
                ("hostile", ReportFixture.hostileNames()), ("empty", ReplayReport()),
            ]
            for (name, report) in cases {
                for (format, ext) in [(ReportFormat.json, "json"), (.text, "txt"), (.markdown, "md"), (.html, "html")] {
                    let path = "\(dir)/\(name).\(ext)"
                    guard let f = fopen(path, "w") else { continue }
                    fputs(ReportRenderer.render(report, as: format), f)
                    fclose(f)
                }
            }
        #endif
    }
}
