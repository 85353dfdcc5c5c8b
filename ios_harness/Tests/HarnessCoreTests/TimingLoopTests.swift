@testable import HarnessCore
import XCTest

final class TimingLoopTests: XCTestCase {
    private struct Boom: Error, CustomStringConvertible {
        var description: String { "boom" }
    }

    func testWarmupIsNotTimedAndEveryRunIsOneSample() throws {
        let clock = FakeClock()
        let loop = TimingLoop(clock: clock)
        // Three warmup calls take 100 ms each; the five timed calls take these durations.
        let warmupDuration = 100.0
        let timedDurations = [1.0, 2.0, 0.5, 3.25, 0.75]
        var calls = 0
        let samples = try loop.measure(warmup: 3, runs: 5) {
            let duration = calls < 3 ? warmupDuration : timedDurations[calls - 3]
            calls += 1
            clock.advance(milliseconds: duration)
        }
        XCTAssertEqual(calls, 8)
        XCTAssertEqual(samples, timedDurations)
        // Two readings per timed run, none for the warmup runs.
        XCTAssertEqual(clock.readings, 10)
    }

    func testZeroWarmup() throws {
        let clock = FakeClock()
        var calls = 0
        let samples = try TimingLoop(clock: clock).measure(warmup: 0, runs: 1) {
            calls += 1
            clock.advance(milliseconds: 0.25)
        }
        XCTAssertEqual(calls, 1)
        XCTAssertEqual(samples, [0.25])
        XCTAssertEqual(clock.readings, 2)
    }

    func testInvalidCounts() {
        let loop = TimingLoop(clock: FakeClock())
        XCTAssertThrowsError(try loop.measure(warmup: 1, runs: 0) {}) { error in
            guard case TimingError.invalidIterationCount(let name, let value) = error else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(name, "runs")
            XCTAssertEqual(value, 0)
        }
        XCTAssertThrowsError(try loop.measure(warmup: -1, runs: 5) {}) { error in
            guard case TimingError.invalidIterationCount(let name, _) = error else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(name, "warmup")
        }
    }

    func testFailureInATimedRunStopsTheLoop() {
        let clock = FakeClock()
        var calls = 0
        XCTAssertThrowsError(try TimingLoop(clock: clock).measure(warmup: 2, runs: 10) {
            calls += 1
            if calls == 5 { throw Boom() }
            clock.advance(milliseconds: 1)
        }) { error in
            guard case let TimingError.iterationFailed(phase, iteration, total, underlying) = error else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(phase, .timed)
            XCTAssertEqual(iteration, 2)
            XCTAssertEqual(total, 10)
            XCTAssertTrue(underlying is Boom)
            XCTAssertEqual(String(describing: error), "timed run 3 of 10 failed: boom")
        }
        XCTAssertEqual(calls, 5)
    }

    func testFailureInWarmup() {
        XCTAssertThrowsError(try TimingLoop(clock: FakeClock()).measure(warmup: 2, runs: 10) { throw Boom() }) { error in
            guard case let TimingError.iterationFailed(phase, iteration, _, _) = error else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(phase, .warmup)
            XCTAssertEqual(iteration, 0)
        }
    }

    func testClockGoingBackwardsIsAnError() {
        let clock = FakeClock(start: 5_000)
        XCTAssertThrowsError(try TimingLoop(clock: clock).measure(warmup: 0, runs: 3) {
            clock.now -= 1_000
        }) { error in
            guard case TimingError.clockWentBackwards = error else {
                return XCTFail("unexpected \(error)")
            }
        }
    }

    func testProgressAndCancellation() {
        let clock = FakeClock()
        var reported: [Int] = []
        var timedCalls = 0
        let hooks = TimingHooks(
            progress: { completed, total in
                XCTAssertEqual(total, 10)
                reported.append(completed)
            },
            isCancelled: { reported.count >= 3 }
        )
        XCTAssertThrowsError(try TimingLoop(clock: clock).measure(warmup: 1, runs: 10, hooks: hooks) {
            timedCalls += 1
            clock.advance(milliseconds: 1)
        }) { error in
            guard case let TimingError.cancelled(phase, completed) = error else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(phase, .timed)
            XCTAssertEqual(completed, 3)
        }
        XCTAssertEqual(reported, [1, 2, 3])
        XCTAssertEqual(timedCalls, 4)  // one warmup call + three timed calls
    }

    func testProgressIsCalledOncePerTimedRun() throws {
        let clock = FakeClock()
        var reported: [Int] = []
        let hooks = TimingHooks(progress: { completed, _ in reported.append(completed) })
        let samples = try TimingLoop(clock: clock).measure(warmup: 4, runs: 6, hooks: hooks) {
            clock.advance(milliseconds: 2)
        }
        XCTAssertEqual(samples.count, 6)
        XCTAssertEqual(reported, [1, 2, 3, 4, 5, 6])
    }

    func testTimeOnce() throws {
        let clock = FakeClock()
        let timed = try TimingLoop(clock: clock).timeOnce { () -> String in
            clock.advance(milliseconds: 12.5)
            return "loaded"
        }
        XCTAssertEqual(timed.value, "loaded")
        XCTAssertEqual(timed.milliseconds, 12.5)
        XCTAssertEqual(clock.readings, 2)
    }

    func testUptimeClockIsMonotonicAndNamed() throws {
        let clock = UptimeClock()
        XCTAssertEqual(clock.identifier, "monotonic-uptime-ns")
        var previous = clock.nowNanoseconds()
        for _ in 0..<1000 {
            let next = clock.nowNanoseconds()
            XCTAssertGreaterThanOrEqual(next, previous)
            previous = next
        }
        let samples = try TimingLoop().measure(warmup: 1, runs: 50) {}
        XCTAssertEqual(samples.count, 50)
        XCTAssertTrue(samples.allSatisfy { $0 >= 0 && $0.isFinite })
    }
}
