import MaglevConfig
import Testing

@testable import MaglevControl

/// Rise/fall hysteresis with a fake clock (plain numbers): starts up, `fall` failures in a row
/// take it down, `rise` successes in a row bring it up, an opposite result resets the run, every
/// transition is returned once with its time.
@Suite struct HealthDampenerTests {
    /// Feeds results ("+" success, "-" failure) at times 0, 10, 20, ...; returns the
    /// transitions as "up@t" / "down@t".
    func run(_ d: inout HealthDampener, _ results: String, startMs: UInt64 = 0) -> [String] {
        var out: [String] = []
        for (i, c) in results.enumerated() {
            let t = startMs + UInt64(i) * 10
            if let up = d.record(success: c == "+", nowMs: t, error: c == "+" ? nil : "refused \(i)") {
                out.append("\(up ? "up" : "down")@\(t)")
            }
        }
        return out
    }

    @Test func startsUpWithNothingRecorded() {
        let d = HealthDampener(rise: 2, fall: 3)
        #expect(d.rise == 2 && d.fall == 3)
        #expect(d.record == HealthDampener.Record())
        #expect(d.record.up && d.record.streak == 0 && d.record.lastChangeMs == nil)
        #expect(d.record.successes == 0 && d.record.failures == 0 && d.record.lastError == nil)
    }

    @Test func successesWhileUpChangeNothing() {
        var d = HealthDampener(rise: 2, fall: 3)
        #expect(run(&d, "++++++").isEmpty)
        #expect(d.record.up && d.record.streak == 0 && d.record.successes == 6)
    }

    @Test func fallFailuresInARowTakeItDown() {
        var d = HealthDampener(rise: 2, fall: 3)
        #expect(run(&d, "--").isEmpty)
        #expect(d.record.up && d.record.streak == 2)
        #expect(d.record(success: false, nowMs: 777) == false)
        #expect(!d.record.up && d.record.streak == 0 && d.record.lastChangeMs == 777)
        // Returned once: more failures are no news.
        #expect(run(&d, "-----", startMs: 1000).isEmpty)
        #expect(d.record.lastChangeMs == 777)
    }

    @Test func riseSuccessesInARowBringItBack() {
        var d = HealthDampener(rise: 2, fall: 3)
        #expect(run(&d, "---+-+--++++") == ["down@20", "up@90"])
        #expect(d.record.up && d.record.lastChangeMs == 90)
    }

    @Test func anOppositeResultResetsTheRun() {
        var d = HealthDampener(rise: 3, fall: 3)
        // Never three failures in a row: stays up.
        #expect(run(&d, "--+--+--+--+").isEmpty)
        #expect(d.record.up && d.record.streak == 0)
        #expect(run(&d, "---", startMs: 500) == ["down@520"])
        // Never three successes in a row: stays down.
        #expect(run(&d, "++-++-++-", startMs: 600).isEmpty)
        #expect(!d.record.up && d.record.streak == 0)
        #expect(run(&d, "+++", startMs: 700) == ["up@720"])
    }

    @Test func riseAndFallOfOneFollowEveryResult() {
        var d = HealthDampener(rise: 1, fall: 1)
        #expect(run(&d, "+-+--++-") == ["down@10", "up@20", "down@30", "up@50", "down@70"])
    }

    @Test func asymmetricRiseAndFall() {
        var d = HealthDampener(rise: 5, fall: 1)
        #expect(run(&d, "-++++-+++++") == ["down@0", "up@100"])
    }

    @Test func countersAndLastError() {
        var d = HealthDampener(rise: 2, fall: 2)
        _ = d.record(success: false, nowMs: 0, error: "connection refused")
        #expect(d.record.failures == 1 && d.record.lastError == "connection refused")
        _ = d.record(success: false, nowMs: 1, error: "timed out")
        #expect(d.record.lastError == "timed out" && !d.record.up)
        _ = d.record(success: false, nowMs: 2)
        #expect(d.record.lastError == nil)  // a failure without a reason leaves none
        _ = d.record(success: true, nowMs: 3, error: "ignored")
        #expect(d.record.lastError == nil)
        #expect(d.record.successes == 1 && d.record.failures == 3)
        _ = run(&d, "+-+-+-")
        #expect(d.record.successes == 4 && d.record.failures == 6)
    }

    @Test func transitionTimesAreTheTimesPassedIn() {
        var d = HealthDampener(rise: 2, fall: 2)
        #expect(d.record(success: false, nowMs: 5_000) == nil)
        #expect(d.record(success: false, nowMs: 7_000) == false)
        #expect(d.record.lastChangeMs == 7_000)
        #expect(d.record(success: true, nowMs: 9_000) == nil)
        #expect(d.record(success: true, nowMs: 11_000) == true)
        #expect(d.record.lastChangeMs == 11_000)
    }

    @Test func transitionValue() {
        let check = HealthCheckConfig(type: .tcp, port: 80)
        let t = HealthTransition(target: HealthTarget(address: address("10.0.0.1"), check: check), up: false, atMs: 9, reason: "x")
        #expect(t.target.description == "tcp:80@10.0.0.1" && !t.up && t.atMs == 9 && t.reason == "x")
    }
}
