@testable import HarnessCore
import XCTest

final class ModelBenchmarkTests: XCTestCase {
    private struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private let configuration = BenchmarkConfiguration(warmup: 2, runs: 4, computeUnits: .cpuOnly, models: [], tag: "test")
    private let inputs = [InputDescription(name: "input", kind: .multiArray, shape: [1, 3, 8, 8], dataType: "float32")]

    func testProtocolStagesAndTimings() throws {
        let clock = FakeClock()
        let benchmark = ModelBenchmark(configuration: configuration, clock: clock)
        var predictions = 0
        var prepared = 0
        let recorded = Recorder<BenchmarkProgress.Stage>()
        let hooks = BenchmarkHooks(progress: { progress in
            if recorded.all.last != progress.stage { recorded.append(progress.stage) }
        })
        let result = benchmark.run(
            model: "tiny",
            file: "tiny.mlmodelc",
            hooks: hooks,
            load: { () -> String in
                clock.advance(milliseconds: 40)
                return "model"
            },
            prepare: { (model: String) -> PreparedInput<[Float]> in
                XCTAssertEqual(model, "model")
                prepared += 1
                clock.advance(milliseconds: 1000)  // not timed
                return PreparedInput(value: [1, 2, 3], descriptions: self.inputs)
            },
            predict: { (model: String, input: [Float]) in
                XCTAssertEqual(input, [1, 2, 3])
                predictions += 1
                // First run 6 ms, warmup 50 ms each (untimed), timed runs 1, 2, 3, 4 ms.
                switch predictions {
                case 1: clock.advance(milliseconds: 6)
                case 2, 3: clock.advance(milliseconds: 50)
                default: clock.advance(milliseconds: Double(predictions - 3))
                }
            }
        )
        XCTAssertEqual(prepared, 1)
        XCTAssertEqual(predictions, 1 + 2 + 4)
        XCTAssertEqual(result.status, .ok)
        XCTAssertNil(result.errorMessage)
        XCTAssertEqual(result.loadMs, 40)
        XCTAssertEqual(result.firstRunMs, 6)
        XCTAssertEqual(result.samplesMs, [1, 2, 3, 4])
        XCTAssertEqual(result.summary?.min, 1)
        XCTAssertEqual(result.summary?.n, 4)
        XCTAssertEqual(result.inputs, inputs)
        XCTAssertEqual(result.warmup, 2)
        XCTAssertEqual(result.runs, 4)
        XCTAssertEqual(result.computeUnits, .cpuOnly)
        XCTAssertEqual(result.clock, "monotonic-uptime-ns")
        XCTAssertEqual(recorded.all, [.loading, .preparingInput, .firstRun, .warmup, .timing, .finished])
        XCTAssertEqual(result.validationProblems(path: "r"), [])
    }

    func testLoadFailureIsRecorded() {
        let result = ModelBenchmark(configuration: configuration, clock: FakeClock()).run(
            model: "bad",
            file: "bad.mlmodelc",
            load: { () -> String in throw Failure(description: "corrupt model") },
            prepare: { (_: String) -> PreparedInput<Int> in XCTFail("must not prepare"); return PreparedInput(value: 0, descriptions: []) },
            predict: { (_: String, _: Int) in XCTFail("must not predict") }
        )
        XCTAssertEqual(result.status, .error)
        XCTAssertEqual(result.errorMessage, "load failed: corrupt model")
        XCTAssertNil(result.loadMs)
        XCTAssertNil(result.firstRunMs)
        XCTAssertEqual(result.samplesMs, [])
        XCTAssertNil(result.summary)
        XCTAssertEqual(result.runs, 4)
        XCTAssertEqual(result.validationProblems(path: "r"), [])
    }

    func testInputFailureKeepsLoadTime() {
        let clock = FakeClock()
        let result = ModelBenchmark(configuration: configuration, clock: clock).run(
            model: "m",
            file: "m.mlmodelc",
            load: { () -> Int in clock.advance(milliseconds: 3); return 1 },
            prepare: { (_: Int) -> PreparedInput<Int> in throw Failure(description: "string input") },
            predict: { (_: Int, _: Int) in XCTFail("must not predict") }
        )
        XCTAssertEqual(result.status, .error)
        XCTAssertEqual(result.errorMessage, "input preparation failed: string input")
        XCTAssertEqual(result.loadMs, 3)
        XCTAssertNil(result.firstRunMs)
    }

    func testFirstRunFailure() {
        let result = ModelBenchmark(configuration: configuration, clock: FakeClock()).run(
            model: "m",
            file: "m.mlmodelc",
            load: { 1 },
            prepare: { (_: Int) in PreparedInput(value: 2, descriptions: self.inputs) },
            predict: { (_: Int, _: Int) in throw Failure(description: "ANE error") }
        )
        XCTAssertEqual(result.errorMessage, "first run failed: ANE error")
        XCTAssertEqual(result.inputs, inputs)
        XCTAssertNotNil(result.loadMs)
        XCTAssertNil(result.firstRunMs)
        XCTAssertEqual(result.samplesMs, [])
    }

    func testTimedRunFailureDropsPartialSamples() {
        var predictions = 0
        let result = ModelBenchmark(configuration: configuration, clock: FakeClock()).run(
            model: "m",
            file: "m.mlmodelc",
            load: { 1 },
            prepare: { (_: Int) in PreparedInput(value: 2, descriptions: []) },
            predict: { (_: Int, _: Int) in
                predictions += 1
                if predictions == 6 { throw Failure(description: "out of memory") }
            }
        )
        // 1 first run + 2 warmup + 2 timed runs succeed; the 3rd timed run (prediction 6) fails.
        XCTAssertEqual(result.status, .error)
        XCTAssertEqual(result.errorMessage, "timed run 3 of 4 failed: out of memory")
        XCTAssertNotNil(result.firstRunMs)
        XCTAssertEqual(result.samplesMs, [])
        XCTAssertNil(result.summary)
        XCTAssertEqual(result.validationProblems(path: "r"), [])
    }

    func testCancellationBeforeStart() {
        let result = ModelBenchmark(configuration: configuration, clock: FakeClock()).run(
            model: "m",
            file: "m.mlmodelc",
            hooks: BenchmarkHooks(isCancelled: { true }),
            load: { () -> Int in XCTFail("must not load"); return 1 },
            prepare: { (_: Int) in PreparedInput(value: 2, descriptions: []) },
            predict: { (_: Int, _: Int) in }
        )
        XCTAssertEqual(result.status, .error)
        XCTAssertEqual(result.errorMessage, "cancelled before loading")
    }

    func testErrorMessagesAreOneLine() {
        let result = ModelBenchmark(configuration: configuration, clock: FakeClock()).run(
            model: "m",
            file: "m.mlmodelc",
            load: { () -> Int in throw Failure(description: "line one\nline two") },
            prepare: { (_: Int) in PreparedInput(value: 2, descriptions: []) },
            predict: { (_: Int, _: Int) in }
        )
        XCTAssertEqual(result.errorMessage, "load failed: line one line two")
    }
}
